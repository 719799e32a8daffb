"""Painting one face tile: thumbnail, label border, flag badges, selection mark."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from annotator.model import LABEL_COLORS

LABEL_SHORT: dict[str, str] = {
    "correct": "correct",
    "wrong_identity": "wrong id",
    "duplicate": "duplicate",
    "unusable": "unusable",
    "unsure": "unsure",
}
BADGE_COLORS: dict[str, str] = {
    "D": "#f08c00",  # duplicate in this identity
    "X": "#b0207a",  # cross-identity duplicate
    "S": "#1f6fd1",  # not this identity's person (face embedding)
    "O": "#6c3fc4",  # outlier
    "!": "#d62f2f",  # corrupt
    "Q": "#5a6b7b",  # quality (tiny, grayscale, blurry)
}
BADGE_HELP: dict[str, str] = {
    "D": "duplicate",
    "X": "cross-identity duplicate",
    "S": "not this identity's person (face embedding: looks like another identity, or like no "
    "one in the set — the inspector says which)",
    "O": "outlier",
    "!": "corrupt",
    "Q": "quality (tiny / grayscale / blurry)",
}
MARGIN = 4
BORDER = 4

TileRole = 0x0101
PixmapRole = 0x0102
ErrorRole = 0x0103


class FaceDelegate(QStyledItemDelegate):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.thumb_size = 128
        self._badge_font = QFont()
        self._badge_font.setBold(True)
        self._badge_font.setPixelSize(11)
        self._small = QFont()
        self._small.setPixelSize(11)

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        s = self.thumb_size + 2 * (MARGIN + BORDER)
        return QSize(s, s)

    def paint(
        self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        tile = index.data(TileRole)
        if tile is None:
            return
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        r = option.rect.adjusted(MARGIN // 2, MARGIN // 2, -MARGIN // 2, -MARGIN // 2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        # The current face is marked even when the grid has no keyboard focus (the reviewer
        # typed in the search box): blue when keys go to the grid, grey otherwise.
        view = option.widget
        focused = bool(option.state & QStyle.StateFlag.State_HasFocus)
        current = focused or (
            view is not None
            and hasattr(view, "currentIndex")
            and view.currentIndex().row() == index.row()
        )
        if selected:
            p.fillRect(r, QColor("#cfe3ff"))
        inner = r.adjusted(BORDER + 1, BORDER + 1, -BORDER - 1, -BORDER - 1)

        pm = index.data(PixmapRole)
        if pm is not None and not pm.isNull():
            scaled = pm.scaled(
                inner.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            x = inner.x() + (inner.width() - scaled.width()) // 2
            y = inner.y() + (inner.height() - scaled.height()) // 2
            p.drawPixmap(x, y, scaled)
        else:
            err = index.data(ErrorRole)
            p.fillRect(inner, QColor("#3a3a3a" if err else "#e4e4e4"))
            p.setPen(QColor("#ff9c9c" if err else "#9a9a9a"))
            p.setFont(self._small)
            p.drawText(
                inner.adjusted(4, 4, -4, -4),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "cannot read" if err else "…",
            )

        color = LABEL_COLORS.get(tile.label or "")
        if color:
            pen = QPen(QColor(color), BORDER)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(r.adjusted(BORDER // 2, BORDER // 2, -BORDER // 2, -BORDER // 2))
            # label chip, bottom left
            p.setFont(self._small)
            text = LABEL_SHORT.get(tile.label, tile.label)
            w = p.fontMetrics().horizontalAdvance(text) + 8
            chip = QRect(inner.left(), inner.bottom() - 15, w, 16)
            p.fillRect(chip, QColor(color))
            p.setPen(QColor("white"))
            p.drawText(chip, Qt.AlignmentFlag.AlignCenter, text)

        # flag badges, top right
        if tile.badges:
            p.setFont(self._badge_font)
            x = inner.right() - 1
            for b in reversed(tile.badges):
                br = QRect(x - 16, inner.top() + 2, 16, 16)
                p.setPen(Qt.PenStyle.NoPen)
                p.setBrush(QColor(BADGE_COLORS.get(b, "#444")))
                p.drawRoundedRect(br, 3, 3)
                p.setPen(QColor("white"))
                p.drawText(br, Qt.AlignmentFlag.AlignCenter, b)
                x -= 18

        # selection mark, top left
        if selected:
            mark = QRect(inner.left() + 3, inner.top() + 3, 18, 18)
            p.setPen(QPen(QColor("white"), 2))
            p.setBrush(QColor("#1f6fe5"))
            p.drawEllipse(mark)
            p.setPen(QPen(QColor("white"), 2))
            p.drawLine(mark.left() + 5, mark.center().y(), mark.center().x() - 1, mark.bottom() - 5)
            p.drawLine(mark.center().x() - 1, mark.bottom() - 5, mark.right() - 4, mark.top() + 5)
        if current:
            pen = QPen(QColor("#1f6fe5" if focused else "#8a8a8a"), 2, Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(option.rect.adjusted(1, 1, -2, -2))
        p.restore()
