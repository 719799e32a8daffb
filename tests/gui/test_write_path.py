"""The window's write path while another process holds the project's write lock.

A thread of the test holds ``BEGIN IMMEDIATE`` on the project file from its own connection (as
an import or a scan of another process would) while keys are pressed in the window: the GUI
thread never waits more than a fraction of a second (an event-loop timer keeps firing), the
labels are shown at once and the status bar says they are being saved, and they land in order
— an undo behind them — as soon as the lock is free. When the lock is held past the retry
budget the window says the changes are NOT saved, keeps them queued, and saves them later.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from PySide6.QtCore import Qt, QTimer

from annotator.gui.tasks import Queued
from annotator.store.db import open_project


class LockHolder:
    """Holds the project's write lock from another connection (and thread) until released."""

    def __init__(self, path):
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(str(path),), daemon=True)
        self.thread.start()
        assert self.locked.wait(5)

    def _run(self, path: str) -> None:
        c = sqlite3.connect(path, isolation_level=None)
        c.execute("BEGIN IMMEDIATE")
        self.locked.set()
        self.release.wait(60)
        c.execute("COMMIT")
        c.close()

    def free(self) -> None:
        self.release.set()
        self.thread.join(5)


class GapMeter:
    """A 10 ms timer on the GUI thread; ``worst`` is the longest gap between two of its ticks."""

    def __init__(self):
        self.ticks: list[float] = []
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.timer.start()

    @property
    def worst(self) -> float:
        return max((b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False)), default=0)


def db_labels(path, identity_id):
    with open_project(path) as p:
        return [
            r[0]
            for r in p.conn.execute(
                "SELECT label FROM faces WHERE identity_id = ? ORDER BY id", (identity_id,)
            )
        ]


def batches(path):
    with open_project(path) as p:
        return [r[0] for r in p.conn.execute("SELECT description FROM batches ORDER BY id")]


def key(qtbot, win, k, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(win.grid, k, mod)


def shown_labels(win):
    return [t.label for t in win.grid_model.tiles]


def test_keys_while_locked_stay_responsive_and_land_in_order(qtbot, window, demo_project):
    win = window
    ident = win.current_identity
    n = len(win.grid_model.tiles)
    assert db_labels(demo_project, ident) == [None] * n
    holder = LockHolder(demo_project)
    meter = GapMeter()
    try:
        qtbot.wait(50)
        for k in (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_4, Qt.Key.Key_1):
            key(qtbot, win, k)
        key(qtbot, win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # waits behind
        qtbot.wait(400)
        # nothing saved yet, everything queued in order, the window says so
        assert [w.what for w in win.writes.pending] == [
            "label 1 face correct",
            "label 1 face wrong_identity",
            "label 1 face unusable",
            "label 1 face correct",
            "undo",
        ]
        assert db_labels(demo_project, ident) == [None] * n
        assert win.status.writes_label.isVisible()
        assert "Saving 5 changes" in win.status.writes_label.text()
        # the labels are shown at once and the cursor went on as after a saved label
        assert shown_labels(win)[:4] == ["correct", "wrong_identity", "unusable", "correct"]
        assert win.grid.currentIndex().row() == 4
    finally:
        holder.free()
    qtbot.waitUntil(lambda: not win.writes.pending, timeout=10_000)
    qtbot.wait(50)
    meter.timer.stop()
    assert db_labels(demo_project, ident)[:5] == [
        "correct",
        "wrong_identity",
        "unusable",
        None,  # labelled, then undone: the undo waited behind the label
        None,
    ]
    assert batches(demo_project) == [
        "label 1 face correct",
        "label 1 face wrong_identity",
        "label 1 face unusable",
        "label 1 face correct",
        "undo label 1 face correct",
    ]
    assert shown_labels(win)[:5] == ["correct", "wrong_identity", "unusable", None, None]
    assert not win.status.writes_label.isVisible()
    assert win.session_count == 3
    # The GUI thread was never blocked for the lock (the old path froze 10 s per key).
    print(f"worst event-loop gap while locked: {meter.worst * 1000:.0f} ms")
    assert meter.worst < 1.0


def test_free_lock_saves_at_once_on_the_gui_thread(qtbot, window, demo_project):
    ident = window.current_identity
    key(qtbot, window, Qt.Key.Key_3)
    assert not window.writes.pending
    assert db_labels(demo_project, ident)[0] == "duplicate"
    assert not window.status.writes_label.isVisible()


def test_lock_past_the_budget_is_shown_and_the_labels_stay_queued(qtbot, window, demo_project):
    win = window
    ident = win.current_identity
    n = len(win.grid_model.tiles)
    win.writes.fail_after = 0.5  # the retry budget (10 s in use)
    holder = LockHolder(demo_project)
    try:
        key(qtbot, win, Qt.Key.Key_1)
        key(qtbot, win, Qt.Key.Key_5)
        qtbot.waitUntil(lambda: win.writes.failing, timeout=5000)
        qtbot.wait(300)
        assert len(win.writes.pending) == 2  # not dropped
        assert win.status.writes_label.isVisible()
        text = win.status.writes_label.text()
        assert "2 changes NOT saved yet" in text and "locked" in text
        assert "NOT saved" in win.statusBar().currentMessage()
        assert db_labels(demo_project, ident) == [None] * n
        # a third key still does not block and queues behind them
        t = time.perf_counter()
        key(qtbot, win, Qt.Key.Key_4)
        assert time.perf_counter() - t < 0.5
        assert len(win.writes.pending) == 3
    finally:
        holder.free()
    qtbot.waitUntil(lambda: not win.writes.pending, timeout=10_000)
    assert db_labels(demo_project, ident)[:4] == ["correct", "unsure", "unusable", None]
    assert not win.status.writes_label.isVisible()
    assert win.statusBar().currentMessage() == "Every change is saved."


def test_a_queued_write_that_fails_is_shown_and_taken_back(qtbot, window, demo_project):
    win = window
    ident = win.current_identity
    holder = LockHolder(demo_project)
    try:
        key(qtbot, win, Qt.Key.Key_1)
        assert shown_labels(win)[0] == "correct"

        def bad(_p):
            raise sqlite3.IntegrityError("constraint failed")

        third = win.grid_model.tiles[2].id
        ch = win.run_op(bad, what="a broken change", pending={third: "unsure"})
        assert isinstance(ch, Queued)
        assert shown_labels(win)[2] == "unsure"
        key(qtbot, win, Qt.Key.Key_2)  # the second face, behind the broken change
    finally:
        holder.free()
    qtbot.waitUntil(lambda: not win.writes.pending, timeout=10_000)
    # the broken change is said and taken back; the ones around it are saved, in order
    assert shown_labels(win)[:3] == ["correct", "wrong_identity", None]
    assert "Not saved: a broken change: database error" in win.statusBar().currentMessage()
    assert db_labels(demo_project, ident)[:3] == ["correct", "wrong_identity", None]


def test_sqlite_errors_are_shown_and_io_errors_retried(qtbot, window, demo_project):
    def broken(_p):
        raise sqlite3.DatabaseError("bad")

    assert window.run_op(broken) is None  # on the GUI thread: said, nothing pending
    assert "database error: bad" in window.statusBar().currentMessage()
    assert not window.writes.pending

    tries = []

    def flaky(_p):  # an I/O error in the writer thread: kept and tried again
        tries.append(1)
        raise sqlite3.OperationalError("disk I/O error")

    holder = LockHolder(demo_project)
    try:

        def first(p):
            with p.tx():
                pass

        assert isinstance(window.run_op(first, what="first"), Queued)
        assert isinstance(window.run_op(flaky, what="x"), Queued)
    finally:
        holder.free()
    qtbot.waitUntil(lambda: len(tries) >= 2, timeout=5000)
    assert [w.what for w in window.writes.pending] == ["x"]
    assert window.writes.reason == "disk I/O error"
    assert window.writes.close() == ["x"]


def test_close_with_unsaved_changes_is_refused_once(qtbot, window, demo_project, capsys):
    win = window
    holder = LockHolder(demo_project)
    try:
        key(qtbot, win, Qt.Key.Key_1)
        assert win.writes.pending
        win.writes.flush = lambda timeout: False  # do not wait 3 s in a test
        assert not win.close()  # refused: the changes would be lost
        assert win.isVisible()
        assert "not saved yet" in win.statusBar().currentMessage()
        assert win.close()  # the second close quits and says what was lost
        assert "1 change(s) not saved" in capsys.readouterr().err
    finally:
        holder.free()


def test_labels_queued_at_close_are_kept_and_saved_by_the_next_window(
    qtbot, window, demo_project, capsys
):
    """Issue 20 #11: closing (as SIGTERM does) while another process holds the lock used to
    drop the queued labels; they are journaled beside the project and replayed on next open."""
    from annotator.core.review.journal import journal_path
    from annotator.gui.tasks import WriteQueue

    win = window
    ident = win.current_identity
    n = len(win.grid_model.tiles)
    holder = LockHolder(demo_project)
    try:
        key(qtbot, win, Qt.Key.Key_1)
        key(qtbot, win, Qt.Key.Key_4)
        assert len(win.writes.pending) == 2
        assert journal_path(demo_project).exists()
        win.writes.flush = lambda timeout: False  # the lock outlasts the close
        assert not win.close()
        assert win.close()
        err = capsys.readouterr().err
        assert "2 change(s) not saved" in err and "2 label change(s) kept" in err
        assert db_labels(demo_project, ident) == [None] * n  # nothing landed
    finally:
        holder.free()
    assert journal_path(demo_project).exists()
    project = open_project(demo_project)
    try:
        q = WriteQueue(project)  # what the next window does when it opens the project
        assert (q.replayed.labels, q.replayed.faces, q.replayed.skipped) == (2, 2, 0)
        q.close()
    finally:
        project.close()
    assert db_labels(demo_project, ident)[:3] == ["correct", "unusable", None]
    assert not journal_path(demo_project).exists()


def test_labels_that_land_leave_no_journal(qtbot, window, demo_project):
    from annotator.core.review.journal import journal_path

    win = window
    holder = LockHolder(demo_project)
    try:
        key(qtbot, win, Qt.Key.Key_1)
        assert journal_path(demo_project).exists()
    finally:
        holder.free()
    qtbot.waitUntil(lambda: not win.writes.pending, timeout=10_000)
    assert not journal_path(demo_project).exists()


@pytest.mark.parametrize("label_key", [Qt.Key.Key_1])
def test_qa_verdicts_go_through_the_write_path(qtbot, window, demo_project, label_key):
    """QA verdicts queue too (they are writes of the window): nothing blocks, nothing lost."""
    from annotator.core.review import ops, qa

    with open_project(demo_project) as p:  # someone else labelled faces; tester QAs them
        ids = [r[0] for r in p.conn.execute("SELECT id FROM faces ORDER BY id LIMIT 30")]
        ops.label_faces(p, ids, "correct", "alice")
        started = qa.start_pass(p, "tester", seed=1, count=5)
    mode = window.enter_qa(started.pass_id)
    holder = LockHolder(demo_project)
    try:
        key(qtbot, window, label_key)
        assert window.writes.pending
        assert mode.progress()[0] == 1  # shown at once
    finally:
        holder.free()
    qtbot.waitUntil(lambda: not window.writes.pending, timeout=10_000)
    with open_project(demo_project) as p:
        assert (
            sum(1 for i in qa.next_items(p, started.pass_id, include_done=True) if i.verdict) == 1
        )


def test_read_only_project_opens_and_says_so(qtbot, window, demo_project, monkeypatch):
    """A project whose file or folder cannot be written opens for looking; the title and the
    status bar say so, and a label key says in one line why nothing changed."""
    from annotator.store import db

    monkeypatch.setattr(db, "writable", lambda p: False)
    window.set_project(open_project(demo_project))
    assert window.project.read_only and window.windowTitle().endswith("[read-only]")
    assert "Read-only" in window.statusBar().currentMessage()
    assert window.grid_model.rowCount() > 0  # the faces are there to look at
    window.grid.setFocus()
    qtbot.keyClick(window.grid, Qt.Key.Key_1)
    assert "read-only here" in window.statusBar().currentMessage()
    with open_project(demo_project) as p:  # monkeypatched: read-only too
        assert p.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
