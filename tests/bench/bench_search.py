"""Benchmark of the identity search on the GUI benchmark's project (100k identities).

    python3 tests/bench/bench_search.py [--quick] [--keep DIR]

1. SQL: browse.identity_ids with a search text (name-word prefixes + key prefix, migration
   m002) against the previous implementation (a LIKE '%text%' over keys and names, kept here
   as the baseline), interleaved in one process on one file; medians of 7 runs.
2. GUI: typing into the real window's search box key by key (QTest, offscreen) with 120 ms
   and 300 ms between keys; a 2 ms timer measures the longest stall of the event loop, and the
   time from the last key to the list showing the result.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

QUERIES = ["P", "Pe", "Per", "person 0123", "m.0", "m.00012", "Name97", "name5", "zzz", "0004"]

# The search before migration m002 (baseline): substring LIKE over keys and names.
OLD_SQL = (
    "SELECT i.id FROM identities i WHERE i.reviewed = 0 AND (i.key LIKE ? ESCAPE '\\' OR i.id IN"
    " (SELECT identity_id FROM identity_names WHERE name LIKE ? ESCAPE '\\'))"
    " ORDER BY i.reviewed ASC, i.suspicion DESC"
)


def _like(text: str) -> str:
    esc = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{esc}%"


def bench_sql(db: Path) -> None:
    from annotator.store import browse
    from annotator.store.db import open_project

    p = open_project(db)
    print(f"{'query':<14}{'LIKE (old)':>12}{'hits':>8}{'words+key':>12}{'hits':>8}{'ratio':>8}")
    olds, news = [], []
    for q in QUERIES:
        to, tn = [], []
        for _ in range(7):
            a = time.perf_counter()
            old = p.conn.execute(OLD_SQL, (_like(q.strip()), _like(q.strip()))).fetchall()
            to.append(time.perf_counter() - a)
            a = time.perf_counter()
            new = browse.identity_ids(p, "unreviewed", q)
            tn.append(time.perf_counter() - a)
        mo, mn = statistics.median(to), statistics.median(tn)
        olds.append(mo)
        news.append(mn)
        print(
            f"{q!r:<14}{mo * 1000:>10.1f}ms{len(old):>8}{mn * 1000:>10.1f}ms{len(new):>8}"
            f"{mo / mn:>8.1f}"
        )
    a = time.perf_counter()
    for _ in range(7):
        browse.identity_ids(p, "unreviewed")
    base = (time.perf_counter() - a) / 7
    print(
        f"median over queries: old {statistics.median(olds) * 1000:.1f} ms, new "
        f"{statistics.median(news) * 1000:.1f} ms; max old {max(olds) * 1000:.1f} ms, new "
        f"{max(news) * 1000:.1f} ms; the unfiltered id list takes {base * 1000:.1f} ms"
    )
    p.close()


def bench_typing(db: Path, tmp: Path) -> None:
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from annotator.gui.app import make_app
    from annotator.gui.main_window import MainWindow
    from annotator.store.db import open_project

    app = make_app()
    win = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), "bench")
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

    print(f"{'typed':<16}{'key gap':>9}{'max stall':>11}{'last key -> list':>18}{'shown':>8}")
    for text in ("person 01234", "name97", "p", "m.0001"):
        for gap in (0.12, 0.3):
            win.identities.search.clear()
            settle(0.6)
            win.identities.search.setFocus()
            ticks.clear()
            timer.start()
            for ch in text:
                QTest.keyClicks(win.identities.search, ch)
                settle(gap)
            t_last = time.perf_counter()
            want = win.identities.search.text()
            while (
                getattr(win.model, "search", want) != want.strip()
                or getattr(win.model, "searching", False)
                or win.identities.search_timer.isActive()
            ) and time.perf_counter() - t_last < 10:
                settle(0.002)
            shown = time.perf_counter() - t_last
            settle(0.3)
            timer.stop()
            gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
            print(
                f"{text!r:<16}{gap * 1000:>7.0f}ms{max(gaps) * 1000:>9.1f}ms{shown * 1000:>16.1f}ms"
                f"{len(win.model.ids):>8}"
            )
    win.close()
    QApplication.processEvents()


def main() -> None:
    import bench_gui

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10k identities")
    ap.add_argument("--keep", help="folder of the GUI benchmark's project (reused)")
    a = ap.parse_args()
    n_ident, n_faces = (10_000, 100_000) if a.quick else (100_000, 1_000_000)
    d = Path(a.keep) if a.keep else Path(tempfile.gettempdir()) / "annotator-bench-gui"
    d.mkdir(parents=True, exist_ok=True)
    db = bench_gui.build(d, n_ident, n_faces)
    print(f"project: {db} ({n_ident:,} identities)")
    bench_sql(db)
    bench_typing(db, d)


if __name__ == "__main__":
    main()
