"""The window's write path: every review mutation as one op through the project's
:class:`annotator.gui.tasks.WriteQueue`, its error as one line in a dialog (and the status
bar), its ``Changes`` handed to the views (the shape of Anki's ``CollectionOp``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

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
        self._box: QMessageBox | None = None  # the error dialog on screen

    def say(self, text: str, ms: int) -> None:
        self.status.bar.showMessage(text, ms)

    def alert(self, text: str, title: str = "Not done") -> None:
        """An error the user caused: the status line and a dialog saying it (one at a time:
        a second error while one shows replaces its text), and a beep."""
        self.say(text, 15000)
        QApplication.beep()
        parent = self.parent if isinstance(self.parent, QWidget) else None
        box = self._box
        if box is None or not box.isVisible():
            box = self._box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=parent)
            box.setObjectName("errorDialog")
            box.open()  # window-modal, not a nested event loop: the write path goes on
        else:
            box.setText(text)

    def start(self, project: Project) -> None:
        self.stop()
        self.writes = WriteQueue(project, self.parent)
        self.writes.changed.connect(lambda: self.status.writes_changed(self.writes))
        self.status.writes_changed(self.writes)
        r = self.writes.replayed
        if r.labels or r.skipped > 0:
            self.say(
                f"Saved {r.labels} label change(s) ({r.faces} face(s)) queued when the window last"
                " closed while the project was locked"
                + (
                    f"; {r.skipped} could not be applied (faces removed since)" if r.skipped else ""
                ),
                15000,
            )
        elif r.skipped < 0:
            self.say(
                "Label changes queued when the window last closed are still waiting: the project"
                " is locked; they are saved when it is next opened",
                15000,
            )

    def stop(self) -> None:
        if self.writes is not None:
            self.writes.close()  # lists what is still queued on stderr
            self.writes = None

    def run_op(
        self,
        op,
        *,
        follow=False,
        message=None,
        nothing="",
        what="change",
        pending=None,
        journal=None,
    ):
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
            journal=journal,
        )
        if isinstance(ch, Queued) and pending:
            self.grid_model.set_labels(pending)
        if ch is None or isinstance(ch, Queued):
            return ch
        return self._op_done(ch, follow, message, nothing)

    def run_write(self, fn, *, what: str = "change", done=None, failed=None, journal=None):
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
            self.alert(f"Not saved: {what}: {text}")

        try:
            return self.writes.submit(fn, what, done=done, failed=dropped, journal=journal)
        except (AnnotatorError, sqlite3.DatabaseError) as e:
            self.alert(error_text(e))
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
        """Run ``fn``; an error of the project is one line in a dialog (and the status bar)."""
        try:
            fn()
        except (AnnotatorError, sqlite3.DatabaseError) as e:
            self.alert(error_text(e))


def error_text(e: BaseException) -> str:
    """One status line for an error of a write (an SQLite error is named as one)."""
    if isinstance(e, AnnotatorError):
        return str(e)
    if isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e)):
        return f"Not saved: the project is busy (another process is writing it): {e}"
    return f"Not saved: database error: {e}"
