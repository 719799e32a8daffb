"""Application setup: QApplication, style, settings, signals; ``main`` and ``run``."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from annotator.model import AnnotatorError

STYLE = """
QWidget { font-size: 10pt; }
QTableView { selection-background-color: #1f6fe5; selection-color: white;
             alternate-background-color: #f4f6f9; }
QHeaderView::section { padding: 4px 6px; border: none; border-bottom: 1px solid #ccc;
                       background: #f0f0f0; font-weight: bold; }
QListView { background: #fbfbfb; border: 1px solid #d0d0d0; }
QLineEdit { padding: 4px 6px; }
QStatusBar QLabel { color: #333; }
QLabel#identityTitle { padding: 2px 2px 6px 2px; }
"""

STOP_SIGNALS = tuple(
    getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n)
)


class QuitOnSignals:
    """SIGTERM, SIGINT and SIGHUP close the window cleanly, at once.

    A Python signal handler only runs when the interpreter gets control, which an idle Qt
    event loop never gives it; so the C-level handler writes the signal number to a socket
    (``signal.set_wakeup_fd``) that a QSocketNotifier watches, and the notifier's slot closes
    any dialog, then the window (which remembers its place and closes the project file), and
    ends the event loops. Labels are committed as they are given: nothing is lost.
    """

    def __init__(self) -> None:
        import socket

        from PySide6.QtCore import QSocketNotifier

        self.window = None  # set once the main window exists
        self.received: list[int] = []
        self._rsock, self._wsock = socket.socketpair()
        for sock in (self._rsock, self._wsock):
            sock.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._wsock.fileno(), warn_on_full_buffer=False)
        self._old = {s: signal.signal(s, self._note) for s in STOP_SIGNALS}
        self._notifier = QSocketNotifier(self._rsock.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._woken)

    def _note(self, signum, _frame) -> None:  # pragma: no cover - runs in the signal handler
        self.received.append(signum)

    def _woken(self, *_args) -> None:
        from PySide6.QtWidgets import QApplication, QDialog

        try:
            self._rsock.recv(256)
        except OSError:
            pass
        app = QApplication.instance()
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QDialog) and w.isVisible():
                w.reject()
        if self.window is not None:
            self.window.close()
        if app is not None:
            app.quit()  # also ends a modal dialog's loop

    def restore(self) -> None:
        self._notifier.setEnabled(False)
        signal.set_wakeup_fd(self._old_fd)
        for s, h in self._old.items():
            signal.signal(s, h)
        self._rsock.close()
        self._wsock.close()


def make_app(argv: list[str] | None = None):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("annotator")
    app.setOrganizationName("annotator")
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE)
    app.setWindowIcon(app_icon())  # every window, the main one included, gets it
    app.setDesktopFileName("io.github.annotator")  # Wayland: match the installed entry
    return app


def app_icon():
    """The application icon, from the PNG sizes packaged in annotator/resources/icons."""
    from PySide6.QtGui import QIcon, QPixmap

    from annotator import desktop

    icon = QIcon()
    for n in desktop.ICON_SIZES:  # read as bytes: works from a wheel, a zip or a frozen build
        pixmap = QPixmap()
        if pixmap.loadFromData(desktop.icon_png(n).read_bytes(), "PNG"):
            icon.addPixmap(pixmap)
    return icon


def settings():
    from PySide6.QtCore import QSettings

    return QSettings("annotator", "annotator")


def run(
    project_path: str | None = None,
    reviewer: str | None = None,
    screenshot: str | None = None,
    identity_key: str | None = None,
    size: tuple[int, int] = (1400, 860),
    view: str = "review",
) -> int:
    """Open the reviewer window; with ``screenshot`` render it to a PNG and return."""
    if screenshot and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if project_path is not None and not Path(project_path).expanduser().exists():
        raise AnnotatorError(f"no project file at {Path(project_path).expanduser().absolute()}")
    if (
        not screenshot
        and sys.platform.startswith("linux")
        and not any(os.environ.get(v) for v in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"))
    ):  # else Qt aborts the process with a core dump
        raise AnnotatorError(
            "no display to open the reviewer on (DISPLAY and WAYLAND_DISPLAY are not set); "
            "run it in a desktop session, or see `annotator --help` for the command line"
        )
    app = make_app()
    if screenshot:
        _quiet_offscreen_warnings()
        # A screenshot neither reads nor changes the user's window layout or last project.
        import tempfile

        from PySide6.QtCore import QSettings

        tmp = tempfile.TemporaryDirectory(prefix="annotator-shot-")
        st = QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat)
        name = reviewer or settings().value("reviewer", "") or "screenshot"
        return _screenshot(app, st, str(name), project_path, identity_key, view, screenshot, size)

    quitter = QuitOnSignals()
    try:
        return _interactive(app, quitter, project_path, reviewer, identity_key, view, size)
    finally:
        quitter.restore()


def _quiet_offscreen_warnings() -> None:
    """The offscreen platform warns "This plugin does not support raise()" (and
    propagateSizeHints()) for every window; a screenshot run prints only real problems."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_mode, _context, message: str) -> None:
        if not message.startswith("This plugin does not support"):
            print(message, file=sys.stderr)

    _keep.append(handler)  # Qt holds no Python reference to it
    qInstallMessageHandler(handler)


_keep: list[object] = []


def _interactive(app, quitter, project_path, reviewer, identity_key, view, size) -> int:
    from annotator.gui.main_window import MainWindow
    from annotator.store.db import open_project

    st = settings()
    name = (reviewer or st.value("reviewer", "") or "").strip()
    if not name:
        from annotator.gui.dialogs.simple import ask_reviewer_name

        name = (ask_reviewer_name(None, os.environ.get("USER", "")) or "").strip()
        if not name:
            return 1
    st.setValue("reviewer", name)
    st.sync()

    win = MainWindow(st, name)
    quitter.window = win
    if not st.value("window/geometry"):  # first start: the default size, if the screen has it
        avail = win.screen().availableGeometry()
        win.resize(min(size[0], avail.width() - 20), min(size[1], avail.height() - 40))
    path = project_path
    why = "Open a project (Ctrl+O) or create one (Ctrl+N), then File > Import…"
    if path is None:
        last = st.value("last_project", "")
        if last and Path(str(last)).exists():
            path = str(last)
        elif last:
            why = (
                f"Your last project, {last}, is no longer there (moved or deleted): open it "
                "where it is now (Ctrl+O), or create one (Ctrl+N)."
            )
    problem = None
    if path is not None:
        try:
            win.set_project(open_project(path))
        except AnnotatorError as e:  # e.g. a file that is not a project, from the desktop entry
            if identity_key or view != "review":
                win.close()
                raise
            problem, why = str(e), f"Not opened: {e}"
        else:
            if identity_key:
                _open_identity(win, identity_key)
    if win.project is None:
        win.statusBar().showMessage(why)
    win.show()
    win.raise_()
    win.activateWindow()  # after the name prompt, keys go to the reviewer's window
    win.grid.setFocus()
    if problem is not None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.warning(win, "Cannot open the project", problem)
    if view != "review":
        from annotator.gui.views import enter_view

        try:
            enter_view(win, view)
        except AnnotatorError:
            win.close()
            raise
    code = int(app.exec())
    if win.project is not None:  # the loop ended without the window closing
        win.close()
    return code


def _open_identity(win, key: str) -> None:  # noqa: ANN001
    """Show identity ``key`` in ``win`` (all filters off), or close it with a clear error."""
    from annotator.store import browse

    assert win.project is not None
    ident = browse.identity_by_key(win.project, key)
    if ident is None:
        win.close()
        raise AnnotatorError(f"no identity with key {key!r} in the project")
    win.set_filter("all")
    win.open_identity(ident)


def _screenshot(app, st, name, project_path, identity_key, view, screenshot, size) -> int:
    from annotator.gui.main_window import MainWindow
    from annotator.store.db import open_project

    win = MainWindow(st, name)
    win.resize(*size)
    if project_path is None:
        raise AnnotatorError("--screenshot needs a project file")
    win.set_project(open_project(project_path))
    if identity_key:
        _open_identity(win, identity_key)

    from annotator.gui.views import enter_view, settle

    win.show()
    win.grid.setFocus()
    try:
        target = enter_view(win, view)  # the window, or the view's dialog
    except AnnotatorError:
        win.close()
        raise
    settle(win, target)
    ok = target.grab().save(screenshot, "PNG")
    win.close()
    if not ok:
        raise AnnotatorError(f"cannot write {screenshot}")
    return 0


USAGE = """usage: annotator-gui [PROJECT.db]

Open the reviewer window on PROJECT.db (without it, on the last project opened).
Every label is saved the moment it is given. For a reviewer name, a view (qa, adjudicate,
stats) or a screenshot, use `annotator gui --help`."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of `annotator-gui [P.db]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        sys.exit(0)
    try:
        if args and args[0].startswith("-"):
            raise AnnotatorError(f"unknown option {args[0]} (see annotator-gui --help)")
        if len(args) > 1:
            raise AnnotatorError("expected at most one project file (see annotator-gui --help)")
        sys.exit(run(args[0] if args else None))
    except AnnotatorError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
