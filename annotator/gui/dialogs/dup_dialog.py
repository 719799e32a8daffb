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


class DupGroupDialog(QDialog):
    """Keys 1..9 (or a click) choose the keeper."""

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
        self.setWindowTitle(f"Duplicate group: {len(group)} faces — choose the one to keep")
        lay = QVBoxLayout(self)
        lay.addWidget(
            QLabel(
                "Press the number of the face to keep (or click it). "
                "The others are labeled <b>duplicate</b>."
            )
        )
        grid = QGridLayout()
        lay.addLayout(grid)
        self.images: dict[int, QLabel] = {}
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
            cap = QLabel(
                f"<small>{html.escape(p.identity_key)}<br>{html.escape(origin)}<br>"
                f"{html.escape(p.label or 'unlabeled')}</small>"
            )
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            grid.addWidget(cap, r + 1, col)
            b = QPushButton(f"&{n + 1} Keep" if n < 9 else "Keep")
            b.clicked.connect(lambda _c=False, f=p.face_id: self.choose(f))
            grid.addWidget(b, r + 2, col)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
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
        if Qt.Key.Key_1 <= k <= Qt.Key.Key_9:
            n = k - Qt.Key.Key_1
            if n < len(self.group):
                self.choose(self.group[n].face_id)
                return
        super().keyPressEvent(e)

    def choose(self, face_id: int) -> None:
        self.keeper = face_id
        self.accept()
