"""Review > QA pass…: resume one of your QA passes or draw a new blind sample."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QIntValidator
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from annotator.core.review import qa
from annotator.store.db import Project


class QaStartDialog(QDialog):
    """On accept, ``pass_id`` is the pass to show; ``started`` is set when a new one was drawn."""

    def __init__(self, project: Project, reviewer: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.project = project
        self.reviewer = reviewer
        self.pass_id: int | None = None
        self.started: qa.PassResult | None = None
        self._task = None  # the worker drawing a new sample
        self.setWindowTitle("QA pass")
        self.setMinimumWidth(520)
        lay = QVBoxLayout(self)
        intro = QLabel(
            f"A QA pass shows you, <b>{html.escape(reviewer)}</b>, a random sample of faces "
            "that other reviewers labeled — <b>without</b> their labels. Label each face with "
            "the usual keys 1-5; your verdicts are recorded as QA events and never change the "
            "original labels. Disagreements go to the adjudication queue."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)

        mine = qa.passes(project, reviewer)
        self._has_passes = bool(mine)
        box = QGroupBox("Your QA passes")
        bl = QVBoxLayout(box)
        self.pass_list = QListWidget()
        self.pass_list.setObjectName("passList")
        for p in reversed(mine):  # newest first
            state = "complete" if p.complete else "open"
            it = QListWidgetItem(
                f"Pass {p.pass_id} · {p.created_at[:16].replace('T', ' ')} · "
                f"{p.judged} of {p.items} judged · {state}"
            )
            it.setData(Qt.ItemDataRole.UserRole, p.pass_id)
            self.pass_list.addItem(it)
        open_rows = [r for r, p in enumerate(reversed(mine)) if not p.complete]
        if mine:
            self.pass_list.setCurrentRow(open_rows[0] if open_rows else 0)
        else:
            self.pass_list.addItem("(none yet)")
            self.pass_list.setEnabled(False)
        self.pass_list.setMaximumHeight(120)
        self.pass_list.itemDoubleClicked.connect(lambda _i: self.resume())
        bl.addWidget(self.pass_list)
        self.resume_button = QPushButton("&Resume selected pass")
        self.resume_button.setEnabled(bool(mine))
        self.resume_button.clicked.connect(self.resume)
        bl.addWidget(self.resume_button, 0, Qt.AlignmentFlag.AlignRight)
        lay.addWidget(box)

        box = QGroupBox("Start a new pass")
        form = QFormLayout(box)
        self.by_fraction = QRadioButton("Fraction of eligible faces")
        self.by_count = QRadioButton("Number of faces")
        group = QButtonGroup(self)
        group.addButton(self.by_fraction)
        group.addButton(self.by_count)
        self.by_fraction.setChecked(True)
        self.fraction = QDoubleSpinBox()
        self.fraction.setRange(0.1, 100.0)
        self.fraction.setDecimals(1)
        self.fraction.setSuffix(" %")
        self.fraction.setValue(100 * qa.DEFAULT_FRACTION)
        self.count = QSpinBox()
        self.count.setRange(1, 10_000_000)
        self.count.setValue(50)
        self.count.setEnabled(False)
        self.by_count.toggled.connect(self.count.setEnabled)
        self.by_fraction.toggled.connect(self.fraction.setEnabled)
        form.addRow(self.by_fraction, self.fraction)
        form.addRow(self.by_count, self.count)
        self.seed = QLineEdit()
        self.seed.setPlaceholderText("random")
        self.seed.setValidator(QIntValidator(0, 2**31 - 1, self))
        form.addRow("Seed (same seed, same sample)", self.seed)
        self.stratified = QRadioButton("Labeled faces of other reviewers (checks their labels)")
        self.random = QRadioButton(
            "All faces, uniformly at random (estimates the raw data's noise)"
        )
        self.random.setObjectName("sampleRandom")
        kind = QButtonGroup(self)
        kind.addButton(self.stratified)
        kind.addButton(self.random)
        self.stratified.setChecked(True)
        from annotator.store import qa as qa_store

        if not qa_store.anyone_else_labeled(project, reviewer):
            # say it before Start: a label check of yours needs labels someone else gave
            self.stratified.setEnabled(False)
            self.stratified.setText(
                "Labeled faces of other reviewers — none yet: nobody but you has labeled faces"
            )
            self.random.setChecked(True)
        form.addRow("Sample", self.stratified)
        form.addRow("", self.random)
        hint = QLabel(
            "<small>Labeled faces: stratified by original reviewer and label (every label "
            "kind is represented); faces you labeled yourself are never drawn. All faces: each "
            "face of the project equally likely, shown under the identity it was imported "
            "with; the statistics then give the noise rate with a 95% interval.</small>"
        )
        hint.setWordWrap(True)
        form.addRow(hint)
        self.start_button = QPushButton("&Start new pass")
        self.start_button.clicked.connect(self.start)
        form.addRow(self.start_button)
        lay.addWidget(box)

        self.error = QLabel()
        self.error.setObjectName("qaStartError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color:#d62f2f")
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        (self.resume_button if open_rows else self.start_button).setDefault(True)

    def resume(self) -> None:
        it = self.pass_list.currentItem()
        pid = it.data(Qt.ItemDataRole.UserRole) if it is not None else None
        if pid is None:
            self.error.setText("Choose a pass to resume.")
            return
        self.pass_id = int(pid)
        self.accept()

    def start(self) -> None:
        """Draw the sample in a worker (its own connection): over a big project the query
        takes seconds, and the window must keep painting meanwhile."""
        from annotator.gui.tasks import Task

        if self._task is not None:
            return
        seed = int(self.seed.text()) if self.seed.text().strip() else None
        size: dict[str, float | int] = (
            {"count": self.count.value()}
            if self.by_count.isChecked()
            else {"fraction": self.fraction.value() / 100}
        )
        reviewer = self.reviewer
        sample = "random" if self.random.isChecked() else "stratified"

        def draw(project: Project, _progress, _cancelled) -> qa.PassResult:
            return qa.start_pass(project, reviewer, seed=seed, sample=sample, **size)  # type: ignore[arg-type]

        self.start_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.error.setStyleSheet("color:#555")
        self.error.setText("Drawing the sample…")
        self._task = Task(self, "QA sample", self.project.path, draw, show_dialog=False)
        self._task.done.connect(self._drawn)

    def _drawn(self, result: qa.PassResult | None, error: str) -> None:
        self._task = None
        self.start_button.setEnabled(True)
        self.resume_button.setEnabled(self._has_passes)
        if error or result is None:
            self.error.setStyleSheet("color:#d62f2f")
            self.error.setText(error or "the sample could not be drawn")
            return
        self.started = result
        self.pass_id = result.pass_id
        if self.isVisible():
            self.accept()
