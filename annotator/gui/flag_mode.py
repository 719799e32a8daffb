"""The flag grid: every face of one flag kind (e.g. all ``suspect_identity`` faces, or every
cross-identity copy), from all identities, in one grid sorted by the flag's score — how a
FiftyOne user clears one kind of problem at a time.

The same keys as reviewing an identity: 1-5 label the current (or selected) faces through
:func:`annotator.core.review.ops.label_faces`, 0 clears, Ctrl+Z / Ctrl+Shift+Z undo and redo the
reviewer's last step (the grid stays; the cursor goes to the face the step changed). The
inspector beside the grid shows the current face's identity, flags and partner faces. Esc goes
back to reviewing identities.
"""

from __future__ import annotations

import html

from PySide6.QtWidgets import QLabel

from annotator.core.review import ops
from annotator.gui.inspector import Inspector
from annotator.gui.modes import Mode, ModeHost, label_grid_faces
from annotator.gui.qa_widgets import keys_html
from annotator.gui.shortcuts import FLAGS
from annotator.model import AnnotatorError
from annotator.store import browse


class FlagMode(Mode):
    name = FLAGS
    shows_list = False

    def __init__(self, host: ModeHost, kind: str, faces: list[tuple[int, float]]):
        super().__init__(host)
        self.kind = kind
        self.faces = faces  # (face id, score), highest score first
        assert host.loader is not None
        self.inspector = Inspector(host.loader)
        self.inspector.open_face.connect(host.open_face)
        self.panel = self.inspector
        self.status = QLabel()
        self.status.setObjectName("flagStatus")
        self.status.setContentsMargins(8, 0, 8, 0)

    @classmethod
    def open(cls, host: ModeHost, kind: str) -> FlagMode:
        if host.project is None:
            raise AnnotatorError("open a project first")
        faces = browse.flag_kind_faces(host.project, kind)
        if not faces:
            raise AnnotatorError(f"no face is flagged {kind.replace('_', ' ')}")
        return cls(host, kind, faces)

    @property
    def grid(self):
        return self.host.grid

    def enter(self) -> None:
        assert self.host.project is not None and self.host.loader is not None
        tiles = browse.face_tiles(self.host.project, [f for f, _s in self.faces])
        self.host.loader.new_generation()
        self.grid.grid_model.blind = False
        self.grid.grid_model.set_faces(None, [tiles[f] for f, _s in self.faces if f in tiles])
        self.grid.scrollToTop()
        first = next((r for r, t in enumerate(self.grid.grid_model.tiles) if t.label is None), 0)
        self.grid.set_current_row(first)
        self._update()
        self.face_changed(self.grid.current_face_id())

    def header_html(self) -> str:
        labeled, total = self.progress()
        return (
            f"<span style='font-size:15pt'><b>Flagged {html.escape(self.kind.replace('_', ' '))}"
            f"</b></span>&nbsp;&nbsp;<span style='color:#666'>{total} faces of all identities, "
            f"highest score first · {labeled} labeled · Esc: back to identities</span>"
        )

    def legend_html(self) -> str:
        keys = keys_html("<small>")
        return (
            f"{keys}&nbsp;·&nbsp;0&nbsp;clears<br>Ctrl+Z&nbsp;undo&nbsp;·&nbsp;"
            "the&nbsp;inspector&nbsp;shows&nbsp;the&nbsp;face's&nbsp;identity&nbsp;and&nbsp;flags"
            "&nbsp;·&nbsp;Esc:&nbsp;back&nbsp;to&nbsp;identities</small>"
        )

    def progress(self) -> tuple[int, int]:
        tiles = self.grid.grid_model.tiles
        return sum(1 for t in tiles if t.label is not None), len(tiles)

    def _update(self) -> None:
        labeled, total = self.progress()
        self.status.setText(f"<b>{self.kind.replace('_', ' ')}: {total - labeled} left</b>")
        self.host.refresh_header()

    def label(self, label: str | None) -> None:
        rows = label_grid_faces(self.host, self.grid, label)
        if rows is None:
            return
        if rows:
            self.grid.set_current_row(min(max(rows) + 1, len(self.grid.grid_model.tiles) - 1))
        self._update()

    def accept(self) -> None:
        self.host.show_message(
            "In the flag grid, 1-5 label faces; Esc goes back to reviewing identities.", 6000
        )

    def _step(self, fn, nothing: str) -> None:
        reviewer = self.host.reviewer
        ch = self.host.run_op(
            lambda p: fn(p, reviewer),
            message=lambda ch: ch.description,
            nothing=nothing,
            what=nothing.split()[-1].rstrip("."),
        )
        if ch:
            rows = [r for f in ch.labels if (r := self.grid.grid_model.row_of(f)) is not None]
            if rows:
                self.grid.set_current_row(min(rows))
        self._update()

    def undo(self) -> None:
        self._step(ops.undo, "Nothing to undo.")

    def redo(self) -> None:
        self._step(ops.redo, "Nothing to redo.")

    def face_changed(self, face_id: int | None) -> None:
        p = self.host.project
        self.inspector.show_detail(
            browse.face_detail(p, face_id) if p is not None and face_id is not None else None
        )

    def reload(self) -> None:
        """A scan changed the flags: show the kind's faces as they are now."""
        if self.host.project is not None:
            self.faces = browse.flag_kind_faces(self.host.project, self.kind)
            self.enter()
