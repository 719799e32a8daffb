"""Widgets shared by the QA pass and the adjudication queue: one face shown large, a strip of
reference faces of an identity, coloured label text."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Collection

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from annotator.gui.delegates import LABEL_COLORS
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.model import LABELS
from annotator.store import browse
from annotator.store.browse import FaceTile
from annotator.store.db import Project


def label_html(label: str | None, none_text: str = "unlabeled") -> str:
    if not label:
        return f"<span style='color:#777'>{html.escape(none_text)}</span>"
    c = LABEL_COLORS.get(label, "#000")
    return f"<b style='color:{c}'>{html.escape(label.replace('_', ' '))}</b>"


def keys_html(prefix: str = "") -> str:
    """The five label keys with their colours, e.g. for a legend."""
    return prefix + "&nbsp; ".join(  # a line may break between keys, not inside one
        f"<span style='color:{LABEL_COLORS[lab]}'>■</span>&nbsp;<b>{i + 1}</b>&nbsp;"
        f"{lab.replace('_', '&nbsp;')}"
        for i, lab in enumerate(LABELS)
    )


def identity_caption(project: Project, identity_id: int) -> str:
    """``<b>key</b> — name`` of an identity (HTML)."""
    row = browse.identity_rows(project, [identity_id]).get(identity_id)
    if row is None:
        return f"identity {identity_id}"
    name = f" — {html.escape(row.name)}" if row.name else ""
    return f"<b>{html.escape(row.key)}</b>{name}"


def reference_tiles(
    project: Project, identity_id: int, exclude: Collection[int], limit: int = 8
) -> tuple[list[FaceTile], str]:
    """Faces to compare a face with: the identity's faces labeled ``correct`` (else its
    unlabeled ones), never those in ``exclude``, with their labels stripped."""
    others = [
        t
        for t in browse.faces_of_identity(project, identity_id)
        if t.id not in exclude and "!" not in t.badges  # a corrupt face shows nothing
    ]
    pick = [t for t in others if t.label == "correct"]
    caption = "Reference faces of this identity (labeled correct)"
    if not pick:
        pick = [t for t in others if t.label is None]
        caption = "Other faces of this identity (not labeled yet)"
    if not pick:
        return [], "No reference faces for this identity"
    return [dataclasses.replace(t, label=None) for t in pick[:limit]], caption


SMALL_TEXT_BELOW = 128  # px: smaller FaceImages say "cannot read", the reason is a tooltip


class FaceImage(QLabel):
    """One face at a fixed size; the thumbnail arrives asynchronously."""

    def __init__(self, loader: ThumbnailLoader, size: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.loader = loader
        self.px = size
        self.tile: FaceTile | None = None
        self.setFixedSize(size, size)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setStyleSheet("background:#2b2b2b; color:#bbb; border-radius:3px")
        loader.ready.connect(self._ready)
        loader.failed.connect(lambda fid, _e: self._ready(fid))

    def set_face(self, tile: FaceTile | None) -> None:
        self.tile = tile
        if tile is None:
            self.clear()
            self.setToolTip("")
            return
        self._show(self.loader.request(tile.locator(), self.px))

    def _show(self, pm: QPixmap | None) -> None:
        if pm is None:
            err = self.loader.error(self.tile.id) if self.tile else None
            # a reference tile is too small for the reader's message: it goes to the tooltip
            short = err and self.px < SMALL_TEXT_BELOW
            self.setText(html.escape("cannot read" if short else err) if err else "…")
            self.setToolTip(err or "")
            return
        self.setToolTip("")
        self.setPixmap(
            pm.scaled(
                self.px - 4,
                self.px - 4,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def _ready(self, face_id: int) -> None:
        if self.tile is not None and face_id == self.tile.id:
            self._show(self.loader.pixmap(face_id, self.px))


class ReferenceStrip(QWidget):
    """A caption and up to ``count`` small faces in rows of ``columns``."""

    def __init__(
        self,
        loader: ThumbnailLoader,
        size: int = 72,
        columns: int = 4,
        count: int = 8,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel()
        self.caption.setStyleSheet("color:#555")
        self.caption.setWordWrap(True)
        lay.addWidget(self.caption)
        grid = QGridLayout()
        grid.setSpacing(4)
        lay.addLayout(grid)
        self.images = [FaceImage(loader, size) for _ in range(count)]
        for n, img in enumerate(self.images):
            grid.addWidget(img, n // columns, n % columns)
        grid.setColumnStretch(columns, 1)

    def set_faces(self, tiles: list[FaceTile], caption: str) -> None:
        self.caption.setText(f"<small>{html.escape(caption)}</small>")
        for n, img in enumerate(self.images):
            img.set_face(tiles[n] if n < len(tiles) else None)
            img.setVisible(n < len(tiles))
