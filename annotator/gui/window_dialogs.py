"""Every dialog the main window opens, and the one way it opens them.

:meth:`Dialogs.open` shows a dialog window-modal without blocking (``current`` holds it; tests
reach it there), runs ``done(result)`` when it closes, gives the keys back to the face grid
when asked and deletes the dialog. The shortcut sheet and the statistics dashboard are not
modal and are kept (``help``, ``stats``). :meth:`Dialogs.close_all` is the window's teardown
of them. The window reaches this module's dialogs through :class:`DialogHost`, so this
module never imports the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtWidgets import QDialog, QMessageBox, QWidget

from annotator import __version__
from annotator.core.review import ops
from annotator.core.review.dup_group import group_context
from annotator.gui.face_grid import FaceGridView
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.model import AnnotatorError
from annotator.store import browse
from annotator.store.db import Project


class DialogHost(Protocol):
    """The part of the main window its dialogs use."""

    project: Project | None
    reviewer: str
    grid: FaceGridView
    loader: ThumbnailLoader | None
    current_identity: int | None

    def show_message(self, text: str, ms: int = 5000) -> None: ...

    def run_op(self, op, *, message=None, **kw) -> ops.Changes | None: ...

    def run_task(self, title: str, fn, show_dialog: bool = True) -> object: ...

    def apply_changes(self, ch: ops.Changes, follow: bool = False) -> None: ...

    def guard(self, fn: Callable[[], object]) -> None: ...

    def enter_qa(self, pass_id: int) -> object: ...

    def enter_flags(self, kind: str) -> object: ...

    def set_reviewer(self, name: str) -> None: ...

    def new_project(self) -> None: ...

    def back_to_grid(self) -> None: ...

    def identity_row(self, identity_id: int) -> object: ...


class Dialogs:
    def __init__(self, host: DialogHost, parent: QWidget) -> None:
        self.host = host
        self.parent = parent
        self.current: QDialog | None = None  # the open modal dialog (one at a time)
        self.help: QDialog | None = None  # the shortcut sheet (not modal, kept)
        self.stats = None  # the statistics dashboard (not modal, kept)

    def open(self, d: QDialog, done: Callable[[int], None] | None = None, *, back: bool = False):
        """Show ``d``; on closing: ``done(result)``, the grid takes the keys again (``back``)."""

        def finished(result: int) -> None:
            self.current = None
            if done is not None:
                done(result)
            if back:
                self.host.back_to_grid()
            d.deleteLater()

        d.finished.connect(finished)
        self.current = d
        d.open()
        return d

    def close_all(self) -> None:
        for d in (self.current, self.help):
            if d is not None:
                d.close()

    def _project(self) -> Project:
        if self.host.project is None:
            raise AnnotatorError("open a project first")
        return self.host.project

    # -- the window's dialogs ---------------------------------------------------------------------
    def duplicate_group(self) -> None:
        from annotator.gui.dialogs.dup_dialog import DupGroupDialog

        h = self.host
        fid = h.grid.current_face_id()
        if h.project is None or fid is None:
            return
        ctx = group_context(h.project, fid)
        if ctx is None:
            h.show_message("This face is in no duplicate group.", 5000)
            return
        assert h.loader is not None
        group = ctx.group
        prop = ctx.proposal
        d = DupGroupDialog(group, fid, h.loader, self.parent, prop.face, ctx.identities, prop.why)
        ids = [p.face_id for p in group]
        reviewer = h.reviewer

        def done(ok: int) -> None:
            if ok and d.keeper is not None:
                keeper = d.keeper
                kept = next((p for p in group if p.face_id == keeper), None)
                origin = kept.tile.origin if kept is not None and kept.tile else "the chosen face"
                h.run_op(
                    lambda p: ops.choose_keeper(p, ids, keeper, reviewer),
                    message=lambda ch: keeper_message(ch, keeper, origin),
                )

        self.open(d, done, back=True)

    def move_faces(self) -> None:
        from annotator.gui.dialogs.move_dialog import MoveDialog

        h = self.host
        ids, _sel = h.grid.target_face_ids()
        if h.project is None or not ids:
            return
        d = MoveDialog(
            h.project,
            len(ids),
            h.current_identity,
            self.parent,
            h.loader,
            suggested=browse.suggested_target(h.project, ids),
        )
        reviewer = h.reviewer

        def done(ok: int) -> None:
            if ok and d.chosen is not None:
                to, to_key = d.chosen, d.chosen_key
                h.run_op(
                    lambda p: ops.move_faces(p, ids, to, reviewer),
                    message=lambda ch: ops.move_summary(ch, to_key) + ". Ctrl+Z undoes it.",
                )

        self.open(d, done, back=True)

    def start_qa_pass(self) -> None:
        """Review > QA pass…: resume a pass or draw a new one, then show it."""
        from annotator.gui.dialogs.qa_start_dialog import QaStartDialog

        h = self.host
        d = QaStartDialog(self._project(), h.reviewer, self.parent)

        def done(ok: int) -> None:
            if ok and d.pass_id is not None:
                if d.started is not None:
                    s = d.started
                    h.show_message(
                        f"QA pass {s.pass_id}: {s.items} of {s.eligible} eligible faces "
                        f"(seed {s.seed})",
                        10000,
                    )
                pid = d.pass_id
                h.guard(lambda: h.enter_qa(pid))

        self.open(d, done)

    def change_reviewer(self) -> None:
        """File > Change reviewer…: who the next labels are recorded as (no restart)."""
        from annotator.gui.dialogs.simple import ask_reviewer_name

        name = ask_reviewer_name(self.parent, self.host.reviewer)
        if name and name != self.host.reviewer:
            self.host.set_reviewer(name)

    def flag_grid(self) -> None:
        """Review > Flag grid… (F): choose a flag kind, then show its faces in one grid."""
        from annotator.gui.dialogs.flag_kind_dialog import FlagKindDialog

        h = self.host
        d = FlagKindDialog(self._project(), self.parent)

        def done(ok: int) -> None:
            if ok and d.kind is not None:
                kind = d.kind
                h.guard(lambda: h.enter_flags(kind))

        self.open(d, done)

    def open_adjudication(self):
        from annotator.gui.dialogs.adjudicate_dialog import AdjudicateDialog

        project = self._project()
        assert self.host.loader is not None
        d = AdjudicateDialog(project, self.host.reviewer, self.host.loader, self.parent)
        d.decided.connect(self.host.apply_changes)
        return self.open(d)

    def open_statistics(self):
        from annotator.gui.dialogs.stats_dialog import StatsDialog

        project = self._project()
        d = self.stats
        if d is None or d.project_path != project.path:
            if d is not None:
                d.close()
                d.deleteLater()
            d = StatsDialog(project.path, self.parent)
            self.stats = d
        else:
            d.refresh()
        d.show()
        d.raise_()
        return d

    def import_source(self) -> None:
        from annotator.gui.dialogs.import_dialog import ImportDialog
        from annotator.gui.tasks import import_fn

        h = self.host
        if h.project is None:
            h.new_project()
            if h.project is None:
                return
        d = ImportDialog(self.parent)

        def done(ok: int) -> None:
            if ok and h.project is not None:
                fmt, path = d.chosen()
                h.run_task(f"Importing {Path(path).name}", import_fn(fmt, path))

        self.open(d, done)

    def withdraw(self) -> None:
        """Identity > Withdraw…: requests for the current identity's key to start with."""
        from annotator.gui.dialogs.withdraw_dialog import WithdrawDialog

        if self.host.project is None:
            QMessageBox.information(self.parent, "Withdraw people", "Open a project first.")
            return
        first = ""
        if self.host.current_identity is not None:
            key = self.host.identity_row(self.host.current_identity)
            first = key.key if key is not None else ""
        self.open(WithdrawDialog(self.host, self.parent, first), back=True)

    def show_shortcuts(self) -> None:
        from annotator.gui.dialogs.simple import ShortcutsDialog

        if self.help is None:
            self.help = ShortcutsDialog(self.parent)
        self.help.show()
        self.help.raise_()
        self.help.activateWindow()

    def about(self) -> None:
        QMessageBox.about(
            self.parent,
            "About annotator",
            f"<b>annotator {__version__}</b><br>Turn a noisy web-scraped face-identity dataset "
            "into a small, manually verified test set.<br>Every label is saved the moment you "
            "give it.",
        )


def keeper_message(ch: ops.Changes, keeper: int, origin: str) -> str:
    """What G did, short enough for the status bar; the kept face by its origin (the source
    file and line the reviewer can find), not the project's internal id."""
    dup = sum(1 for f, lab in ch.labels.items() if f != keeper and lab == "duplicate")
    wrong = sum(1 for f, lab in ch.labels.items() if f != keeper and lab == "wrong_identity")
    parts = []  # a part with nothing in it is left out ("0 other copies duplicate" was said)
    if dup or not wrong:
        parts.append(f"{dup} other cop{'y' if dup == 1 else 'ies'} duplicate")
    if wrong:
        parts.append(f"{wrong} under another identity wrong_identity")
    if ch.left:
        parts.append(f"{len(ch.left)} kept {'its' if len(ch.left) == 1 else 'their'} label")
    return f"Kept {origin}; " + ", ".join(parts) + ". Ctrl+Z undoes."
