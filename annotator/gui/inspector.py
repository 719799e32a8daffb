"""The inspector: a large view of the current face, its origin and metadata, and every flag
with its partner faces side by side (clicking a partner opens it)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QMouseEvent, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from annotator.gui.thumbnails import ThumbnailLoader
from annotator.model import LABEL_COLORS
from annotator.store.browse import FaceDetail, FlagInfo, Partner

BIG = 256  # the thumbnail asked for; shown scaled to the panel's width
SHOWN_MIN = 200
SMALL = 96
PARTNER_COLUMNS = 2  # partner faces a row under a flag (the panel is ~2 tiles wide)
FLAG_TEXT = {
    "exact_dup": "exact duplicate",
    "near_dup": "near duplicate",
    "cross_identity_dup": "cross-identity duplicate",
    "outlier": "outlier (far from the identity's other faces)",
    "corrupt": "corrupt image",
    "tiny": "tiny image",
    "grayscale": "grayscale image",
    "blurry": "blurry image",
    "suspect_identity": "not this identity's person (face embedding)",
}
STRANGER = "far from this identity's other faces — looks like no one in the set"


class _PartnerTile(QFrame):
    clicked = Signal(int, int)  # identity id, face id

    def __init__(self, partner: Partner, same_identity: bool, parent=None):
        super().__init__(parent)
        self.partner = partner
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(3, 3, 3, 3)
        lay.setSpacing(2)
        self.image = QLabel()
        self.image.setFixedSize(SMALL, SMALL)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setStyleSheet("background:#e4e4e4")
        lay.addWidget(self.image)
        where = "this identity" if same_identity else partner.identity_key
        origin = partner.tile.origin if partner.tile else f"face {partner.face_id}"
        cap = QLabel(f"<small>{html.escape(where)}<br>{html.escape(origin)}</small>")
        cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(cap)
        color = LABEL_COLORS.get(partner.label or "")
        if color:
            self.setStyleSheet(f"_PartnerTile {{ border: 3px solid {color}; }}")
        self.setToolTip("Open this face" if not same_identity else "Go to this face")

    def set_pixmap(self, pm: QPixmap | None) -> None:
        if pm is not None:
            self.image.setPixmap(
                pm.scaled(
                    SMALL,
                    SMALL,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:
        if e.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.partner.identity_id, self.partner.face_id)
        super().mouseReleaseEvent(e)


class Inspector(QScrollArea):
    open_face = Signal(int, int)  # identity id, face id

    def __init__(self, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.detail: FaceDetail | None = None
        self._partners: list[_PartnerTile] = []
        self._fit_pending = False
        self.setWidgetResizable(True)
        self.setMinimumWidth(SHOWN_MIN + 30)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self.setWidget(body)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(10, 10, 10, 10)
        self.image = QLabel()
        self.image.setMinimumSize(SHOWN_MIN, SHOWN_MIN)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setStyleSheet("background:#2b2b2b; border-radius:4px")
        lay.addWidget(self.image)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.info.setOpenExternalLinks(True)
        self.info.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        lay.addWidget(self.info)
        self.flags_box = QVBoxLayout()
        lay.addLayout(self.flags_box)
        lay.addStretch(1)
        loader.ready.connect(self._thumb_ready)
        loader.failed.connect(lambda fid, _e: self._thumb_ready(fid))
        self.show_detail(None)

    def show_detail(self, d: FaceDetail | None) -> None:
        self.detail = d
        self._clear_flags()
        if d is None:
            self.image.clear()
            self.image.setText("<span style='color:#aaa'>no face</span>")
            self.info.setText("<i>No face selected.</i>")
            return
        self._set_big()
        t = d.tile
        rows: list[tuple[str, str]] = [
            ("Origin", html.escape(t.origin)),
            ("Identity", html.escape(d.identity_key)),
            ("Label", _label_html(t.label)),
        ]
        if d.rank is not None:
            rows.append(("Rank", str(d.rank)))
        if d.face_ref:
            rows.append(("FaceID", html.escape(d.face_ref)))
        for name, url in (("Image URL", d.image_url), ("Page URL", d.page_url)):
            if url:
                u = html.escape(url)
                rows.append((name, f"<a href='{u}'>{u}</a>"))
        if d.rect:
            rows.append(("Face rect", ", ".join(f"{v:.3f}" for v in d.rect)))
        if d.size:
            rows.append(("Size", f"{d.size[0]} × {d.size[1]}"))
        if d.phash:
            rows.append(("pHash", f"<tt>{d.phash}</tt>"))
        if d.dhash:
            rows.append(("dHash", f"<tt>{d.dhash}</tt>"))
        if d.sharpness is not None:
            rows.append(("Sharpness", f"{d.sharpness:.1f}"))
        if d.corrupt:
            rows.append(("Corrupt", f"<span style='color:#d62f2f'>{html.escape(d.corrupt)}</span>"))
        err = self.loader.error(t.id)
        if err and err != d.corrupt:  # the reason is said once, not again for the thumbnail
            rows.append(("Read error", f"<span style='color:#d62f2f'>{html.escape(err)}</span>"))
        if not d.flags:
            rows.append(("Flags", "none" if d.phash else "none (not scanned yet)"))
        body = "".join(
            f"<tr><td style='color:#777;padding-right:10px'>{k}</td><td>{v}</td></tr>"
            for k, v in rows
        )
        self.info.setText(f"<table>{body}</table>")
        for f in d.flags + d.same_person:
            head = QLabel(_flag_head(f))
            head.setWordWrap(True)
            self.flags_box.addWidget(head)
            self._flag_widgets.append(head)
            if f.partners:
                # PARTNER_COLUMNS tiles a row: a long row would widen the panel past the window
                grid = QGridLayout()
                wrap = QWidget()
                wrap.setLayout(grid)
                grid.setContentsMargins(0, 0, 0, 6)
                grid.setSpacing(4)
                for k, p in enumerate(f.partners):
                    tile = _PartnerTile(p, p.identity_id == t.identity_id)
                    tile.clicked.connect(self.open_face)
                    if p.tile is not None:
                        tile.set_pixmap(self.loader.request(p.tile.locator(), SMALL))
                    grid.addWidget(tile, *divmod(k, PARTNER_COLUMNS))
                    self._partners.append(tile)
                grid.setColumnStretch(PARTNER_COLUMNS, 1)
                self.flags_box.addWidget(wrap)
                self._flag_widgets.append(wrap)
        if not self._fit_pending:  # once a turn of the event loop (see fit_width)
            self._fit_pending = True
            QTimer.singleShot(0, self, self.fit_width)

    def fit_width(self) -> None:
        """The horizontal scroll bar is off: the panel is at least as wide as what it shows (a
        hash in the table, two partner tiles), so nothing is cut at its right edge. Laying out
        the word-wrapped table for its width costs milliseconds, and a label key shows two
        faces in one turn of the event loop (the labeled face, then the next), so it runs once,
        after them."""
        self._fit_pending = False
        need = self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
        self.setMinimumWidth(max(SHOWN_MIN + 30, need))

    def _clear_flags(self) -> None:
        for w in getattr(self, "_flag_widgets", []):
            w.setParent(None)
            w.deleteLater()
        self._flag_widgets: list[QWidget] = []
        self._partners = []

    def _set_big(self) -> None:
        if self.detail is None:
            return
        pm = self.loader.request(self.detail.tile.locator(), BIG)
        if pm is None:
            err = self.loader.error(self.detail.tile.id)
            # the reason is in the table below, once
            self.image.setText("<span style='color:#ff9c9c'>cannot read</span>" if err else "…")
            self.image.setToolTip(err or "")
        else:
            self.image.setToolTip("")
            w = max(SHOWN_MIN, min(self.image.width(), 360))
            self.image.setPixmap(
                pm.scaled(
                    w,
                    w,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def _thumb_ready(self, face_id: int) -> None:
        if self.detail is None:
            return
        if face_id == self.detail.tile.id:
            self._set_big()
        for t in self._partners:
            if t.partner.face_id == face_id:
                t.set_pixmap(self.loader.pixmap(face_id, SMALL))


def _flag_head(f: FlagInfo) -> str:
    """The line above a flag's partner faces."""
    if f.kind == "same_person":
        return (
            f"<b>probably the same person as {html.escape(f.looks_like or '')}</b>"
            f" — centre distance {f.score:.3f}"
        )
    if f.kind == "suspect_identity" and f.looks_like:
        return (
            f"<b>looks more like {html.escape(f.looks_like)}</b>"
            f" — margin {f.score:.3f} (face embedding)"
        )
    if f.kind == "suspect_identity":  # a stranger: no identity of the set is near
        return (
            f"<b>{STRANGER}</b> — {f.score:.3f} beyond the identity's stranger limit (face "
            "embedding); some of this identity's faces:"
        )
    return (
        f"<b>{html.escape(FLAG_TEXT.get(f.kind, f.kind))}</b>"
        + (f" — distance {f.distance}" if f.distance is not None else "")
        + f" — score {f.score:.2f}"
    )


def _label_html(label: str | None) -> str:
    if not label:
        return "<span style='color:#777'>unlabeled</span>"
    c = LABEL_COLORS.get(label, "#000")
    return f"<b style='color:{c}'>{html.escape(label.replace('_', ' '))}</b>"
