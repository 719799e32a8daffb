"""Choose the identity to move faces to, by key or name search; the highlighted target shows a
few of its faces, so the reviewer sees whom the face joins."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from annotator.gui.thumbnails import ThumbnailLoader
from annotator.store import browse
from annotator.store.db import Project

THUMB = 72  # pixels of a target face
TARGET_FACES = 6  # faces of the highlighted target shown


class MoveDialog(QDialog):
    def __init__(
        self,
        project: Project,
        count: int,
        exclude: int | None,
        parent: QWidget | None = None,
        loader: ThumbnailLoader | None = None,
        suggested: tuple[int, str] | None = None,
    ):
        super().__init__(parent)
        self.project = project
        self.exclude = exclude
        # (identity id, why) the tool names for these faces: first in the list, pre-selected
        self.suggested = suggested if suggested is None or suggested[0] != exclude else None
        self.loader = loader
        self.chosen: int | None = None
        self.chosen_key = ""
        self.preview_ids: list[int] = []  # face ids shown for the highlighted target
        self.setWindowTitle("Move faces to another identity")
        self.resize(520, 520)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"Move {count} face{'s' if count != 1 else ''} to the identity:"))
        self.search = QLineEdit()
        self.search.setPlaceholderText("key (m.0…) or name")
        self.search.setClearButtonEnabled(True)
        lay.addWidget(self.search)
        self.results = QListWidget()
        lay.addWidget(self.results, 1)
        self.preview_caption = QLabel("")
        lay.addWidget(self.preview_caption)
        row = QHBoxLayout()
        self.previews: list[QLabel] = []
        for _ in range(TARGET_FACES):
            img = QLabel()
            img.setFixedSize(THUMB, THUMB)
            img.setAlignment(Qt.AlignmentFlag.AlignCenter)
            img.setStyleSheet("background:#e4e4e4")
            self.previews.append(img)
            row.addWidget(img)
        row.addStretch(1)
        lay.addLayout(row)
        self.results.currentItemChanged.connect(lambda _c, _p: self.show_target())
        if loader is not None:
            loader.ready.connect(self._ready)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self._timer = QTimer(self, singleShot=True, interval=120)
        self._timer.timeout.connect(self.update_results)
        self.search.textChanged.connect(lambda _t: self._timer.start())
        self.search.returnPressed.connect(self._accept)
        self.results.itemActivated.connect(lambda _i: self._accept())
        self.search.installEventFilter(self)
        if self.suggested is not None:
            self.update_results()

    def eventFilter(self, obj, event):  # arrows in the search box move in the result list
        from PySide6.QtCore import QEvent

        if (
            obj is self.search
            and event.type() == QEvent.Type.KeyPress
            and event.key()
            in (
                Qt.Key.Key_Down,
                Qt.Key.Key_Up,
            )
        ):
            r = self.results.currentRow() + (1 if event.key() == Qt.Key.Key_Down else -1)
            self.results.setCurrentRow(max(0, min(self.results.count() - 1, r)))
            return True
        return super().eventFilter(obj, event)

    def update_results(self) -> None:
        self.results.clear()
        rows = browse.search_identities(self.project, self.search.text())
        if self.suggested is not None and not self.search.text().strip():
            ident, why = self.suggested
            first = browse.identity_rows(self.project, [ident]).get(ident)
            if first is not None:
                rows = [first] + [r for r in rows if r.id != ident]
        for row in rows:
            if row.id == self.exclude:
                continue
            text = f"{row.key}   {row.name or ''}   ({row.face_count} faces)"
            why = ""
            if self.suggested is not None and row.id == self.suggested[0]:
                # the reason on a line of its own: beside the name it ran past the list's edge
                text = f"★ {text}"
                why = f"suggested: {self.suggested[1]}"
            item = QListWidgetItem(f"{text}\n      {why}" if why else text)
            if why:
                item.setToolTip(f"{text}\n{why}")
            item.setData(Qt.ItemDataRole.UserRole, row.id)
            item.setData(Qt.ItemDataRole.UserRole + 1, row.key)
            self.results.addItem(item)
        if self.results.count():
            self.results.setCurrentRow(0)

    def show_target(self) -> None:
        """A few faces of the highlighted target identity (with how many it has)."""
        item = self.results.currentItem()
        for img in self.previews:
            img.clear()
            img.setToolTip("")
        self.preview_ids = []
        if item is None:
            self.preview_caption.setText("")
            return
        ident = int(item.data(Qt.ItemDataRole.UserRole))
        tiles = browse.faces_of_identity(self.project, ident)
        shown = tiles[:TARGET_FACES]
        more = f" (first {len(shown)} of {len(tiles)})" if len(tiles) > len(shown) else ""
        self.preview_caption.setText(
            f"Faces of {item.data(Qt.ItemDataRole.UserRole + 1)}{more}:"
            if tiles
            else "No faces yet."
        )
        for img, t in zip(self.previews, shown, strict=False):
            self.preview_ids.append(t.id)
            img.setToolTip(t.origin)
            if self.loader is not None:
                self._set(img, self.loader.request(t.locator(), THUMB))

    def _set(self, img: QLabel, pm) -> None:
        if pm is not None:
            img.setPixmap(
                pm.scaled(
                    THUMB - 4,
                    THUMB - 4,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def _ready(self, face_id: int) -> None:
        if face_id in self.preview_ids and self.loader is not None:
            n = self.preview_ids.index(face_id)
            self._set(self.previews[n], self.loader.pixmap(face_id, THUMB))

    def _accept(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.update_results()
        item = self.results.currentItem()
        if item is None:
            return
        self.chosen = int(item.data(Qt.ItemDataRole.UserRole))
        self.chosen_key = str(item.data(Qt.ItemDataRole.UserRole + 1))
        self.accept()
