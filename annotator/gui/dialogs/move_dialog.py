"""Choose the identity to move faces to, by key or name search."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from annotator.store import browse
from annotator.store.db import Project


class MoveDialog(QDialog):
    def __init__(
        self, project: Project, count: int, exclude: int | None, parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.project = project
        self.exclude = exclude
        self.chosen: int | None = None
        self.setWindowTitle("Move faces to another identity")
        self.resize(460, 420)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"Move {count} face{'s' if count != 1 else ''} to the identity:"))
        self.search = QLineEdit()
        self.search.setPlaceholderText("key (m.0…) or name")
        self.search.setClearButtonEnabled(True)
        lay.addWidget(self.search)
        self.results = QListWidget()
        lay.addWidget(self.results, 1)
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
        for row in browse.search_identities(self.project, self.search.text()):
            if row.id == self.exclude:
                continue
            item = QListWidgetItem(f"{row.key}   {row.name or ''}   ({row.face_count} faces)")
            item.setData(Qt.ItemDataRole.UserRole, row.id)
            self.results.addItem(item)
        if self.results.count():
            self.results.setCurrentRow(0)

    def _accept(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.update_results()
        item = self.results.currentItem()
        if item is None:
            return
        self.chosen = int(item.data(Qt.ItemDataRole.UserRole))
        self.accept()
