"""Long core functions (import, scan) in a QThreadPool worker with a progress dialog.

The worker opens its own connection to the project file (never the GUI's), calls the core
function with ``progress(done, total)`` / ``cancelled()`` callbacks bridged to signals, and
reports the result or the error through signals. No widget is touched from the worker.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from annotator.model import AnnotatorError
from annotator.store.db import Project, open_project

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
