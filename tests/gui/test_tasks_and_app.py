"""Import and scan from the menus (gui.tasks.Task: background, progress dialog, Cancel), the
start-up path (reviewer name, last project and place, SIGTERM), help, zoom, deletable cache."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication, QInputDialog

from annotator.core import importer
from annotator.store.db import open_project


def _sources(demo_project: Path) -> Path:
    """The folder of the demo's faces.tsv / names.tsv (the template the fixture copied)."""
    with open_project(demo_project) as p:
        return Path(p.conn.execute("SELECT path FROM sources LIMIT 1").fetchone()[0]).parent


def _counts(path: Path) -> dict[str, int]:
    with open_project(path) as p:
        c = p.conn
        return {
            "faces": c.execute("SELECT count(*) FROM faces").fetchone()[0],
            "face_count_sum": c.execute(
                "SELECT coalesce(sum(face_count), 0) FROM identities"
            ).fetchone()[0],
            "complete": c.execute("SELECT coalesce(min(complete), 0) FROM sources").fetchone()[0],
            "hashed": c.execute("SELECT count(*) FROM face_hashes").fetchone()[0],
            "flags": c.execute("SELECT count(*) FROM flags").fetchone()[0],
        }


@pytest.fixture
def empty_window(qtbot, tmp_path):
    from annotator.gui.app import make_app
    from annotator.gui.main_window import MainWindow

    make_app()
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), "tester")
    qtbot.addWidget(win)
    win.set_project(open_project(tmp_path / "new.db", create=True))
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def _action(win, text: str):
    for a in win.menuBar().actions()[0].menu().actions():
        if a.text().replace("&", "").startswith(text):
            return a
    raise AssertionError(f"no File menu item {text!r}")


def _import_from_menu(qtbot, win, fmt: str, path: Path):
    _action(win, "Import").trigger()
    d = win.dialogs.current
    assert d is not None and d.isVisible()
    d.format.setCurrentIndex(d.format.findData(fmt))
    d.path.setText(str(path))
    d._ok()
    qtbot.waitUntil(lambda: win.dialogs.current is None and bool(win._tasks), timeout=5000)
    return win._tasks[-1]


def test_import_then_scan_from_the_menus(qtbot, empty_window, demo_project):
    win = empty_window
    src = _sources(demo_project)
    assert win.model.ids == []
    task = _import_from_menu(qtbot, win, "msceleb", src / "faces.tsv")
    assert task.dialog is not None  # a progress dialog with a Cancel button
    qtbot.waitUntil(lambda: not win._tasks, timeout=30_000)
    want = _counts(demo_project)
    got = _counts(win.project.path)
    assert got["faces"] == want["faces"] == got["face_count_sum"] and got["complete"] == 1
    assert len(win.model.ids) == 6 and win.current_identity is not None  # the list reloaded
    assert "done; imported" in win.statusBar().currentMessage()
    # names, then the scan (File > Scan) in the background
    task = _import_from_menu(qtbot, win, "names", src / "names.tsv")
    qtbot.waitUntil(lambda: not win._tasks, timeout=30_000)
    assert win.model.identity_row(0).name  # names arrived
    _action(win, "Scan").trigger()
    assert win._tasks
    qtbot.waitUntil(lambda: not win._tasks, timeout=60_000)
    got = _counts(win.project.path)
    assert got["hashed"] == got["faces"] and got["flags"] > 0  # the demo has broken rows
    assert "hashed" in win.statusBar().currentMessage()
    # the grid was refilled: its tiles carry the new flags' badges
    badges = {t.id: t.badges for t in win.grid_model.tiles}
    with open_project(win.project.path) as p:
        flagged = {
            r[0]
            for r in p.conn.execute(
                "SELECT face_id FROM flag_faces JOIN faces ON faces.id = face_id"
                " WHERE identity_id = ?",
                (win.current_identity,),
            )
        }
    assert {f for f, b in badges.items() if b} == flagged


def _press_cancel(task) -> None:
    from PySide6.QtWidgets import QPushButton

    buttons = [b for b in task.dialog.findChildren(QPushButton) if b.text() == "Cancel"]
    assert len(buttons) == 1
    buttons[0].click()


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    c = sqlite3.connect(str(path), isolation_level=None, timeout=10, check_same_thread=False)
    c.execute("BEGIN IMMEDIATE")
    return c


def test_cancel_import_keeps_a_consistent_project_and_a_rerun_finishes(
    qtbot, empty_window, demo_project, monkeypatch
):
    win = empty_window
    src = _sources(demo_project)
    monkeypatch.setattr(importer, "CANCEL_CHECK_ROWS", 7)  # the demo is small
    lock = _hold_write_lock(win.project.path)  # the worker waits at its first write...
    try:
        task = _import_from_menu(qtbot, win, "msceleb", src / "faces.tsv")
        assert not task.finished
        _press_cancel(task)  # ...while the reviewer presses Cancel
        assert task.cancelled
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    qtbot.waitUntil(lambda: not win._tasks, timeout=30_000)
    assert task.error == "" and task.result.complete is False
    got = _counts(win.project.path)
    assert 0 < got["faces"] < _counts(demo_project)["faces"]
    assert got["faces"] == got["face_count_sum"] and got["complete"] == 0
    assert len(win.model.ids) == len({*win.model.ids}) > 0  # the list shows what is there
    assert "cancelled" in win.statusBar().currentMessage()
    assert "Import it again" in win.statusBar().currentMessage()
    # the same import again continues where it stopped
    task = _import_from_menu(qtbot, win, "msceleb", src / "faces.tsv")
    qtbot.waitUntil(lambda: not win._tasks, timeout=30_000)
    assert task.result.complete
    got, want = _counts(win.project.path), _counts(demo_project)
    assert got["faces"] == want["faces"] == got["face_count_sum"] and got["complete"] == 1


def test_cancel_scan_then_rerun(qtbot, window, demo_project):
    lock = _hold_write_lock(demo_project)  # the worker waits to commit its first hashes
    try:
        window.scan()
        task = window._tasks[-1]
        _press_cancel(task)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    qtbot.waitUntil(lambda: not window._tasks, timeout=60_000)
    assert task.error == "" and task.result.cancelled
    got = _counts(demo_project)
    assert got["flags"] == 0  # flags are computed after hashing: none half-written
    assert got["hashed"] <= got["faces"]
    assert "Scan again" in window.statusBar().currentMessage()
    window.scan()
    qtbot.waitUntil(lambda: not window._tasks, timeout=60_000)
    got = _counts(demo_project)
    assert got["hashed"] == got["faces"] and got["flags"] > 0


def test_closing_waits_for_a_cancelled_task(qtbot, empty_window, demo_project, monkeypatch):
    import threading

    from annotator.gui.tasks import import_fn

    win = empty_window
    path = win.project.path
    monkeypatch.setattr(importer, "CANCEL_CHECK_ROWS", 7)
    lock = _hold_write_lock(path)  # the worker waits at its first write
    task = win.run_task(
        "Importing", import_fn("msceleb", str(_sources(demo_project) / "faces.tsv"))
    )
    release = threading.Timer(0.5, lambda: (lock.execute("ROLLBACK"), lock.close()))
    release.start()
    t0 = time.monotonic()
    win.close()  # cancels, waits for the worker to commit what it has and return, closes
    waited = time.monotonic() - t0
    release.join()
    assert task.ended.is_set() and win.project is None and waited >= 0.4
    got = _counts(path)
    assert got["faces"] == got["face_count_sum"] and got["complete"] == 0


def test_help_sheet_from_question_mark(qtbot, window):
    qtbot.keyClick(window.grid, Qt.Key.Key_Question, Qt.KeyboardModifier.ShiftModifier)
    assert window.dialogs.help is not None and window.dialogs.help.isVisible()
    assert "Label correct" in window.dialogs.help.findChild(type(window.faces.title)).text()
    window.dialogs.help.close()
    window.identities.table.setFocus()  # from the identity list too
    qtbot.keyClick(window.identities.table, Qt.Key.Key_Question, Qt.KeyboardModifier.ShiftModifier)
    assert window.dialogs.help.isVisible()
    window.dialogs.help.close()
    # typing `?` into the search box is text, not help
    window.identities.search.setFocus()
    qtbot.keyClicks(window.identities.search, "a?")
    assert window.identities.search.text() == "a?" and not window.dialogs.help.isVisible()


def test_ctrl_wheel_and_keys_zoom(qtbot, window):
    before = window.grid.thumb_size
    vp = window.grid.viewport()
    pos = QPointF(vp.rect().center())

    def wheel(dy: int, mods) -> None:
        ev = QWheelEvent(
            pos,
            QPointF(vp.mapToGlobal(pos.toPoint())),
            QPoint(0, 0),
            QPoint(0, dy),
            Qt.MouseButton.NoButton,
            mods,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(vp, ev)

    wheel(120, Qt.KeyboardModifier.ControlModifier)
    assert window.grid.thumb_size == before + 16
    assert int(window.settings.value("thumb_size")) == before + 16  # remembered
    wheel(-120, Qt.KeyboardModifier.ControlModifier)
    wheel(-120, Qt.KeyboardModifier.ControlModifier)
    assert window.grid.thumb_size == before - 16
    wheel(-120, Qt.KeyboardModifier.NoModifier)  # a plain wheel scrolls, no zoom
    assert window.grid.thumb_size == before - 16
    qtbot.keyClick(window.grid, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert window.grid.thumb_size == before
    qtbot.keyClick(window.grid, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert window.grid.thumb_size == before - 16


def test_thumbnail_cache_deleted_while_running(qtbot, window, demo_project):
    cache = window.project.cache_dir
    qtbot.waitUntil(lambda: not window.loader.busy, timeout=20_000)
    assert (cache / "thumbs.sqlite").exists()
    shutil.rmtree(cache)  # the user deletes the cache folder while the window is open
    window.loader._mem.clear()  # as if the memory cache had evicted them
    window.next_identity()
    qtbot.waitUntil(lambda: not window.loader.busy, timeout=20_000)
    tiles = window.grid_model.tiles
    assert all(window.loader.pixmap(t.id, window.grid.thumb_size) for t in tiles[:3])
    assert (cache / "thumbs.sqlite").exists()  # a new cache file was started


SIGNAL_STRESS = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Sender(QObject):
    sig = Signal(int)
    empty = Signal()

app = QCoreApplication([])
o = Sender()
seen = []
o.sig.connect(seen.append)
o.empty.connect(lambda: seen.append(-1))
none0, true0, false0 = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
for i in range(N):  # Python-side emits: 6.12.0 lost a reference to True per emit
    o.sig.emit(i)
    o.empty.emit()
named = []
o.objectNameChanged.connect(named.append)
for i in range(N):  # Qt (C++) emits calling a Python slot: 6.12.0 lost a reference to None
    o.setObjectName(str(i))
none1, true1, false1 = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
print(len(seen), len(named), none1 - none0, true1 - true0, false1 - false0)
"""


def test_many_signals_keep_the_interpreter_alive():
    """PySide6 6.12.0 dropped a reference to True on every Python-side ``emit()`` and one to
    None each time a Qt-emitted signal called a Python slot: a reviewer's few thousand keys and
    thumbnails ended in "Fatal Python error: deallocating True/None". pyproject.toml excludes
    that release; this test catches it (or a like bug) in whatever PySide6 is installed."""
    n = 25_000
    code = f"N = {n}\n" + SIGNAL_STRESS
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-800:]
    assert "deallocating" not in r.stderr
    got, named, d_none, d_true, d_false = map(int, r.stdout.split())
    assert got == 2 * n and named == n
    # A lost reference per signal would show as a fall of n; allow small bookkeeping noise.
    assert min(d_none, d_true, d_false) > -100, (d_none, d_true, d_false)


# -- start-up ----------------------------------------------------------------------------------


@pytest.fixture
def user_settings(tmp_path):
    """Point the user's QSettings (`annotator.gui.app.settings()`) at a temporary folder."""
    fmt, scope = QSettings.Format.NativeFormat, QSettings.Scope.UserScope
    QSettings.setPath(fmt, scope, str(tmp_path / "config"))
    yield tmp_path / "config"
    QSettings.setPath(fmt, scope, os.path.expanduser("~/.config"))


_SAFETY: list[QTimer] = []


@pytest.fixture(autouse=True)
def _stop_safety_timers():
    yield
    while _SAFETY:
        _SAFETY.pop().stop()


def _drive(qtbot, steps, safety_ms=15_000):
    """Call ``steps`` with the main window one after the other, from app.run's event loop
    (once the window is visible)."""
    from annotator.gui.main_window import MainWindow

    def go(i=0):
        if i >= len(steps):
            return
        wins = [
            w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()
        ]
        if not wins:
            QTimer.singleShot(50, lambda: go(i))
            return
        steps[i](wins[0])
        QTimer.singleShot(100, lambda: go(i + 1))

    def safety():
        for w in QApplication.topLevelWidgets():
            w.close()

    timer = QTimer(singleShot=True, interval=safety_ms)
    timer.timeout.connect(safety)
    timer.start()
    _SAFETY.append(timer)  # stopped after the test: it must not close a later test's window
    go()


def test_first_start_asks_the_name_then_reopens_project_and_place(
    qtbot, user_settings, demo_project
):
    from annotator.gui.app import make_app, run, settings

    make_app()
    seen = {}

    def answer_name(_win):
        d = QApplication.activeModalWidget()
        assert isinstance(d, QInputDialog), d
        seen["prompt"] = d.windowTitle()
        d.setTextValue("alice")
        d.accept()

    def work(win):
        seen["reviewer"] = win.reviewer
        # the first window fits the screen (offscreen: 800x800), not the default 1400x860
        avail = win.screen().availableGeometry()
        seen["fits"] = win.width() < avail.width() and win.height() < avail.height()
        win.activateWindow()  # offscreen, no window manager re-activates it after the prompt
        qtbot.waitUntil(win.isActiveWindow, timeout=5000)
        win.next_identity()
        win.next_identity()
        seen["identity"] = win.current_identity
        win.grid.setFocus()
        qtbot.keyClick(win.grid, Qt.Key.Key_Right)
        qtbot.keyClick(win.grid, Qt.Key.Key_2)  # the cursor moves on to the third face
        seen["face"] = win.grid.current_face_id()
        assert seen["face"] == win.grid_model.tiles[2].id
        qtbot.keyClick(win.grid, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)  # quit

    QTimer.singleShot(200, lambda: answer_name(None))
    _drive(qtbot, [work])
    assert run(str(demo_project)) == 0
    assert seen["prompt"] == "Who is reviewing?" and seen["reviewer"] == "alice"
    assert seen["fits"]
    assert settings().value("reviewer") == "alice"
    with open_project(demo_project) as p:
        assert p.conn.execute(
            "SELECT r.name FROM events e JOIN reviewers r ON r.id = e.reviewer_id"
        ).fetchall() == [("alice",)]

    def check(win):
        seen["again"] = (
            win.reviewer,
            win.project.path,
            win.current_identity,
            win.grid.current_face_id(),
        )
        win.close()

    _drive(qtbot, [check])
    assert run(None) == 0  # `annotator` with no project: the last one, at the same identity
    assert seen["again"] == ("alice", demo_project.absolute(), seen["identity"], seen["face"])

    _drive(qtbot, [check])
    assert run(None, reviewer="bob") == 0  # --reviewer: no question, and remembered
    assert seen["again"][0] == "bob" and settings().value("reviewer") == "bob"


def test_no_arguments_opens_the_gui_and_sigterm_closes_it_cleanly(demo_project, tmp_path):
    cfg = tmp_path / "xdg"
    (cfg / "annotator").mkdir(parents=True)
    (cfg / "annotator" / "annotator.conf").write_text(
        f"[General]\nreviewer=carol\nlast_project={demo_project}\n"
    )
    env = dict(os.environ, XDG_CONFIG_HOME=str(cfg), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen(
        [sys.executable, "-m", "annotator"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    thumbs = demo_project.with_name(demo_project.name + ".cache") / "thumbs.sqlite"
    end = time.monotonic() + 60
    while not thumbs.exists() and proc.poll() is None and time.monotonic() < end:
        time.sleep(0.05)  # the window is up once it has painted thumbnails
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    conf = (cfg / "annotator" / "annotator.conf").read_text()
    assert "last_place=" in conf and "geometry" in conf  # closeEvent ran
    assert not demo_project.with_name(demo_project.name + "-wal").exists()  # file closed


def test_no_display_is_one_error_line(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is for Linux")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "annotator"], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1
    assert r.stderr.startswith("error: no display") and len(r.stderr.strip().splitlines()) == 1


def test_a_finished_task_keeps_the_cursor_and_selection(qtbot, window):
    """The progress dialog is not modal: a reviewer labeling while a scan runs keeps the
    current face and the selection when the grid is refilled at its end."""
    g = window.grid
    qtbot.keyClick(g, Qt.Key.Key_Right)
    qtbot.keyClick(g, Qt.Key.Key_Space)
    qtbot.keyClick(g, Qt.Key.Key_Right)
    qtbot.keyClick(g, Qt.Key.Key_Right)
    tiles = window.grid_model.tiles
    window.run_task("Scanning", lambda _p, _progress, _cancelled: None, show_dialog=False)
    qtbot.waitUntil(lambda: not window._tasks, timeout=10_000)
    assert g.current_face_id() == tiles[3].id
    assert g.selected_face_ids() == [tiles[1].id]


def test_annotator_gui_help_prints_usage(capsys, tmp_path, monkeypatch):
    """`annotator-gui --help` prints usage (it said "no project file at …/--help")."""
    from annotator.gui.app import main

    monkeypatch.chdir(tmp_path)
    for flag in ("--help", "-h"):
        with pytest.raises(SystemExit) as e:
            main([flag])
        assert e.value.code == 0
        out, err = capsys.readouterr()
        assert out.startswith("usage: annotator-gui [PROJECT.db]") and err == ""
    with pytest.raises(SystemExit) as e:
        main(["--bogus"])
    out, err = capsys.readouterr()
    assert (
        e.value.code == 1
        and err.strip() == "error: unknown option --bogus (see annotator-gui --help)"
    )
