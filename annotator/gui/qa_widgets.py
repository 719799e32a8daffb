"""Widgets shared by the QA pass and the adjudication queue: one face shown large, a strip of
reference faces of an identity, the evidence the scan holds about a face (its other copies, the
identity it looks like), coloured label text."""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Collection

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from annotator.gui.thumbnails import ThumbnailLoader
from annotator.model import LABEL_COLORS, LABELS
from annotator.store import browse, identity_check
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


def evidence(project: Project, face_id: int, limit: int = 4) -> list[tuple[str, list[FaceTile]]]:
    """What the scan and the embeddings say about a face, as (caption, faces) sections with
    the labels stripped (a QA look stays blind): the other copies in its duplicate group
    (where each is filed), and the identity it looks more like (key, name and a few faces)."""
    out: list[tuple[str, list[FaceTile]]] = []
    copies = [p for p in browse.dup_group(project, face_id) if p.face_id != face_id]
    if copies:
        here = browse.face_tiles(project, [face_id]).get(face_id)
        tiles = browse.face_tiles(project, [p.face_id for p in copies])
        where = sorted(
            {
                "this identity" if here and p.identity_id == here.identity_id else p.identity_key
                for p in copies
            }
        )
        out.append(
            (
                f"Other copies of this photo ({len(copies)}, filed under {', '.join(where)})",
                [
                    dataclasses.replace(tiles[p.face_id], label=None)
                    for p in copies
                    if p.face_id in tiles
                ][:limit],
            )
        )
    ll = identity_check.looks_like(project, face_id)
    if ll is not None:
        ident, key, _margin = ll
        row = browse.identity_rows(project, [ident]).get(ident)
        name = f" — {row.name}" if row is not None and row.name else ""
        ids = identity_check.sample_faces(project, ident, limit, near=face_id)
        tiles = browse.face_tiles(project, ids)
        out.append(
            (
                f"Looks more like {key}{name} (face embeddings); some of its faces:",
                [dataclasses.replace(tiles[f], label=None) for f in ids if f in tiles],
            )
        )
    return out


class EvidenceStrips(QWidget):
    """Up to two :class:`ReferenceStrip` sections of :func:`evidence`; hidden when empty."""

    def __init__(self, loader: ThumbnailLoader, size: int = 72, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.strips = [ReferenceStrip(loader, size=size, columns=4, count=4) for _ in range(2)]
        for s in self.strips:
            s.setObjectName("evidenceStrip")
            lay.addWidget(s)
        self.sections: list[tuple[str, list[FaceTile]]] = []
        self.show_sections([])

    def show_sections(self, sections: list[tuple[str, list[FaceTile]]]) -> None:
        self.sections = sections[: len(self.strips)]
        for n, s in enumerate(self.strips):
            if n < len(self.sections):
                s.set_faces(self.sections[n][1], self.sections[n][0])
                s.show()
            else:
                s.set_faces([], "")
                s.hide()
        self.setVisible(bool(self.sections))


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
