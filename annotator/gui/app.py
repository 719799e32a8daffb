"""Application setup: QApplication, style, settings, signals; ``main`` and ``run``."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from annotator.core.models import AnnotatorError

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

_stop_requested = False


def _request_stop(_signum, _frame) -> None:  # pragma: no cover - signal handler
    global _stop_requested
    _stop_requested = True


def make_app(argv: list[str] | None = None):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("annotator")
    app.setOrganizationName("annotator")
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE)
    return app


def settings():
    from PySide6.QtCore import QSettings

    return QSettings("annotator", "annotator")


def run(
    project_path: str | None = None,
    reviewer: str | None = None,
    screenshot: str | None = None,
    identity_key: str | None = None,
    size: tuple[int, int] = (1400, 860),
) -> int:
    """Open the reviewer window; with ``screenshot`` render it to a PNG and return."""
    if screenshot and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if project_path is not None and not Path(project_path).expanduser().exists():
        raise AnnotatorError(f"no project file at {Path(project_path).expanduser().absolute()}")
    from PySide6.QtCore import QTimer

    from annotator.gui.main_window import MainWindow
    from annotator.store import browse
    from annotator.store.db import open_project

    app = make_app()
    st = settings()
    name = reviewer or st.value("reviewer", "") or ""
    if not name:
        if screenshot:
            name = "screenshot"
        else:
            from annotator.gui.dialogs.simple import ask_reviewer_name

            name = ask_reviewer_name(None, os.environ.get("USER", "")) or ""
            if not name:
                return 1
    if reviewer or not screenshot:
        st.setValue("reviewer", name)

    win = MainWindow(st, name)
    win.resize(*size)
    path = project_path
    if path is None and not screenshot:
        last = st.value("last_project", "")
        if last and Path(str(last)).exists():
            path = str(last)
    if path is not None:
        win.set_project(open_project(path))
        if identity_key:
            assert win.project is not None
            ident = browse.identity_by_key(win.project, identity_key)
            if ident is None:
                win.close()
                raise AnnotatorError(f"no identity with key {identity_key!r} in the project")
            win.set_filter("all")
            win.open_identity(ident)
    elif screenshot:
        raise AnnotatorError("--screenshot needs a project file")
    else:
        win.statusBar().showMessage(
            "Open a project (Ctrl+O) or create one (Ctrl+N), then File > Import…"
        )

    if screenshot:
        win.show()
        win.grid.setFocus()
        win.wait_painted()
        ok = win.grab().save(screenshot, "PNG")
        win.close()
        if not ok:
            raise AnnotatorError(f"cannot write {screenshot}")
        return 0

    # SIGTERM / SIGINT: close the window cleanly (labels are already committed).
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    poll = QTimer()
    poll.setInterval(200)
    poll.timeout.connect(lambda: _stop_requested and win.close())
    poll.start()
    win.show()
    win.grid.setFocus()
    return int(app.exec())


def main(argv: list[str] | None = None) -> None:
    """Entry point of `annotator-gui [P.db]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        sys.exit(run(args[0] if args else None))
    except AnnotatorError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
