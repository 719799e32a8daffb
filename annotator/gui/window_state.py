"""What the main window remembers between runs (QSettings): its geometry and splitter, and
the project's last identity and face, reopened with the project."""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

from annotator.store import browse
from annotator.store.db import Project


def restore_layout(win: QMainWindow, splitter: QSplitter, settings: QSettings) -> bool:
    """The saved geometry and splitter; True when a saved splitter was restored."""
    geometry = settings.value("window/geometry")
    if geometry:
        win.restoreGeometry(geometry)
    saved = settings.value("window/splitter")
    return bool(saved and splitter.restoreState(saved))


def save_layout(win: QMainWindow, splitter: QSplitter, settings: QSettings) -> None:
    settings.setValue("window/geometry", win.saveGeometry())
    settings.setValue("window/splitter", splitter.saveState())


def fit_splitter(splitter: QSplitter, first_start: bool) -> None:
    """On showing: on a first start, room for the names and the inspector at its best; a
    layout saved on a bigger screen leaves the faces at least a third of the width."""
    w = splitter.width()
    left, _centre, right = splitter.sizes()
    if first_start:
        # the faces get the most: 5 columns of 112 px faces at 1280 px (a 21-face identity fits)
        left, right = max(300, min(420, int(w * 0.28))), (250 if w >= 1400 else 230)
    want = min(420, int(w * 0.35))
    if w - left - right < want:
        left = max(220, w - right - want)
    splitter.setSizes([left, max(0, w - left - right), right])


def size_panel(splitter: QSplitter, mode, review_sizes: list[int]) -> None:
    """A mode's side panel at its width (without the list when it shows none), or the review
    layout as it was."""
    if mode.panel_width is not None:
        sizes = splitter.sizes()
        centre = max(sum(sizes) - mode.panel_width, 400)
        splitter.setSizes([0 if not mode.shows_list else sizes[0], centre, mode.panel_width])
    elif review_sizes:
        splitter.setSizes(review_sizes)


def remember_place(win) -> None:
    """Remember the project's current identity and face (reopened with the project)."""
    if win.project is not None and win.current_identity is not None:
        face = win.grid.current_face_id()
        win.settings.setValue(
            "last_place", f"{win.project.path}\t{win.current_identity}\t{face if face else ''}"
        )


def remembered_place(settings: QSettings, project: Project) -> tuple[int | None, int | None]:
    path, ident, face = (str(settings.value("last_place", "") or "").split("\t") + ["", ""])[:3]
    if path != str(project.path) or not ident.isdigit():
        return None, None
    if not browse.identity_rows(project, [int(ident)]):
        return None, None
    return int(ident), int(face) if face.isdigit() else None
