"""`annotator gui --view review|qa|adjudicate|stats`: open the window in one of its views (for
screenshots, and to start straight into a QA pass)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QApplication, QWidget

from annotator.core.review import qa
from annotator.model import AnnotatorError

if TYPE_CHECKING:
    from annotator.gui.main_window import MainWindow

VIEWS: tuple[str, ...] = ("review", "qa", "adjudicate", "stats")


def enter_view(win: MainWindow, view: str) -> QWidget:
    """Switch a shown window (with a project) to ``view``; returns the widget that shows it
    (the window, or the view's dialog). ``qa`` resumes the reviewer's newest open QA pass (else
    their newest pass)."""
    if view not in VIEWS:
        raise AnnotatorError(f"unknown view {view!r} (expected one of {', '.join(VIEWS)})")
    if view == "review":
        return win
    if win.project is None:
        raise AnnotatorError(f"--view {view} needs a project file")
    if view == "qa":
        mine = qa.passes(win.project, win.reviewer)
        if not mine:
            raise AnnotatorError(
                f"reviewer {win.reviewer!r} has no QA pass in this project; start one with "
                f"Review > QA pass… or `annotator qa start -p {win.project.path} "
                f"-r {win.reviewer}`"
            )
        open_ = [p for p in mine if not p.complete]
        win.enter_qa((open_ or mine)[-1].pass_id)
        return win
    if view == "adjudicate":
        return win.dialogs.open_adjudication()
    return win.dialogs.open_statistics()


def settle(win: MainWindow, target: QWidget, timeout: float = 30.0) -> bool:
    """Process events until thumbnails are painted and ``target`` has its data."""
    app = QApplication.instance()
    assert app is not None
    end = time.monotonic() + timeout
    ok = win.wait_painted(timeout)
    ready = getattr(target, "is_ready", None)
    while ready is not None and not ready() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    fit = getattr(target, "fit_content", None)
    if fit is not None:
        fit()
        app.processEvents()
    # thumbnails requested by the view (big face, references) after the grid was ready
    while win.loader is not None and win.loader.busy and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    for _ in range(5):
        app.processEvents()
    target.repaint()
    return ok and (ready is None or ready())
