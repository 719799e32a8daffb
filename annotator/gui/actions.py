"""The main window's menus and QActions, made from the one shortcut table.

A shortcut's ``handler`` names a method of the window, or of its :class:`Dialogs`, or one of
the label keys (``label_correct`` … ``label_clear``: ``window.label(value)``). A held key's
auto-repeat runs a handler only where the table's ``repeat`` column allows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from annotator.core.review import ops
from annotator.gui import shortcuts
from annotator.gui.dialogs.withdraw_dialog import DataVersionWatch
from annotator.gui.face_grid import FaceGridView
from annotator.gui.identity_list import FILTER_TITLES, IdentityList
from annotator.gui.keyrepeat import RepeatWatch
from annotator.gui.tasks import WriteQueue
from annotator.gui.window_dialogs import Dialogs
from annotator.model import LABELS
from annotator.store.db import Project

LABEL_OF = {f"label_{lab}": lab for lab in LABELS} | {"label_clear": None}
MENUS = ("File", "Edit", "View", "Review", "Identity", "Help")


class ActionHost(Protocol):
    project: Project | None
    reviewer: str
    grid: FaceGridView
    identities: IdentityList
    dialogs: Dialogs
    actions_by_name: dict[str, QAction]
    writes: WriteQueue | None

    def label(self, label: str | None) -> None: ...

    def guard(self, fn: Callable[[], object]) -> None: ...

    def set_filter(self, key: str) -> None: ...

    def new_project(self) -> None: ...

    def open_project_dialog(self) -> None: ...

    def scan(self) -> None: ...

    def show_message(self, text: str, ms: int = 5000) -> None: ...


# keys that only reach a view
VIEW_KEYS: dict[str, Callable[[ActionHost], object]] = {
    "focus_search": lambda w: w.identities.focus_search(),
    "select_all_faces": lambda w: w.grid.selectAll(),
    "zoom_in": lambda w: w.grid.zoom(1),
    "zoom_out": lambda w: w.grid.zoom(-1),
}


def handler_of(win: ActionHost, name: str) -> Callable[[], object]:
    if name in LABEL_OF:
        value = LABEL_OF[name]
        return lambda: win.label(value)
    if name in VIEW_KEYS:
        return lambda: VIEW_KEYS[name](win)
    fn = getattr(win, name, None)
    return fn if fn is not None else getattr(win.dialogs, name)


def build(
    win: QMainWindow, host: ActionHost, repeat: RepeatWatch
) -> tuple[dict[str, QAction], dict[str, QMenu]]:
    """Menus File … Help and one action per shortcut (by name); Identity > Withdraw… and the
    watch that drops withdrawn people from the window (``gui/dialogs/withdraw_dialog.py``)."""
    menus = {name: win.menuBar().addMenu(f"&{name}") for name in MENUS}
    file_items = [
        ("&New project…", QKeySequence.StandardKey.New, host.new_project),
        ("&Open project…", QKeySequence.StandardKey.Open, host.open_project_dialog),
        ("&Import…", None, host.dialogs.import_source),
        ("&Scan (hashes and flags)…", None, host.scan),
        ("Change &reviewer…", None, host.dialogs.change_reviewer),
    ]
    for text, key, fn in file_items:
        a = QAction(text, win)
        if key is not None:
            a.setShortcut(key)
        a.triggered.connect(fn)
        menus["File"].addAction(a)
    menus["File"].addSeparator()
    for k, title in FILTER_TITLES.items():
        a = QAction(f"Show {title.lower()}", win)
        a.triggered.connect(lambda _c=False, k=k: host.set_filter(k))
        menus["View"].addAction(a)
    menus["View"].addSeparator()
    actions: dict[str, QAction] = {}
    for s in shortcuts.SHORTCUTS:
        if s.handler is None:
            continue
        a = QAction(s.menu_text, win)
        a.setObjectName(s.name)
        a.setShortcuts([QKeySequence(k) for k in s.keys])
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.setToolTip(s.description)
        h = handler_of(host, s.handler)
        a.triggered.connect(lambda _c=False, s=s, h=h: _run_key(host, repeat, s, h))
        win.addAction(a)
        actions[s.name] = a
        if s.menu:
            if s.section:
                menus[s.menu].addSeparator()
            menus[s.menu].addAction(a)
    about = QAction("&About annotator", win)
    about.triggered.connect(host.dialogs.about)
    menus["Help"].addAction(about)
    withdraw = QAction("&Withdraw…", win)
    withdraw.setObjectName("withdraw")
    withdraw.triggered.connect(host.dialogs.withdraw)
    menus["Identity"].addAction(withdraw)
    win.withdraw_watch = DataVersionWatch(win)  # type: ignore[attr-defined]
    return actions, menus


# A held label key walks plain faces but stops at one whose flags Enter treats apart (a copy,
# probably another person, corrupt: store/browse BADGES): holding 1 once ran through an
# identity's look-alikes and copies and called them correct. A fresh press labels it.
STOP_BADGES = frozenset("DXS!")


def _current_badges(grid: FaceGridView) -> str:
    ix = grid.currentIndex()
    tiles = grid.grid_model.tiles
    return tiles[ix.row()].badges if ix.isValid() and ix.row() < len(tiles) else ""


def _run_key(host: ActionHost, repeat: RepeatWatch, s: shortcuts.Shortcut, handler) -> None:
    """Run a shortcut's handler, unless a held key's auto-repeat fired it and the table says
    a repeat may not (Enter, G, M…; a label key on a selection of faces, or on a face flagged
    as a copy, another person or corrupt)."""
    if repeat.repeating:
        if s.repeat == "no" or (s.repeat == "one" and host.grid.selected_face_ids()):
            return
        badges = _current_badges(host.grid) if s.repeat == "one" else ""
        if STOP_BADGES.intersection(badges):
            host.show_message(
                f"Held key stopped at a flagged face ({badges}): press it again to label it."
            )
            return
    host.guard(handler)


def enable_for(actions: dict[str, QAction], mode: str) -> None:
    """The actions of ``mode`` on, the others off (the shortcut table says which)."""
    for s in shortcuts.SHORTCUTS:
        a = actions.get(s.name)
        if a is not None:
            a.setEnabled(mode in s.modes)


def undo_texts(win: ActionHost) -> None:
    """Edit menu: Undo / Redo say what they would undo (or that they wait for the saving)."""
    if win.project is None:
        return
    if win.writes is not None and win.writes.pending:  # an undo waits behind them
        u = r = "(after the changes being saved)"
    else:
        u, r = ops.can_undo(win.project, win.reviewer), ops.can_redo(win.project, win.reviewer)
    win.actions_by_name["undo"].setText(f"Undo {u}" if u else "Undo")
    win.actions_by_name["redo"].setText(f"Redo {r}" if r else "Redo")
