"""Review > Adjudication queue…: the QA disagreements one by one — the face large, both labels
and both reviewers — and the adjudicator's final label (keys 1-5 or the buttons), recorded
through :func:`annotator.core.review.qa.adjudicate`."""

from __future__ import annotations

import html
import sqlite3

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from annotator.core.review import qa
from annotator.gui.qa_widgets import (
    EvidenceStrips,
    FaceImage,
    ReferenceStrip,
    evidence,
    identity_caption,
    label_html,
    reference_tiles,
)
from annotator.gui.tasks import GUI_WAIT_S
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.model import LABEL_COLORS, LABELS, AnnotatorError
from annotator.store import browse
from annotator.store.db import Project

BIG = 256


class AdjudicateDialog(QDialog):
    decided = Signal(object)  # ops.Changes of each decision (the main window refreshes)

    def __init__(
        self,
        project: Project,
        reviewer: str,
        loader: ThumbnailLoader,
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.project = project
        self.reviewer = reviewer
        self.loader = loader
        self.queue: list[qa.Disagreement] = qa.adjudication_queue(project)
        self.decisions: list[tuple[qa.Disagreement, str]] = []
        self.setWindowTitle("Adjudication queue")
        self.resize(1000, 640)

        outer = QVBoxLayout(self)
        self.header = QLabel()
        self.header.setObjectName("adjHeader")
        self.header.setTextFormat(Qt.TextFormat.RichText)
        outer.addWidget(self.header)
        body = QHBoxLayout()
        outer.addLayout(body, 1)

        self.list = QListWidget()
        self.list.setObjectName("adjList")
        self.list.setMinimumWidth(330)
        self.list.setAlternatingRowColors(True)
        self.list.setSpacing(3)
        for d in self.queue:
            self.list.addItem(self._item(d))
        self.list.currentRowChanged.connect(self._row_changed)
        body.addWidget(self.list, 0)

        right = QVBoxLayout()
        body.addLayout(right, 1)
        top = QHBoxLayout()
        self.image = FaceImage(loader, BIG)
        top.addWidget(self.image, 0, Qt.AlignmentFlag.AlignTop)
        side = QVBoxLayout()
        self.info = QLabel()
        self.info.setObjectName("adjInfo")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        side.addWidget(self.info)
        self.refs = ReferenceStrip(loader, size=72, columns=4, count=8)
        side.addWidget(self.refs)
        self.evidence = EvidenceStrips(loader)
        side.addWidget(self.evidence)
        side.addStretch(1)
        top.addLayout(side, 1)
        right.addLayout(top)

        ask = QLabel("<b>Final label</b> — press 1-5 or click:")
        right.addWidget(ask)
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for i, lab in enumerate(LABELS):
            b = QPushButton(f"{i + 1}  {lab.replace('_', ' ')}")
            b.setObjectName(f"adj_{lab}")
            b.setMinimumHeight(34)
            b.setStyleSheet(
                f"QPushButton {{ border:2px solid {LABEL_COLORS[lab]}; border-radius:4px;"
                " padding:4px 10px; background:white }"
                f" QPushButton:hover {{ background:{LABEL_COLORS[lab]}; color:white }}"
            )
            b.clicked.connect(lambda _c=False, lab=lab: self.decide(lab))
            row.addWidget(b)
            self.buttons[lab] = b
            # Keys work wherever the focus is (the list would eat digits for its search).
            sc = QShortcut(QKeySequence(str(i + 1)), self)
            sc.activated.connect(lambda lab=lab: self.decide(lab))
        right.addLayout(row)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#555")
        right.addWidget(self.note)
        self.error = QLabel()
        self.error.setStyleSheet("color:#d62f2f")
        right.addWidget(self.error)
        right.addStretch(1)

        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        outer.addWidget(close)
        self._update_header()
        if self.queue:
            self.list.setCurrentRow(0)
        else:
            self._row_changed(-1)

    # -- display ---------------------------------------------------------------------------
    @staticmethod
    def _item(d: qa.Disagreement) -> QListWidgetItem:
        it = QListWidgetItem(
            f"{d.origin}  ·  {d.identity_key}\n"
            f"{d.orig_label.replace('_', ' ')} ({d.orig_reviewer})  ≠  "
            f"{d.verdict.replace('_', ' ')} ({d.qa_reviewer})"
        )
        it.setData(Qt.ItemDataRole.UserRole, (d.pass_id, d.face_id))
        return it

    def current(self) -> qa.Disagreement | None:
        r = self.list.currentRow()
        return self.queue[r] if 0 <= r < len(self.queue) else None

    def _update_header(self) -> None:
        n = len(self.queue)
        done = len(self.decisions)
        text = (
            f"<span style='font-size:13pt'><b>{n} disagreement{'s' if n != 1 else ''} "
            f"awaiting adjudication</b></span>"
        )
        if done:
            text += f"&nbsp;&nbsp;<span style='color:#666'>{done} decided in this session</span>"
        self.header.setText(text)

    def _row_changed(self, row: int) -> None:
        d = self.current()
        for b in self.buttons.values():
            b.setEnabled(d is not None)
        if d is None:
            self.image.set_face(None)
            self.image.setText("no disagreement")
            judged = sum(p.judged for p in qa.passes(self.project))
            self.info.setText(  # as `qa queue` says it: with no verdict, nothing "agrees"
                "<p>Nothing awaits adjudication: every QA verdict so far agrees with the "
                "original label, or was decided.</p>"
                if judged
                else "<p>Nothing awaits adjudication: no QA verdict recorded yet (a second "
                "reviewer answers a QA pass first: Review &gt; QA pass…).</p>"
            )
            self.refs.set_faces([], "")
            self.evidence.show_sections([])
            self.note.setText("")
            return
        tile = browse.face_tiles(self.project, [d.face_id]).get(d.face_id)
        self.image.set_face(tile)
        cell = "style='color:#777;padding:2px 12px 2px 0'"
        self.info.setText(
            "<table>"
            f"<tr><td {cell}>Face</td><td>{html.escape(d.origin)} · QA pass {d.pass_id}</td></tr>"
            f"<tr><td {cell}>Filed under</td><td>{identity_caption(self.project, d.identity_id)}</td></tr>"
            f"<tr><td {cell}>Original label</td><td>{label_html(d.orig_label)}"
            f" &nbsp;by <b>{html.escape(d.orig_reviewer)}</b></td></tr>"
            f"<tr><td {cell}>QA verdict</td><td>{label_html(d.verdict)}"
            f" &nbsp;by <b>{html.escape(d.qa_reviewer)}</b></td></tr>"
            "</table>"
        )
        self.refs.set_faces(*reference_tiles(self.project, d.identity_id, exclude={d.face_id}))
        # the evidence for a duplicate or another person: the other copies, the look-alike
        self.evidence.show_sections(evidence(self.project, d.face_id))
        note = (
            f"Your decision, as <b>{html.escape(self.reviewer)}</b>, is final: it becomes the "
            "face's label and is recorded with the QA item."
        )
        if self.reviewer in (d.orig_reviewer, d.qa_reviewer):
            note += (
                " <span style='color:#b35c00'>You gave one of the two labels; an adjudicator "
                "is usually a third person.</span>"
            )
        self.note.setText(note)
        self.error.setText("")

    # -- deciding --------------------------------------------------------------------------
    def decide(self, label: str) -> None:
        d = self.current()
        if d is None:
            return
        try:  # never a long wait on the GUI thread: a locked file is said, the item stays
            with self.project.waiting_at_most(GUI_WAIT_S):
                ch = qa.adjudicate(self.project, d.pass_id, d.face_id, label, self.reviewer)
        except AnnotatorError as e:
            self.error.setText(str(e))
            return
        except sqlite3.DatabaseError as e:
            self.error.setText(
                f"Not recorded: {e} (another process is writing the project); decide again "
                "in a moment."
            )
            return
        self.decisions.append((d, label))
        row = self.list.currentRow()
        del self.queue[row]
        self.list.blockSignals(True)
        self.list.takeItem(row)
        self.list.blockSignals(False)
        self._update_header()
        if self.queue:
            self.list.setCurrentRow(min(row, len(self.queue) - 1))
        else:
            self.list.setCurrentRow(-1)
        self._row_changed(self.list.currentRow())
        self.decided.emit(ch)
