"""What the main window shows and what the keys do there: a *mode* object.

The window is a shell (identity list | header, face grid, legend | side panel, status bar); it
holds one mode (``win.mode``) and calls it: the label keys, Enter, undo/redo, a new current face,
an identity chosen in the list, "data changed under you". Three modes exist: :class:`ReviewMode`
(an identity's faces with their labels, the inspector beside them),
:class:`annotator.gui.qa_mode.QaMode` (a blind QA sample) and
:class:`annotator.gui.flag_mode.FlagMode` (every face of one flag kind, from all identities). Which window actions work in a mode
is one column of the shortcut table (:mod:`annotator.gui.shortcuts`).

A mode sees the window only through :class:`ModeHost` — a handful of public members, so
neither mode module imports the window (import-linter forbids the circle).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Protocol

from PySide6.QtWidgets import QWidget

from annotator.core.review import ops
from annotator.gui.face_grid import FaceGridView
from annotator.gui.inspector import Inspector
from annotator.gui.shortcuts import REVIEW
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.store import browse
from annotator.store.db import Project

Op = Callable[[Project], "ops.Changes | None"]


class ModeHost(Protocol):
    """The part of the main window a mode may use."""

    project: Project | None
    reviewer: str
    grid: FaceGridView
    loader: ThumbnailLoader | None
    current_identity: int | None

    def show_message(self, text: str, ms: int = 5000) -> None: ...

    def run_op(
        self,
        op: Op,
        *,
        follow: bool = False,
        message: Callable[[ops.Changes], str] | None = None,
        nothing: str = "",
        what: str = "change",
        pending: dict[int, str | None] | None = None,
        journal: tuple[list[int], str | None, str] | None = None,
    ) -> ops.Changes | None: ...

    def run_write(
        self,
        fn: Callable[[Project], object],
        *,
        what: str = "change",
        done: Callable[[object], None] | None = None,
        failed: Callable[[], None] | None = None,
    ) -> object: ...

    def show_identity(self, identity_id: int | None) -> None: ...

    def open_face(self, identity_id: int, face_id: int) -> None: ...

    def next_needing_review(self) -> None: ...

    def identity_row(self, identity_id: int) -> browse.IdentityRow | None: ...

    def refresh_header(self) -> None: ...


class Mode:
    """The interface the window calls; subclasses override what they do differently."""

    name = REVIEW
    shows_list = True  # the identity list left of the grid
    panel_width: int | None = None  # side panel width on entering (None: the saved layout)

    def __init__(self, host: ModeHost) -> None:
        self.host = host
        self.panel: QWidget = QWidget()  # right of the grid
        self.status: QWidget | None = None  # a permanent status-bar widget while active

    def enter(self) -> None:
        """Fill the grid (the window has already put the panel and list in place)."""

    def leave(self) -> None:
        """Give back what :meth:`enter` took (the window restores its own layout)."""

    def header_html(self) -> str:
        return ""

    def legend_html(self) -> str:
        return ""

    def label(self, label: str | None) -> None:
        """Keys 0-5."""

    def accept(self) -> None:
        """Enter."""

    def undo(self) -> None:
        pass

    def redo(self) -> None:
        pass

    def face_changed(self, face_id: int | None) -> None:
        """The grid's current face changed."""

    def identity_chosen(self, identity_id: int) -> None:
        """An identity was picked in the list."""

    def reload(self) -> None:
        """The project changed under the window (an import or scan finished)."""


class ReviewMode(Mode):
    """An identity's faces with their labels; keys label them through core.ops."""

    def __init__(self, host: ModeHost) -> None:
        super().__init__(host)
        assert host.loader is not None
        self.inspector = Inspector(host.loader)
        self.inspector.open_face.connect(host.open_face)
        self.panel = self.inspector

    @property
    def grid(self) -> FaceGridView:
        return self.host.grid

    def enter(self) -> None:
        self.grid.grid_model.blind = False
        self.host.show_identity(self.host.current_identity)

    def header_html(self) -> str:
        ident = self.host.current_identity
        if ident is None:
            return "<i>No identity</i>"
        row = self.host.identity_row(ident)
        if row is None:
            return ""
        tiles = self.grid.grid_model.tiles
        labeled = sum(1 for t in tiles if t.label)
        # A line may break only between the name and the counts, never inside either.
        nb = "&nbsp;"
        state = (
            f"<span style='color:#2e9e44'>✓{nb}reviewed</span>"
            if row.reviewed
            else f"not{nb}reviewed"
        )
        name = f"{nb}—{nb}{html.escape(row.name).replace(' ', nb)}" if row.name else ""
        counts = f"{nb}·{nb}".join(
            (
                f"{len(tiles)}{nb}faces",
                f"{labeled}{nb}labeled",
                f"{row.flagged_count}{nb}flagged",
                state,
            )
        )
        return (
            f"<span style='font-size:15pt'><b>{html.escape(row.key)}</b>{name}</span>{nb} "
            f"<span style='color:#666'>{counts}</span>"
        )

    def legend_html(self) -> str:
        return legend_html()

    def label(self, label: str | None) -> None:
        rows = label_grid_faces(self.host, self.grid, label)
        if rows:
            self.grid.set_current_row(max(rows) + 1)

    def accept(self) -> None:
        ident = self.host.current_identity
        if ident is None:
            return
        row = self.host.identity_row(ident)
        key = row.key if row is not None else str(ident)
        reviewer = self.host.reviewer

        def said(ch: ops.Changes) -> str:
            if ch.left:
                return f"{key}: {ops.accept_summary(ch)}."
            return f"Reviewed {key}: {ops.accept_summary(ch)}. Ctrl+Z undoes it."

        ch = self.host.run_op(
            lambda p: ops.review_identity(p, ident, reviewer), message=said, what=f"review {key}"
        )
        if ch is None:
            return
        if ch.left:  # stay: the first face left for the reviewer becomes current
            self.host.open_face(ident, min(ch.left))
        else:
            self.host.next_needing_review()

    def undo(self) -> None:
        reviewer = self.host.reviewer
        self.host.run_op(
            lambda p: ops.undo(p, reviewer),
            follow=True,
            message=lambda ch: ch.description,
            nothing="Nothing to undo.",
            what="undo",
        )

    def redo(self) -> None:
        reviewer = self.host.reviewer
        self.host.run_op(
            lambda p: ops.redo(p, reviewer),
            follow=True,
            message=lambda ch: ch.description,
            nothing="Nothing to redo.",
            what="redo",
        )

    def face_changed(self, face_id: int | None) -> None:
        p = self.host.project
        self.inspector.show_detail(
            browse.face_detail(p, face_id) if p is not None and face_id is not None else None
        )

    def identity_chosen(self, identity_id: int) -> None:
        if identity_id != self.host.current_identity:
            self.host.show_identity(identity_id)

    def reload(self) -> None:
        """New faces or flags (badges): show them; the cursor and the selection stay (the
        progress dialog is not modal, the reviewer may have gone on labeling)."""
        if self.host.current_identity is None:
            return
        face = self.grid.current_face_id()
        selected = self.grid.selected_face_ids()
        self.host.show_identity(self.host.current_identity)
        row = self.grid.grid_model.row_of(face) if face is not None else None
        if row is not None:
            self.grid.set_current_row(row)
        for f in selected:
            self.grid.select_face(f, add=True)


def label_grid_faces(host: ModeHost, grid, label: str | None) -> list[int] | None:
    """Label the grid's selected faces (or its current face) through the write path; the rows
    they held, or None when nothing was labelled. Queued behind another process's write lock,
    the grid shows the labels at once (``pending``)."""
    ids, from_selection = grid.target_face_ids()
    if not ids:
        return None
    rows = [r for f in ids if (r := grid.grid_model.row_of(f)) is not None]
    reviewer = host.reviewer
    what = f"label {len(ids)} face{'s' if len(ids) != 1 else ''} {label or 'unlabeled'}"
    ch = host.run_op(
        lambda p: ops.label_faces(p, ids, label, reviewer),
        what=what,
        pending=dict.fromkeys(ids, label),
        journal=(list(ids), label, reviewer),
    )
    if ch is None:
        return None
    if from_selection:
        grid.selectionModel().clearSelection()
    return rows


def legend_html() -> str:
    from annotator.gui.delegates import BADGE_COLORS, BADGE_HELP
    from annotator.model import LABEL_COLORS

    def unit(text: str) -> str:  # a legend item never breaks inside, only between items
        return text.replace(" ", "&nbsp;")

    keys = " ".join(
        f"<span style='color:{c}'>■</span>&nbsp;{i + 1}&nbsp;{unit(lab.replace('_', ' '))}&nbsp;"
        for i, (lab, c) in enumerate(LABEL_COLORS.items())
    )
    hints = " · ".join(
        unit(h) for h in ("Enter: accept the rest + next", "G dup group", "M move", "? help")
    )
    badges = " ".join(
        f"<b style='color:{BADGE_COLORS[b]}'>{b}</b>&nbsp;{unit(BADGE_HELP[b].split(' (')[0])}&nbsp;"
        for b in BADGE_COLORS
    )
    # one line each: keys, hints, badges (a narrow window wraps only between two items)
    return f"<small>{keys}<br>{hints}<br>{badges}</small>"
