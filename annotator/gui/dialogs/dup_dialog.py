"""A duplicate group side by side: choose the keeper (the other copies become `duplicate`, or
`wrong_identity` when filed under another identity than the keeper's)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from annotator.core.review.dup_group import IdentityContext
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.model import LABEL_COLORS
from annotator.store.browse import Partner

SIZE = 192
CROSS_SIZE = 144
OTHER_SIZE = 56  # the identity's other faces, for comparison
OTHER_FACES = 6
KEEPER_GROUND = "#cdebd4"
MIN_WIDTH = 640


def _facts(p: Partner) -> str:
    size = f"{p.size[0]}×{p.size[1]}" if p.size else "size unknown (not scanned)"
    rank = f"rank {p.rank}" if p.rank is not None else "no rank"
    return f"{size}, {rank}"


class DupGroupDialog(QDialog):
    """Keys 1..9 (or a click) choose the keeper; Enter accepts the proposed keeper (the one
    rule of core/review/keeper.py; ``why`` says why it was proposed, or why nothing is),
    which is marked and has the default button. A group filed under several identities is shown one identity at a time, each with
    its key, name and a few of its other faces."""

    def __init__(
        self,
        group: list[Partner],
        current: int,
        loader: ThumbnailLoader,
        parent: QWidget | None = None,
        proposed: int | None = -1,
        identities: dict[int, IdentityContext] | None = None,
        why: str = "",
    ):
        super().__init__(parent)
        # members of one identity side by side, identities in order of first appearance
        order = list(dict.fromkeys(p.identity_id for p in group))
        group = sorted(group, key=lambda p: order.index(p.identity_id))
        self.group = group
        self.loader = loader
        self.keeper: int | None = None
        self.identities = identities or {}
        self.why = why  # why the keeper is proposed, or why none is
        if proposed == -1:  # not given: the scan's keeper
            proposed = next((p.face_id for p in group if p.keeper), None)
        self.proposed: int | None = proposed
        self.cross = len(order) > 1
        # two identities' headers and face strips above the copies: smaller copies still fit
        # a 800-pixel-high screen
        self.tile_px = CROSS_SIZE if self.cross else SIZE
        what = f"filed under {len(order)} identities" if self.cross else "duplicate group"
        self.setWindowTitle(
            f"Duplicate group: {len(group)} faces {what if self.cross else ''}".strip()
            + " — choose the one to keep"
        )
        lay = QVBoxLayout(self)
        if self.cross:
            keys = ", ".join(
                html.escape(self.identities[i].key if i in self.identities else str(i))
                for i in order
            )
            intro = (
                f"<b>The same picture is filed under {len(order)} identities</b> ({keys}). "
                "Keep the copy in the identity it belongs to: it becomes <b>correct</b>, the "
                "other copies in that identity <b>duplicate</b>, the copies filed under another "
                "identity <b>wrong_identity</b>."
            )
        else:
            intro = "The others are labeled <b>duplicate</b>."
        intro += " A face already labeled other than correct keeps its label."
        head = QLabel(
            "Press the number of the face to keep (or click it)"
            + (", or Enter for the proposed keeper" if self.proposed is not None else "")
            + ". "
            + intro
            + (
                f" <b>No keeper is proposed</b>: {html.escape(why)}."
                if self.proposed is None and why
                else ""
            )
        )
        head.setWordWrap(True)
        lay.addWidget(head)
        grid = QGridLayout()
        lay.addLayout(grid)
        self.images: dict[int, QLabel] = {}
        self.buttons: dict[int, QPushButton] = {}
        self.captions: dict[int, QLabel] = {}
        self.headers: dict[int, QLabel] = {}
        self.other_images: dict[int, QLabel] = {}
        r = 0
        n = 0
        for ident in order:
            members = [p for p in group if p.identity_id == ident]
            if self.cross:
                ctx = self.identities.get(ident)
                key = ctx.key if ctx else members[0].identity_key
                name = f" {html.escape(ctx.name)}" if ctx and ctx.name else ""
                count = f" — {ctx.face_count} faces" if ctx else ""
                hdr = QLabel(f"<b>{html.escape(key)}</b>{name}{count}")
                self.headers[ident] = hdr
                grid.addWidget(hdr, r, 0, 1, 4)
                r += 1
                if ctx and ctx.others:
                    strip = QHBoxLayout()
                    strip.addWidget(QLabel("<small>its other faces:</small>"))
                    for t in ctx.others[:OTHER_FACES]:
                        img = QLabel()
                        img.setFixedSize(OTHER_SIZE, OTHER_SIZE)
                        img.setStyleSheet("background:#e4e4e4")
                        img.setToolTip(t.origin)
                        self.other_images[t.id] = img
                        self._put(img, loader.request(t.locator(), OTHER_SIZE), OTHER_SIZE)
                        strip.addWidget(img)
                    strip.addStretch(1)
                    grid.addLayout(strip, r, 0, 1, 4)
                    r += 1
            for k, p in enumerate(members):
                self._member(grid, p, n, current, r + (k // 4) * 3, k % 4)
                n += 1
            r += ((len(members) + 3) // 4) * 3
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
        # the word-wrapped intro is taller at the dialog's narrow width than its size hint
        # says: size the dialog for the wrapped text (a little wider, so it wraps less),
        # else the rows of faces are squeezed and their captions cover them
        w = max(lay.totalMinimumSize().width(), MIN_WIDTH)
        self.setMinimumSize(w, max(lay.totalMinimumSize().height(), lay.totalHeightForWidth(w)))

    def _member(self, grid: QGridLayout, p: Partner, n: int, current: int, r: int, col: int):
        img = QLabel()
        img.setFixedSize(self.tile_px, self.tile_px)
        img.setAlignment(Qt.AlignmentFlag.AlignCenter)
        border = LABEL_COLORS.get(p.label or "", "#cccccc")
        width = 4 if p.face_id == current else 2
        img.setStyleSheet(f"background:#e4e4e4; border:{width}px solid {border}")
        self.images[p.face_id] = img
        if p.tile is not None:
            self._set(p.face_id, self.loader.request(p.tile.locator(), self.tile_px))
        grid.addWidget(img, r, col, Qt.AlignmentFlag.AlignHCenter)
        origin = p.tile.origin if p.tile else str(p.face_id)
        mark = (
            f"<br><b style='color:#1e7b34'>proposed keeper: {html.escape(self.why)}</b>"
            if p.face_id == self.proposed
            else ""
        )
        cap = QLabel(
            f"<small>{html.escape(p.identity_key)}<br>{html.escape(origin)}<br>"
            f"{html.escape(_facts(p))}<br>" + f"{html.escape(p.label or 'unlabeled')}</small>{mark}"
        )
        cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.captions[p.face_id] = cap
        grid.addWidget(cap, r + 1, col)
        b = QPushButton(f"&{n + 1} Keep" if n < 9 else "Keep")
        b.setAutoDefault(False)  # Enter never means "the focused button", only the keeper's
        b.clicked.connect(lambda _c=False, f=p.face_id: self.choose(f))
        self.buttons[p.face_id] = b
        grid.addWidget(b, r + 2, col)

    def _put(self, img: QLabel, pm, size: int) -> None:
        if pm is not None:
            img.setPixmap(
                pm.scaled(
                    size - 4,
                    size - 4,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def _set(self, face_id: int, pm) -> None:
        if pm is not None:
            self.images[face_id].setPixmap(
                pm.scaled(
                    self.tile_px - 8,
                    self.tile_px - 8,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def _ready(self, face_id: int) -> None:
        if face_id in self.images:
            self._set(face_id, self.loader.pixmap(face_id, self.tile_px))
        if face_id in self.other_images:
            self._put(
                self.other_images[face_id], self.loader.pixmap(face_id, OTHER_SIZE), OTHER_SIZE
            )

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
