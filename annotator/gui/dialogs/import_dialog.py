"""Import a source: format + path."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

from annotator.model import FORMATS

FORMAT_HELP = {
    "msceleb": "MS-Celeb-1M aligned/cropped TSV (7 columns)",
    "devset": "MS-Celeb-1M dev set TSV (6 columns)",
    "names": 'Entity names list (MID, "name"@lang)',
    "rec": "InsightFace RecordIO (.rec + .idx)",
    "folder": "Folder: ROOT/<identity>/<image>",
}


class ImportDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import a source")
        self.resize(560, 140)
        form = QFormLayout(self)
        self.format = QComboBox()
        for f in FORMATS:
            self.format.addItem(f"{f} — {FORMAT_HELP.get(f, '')}", f)
        form.addRow("Format", self.format)
        row = QHBoxLayout()
        self.path = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form.addRow("Path", row)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def chosen(self) -> tuple[str, str]:
        return str(self.format.currentData()), self.path.text().strip()

    def _browse(self) -> None:
        if self.format.currentData() == "folder":
            p = QFileDialog.getExistingDirectory(self, "Source folder")
        else:
            p, _ = QFileDialog.getOpenFileName(self, "Source file")
        if p:
            self.path.setText(p)

    def _ok(self) -> None:
        if self.path.text().strip():
            self.accept()
