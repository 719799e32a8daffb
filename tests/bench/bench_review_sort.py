"""Benchmark of two list operations at 100k identities: Enter in a mostly reviewed "All" list,
and sorting the identity list by a column header.

    python3 tests/bench/bench_review_sort.py [--quick] [--keep DIR]

Uses a copy of the GUI benchmark's project (tests/bench/bench_gui.py builds it, reused when it
exists) in which all identities but every 20,000th are marked reviewed, so the next identity
needing review is up to 20,000 rows away in key order.

1. Enter (label the rest correct, mark reviewed, open the next identity needing review) in the
   "All" list sorted by key, 8 times: wall time of the key press (all of it runs on the GUI
   thread); baseline in the same run: the same ops.review_identity call alone.
2. A click on each column header (ascending, descending, back to the review order): the
   longest stall of the event loop (a 2 ms timer) and the time until the list shows the new
   order; baseline in the same run: the id query alone (browse.identity_ids).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

EVERY = 20_000  # identities left unreviewed: ids divisible by EVERY


def mostly_reviewed_copy(db: Path) -> Path:
    out = db.with_name(db.stem + "_mostly_reviewed.db")
    out.unlink(missing_ok=True)
    shutil.copy(db, out)
    c = sqlite3.connect(out)
    c.execute("UPDATE identities SET reviewed = (id % ?) != 0", (EVERY,))
    c.execute("UPDATE faces SET label = NULL")
    c.commit()
    c.close()
    return out


def main() -> None:
    import bench_gui

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10k identities")
    ap.add_argument("--keep", help="folder of the GUI benchmark's project (reused)")
    a = ap.parse_args()
    n_ident, n_faces = (10_000, 100_000) if a.quick else (100_000, 1_000_000)
    d = Path(a.keep) if a.keep else Path(tempfile.gettempdir()) / "annotator-bench-gui"
    d.mkdir(parents=True, exist_ok=True)
    db = mostly_reviewed_copy(bench_gui.build(d, n_ident, n_faces))
    print(f"project: {db} ({n_ident:,} identities, every {EVERY:,}th unreviewed)")

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtTest import QTest

    from annotator.core.review import ops
    from annotator.gui.app import make_app
    from annotator.gui.main_window import MainWindow
    from annotator.store import browse
    from annotator.store.db import open_project

    app = make_app()
    (d / "rs.ini").unlink(missing_ok=True)
    win = MainWindow(QSettings(str(d / "rs.ini"), QSettings.Format.IniFormat), "bench")
    win.resize(1400, 860)
    win.set_project(open_project(db))
    win.show()
    win.wait_painted(30)
    ticks: list[float] = []
    timer = QTimer(interval=2)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def settle(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)

    def stall() -> float:
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        return max(gaps) if gaps else 0.0

    # 1. Enter in the "All" list, key order
    win.set_filter("all")
    win.identities.header_clicked(0)  # Key ascending
    while win.model.searching:
        settle(0.01)
    assert win.model.sort_key == "key"
    win.open_identity(win.model.ids[1])  # a reviewed identity; the next unreviewed is far
    settle(0.3)
    enter, jumped = [], []
    for _ in range(8):
        start = win.model.row_of(win.current_identity)
        win.grid.setFocus()
        a = time.perf_counter()
        QTest.keyClick(win.grid, Qt.Key.Key_Return)
        enter.append(time.perf_counter() - a)
        jumped.append(win.model.row_of(win.current_identity) - start)
        settle(0.05)
    # baseline: the write alone, on other identities
    raw = []
    others = [i for i in win.model.ids[-2000:] if i % EVERY][:8]
    for i in others:
        a = time.perf_counter()
        ops.review_identity(win.project, i, "bench")
        raw.append(time.perf_counter() - a)
    me, mr = statistics.median(enter), statistics.median(raw)
    print(
        f"Enter in 'All' by key: median {me * 1000:.1f} ms, max {max(enter) * 1000:.1f} ms "
        f"(rows skipped: {statistics.median(jumped):.0f}); ops.review_identity alone "
        f"{mr * 1000:.1f} ms; ratio {me / mr:.1f}"
    )

    # 2. header clicks, in the "All" list (100k rows)
    win.identities.header_clicked(0)
    win.identities.header_clicked(0)  # back to the review order
    settle(0.3)
    print(f"{'click':<22}{'max stall':>11}{'to new order':>14}{'SQL alone':>11}{'rows':>8}")
    for col in range(5):
        for click in ("asc", "desc", "back"):
            settle(0.2)
            ticks.clear()
            timer.start()
            a = time.perf_counter()
            win.identities.header_clicked(col)
            call = time.perf_counter() - a  # the click's own time on the GUI thread
            while win.model.searching and time.perf_counter() - a < 30:
                settle(0.002)
            shown = time.perf_counter() - a
            settle(0.1)
            timer.stop()
            s = max(call, stall())
            if click == "asc":
                b = time.perf_counter()
                browse.identity_ids(win.project, "all", "", win.model.sort_key)
                sql = time.perf_counter() - b
            else:
                sql = float("nan")
            name = f"{win.model.sort_key} {click}"
            print(
                f"{name:<22}{s * 1000:>9.1f}ms{shown * 1000:>12.1f}ms{sql * 1000:>9.1f}ms"
                f"{len(win.model.ids):>8}"
            )
    win.close()


if __name__ == "__main__":
    main()
