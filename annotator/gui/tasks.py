"""Long core functions (import, scan) in a QThreadPool worker with a progress dialog, and the
window's write path (:class:`WriteQueue`).

The worker opens its own connection to the project file (never the GUI's), calls the core
function with ``progress(done, total)`` / ``cancelled()`` callbacks bridged to signals, and
reports the result or the error through signals. No widget is touched from the worker.
"""

from __future__ import annotations

import queue
import sqlite3
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from annotator.core.review import ops
from annotator.core.review.journal import Journal, Replayed, replay
from annotator.model import ORIGIN_GUI, AnnotatorError
from annotator.store.db import Project, is_busy, open_project

TaskFn = Callable[[Project, Callable[[int, int], None], Callable[[], bool]], Any]


class _Signals(QObject):
    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)


class _Worker(QRunnable):
    def __init__(
        self,
        project_path: Path,
        fn: TaskFn,
        signals: _Signals,
        stop: threading.Event,
        ended: threading.Event,
    ):
        super().__init__()
        self.project_path, self.fn, self.signals, self.stop = project_path, fn, signals, stop
        self.ended = ended

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.ended.set()

    def _run(self) -> None:
        try:
            with open_project(self.project_path) as project:
                project.origin = ORIGIN_GUI
                result = self.fn(
                    project,
                    lambda d, t: self.signals.progress.emit(int(d), int(t)),
                    self.stop.is_set,
                )
            self.signals.finished.emit(result)
        except AnnotatorError as e:
            self.signals.failed.emit(str(e))
        except Exception as e:  # noqa: BLE001 - reported in the GUI, not a crash
            traceback.print_exc()
            self.signals.failed.emit(f"{type(e).__name__}: {e}")


class Task(QObject):
    """One background run with its progress dialog. Keep a reference until ``done`` fires."""

    done = Signal(object, str)  # result (None on failure), error message ("" on success)

    def __init__(
        self,
        parent: QWidget | None,
        title: str,
        project_path: Path,
        fn: TaskFn,
        pool: QThreadPool | None = None,
        show_dialog: bool = True,
    ):
        super().__init__(parent)
        self.stop = threading.Event()
        self.ended = threading.Event()  # the worker returned (its connection is closed)
        self.signals = _Signals()
        self.result: Any = None
        self.error = ""
        self.finished = False
        self.dialog: QProgressDialog | None = None
        if show_dialog:
            self.dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
            self.dialog.setWindowTitle(title)
            self.dialog.setMinimumDuration(300)
            self.dialog.setAutoClose(False)
            self.dialog.setAutoReset(False)
            self.dialog.canceled.connect(self.cancel)
        self.signals.progress.connect(self._progress)
        self.signals.finished.connect(self._finished)
        self.signals.failed.connect(self._failed)
        (pool or QThreadPool.globalInstance()).start(
            _Worker(project_path, fn, self.signals, self.stop, self.ended)
        )

    @property
    def cancelled(self) -> bool:
        return self.stop.is_set()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the worker has returned (e.g. after :meth:`cancel`, before quitting)."""
        return self.ended.wait(timeout_ms / 1000)

    def cancel(self) -> None:
        self.stop.set()
        if self.dialog is not None:
            self.dialog.setLabelText("Cancelling… (what is done is kept)")

    def _progress(self, done: int, total: int) -> None:
        if self.dialog is not None:
            if total > 0:
                self.dialog.setMaximum(total)
                self.dialog.setValue(min(done, total))
            else:
                self.dialog.setMaximum(0)

    def _end(self) -> None:
        self.finished = True
        if self.dialog is not None:
            self.dialog.close()
        self.done.emit(self.result, self.error)

    def _finished(self, result: Any) -> None:
        self.result = result
        self._end()

    def _failed(self, message: str) -> None:
        self.error = message
        self._end()


def summary(title: str, result: Any, cancelled: bool = False) -> str:
    """One status-bar line about a finished import or scan."""
    from annotator.core.importer import ImportResult

    if isinstance(result, ImportResult):
        text = (
            f"imported {result.imported:,}, skipped {result.skipped:,}, "
            f"rejected {len(result.rejected):,} rows"
        )
        if not result.complete:
            return f"{title}: cancelled; {text}. Import it again to continue where it stopped."
        return f"{title}: done; {text}."
    as_dict = getattr(result, "as_dict", None)
    if callable(as_dict):  # a ScanResult
        d = as_dict()
        flags = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(d["flags"].items()))
        text = f"hashed {d['hashed']:,} faces ({d['corrupt']:,} corrupt)"
        if d["cancelled"]:
            return f"{title}: cancelled; {text}. Scan again to finish."
        return f"{title}: done; {text}; flags: {flags or 'none'}."
    return f"{title}: {'cancelled' if cancelled else 'done'}."


def import_fn(fmt: str, path: str) -> TaskFn:
    def fn(project: Project, progress, cancelled):
        from annotator.core.importer import import_source

        return import_source(project, fmt, path, progress=progress, cancelled=cancelled)

    return fn


def scan_fn() -> TaskFn:
    def fn(project: Project, progress, cancelled):
        try:
            from annotator.core.scan import scan
        except ImportError:
            raise AnnotatorError("scanning is not available in this build") from None
        return scan(project, progress=progress, cancelled=cancelled)

    return fn


# -- the write path ------------------------------------------------------------------------------
# Every review write of the window (labels, reviews, moves, keepers, undo/redo, QA verdicts) goes
# through one WriteQueue. The GUI thread tries a write itself for at most GUI_WAIT_S; when another
# process holds the project's write lock longer (an import, a scan, a `labels import`), the write
# is queued instead and a serial writer thread (its own connection) retries the queue in order
# until each lands. The window shows the queue (status bar) and, after FAIL_AFTER_S, that the
# changes are not saved yet; they stay queued and are saved as soon as the lock is free.

GUI_WAIT_S = 0.15  # the longest the GUI thread waits for the write lock
TRY_WAIT_S = 0.25  # one try of the writer thread (it then reports how long it has waited)
FAIL_AFTER_S = 10.0  # waiting longer than this is a failure the window shows (still retried)


class Queued(ops.Changes):
    """What :meth:`WriteQueue.submit` returns for a write it queued: nothing changed *yet*
    (empty, false), but not None — a caller goes on as after a write (the cursor moves on)."""

    queued = True


@dataclass
class Write:
    fn: Callable[[Project], Any]  # one user action (one transaction)
    what: str  # for the status bar and the report of changes never saved
    done: Callable[[Any], None] | None = None  # on the GUI thread, with fn's result
    failed: Callable[[str], None] | None = None  # on the GUI thread: fn raised (not retried)
    seq: int = 0


class _WriterSignals(QObject):
    landed = Signal(int, object)  # seq, result
    dropped = Signal(int, str)  # seq, message
    waiting = Signal(int, float, str)  # seq, seconds waited, why


class WriteQueue(QObject):
    """The window's writes, in order: at once on the GUI thread when nothing is queued and the
    lock is free within :data:`GUI_WAIT_S`, else queued for the writer thread.

    Only the GUI thread calls :meth:`submit`, :meth:`flush` and :meth:`close`; the thread runs
    queued writes one at a time on its own connection and reports each through signals.
    """

    changed = Signal()  # pending count, waiting or failing state changed

    def __init__(self, project: Project, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project
        project.origin = ORIGIN_GUI  # the window's writes say they were made in the reviewer
        self.gui_wait = GUI_WAIT_S
        self.try_wait = TRY_WAIT_S
        self.fail_after = FAIL_AFTER_S
        self.pending: deque[Write] = deque()
        self.waited = 0.0  # how long the head of the queue has waited for the lock
        self.reason = ""  # the last error of the head (e.g. "database is locked")
        self._seq = 0
        self._finished_seq = 0  # the writer thread's last write done with (landed or dropped)
        self._jobs: queue.SimpleQueue[Write | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._signals = _WriterSignals()
        self._signals.landed.connect(self._landed)
        self._signals.dropped.connect(self._dropped)
        self._signals.waiting.connect(self._waiting)
        # Labels queued behind another process's lock are journaled beside the project until
        # they land, and a journal left by an earlier window (SIGTERM, crash) is replayed now.
        self.journal = Journal(project.path)
        self._journaled: set[int] = set()
        self.replayed = Replayed()
        if not project.read_only and self.journal.path.exists():
            try:
                with project.waiting_at_most(self.gui_wait):
                    self.replayed = replay(project)
            except sqlite3.OperationalError as e:
                if not is_busy(e):
                    raise
                self.replayed = Replayed(skipped=-1)  # still locked: replayed by a later open

    @property
    def failing(self) -> bool:
        """The head of the queue has waited past :attr:`fail_after` (it is still retried)."""
        return bool(self.pending) and self.waited >= self.fail_after

    def submit(
        self,
        fn: Callable[[Project], Any],
        what: str = "change",
        done: Callable[[Any], None] | None = None,
        failed: Callable[[str], None] | None = None,
        journal: tuple[list[int], str | None, str] | None = None,
    ) -> Any:
        """Run ``fn(project)`` now and return its result, or queue it and return a
        :class:`Queued`. Now only when nothing is queued (writes never overtake each other):
        an error of ``fn`` then propagates (AnnotatorError, sqlite3 errors other than a busy
        lock); a queued write reports through ``done(result)`` or ``failed(message)``."""
        if not self.pending:
            try:
                with self.project.waiting_at_most(self.gui_wait):
                    return fn(self.project)
            except sqlite3.OperationalError as e:
                if not is_busy(e):
                    raise
                self.reason = str(e)
        self._seq += 1
        w = Write(fn, what, done, failed, self._seq)
        if journal is not None:  # (faces, label, reviewer): kept on disk until it lands
            try:
                self.journal.add(self._seq, *journal)
                self._journaled.add(self._seq)
            except OSError as e:  # an unwritable folder: the write still queues, said once
                print(f"annotator: cannot keep {self.journal.path}: {e}", file=sys.stderr)
        self.pending.append(w)
        self._start()
        self._jobs.put(w)
        self.changed.emit()
        return Queued(description=f"{what} (queued)")

    def flush(self, timeout: float) -> bool:
        """Process events until every queued write has landed (True) or ``timeout`` passed."""
        from PySide6.QtWidgets import QApplication

        end = time.monotonic() + timeout
        while self.pending and time.monotonic() < end:
            QApplication.processEvents()
            if self.pending:
                time.sleep(0.005)
        QApplication.processEvents()
        return not self.pending

    def close(self) -> list[str]:
        """Stop the writer thread; returns what was still queued (not saved), and says so on
        stderr — never silently."""
        self._stop.set()
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(self.try_wait + 5)
            self._thread = None
        # a write the thread finished but whose signal was not delivered yet is not lost
        lost = [w.what for w in self.pending if w.seq > self._finished_seq]
        kept = sum(
            1 for w in self.pending if w.seq > self._finished_seq and w.seq in self._journaled
        )
        if lost:
            print(
                f"annotator: {len(lost)} change(s) not saved (the project stayed locked): "
                + "; ".join(lost)
                + (
                    f"; {kept} label change(s) kept in {self.journal.path.name}, written when"
                    " the project is next opened in the window"
                    if kept
                    else ""
                ),
                file=sys.stderr,
            )
        try:
            if not kept:
                self.journal.clear()
            else:  # those that landed are not written twice (a replay of one would change nothing)
                for w in self.pending:
                    if w.seq <= self._finished_seq and w.seq in self._journaled:
                        self.journal.done(w.seq)
        except OSError:
            pass
        self._journaled.clear()
        self.pending.clear()
        return lost

    # -- the writer thread ------------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(self.project.path,), name="annotator-writer", daemon=True
            )
            self._thread.start()

    def _run(self, path: Path) -> None:
        project: Project | None = None
        try:
            while True:
                w = self._jobs.get()
                if w is None or self._stop.is_set():
                    return
                start = time.monotonic()
                while not self._stop.is_set():
                    try:
                        if project is None:
                            project = open_project(path)
                            project.origin = ORIGIN_GUI
                        with project.waiting_at_most(self.try_wait):
                            result = w.fn(project)
                    except sqlite3.OperationalError as e:
                        # a busy lock, a full disk, an I/O error: kept and tried again
                        self._signals.waiting.emit(w.seq, time.monotonic() - start, str(e))
                        if self._stop.wait(0 if is_busy(e) else 0.5):
                            return
                        continue
                    except AnnotatorError as e:
                        if project is None:  # the file could not be opened: keep trying
                            self._signals.waiting.emit(w.seq, time.monotonic() - start, str(e))
                            self._stop.wait(0.5)
                            continue
                        self._signals.dropped.emit(w.seq, str(e))
                    except sqlite3.DatabaseError as e:  # e.g. a constraint: not retried
                        self._signals.dropped.emit(w.seq, f"database error: {e}")
                    except Exception as e:  # noqa: BLE001 - reported in the window
                        traceback.print_exc()
                        self._signals.dropped.emit(w.seq, f"{type(e).__name__}: {e}")
                    else:
                        self._finished_seq = w.seq
                        self._signals.landed.emit(w.seq, result)
                        break
                    self._finished_seq = w.seq  # dropped (said in the window)
                    break
        finally:
            if project is not None:
                project.close()

    # -- on the GUI thread ------------------------------------------------------------------------
    def _head(self, seq: int) -> Write | None:
        if not self.pending or self.pending[0].seq != seq:
            return None  # closed meanwhile
        return self.pending.popleft()

    def _settled(self, seq: int) -> None:
        if seq in self._journaled:
            self._journaled.discard(seq)
            try:
                if self._journaled:
                    self.journal.done(seq)
                else:
                    self.journal.clear()  # nothing waits: no journal left behind
            except OSError:
                pass

    def _landed(self, seq: int, result: Any) -> None:
        self._settled(seq)
        w = self._head(seq)
        if w is None:
            return
        self.waited, self.reason = 0.0, ""
        if w.done is not None:
            w.done(result)
        self.changed.emit()

    def _dropped(self, seq: int, message: str) -> None:
        self._settled(seq)
        w = self._head(seq)
        if w is None:
            return
        self.waited = 0.0
        if w.failed is not None:
            w.failed(message)
        self.changed.emit()

    def _waiting(self, seq: int, waited: float, why: str) -> None:
        if self.pending and self.pending[0].seq == seq:
            self.waited, self.reason = waited, why
            self.changed.emit()
