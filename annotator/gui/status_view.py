"""The status bar's permanent fields: reviewer, identities reviewed, this session's labels and
rate, and the saving indicator of the write path (changes queued behind another process).

A view: it owns its labels, counts the session from each op's ``Changes``
(:meth:`StatusView.apply_changes`, connected to the window's ``op_executed``) and redraws the
saving indicator when the project's :class:`annotator.gui.tasks.WriteQueue` changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel, QStatusBar

from annotator.core.review import ops
from annotator.gui.tasks import WriteQueue


class StatusView:
    def __init__(self, bar: QStatusBar, reviewer: str, progress: Callable[[], tuple[int, int]]):
        self.bar = bar
        self.reviewer = reviewer
        self._progress = progress  # (identities reviewed, identities)
        self.session: dict[int, str | None] = {}  # face id -> label given this session
        self.session_start: float | None = None
        self.reviewed_now: set[int] = set()  # identities marked reviewed this session
        self.write_failed = False  # a queued write failed since the queue was last empty
        self.close_anyway = False  # a close refused for unsaved changes: the next one quits
        self.reviewer_label = QLabel()
        self.progress_label = QLabel()
        self.session_label = QLabel()
        self.writes_label = QLabel()  # changes queued behind another process's write lock
        self.writes_label.setObjectName("writesStatus")
        self.writes_label.hide()
        for w in (self.writes_label, self.reviewer_label, self.progress_label, self.session_label):
            w.setContentsMargins(8, 0, 8, 0)
            bar.addPermanentWidget(w)
        self.timer = QTimer(bar, interval=5000)  # the rate goes on when no key is pressed
        self.timer.timeout.connect(self.update)
        self.timer.start()

    def new_session(self) -> None:
        """Another project: its face ids are not the last one's."""
        self.session = {}
        self.session_start = None
        self.reviewed_now = set()

    @property
    def session_count(self) -> int:
        return sum(1 for v in self.session.values() if v is not None)

    def apply_changes(self, ch: ops.Changes, _follow: bool = False) -> None:
        for f, lab in ch.labels.items():
            self.session[f] = lab
        for ident, done in ch.reviewed.items():
            (self.reviewed_now.add if done else self.reviewed_now.discard)(ident)
        if (ch.labels or ch.reviewed) and self.session_start is None:
            self.session_start = time.monotonic()
        self.update()

    def update(self) -> None:
        reviewed, total = self._progress()
        self.reviewer_label.setText(f"Reviewer: <b>{self.reviewer}</b>")
        spent = time.monotonic() - self.session_start if self.session_start is not None else 0.0
        self.progress_label.setText(
            f"Identities reviewed: {reviewed:,} / {total:,} · "
            + left_text(total - reviewed, len(self.reviewed_now), spent)
        )
        n = self.session_count
        rate = ""
        if self.session_start is not None and n:
            minutes = max((time.monotonic() - self.session_start) / 60, 0.25)
            rate = f" · {rate_text(n / minutes)} faces/min"
        self.session_label.setText(f"Labeled this session: {n:,}{rate}")

    def writes_changed(self, w: WriteQueue | None) -> None:
        """The saving indicator: hidden when every change is saved."""
        n = len(w.pending) if w is not None else 0
        label = self.writes_label
        if w is None or not n:
            if not label.isHidden():  # it was shown: say that they are saved now
                label.hide()
                if not self.write_failed:
                    self.bar.showMessage("Every change is saved.", 4000)
            self.write_failed = False
            self.close_anyway = False
            return
        changes = f"{n} change{'s' if n != 1 else ''}"
        if w.failing:
            text = (
                f"⚠ {changes} NOT saved yet: another process has held the project's write "
                f"lock for {w.waited:.0f} s ({w.reason}). Retrying — keep the window open."
            )
            style = "color:white; background:#c62828; font-weight:bold; padding:1px 6px"
            if "NOT saved" not in label.text():
                self.bar.showMessage(text, 0)
                QApplication.beep()
        else:
            text = f"Saving {changes}… (another process is writing the project)"
            style = "color:#8a4b00; background:#ffe9b3; padding:1px 6px"
        label.setText(text)
        label.setStyleSheet(style)
        label.setToolTip("\n".join(x.what for x in w.pending))
        label.show()


def rate_text(per_min: float) -> str:
    """A slow pace keeps a decimal: a face every three minutes is 0.3, not "0 faces/min"."""
    if per_min < 0.05:
        return "<0.1"
    return f"{per_min:,.0f}" if per_min >= 9.95 else f"{per_min:.1f}"


def left_text(left: int, done_now: int, seconds: float) -> str:
    """ "N identities left, about T at your pace": the pace is this session's (time since its
    first label / identities marked reviewed since); no estimate before one is done."""
    text = f"{left:,} identit{'y' if left == 1 else 'ies'} left"
    if not left or not done_now or seconds <= 0:
        return text
    t = left * seconds / done_now
    if t < 90:
        about = f"{max(1, round(t)):.0f} s"
    elif t < 90 * 60:
        about = f"{round(t / 60):.0f} min"
    elif t < 48 * 3600:
        h, m = divmod(round(t / 60), 60)
        about = f"{h} h {m:02d} min"
    else:
        about = f"{t / 86400:.1f} days"
    return f"{text}, about {about} at your pace"
