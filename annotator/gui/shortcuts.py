"""The one table of reviewer shortcuts.

It creates the main window's QActions (see actions.build), the `?` help
dialog, the Help menu entry and, through :func:`markdown_table`, the README's table. Keys that
the face grid handles itself (arrows, Space, Shift+arrows) are listed with handler ``None``:
they are documented here but implemented by the QListView. Ctrl+A is a window action, so it
selects the faces even when the identity list has the focus (as 1-5 label them from there).
"""

from __future__ import annotations

from typing import NamedTuple

REVIEW, QA = "review", "qa"  # the window's modes (gui/modes.py, gui/qa_mode.py)
BOTH = (REVIEW, QA)


class Shortcut(NamedTuple):
    keys: tuple[str, ...]  # QKeySequence strings; the first is shown first
    name: str  # action name (unique)
    description: str
    handler: str | None  # see actions.handler_of; None = handled by the widget itself
    menu: str  # menu it appears in ("" = none)
    modes: tuple[str, ...] = BOTH  # the modes in which the action is enabled
    title: str = ""  # menu text (default: the description up to its first " (")
    section: bool = False  # a separator before it in its menu
    # On a held key's auto-repeated presses: "yes" runs again, "no" never (a fresh press is
    # needed), "one" only when the action changes a single face (no selection).
    repeat: str = "yes"

    @property
    def menu_text(self) -> str:
        return self.title or self.description.split(" (")[0]


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut(
        ("1",),
        "label_correct",
        "Label correct (selected faces, else the current face; cursor moves on)",
        "label_correct",
        "Review",
    ),
    Shortcut(
        ("2",), "label_wrong_identity", "Label wrong identity", "label_wrong_identity", "Review"
    ),
    Shortcut(("3",), "label_duplicate", "Label duplicate", "label_duplicate", "Review"),
    Shortcut(
        ("4",),
        "label_unusable",
        "Label unusable (not a face, unreadable, too poor)",
        "label_unusable",
        "Review",
    ),
    Shortcut(("5",), "label_unsure", "Label unsure", "label_unsure", "Review"),
    Shortcut(("0",), "label_clear", "Clear the label", "label_clear", "Review", (REVIEW,)),
    Shortcut(
        ("Return", "Enter"),
        "review_identity",
        "Accept the rest: unlabeled faces correct (flagged corrupt: unusable, duplicate copies:"
        " duplicate; looks like another person: left for you), mark reviewed, open the next one",
        "review_identity",
        "Review",
        (REVIEW,),
        "Accept the rest and go to the next identity",
    ),
    Shortcut(
        ("N", "PgDown"), "next_identity", "Next identity", "next_identity", "Review", (REVIEW,)
    ),
    Shortcut(
        ("P", "PgUp"), "prev_identity", "Previous identity", "prev_identity", "Review", (REVIEW,)
    ),
    Shortcut(
        ("G",),
        "duplicate_group",
        "Show the duplicate group of the current face and choose the keeper",
        "duplicate_group",
        "Review",
        (REVIEW,),
        "Duplicate group…",
    ),
    Shortcut(
        ("M",),
        "move_faces",
        "Move the selected faces to another identity (search by key or name; unreviewed there)",
        "move_faces",
        "Review",
        (REVIEW,),
        "Move faces…",
    ),
    Shortcut(
        ("Ctrl+Z",),
        "undo",
        "Undo (many steps; an Enter is one step; a QA verdict has none)",
        "undo",
        "Edit",
    ),
    Shortcut(("Ctrl+Shift+Z", "Ctrl+Y"), "redo", "Redo", "redo", "Edit"),
    Shortcut(
        ("Ctrl+F",),
        "focus_search",
        "Search identities by key or name",
        "focus_search",
        "Edit",
        (REVIEW,),
        "Search identities…",
    ),
    Shortcut(
        ("Ctrl++", "Ctrl+="), "zoom_in", "Bigger thumbnails (also Ctrl+wheel)", "zoom_in", "View"
    ),
    Shortcut(("Ctrl+-",), "zoom_out", "Smaller thumbnails", "zoom_out", "View"),
    Shortcut(("Arrows",), "move_cursor", "Move the current face", None, ""),
    Shortcut(("Space",), "toggle_selection", "Toggle the selection of the current face", None, ""),
    Shortcut(("Shift+Arrows",), "extend_selection", "Extend the selection", None, ""),
    Shortcut(
        ("Ctrl+A",),
        "select_all",
        "Mark every face of the identity selected",
        "select_all_faces",
        "Edit",
        title="Mark all faces",
    ),
    Shortcut(
        (),
        "qa_pass",
        "Start or resume a blind QA pass",
        "start_qa_pass",
        "Review",
        title="&QA pass…",
        section=True,
    ),
    Shortcut(
        ("Esc",),
        "leave_qa",
        "Leave the QA pass (in the search box: back to the faces)",
        "leave_qa",
        "Review",
        (QA,),
        "&Leave QA pass",
    ),
    Shortcut(
        (),
        "adjudication_queue",
        "Decide the faces where a QA verdict disagrees with the label",
        "open_adjudication",
        "Review",
        (REVIEW,),
        "&Adjudication queue…",
    ),
    Shortcut(
        ("Ctrl+I",),
        "statistics",
        "Statistics: labels, noise rate, QA agreement, reviewers",
        "open_statistics",
        "View",
        title="&Statistics…",
        section=True,
    ),
    Shortcut(("?",), "help_shortcuts", "Show this list of shortcuts", "show_shortcuts", "Help"),
    Shortcut(("Ctrl+Q",), "quit", "Quit (every label is already saved)", "close", "File"),
)


# Auto-repeat never triggers an action that changes more than one face: a held label key walks
# single faces, but labels a selection once; Enter, G, M, undo/redo and dialogs need a fresh press.
_LABEL_KEYS = (
    "label_correct",
    "label_wrong_identity",
    "label_duplicate",
    "label_unusable",
    "label_unsure",
    "label_clear",
)
_NO_REPEAT = (
    "review_identity",
    "duplicate_group",
    "move_faces",
    "undo",
    "redo",
    "qa_pass",
    "leave_qa",
    "adjudication_queue",
    "statistics",
    "help_shortcuts",
    "quit",
)
SHORTCUTS = tuple(
    s._replace(repeat="one" if s.name in _LABEL_KEYS else "no" if s.name in _NO_REPEAT else "yes")
    for s in SHORTCUTS
)


def by_name(name: str) -> Shortcut:
    for s in SHORTCUTS:
        if s.name == name:
            return s
    raise KeyError(name)


def markdown_table() -> str:
    """The shortcut table as Markdown (for the README)."""
    lines = ["| Keys | Action |", "| --- | --- |"]
    for s in SHORTCUTS:
        if not s.keys:
            continue
        keys = " / ".join(f"`{k}`" for k in s.keys)
        lines.append(f"| {keys} | {s.description} |")
    return "\n".join(lines) + "\n"


def html_table() -> str:
    """The shortcut table as HTML (the help dialog)."""
    rows = "".join(
        f"<tr><td style='padding:3px 14px 3px 0'><b>{' / '.join(s.keys)}</b></td>"
        f"<td style='padding:3px 0'>{s.description}</td></tr>"
        for s in SHORTCUTS
        if s.keys
    )
    return f"<table>{rows}</table>"
