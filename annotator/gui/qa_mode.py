"""The QA pass in the main window, the menu entries for QA, adjudication and statistics.

In a QA pass the face grid shows the pass's items *blind*: each tile carries the QA reviewer's
own verdict as its label (nothing before a verdict), never the original label, and the
inspector is replaced by a panel that shows the face large, the identity it is filed under and
reference faces of that identity (labels hidden; faces of the pass are never shown as
references, since their labels would leak). Keys 1-5 record verdicts through
:func:`annotator.core.qa.record_verdict` — each its own ``qa`` event; the original label is
never touched. A verdict can be changed by pressing another key on the face, but there is no
undo: core keeps no undo stack for QA verdicts, so Ctrl+Z says so instead.

The main window only forwards to :class:`QaMode` while ``win.qa_mode`` is set (labels, the
current face, identity-list clicks); everything else lives here.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMenu, QScrollArea, QVBoxLayout, QWidget

from annotator.core import qa
from annotator.gui.qa_widgets import (
    FaceImage,
    ReferenceStrip,
    identity_caption,
    keys_html,
    label_html,
    reference_tiles,
)
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.model import AnnotatorError
from annotator.store import browse

if TYPE_CHECKING:
    from annotator.gui.main_window import MainWindow

BIG = 256
# Main-window actions that make no sense on a blind sample (or would reveal or change labels).
DISABLED_IN_QA = (
    "label_clear",
    "review_identity",
    "next_identity",
    "prev_identity",
    "duplicate_group",
    "move_faces",
    "undo",
    "redo",
    "focus_search",
    "adjudication_queue",
)


class QaPanel(QScrollArea):
    """The current QA item: the face large, where it is filed, references, your verdict."""

    def __init__(self, loader: ThumbnailLoader, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("qaPanel")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(330)
        body = QWidget()
        self.setWidget(body)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(10, 10, 10, 10)
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.header)
        self.image = FaceImage(loader, BIG)
        lay.addWidget(self.image, 0, Qt.AlignmentFlag.AlignHCenter)
        self.info = QLabel()
        self.info.setObjectName("qaInfo")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.info)
        self.refs = ReferenceStrip(loader)
        lay.addWidget(self.refs)
        note = QLabel(
            "<small>Blind check: the original label and who gave it stay hidden. Your verdict "
            "is stored as its own QA event and never changes the face's label; press another "
            "key on a face to change your verdict.</small><br><br>"
            + keys_html("<small>")
            + "</small>"
        )
        note.setWordWrap(True)
        note.setStyleSheet("color:#555")
        lay.addWidget(note)
        lay.addStretch(1)

    def show_item(
        self,
        item: qa.BlindItem | None,
        tile: browse.FaceTile | None,
        identity_html: str,
        refs: tuple[list[browse.FaceTile], str],
        n_items: int,
    ) -> None:
        if item is None or tile is None:
            self.header.setText("<i>No item selected.</i>")
            self.image.set_face(None)
            self.info.setText("")
            self.refs.set_faces([], "")
            return
        self.header.setText(
            f"<span style='font-size:12pt'><b>Item {item.position + 1}</b> of {n_items}</span>"
        )
        self.image.set_face(tile)
        self.info.setText(
            "<table>"
            f"<tr><td style='color:#777;padding-right:10px'>Filed under</td><td>{identity_html}</td></tr>"
            f"<tr><td style='color:#777;padding-right:10px'>Origin</td><td>{html.escape(item.origin)}</td></tr>"
            f"<tr><td style='color:#777;padding-right:10px'>Your verdict</td>"
            f"<td>{label_html(tile.label, 'none yet')}</td></tr>"
            "</table>"
            "<p>Is this face the person it is filed under, and usable?</p>"
        )
        self.refs.set_faces(*refs)


class QaMode(QObject):
    """A QA pass shown in the main window's grid. Create, then :meth:`enter`."""

    def __init__(self, win: MainWindow, pass_id: int):
        super().__init__(win)
        self.win = win
        self.pass_id = pass_id
        self.items: dict[int, qa.BlindItem] = {}
        self.panel: QaPanel | None = None
        self.status = QLabel()
        self.status.setObjectName("qaStatus")
        self.status.setContentsMargins(8, 0, 8, 0)
        self._disabled: list[QAction] = []
        self._ident_html: dict[int, str] = {}
        self._saved_sizes: list[int] = []
        self._saved_legend = ""

    @property
    def project(self):
        assert self.win.project is not None
        return self.win.project

    # -- entering and leaving ----------------------------------------------------------------
    def enter(self) -> None:
        win = self.win
        p = next((s for s in qa.passes(self.project) if s.pass_id == self.pass_id), None)
        if p is None:
            raise AnnotatorError(f"no QA pass {self.pass_id}")
        if p.reviewer != win.reviewer:
            raise AnnotatorError(
                f"QA pass {self.pass_id} belongs to {p.reviewer!r}; you are {win.reviewer!r}"
            )
        self.reviewer = p.reviewer
        items = qa.next_items(self.project, self.pass_id, include_done=True)
        self.items = {i.face_id: i for i in items}
        tiles = browse.face_tiles(self.project, list(self.items))
        blind = []
        for (
            i
        ) in items:  # pass order; the label a tile carries is the QA verdict, never the original
            t = tiles[i.face_id]
            t.label = i.verdict
            blind.append(t)
        assert win.loader is not None
        win.loader.new_generation()
        win.grid_model.blind = True
        win.grid_model.set_faces(None, blind)
        win.qa_mode = self

        self.panel = QaPanel(win.loader)
        self._saved_sizes = win.splitter.sizes()
        self._saved_legend = win.legend.text()
        win.splitter.widget(0).hide()  # the identity list
        win.inspector.hide()
        win.splitter.addWidget(self.panel)
        win.splitter.setStretchFactor(win.splitter.indexOf(self.panel), 0)
        sizes = win.splitter.sizes()
        win.splitter.setSizes([0, max(sizes[1] + sizes[2] - 360, 400), 0, 360])
        for name in DISABLED_IN_QA:
            a = win.actions_by_name.get(name)
            if a is not None and a.isEnabled():
                a.setEnabled(False)
                self._disabled.append(a)
        for name in ("leave_qa", "qa_undo"):
            win.actions_by_name[name].setEnabled(True)
        win.statusBar().addPermanentWidget(self.status)
        self.status.show()
        win.legend.setText(
            keys_html("<small>")
            + "&nbsp;·&nbsp;the border is <b>your</b> QA verdict — original labels are hidden"
            "&nbsp;·&nbsp;Esc: leave the QA pass</small>"
        )
        self._update()
        first = next((r for r, i in enumerate(items) if i.verdict is None), 0)
        win.grid.scrollToTop()
        win.grid.set_current_row(first)
        self.face_changed()
        win.grid.setFocus()

    def leave(self) -> None:
        win = self.win
        win.qa_mode = None
        win.grid_model.blind = False
        for a in self._disabled:
            a.setEnabled(True)
        self._disabled = []
        for name in ("leave_qa", "qa_undo"):
            win.actions_by_name[name].setEnabled(False)
        win.statusBar().removeWidget(self.status)
        if self.panel is not None:
            self.panel.hide()
            self.panel.setParent(None)
            self.panel.deleteLater()
            self.panel = None
        win.splitter.widget(0).show()
        win.inspector.show()
        if self._saved_sizes:
            win.splitter.setSizes(self._saved_sizes)
        win.legend.setText(self._saved_legend)
        if win.project is not None:
            win.show_identity(win.current_identity)
            win.reload_list()
        win.grid.setFocus()
        self.deleteLater()

    # -- forwarded from the main window ------------------------------------------------------
    def label(self, label: str | None) -> None:
        win = self.win
        if label is None:
            win.statusBar().showMessage(
                "A QA verdict cannot be cleared; press 1-5 to change it.", 6000
            )
            return
        ids, from_selection = win._targets()
        ids = [f for f in ids if f in self.items]
        if not ids:
            return
        try:
            for fid in ids:
                qa.record_verdict(self.project, self.pass_id, fid, label, self.reviewer)
                win.grid_model.set_labels({fid: label})
        finally:
            self._update()
        rows = [win.grid_model.row_of(f) for f in ids]
        last = max(r for r in rows if r is not None)
        if from_selection:
            win.grid.selectionModel().clearSelection()
        judged, total = self._update()
        if judged == total:
            win.statusBar().showMessage(
                f"QA pass {self.pass_id} complete: every item has your verdict. "
                "Esc leaves the pass; Review > Adjudication queue… lists disagreements.",
                15000,
            )
        win.grid.set_current_row(last + 1)
        self.face_changed()

    def face_changed(self) -> None:
        if self.panel is None:
            return
        fid = self.win.grid.current_face_id()
        item = self.items.get(fid) if fid is not None else None
        row = self.win.grid_model.row_of(fid) if fid is not None else None
        tile = self.win.grid_model.tiles[row] if row is not None else None
        if item is None or tile is None:
            self.panel.show_item(None, None, "", ([], ""), len(self.items))
            return
        ident = item.identity_id
        if ident not in self._ident_html:
            self._ident_html[ident] = identity_caption(self.project, ident)
        refs = reference_tiles(self.project, ident, exclude=self.items.keys())
        self.panel.show_item(item, tile, self._ident_html[ident], refs, len(self.items))

    def progress(self) -> tuple[int, int]:
        tiles = self.win.grid_model.tiles
        return sum(1 for t in tiles if t.label is not None), len(tiles)

    def _update(self) -> tuple[int, int]:
        judged, total = self.progress()
        self.status.setText(f"<b>QA: {judged}/{total}</b>")
        self.win.title.setText(
            f"<span style='font-size:15pt'><b>QA pass {self.pass_id}</b></span>"
            f"&nbsp;&nbsp;<span style='color:#666'>blind check by {html.escape(self.reviewer)} · "
            f"{judged} of {total} judged · faces of many identities, in random order</span>"
        )
        return judged, total


# -- menu entries and their handlers ---------------------------------------------------------


def install_actions(win: MainWindow, menus: dict[str, QMenu]) -> None:
    """Review > QA pass… / Leave QA pass / Adjudication queue…, View > Statistics…"""

    def add(name: str, text: str, menu: str, fn, keys: tuple[str, ...] = ()) -> QAction:
        a = QAction(text, win)
        a.setObjectName(name)
        if keys:
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.triggered.connect(lambda _c=False: win._guard(lambda: fn(win)))
        win.addAction(a)
        if menu:
            menus[menu].addAction(a)
        win.actions_by_name[name] = a
        return a

    menus["Review"].addSeparator()
    add("qa_pass", "&QA pass…", "Review", start_or_resume)
    add("leave_qa", "&Leave QA pass", "Review", leave_qa, ("Esc",)).setEnabled(False)
    # In a QA pass Ctrl+Z (the review undo is disabled there) explains why there is no undo.
    add("qa_undo", "Undo (QA verdict)", "", _qa_undo, ("Ctrl+Z",)).setEnabled(False)
    add("adjudication_queue", "&Adjudication queue…", "Review", open_adjudication)
    menus["View"].addSeparator()
    add("statistics", "&Statistics…", "View", open_statistics, ("Ctrl+I",))


def start_or_resume(win: MainWindow) -> None:
    from annotator.gui.dialogs.qa_start_dialog import QaStartDialog

    if win.project is None:
        raise AnnotatorError("open a project first")
    d = QaStartDialog(win.project, win.reviewer, win)

    def finished(ok: int) -> None:
        win._dialog = None
        if ok and d.pass_id is not None:
            if d.started is not None:
                s = d.started
                win.statusBar().showMessage(
                    f"QA pass {s.pass_id}: {s.items} of {s.eligible} eligible faces (seed {s.seed})",
                    10000,
                )
            win._guard(lambda: enter_qa(win, d.pass_id))  # type: ignore[arg-type]
        d.deleteLater()

    d.finished.connect(finished)
    win._dialog = d
    d.open()


def enter_qa(win: MainWindow, pass_id: int) -> QaMode:
    if win.qa_mode is not None:
        win.qa_mode.leave()
    mode = QaMode(win, pass_id)
    try:
        mode.enter()
    except AnnotatorError:
        mode.deleteLater()
        raise
    return mode


def leave_qa(win: MainWindow) -> None:
    if win.qa_mode is not None:
        win.qa_mode.leave()


def _qa_undo(win: MainWindow) -> None:
    win.statusBar().showMessage(
        "QA verdicts have no undo: move to the face and press 1-5 to change your verdict.", 8000
    )


def open_adjudication(win: MainWindow):
    from annotator.gui.dialogs.adjudicate_dialog import AdjudicateDialog

    if win.project is None:
        raise AnnotatorError("open a project first")
    if win.qa_mode is not None:
        raise AnnotatorError("leave the QA pass first (Esc)")
    assert win.loader is not None
    d = AdjudicateDialog(win.project, win.reviewer, win.loader, win)
    d.decided.connect(win.apply_changes)

    def finished(_r: int) -> None:
        win._dialog = None
        d.deleteLater()

    d.finished.connect(finished)
    win._dialog = d
    d.open()
    return d


def open_statistics(win: MainWindow):
    from annotator.gui.dialogs.stats_dialog import StatsDialog

    if win.project is None:
        raise AnnotatorError("open a project first")
    d = getattr(win, "_stats_dialog", None)
    if d is None or d.project_path != win.project.path:
        if d is not None:
            d.close()
            d.deleteLater()
        d = StatsDialog(win.project.path, win)
        win._stats_dialog = d  # type: ignore[attr-defined]
    else:
        d.refresh()
    d.show()
    d.raise_()
    return d
