"""A duplicate group side by side: choose the keeper (the others become `duplicate`)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from annotator.gui.delegates import LABEL_COLORS
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.store.browse import Partner

SIZE = 192
KEEPER_GROUND = "#cdebd4"


def _facts(p: Partner) -> str:
    size = f"{p.size[0]}×{p.size[1]}" if p.size else "size unknown (not scanned)"
    rank = f"rank {p.rank}" if p.rank is not None else "no rank"
    return f"{size}, {rank}"


class DupGroupDialog(QDialog):
    """Keys 1..9 (or a click) choose the keeper; Enter accepts the scan's proposed keeper
    (largest image, then best rank), which is marked and has the default button."""

    def __init__(
        self,
        group: list[Partner],
        current: int,
        loader: ThumbnailLoader,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.group = group
        self.loader = loader
        self.keeper: int | None = None
        self.proposed: int | None = next((p.face_id for p in group if p.keeper), None)
        self.setWindowTitle(f"Duplicate group: {len(group)} faces — choose the one to keep")
        lay = QVBoxLayout(self)
        lay.addWidget(
            QLabel(
                "Press the number of the face to keep (or click it)"
                + (", or Enter for the proposed keeper" if self.proposed is not None else "")
                + ". The others are labeled <b>duplicate</b>."
            )
        )
        grid = QGridLayout()
        lay.addLayout(grid)
        self.images: dict[int, QLabel] = {}
        self.buttons: dict[int, QPushButton] = {}
        self.captions: dict[int, QLabel] = {}
        for n, p in enumerate(group):
            img = QLabel()
            img.setFixedSize(SIZE, SIZE)
            img.setAlignment(Qt.AlignmentFlag.AlignCenter)
            border = LABEL_COLORS.get(p.label or "", "#cccccc")
            width = 4 if p.face_id == current else 2
            img.setStyleSheet(f"background:#e4e4e4; border:{width}px solid {border}")
            self.images[p.face_id] = img
            if p.tile is not None:
                self._set(p.face_id, loader.request(p.tile.locator(), SIZE))
            col = n % 4
            r = (n // 4) * 3
            grid.addWidget(img, r, col)
            origin = p.tile.origin if p.tile else str(p.face_id)
            mark = (
                "<br><b style='color:#1e7b34'>proposed keeper: largest, best rank</b>"
                if p.keeper
                else ""
            )
            cap = QLabel(
                f"<small>{html.escape(p.identity_key)}<br>{html.escape(origin)}<br>"
                f"{html.escape(_facts(p))}<br>"
                f"{html.escape(p.label or 'unlabeled')}</small>{mark}"
            )
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.captions[p.face_id] = cap
            grid.addWidget(cap, r + 1, col)
            b = QPushButton(f"&{n + 1} Keep" if n < 9 else "Keep")
            b.setAutoDefault(False)  # Enter never means "the focused button", only the keeper's
            b.clicked.connect(lambda _c=False, f=p.face_id: self.choose(f))
            self.buttons[p.face_id] = b
            grid.addWidget(b, r + 2, col)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Cancel).setAutoDefault(False)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        if self.proposed is not None:
            kb = self.buttons[self.proposed]
            kb.setText(kb.text() + " (proposed)")
            kb.setDefault(True)
            kb.setFocus()
            img = self.images[self.proposed]  # a green ground marks the proposal
            img.setStyleSheet(img.styleSheet().replace("#e4e4e4", KEEPER_GROUND))
        loader.ready.connect(self._ready)

    def _set(self, face_id: int, pm) -> None:
        if pm is not None:
            self.images[face_id].setPixmap(
                pm.scaled(
                    SIZE - 8,
                    SIZE - 8,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def _ready(self, face_id: int) -> None:
        if face_id in self.images:
            self._set(face_id, self.loader.pixmap(face_id, SIZE))

    def keyPressEvent(self, e) -> None:
        k = e.key()
        if k in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.proposed is not None:
            self.choose(self.proposed)  # whichever button has focus
            return
        if Qt.Key.Key_1 <= k <= Qt.Key.Key_9:
            n = k - Qt.Key.Key_1
            if n < len(self.group):
                self.choose(self.group[n].face_id)
                return
        super().keyPressEvent(e)

    def choose(self, face_id: int) -> None:
        self.keeper = face_id
        self.accept()
