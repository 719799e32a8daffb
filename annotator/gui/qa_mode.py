"""The QA pass in the main window, the menu entries for QA, adjudication and statistics.

In a QA pass the face grid shows the pass's items *blind*: each tile carries the QA reviewer's
own verdict as its label (nothing before a verdict), never the original label, and the
inspector is replaced by a panel that shows the face large, the identity it is filed under and
reference faces of that identity (labels hidden; faces of the pass are never shown as
references, since their labels would leak). Keys 1-5 record verdicts through
:func:`annotator.core.review.qa.record_verdict` — each its own ``qa`` event; the original label is
never touched. A verdict can be changed by pressing another key on the face, but there is no
undo: core keeps no undo stack for QA verdicts, so Ctrl+Z says so instead.

The window holds the mode (``win.mode``) and calls it through the :class:`annotator.gui.modes.Mode`
interface; the mode sees the window only as a :class:`annotator.gui.modes.ModeHost`.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from annotator.core.review import qa
from annotator.gui.modes import Mode, ModeHost
from annotator.gui.qa_widgets import (
    EvidenceStrips,
    FaceImage,
    ReferenceStrip,
    evidence,
    identity_caption,
    keys_html,
    label_html,
    reference_tiles,
)
from annotator.gui.shortcuts import QA
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.model import AnnotatorError
from annotator.store import browse

BIG = 256


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
        self.evidence = EvidenceStrips(loader)
        lay.addWidget(self.evidence)
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
        evidence: list[tuple[str, list[browse.FaceTile]]] | None = None,
    ) -> None:
        if item is None or tile is None:
            self.header.setText("<i>No item selected.</i>")
            self.image.set_face(None)
            self.info.setText("")
            self.refs.set_faces([], "")
            self.evidence.show_sections([])
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
            "<p>Is this face the person it is filed under, and usable? (A copy of "
            "another face of it is a duplicate.)</p>"
        )
        self.refs.set_faces(*refs)
        self.evidence.show_sections(evidence or [])


class QaMode(Mode):
    """A QA pass shown in the main window's grid: :meth:`open` checks the pass, the window
    then switches to the mode (``win.set_mode``)."""

    name = QA
    shows_list = False
    panel_width = 360

    def __init__(self, host: ModeHost, pass_id: int, reviewer: str, items: list[qa.BlindItem]):
        super().__init__(host)
        self.pass_id = pass_id
        self.reviewer = reviewer
        self.order = items
        self.items: dict[int, qa.BlindItem] = {i.face_id: i for i in items}
        assert host.loader is not None
        self.panel = QaPanel(host.loader)
        self.status = QLabel()
        self.status.setObjectName("qaStatus")
        self.status.setContentsMargins(8, 0, 8, 0)
        self._ident_html: dict[int, str] = {}

    @classmethod
    def open(cls, host: ModeHost, pass_id: int) -> QaMode:
        """The mode for pass ``pass_id`` of the host's reviewer (else AnnotatorError)."""
        project = host.project
        if project is None:
            raise AnnotatorError("open a project first")
        p = next((s for s in qa.passes(project) if s.pass_id == pass_id), None)
        if p is None:
            raise AnnotatorError(f"no QA pass {pass_id}")
        if p.reviewer != host.reviewer:
            raise AnnotatorError(
                f"QA pass {pass_id} belongs to {p.reviewer!r}; you are {host.reviewer!r}"
            )
        return cls(host, pass_id, p.reviewer, qa.next_items(project, pass_id, include_done=True))

    @property
    def project(self):
        assert self.host.project is not None
        return self.host.project

    @property
    def grid(self):
        return self.host.grid

    # -- the Mode interface ------------------------------------------------------------------
    def enter(self) -> None:
        tiles = browse.face_tiles(self.project, list(self.items))
        blind = []
        for i in self.order:  # pass order; a tile's label is the QA verdict, never the original
            t = tiles[i.face_id]
            t.label = i.verdict
            blind.append(t)
        assert self.host.loader is not None
        self.host.loader.new_generation()
        self.grid.grid_model.blind = True
        self.grid.grid_model.set_faces(None, blind)
        self._update()
        first = next((r for r, i in enumerate(self.order) if i.verdict is None), 0)
        self.grid.scrollToTop()
        self.grid.set_current_row(first)
        self.face_changed(self.grid.current_face_id())

    def leave(self) -> None:
        self.grid.grid_model.blind = False

    def header_html(self) -> str:
        judged, total = self.progress()
        return (
            f"<span style='font-size:15pt'><b>QA pass {self.pass_id}</b></span>"
            f"&nbsp;&nbsp;<span style='color:#666'>blind check by {html.escape(self.reviewer)} · "
            f"{judged} of {total} judged · faces of many identities, in random order</span>"
        )

    def legend_html(self) -> str:
        return (
            keys_html("<small>")
            + "&nbsp;·&nbsp;the border is <b>your</b> QA verdict — original labels are hidden"
            "&nbsp;·&nbsp;Esc: leave the QA pass</small>"
        )

    def label(self, label: str | None) -> None:
        if label is None:
            self.host.show_message("A QA verdict cannot be cleared; press 1-5 to change it.", 6000)
            return
        ids, from_selection = self.grid.target_face_ids()
        ids = [f for f in ids if f in self.items]
        if not ids:
            return
        model = self.grid.grid_model
        try:
            for fid in ids:  # through the window's write path (queued while the file is locked)
                row = model.row_of(fid)
                old = model.tiles[row].label if row is not None else None
                r = self.host.run_write(
                    lambda p, fid=fid: qa.record_verdict(
                        p, self.pass_id, fid, label, self.reviewer
                    ),
                    what=f"QA verdict {label} on face {fid}",
                    failed=lambda fid=fid, old=old: (model.set_labels({fid: old}), self._update()),
                )
                if r is None:  # the status bar says why
                    return
                model.set_labels({fid: label})
        finally:
            self._update()
        rows = [r for f in ids if (r := self.grid.grid_model.row_of(f)) is not None]
        if from_selection:
            self.grid.selectionModel().clearSelection()
        judged, total = self.progress()
        if judged == total:
            self.host.show_message(
                f"QA pass {self.pass_id} complete: every item has your verdict. "
                "Esc leaves the pass; Review > Adjudication queue… lists disagreements.",
                15000,
            )
        self.grid.set_current_row(max(rows) + 1)
        self.face_changed(self.grid.current_face_id())

    def accept(self) -> None:
        self.host.show_message("In a QA pass, keys 1-5 give your verdict on each face.", 6000)

    def undo(self) -> None:
        self.host.show_message(
            "QA verdicts have no undo: move to the face and press 1-5 to change your verdict.",
            8000,
        )

    redo = undo

    def face_changed(self, face_id: int | None) -> None:
        panel: QaPanel = self.panel  # type: ignore[assignment]
        item = self.items.get(face_id) if face_id is not None else None
        row = self.grid.grid_model.row_of(face_id) if face_id is not None else None
        tile = self.grid.grid_model.tiles[row] if row is not None else None
        if item is None or tile is None:
            panel.show_item(None, None, "", ([], ""), len(self.items))
            return
        ident = item.identity_id
        if ident not in self._ident_html:
            self._ident_html[ident] = identity_caption(self.project, ident)
        refs = reference_tiles(self.project, ident, exclude=self.items.keys())
        panel.show_item(
            item,
            tile,
            self._ident_html[ident],
            refs,
            len(self.items),
            evidence(self.project, item.face_id),
        )

    # -- QA's own ----------------------------------------------------------------------------
    def progress(self) -> tuple[int, int]:
        tiles = self.grid.grid_model.tiles
        return sum(1 for t in tiles if t.label is not None), len(tiles)

    def _update(self) -> tuple[int, int]:
        judged, total = self.progress()
        self.status.setText(f"<b>QA: {judged}/{total}</b>")
        self.host.refresh_header()
        return judged, total
