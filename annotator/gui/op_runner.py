"""The window's write path: every review mutation as one op through the project's
:class:`annotator.gui.tasks.WriteQueue`, its error as one status line, its ``Changes`` handed
to the views (the shape of Anki's ``CollectionOp``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication

from annotator.core.review import ops
from annotator.gui.face_grid import FaceGridModel
from annotator.gui.status_view import StatusView
from annotator.gui.tasks import Queued, WriteQueue
from annotator.model import AnnotatorError
from annotator.store.db import Project


class OpRunner:
    def __init__(
        self,
        parent: QObject,
        grid_model: FaceGridModel,
        status: StatusView,
        apply: Callable[[ops.Changes, bool], None],
    ) -> None:
        self.parent = parent
        self.grid_model = grid_model
        self.status = status
        self.apply = apply  # every view redraws from the Changes (the window's op_executed)
        self.writes: WriteQueue | None = None

    def say(self, text: str, ms: int) -> None:
        self.status.bar.showMessage(text, ms)

    def start(self, project: Project) -> None:
        self.stop()
        self.writes = WriteQueue(project, self.parent)
        self.writes.changed.connect(lambda: self.status.writes_changed(self.writes))
        self.status.writes_changed(self.writes)

    def stop(self) -> None:
        if self.writes is not None:
            self.writes.close()  # lists what is still queued on stderr
            self.writes = None

    def run_op(self, op, *, follow=False, message=None, nothing="", what="change", pending=None):
        """One user action: ``op(project)`` (one transaction in core.ops) through the write
        path, its error in the status bar, the views redrawn from the returned Changes, a
        status line saying what it did (``message(changes)``), or ``nothing`` when op
        returned None.

        When another process holds the write lock, the op is queued behind the earlier ones
        and a :class:`Queued` (empty Changes, not None) is returned: the grid shows
        ``pending`` (face id -> label) at once, the status bar says the change is being saved,
        and the redraw and message follow when it lands (without ``follow``: a late undo
        never moves the view under the reviewer's keys)."""
        before = {f: t.label for f, t in self.grid_model.tiles_of(pending or {}).items()}
        ch = self.run_write(
            op,
            what=what,
            done=lambda ch: self._op_done(ch, False, message, nothing),
            failed=lambda: self.grid_model.set_labels(before),  # pending labels did not happen
        )
        if isinstance(ch, Queued) and pending:
            self.grid_model.set_labels(pending)
        if ch is None or isinstance(ch, Queued):
            return ch
        return self._op_done(ch, follow, message, nothing)

    def run_write(self, fn, *, what: str = "change", done=None, failed=None):
        """``fn(project)`` through the write path: its result, a :class:`Queued` when it waits
        behind another process's write lock (then ``done(result)`` follows on landing), or None
        after an error, which the status bar shows (``failed()`` undoes what the caller showed
        for a queued write that then fails)."""
        if self.writes is None:
            return None

        def dropped(text: str) -> None:
            self.status.write_failed = True  # the end of the queue is not "every change is saved"
            if failed is not None:
                failed()
            self.say(f"Not saved: {what}: {text}", 15000)
            QApplication.beep()

        try:
            return self.writes.submit(fn, what, done=done, failed=dropped)
        except (AnnotatorError, sqlite3.DatabaseError) as e:
            self.say(error_text(e), 8000)
            QApplication.beep()
            return None

    def _op_done(self, ch, follow: bool, message, nothing: str):
        if ch is None:
            if nothing:
                self.say(nothing, 4000)
            return None
        if message is not None:
            self.say(message(ch), 6000)
        self.apply(ch, follow)
        return ch

    def guard(self, fn: Callable[[], object]) -> None:
        """Run ``fn``; an error of the project is one status line and a beep."""
        try:
            fn()
        except (AnnotatorError, sqlite3.DatabaseError) as e:
            self.say(error_text(e), 8000)
            QApplication.beep()


def error_text(e: BaseException) -> str:
    """One status line for an error of a write (an SQLite error is named as one)."""
    if isinstance(e, AnnotatorError):
        return str(e)
    if isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e)):
        return f"Not saved: the project is busy (another process is writing it): {e}"
    return f"Not saved: database error: {e}"
