"""Small dialogs: reviewer name on first start, the shortcut sheet, about."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QInputDialog,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from annotator.gui.shortcuts import html_table


def ask_reviewer_name(parent: QWidget | None = None, default: str = "") -> str | None:
    """The reviewer's name (recorded with every label), or None when cancelled."""
    while True:
        name, ok = QInputDialog.getText(
            parent,
            "Who is reviewing?",
            "Your name or initials. It is recorded with every label you give:",
            text=default,
        )
        if not ok:
            return None
        if name.strip():
            return name.strip()


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        lay = QVBoxLayout(self)
        text = QLabel(html_table())
        text.setWordWrap(True)
        text.setContentsMargins(6, 6, 6, 6)
        text.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()  # a small screen scrolls the sheet instead of cutting it
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(text)
        lay.addWidget(scroll)
        screen = self.screen().availableGeometry() if self.screen() else None
        height = 700 if screen is None else min(700, screen.height() - 60)
        self.resize(600, height)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
