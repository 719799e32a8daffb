"""Review > Flag grid… (F): choose the flag kind whose faces, from all identities, fill one
grid (see gui/flag_mode.py)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from annotator.store import browse
from annotator.store.db import Project


class FlagKindDialog(QDialog):
    """On accept, ``kind`` is the chosen flag kind."""

    def __init__(self, project: Project, parent: QWidget | None = None):
        super().__init__(parent)
        self.kind: str | None = None
        self.setWindowTitle("Flag grid")
        self.setMinimumWidth(460)
        lay = QVBoxLayout(self)
        intro = QLabel(
            "Every face of one flag kind, from all identities, in one grid — highest score "
            "first. Label them with 1-5 as usual; Ctrl+Z undoes; Esc goes back."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.list = QListWidget()
        self.list.setObjectName("flagKinds")
        counts = browse.flag_kind_counts(project)
        for kind, (n, unlabeled) in counts.items():
            it = QListWidgetItem(f"{kind.replace('_', ' ')} — {n:,} faces, {unlabeled:,} unlabeled")
            it.setData(Qt.ItemDataRole.UserRole, kind)
            self.list.addItem(it)
        if not counts:
            self.list.addItem("(no flags: File > Scan finds them)")
            self.list.setEnabled(False)
        else:
            best = max(range(len(counts)), key=lambda r: list(counts.values())[r][1])
            self.list.setCurrentRow(best)
        self.list.itemDoubleClicked.connect(lambda _i: self.choose())
        lay.addWidget(self.list)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(bool(counts))
        buttons.accepted.connect(self.choose)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)

    def choose(self) -> None:
        it = self.list.currentItem()
        kind = it.data(Qt.ItemDataRole.UserRole) if it is not None else None
        if kind:
            self.kind = str(kind)
            self.accept()
