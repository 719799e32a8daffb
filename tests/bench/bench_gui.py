"""Benchmark of the desktop reviewer on a generated project (1M faces, 100k identities).

    python3 tests/bench/bench_gui.py [--quick] [--keep DIR]

Measures, each with a baseline measured in the same run (ratios are what to compare across
machines):
* launch -> first painted grid (a fresh process: imports, window, project, thumbnails painted);
  baseline: the same process doing only the raw SQL of that screen (id list + faces).
* identity switch with cached thumbnails (grid refilled and repainted); baseline: raw faces query.
* label key -> committed row (key event through the window, row checked in SQL); baseline:
  ops.label_faces called directly.
* peak RSS of the GUI process.
Goals: 1.5 s / 100 ms / 10 ms / 500 MB.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def build(dirp: Path, n_ident: int, n_faces: int) -> Path:
    """A project made with direct inserts; faces point at a pool of 64 real JPEG rows."""
    from PIL import Image, ImageDraw

    from annotator.store.db import open_project

    db = dirp / f"bench_{n_ident}_{n_faces}.db"
    if db.exists():
        return db
    tsv = dirp / "pool.tsv"
    pool: list[tuple[int, int]] = []
    with open(tsv, "wb") as fh:
        for i in range(64):
            im = Image.new("RGB", (112, 112), (i * 37 % 256, i * 91 % 256, 140))
            d = ImageDraw.Draw(im)
            d.ellipse((20, 15, 92, 100), fill=(230, 190, 160))
            d.ellipse((38, 45, 48, 55), fill=(20, 20, 20))
            d.ellipse((64, 45, 74, 55), fill=(20, 20, 20))
            d.arc((40, 60, 72, 85), 10 + i, 170, fill=(120, 20, 20), width=3)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=85)
            b64 = base64.b64encode(buf.getvalue())
            head = f"m.pool\t{i}\thttp://x.invalid/{i}.jpg\thttp://x.invalid/{i}\tF{i}\tAAAA\t".encode()
            off = fh.tell() + len(head)
            fh.write(head + b64 + b"\n")
            pool.append((off, len(b64)))
    st = tsv.stat()
    p = open_project(db.with_suffix(".part"), create=True)
    c = p.conn
    rng = random.Random(1)
    c.execute("BEGIN")
    c.execute(
        "INSERT INTO sources(id, path, format, size, mtime, fingerprint, added_at, complete)"
        " VALUES (1, ?, 'msceleb', ?, ?, 'bench', 'now', 1)",
        (str(tsv), st.st_size, st.st_mtime),
    )
    sizes = [1] * n_ident
    for _ in range(n_faces - n_ident):
        sizes[rng.randrange(n_ident)] += 1
    c.executemany(
        "INSERT INTO identities(id, key, face_count, flagged_count, suspicion) VALUES (?, ?, ?, ?, ?)",
        (
            (
                i + 1,
                f"m.0{i:07x}",
                sizes[i],
                rng.randrange(4) if rng.random() < 0.2 else 0,
                rng.random(),
            )
            for i in range(n_ident)
        ),
    )
    c.executemany(
        "INSERT INTO identity_names(identity_id, lang, name) VALUES (?, 'en', ?)",
        ((i + 1, f"Person {i:06d} Name{i % 977}") for i in range(n_ident)),
    )

    def faces():
        fid = 0
        for i, n in enumerate(sizes):
            for k in range(n):
                fid += 1
                off, ln = pool[fid % 64]
                yield (fid, i + 1, i + 1, fid, off, ln, k + 1)

    c.executemany(
        "INSERT INTO faces(id, identity_id, orig_identity_id, source_id, record, offset, length, rank)"
        " VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
        faces(),
    )
    # synthetic flags on 5% of faces
    flagged = rng.sample(range(1, n_faces + 1), n_faces // 20)
    kinds = ("near_dup", "cross_identity_dup", "outlier", "blurry")
    c.executemany(
        "INSERT INTO flags(id, kind, distance, score, fingerprint, created_at) VALUES (?, ?, 3, 0.5, ?, 'now')",
        ((j + 1, kinds[j % 4], f"b{j}") for j in range(len(flagged))),
    )
    c.executemany(
        "INSERT INTO flag_faces(flag_id, face_id) VALUES (?, ?)",
        ((j + 1, f) for j, f in enumerate(flagged)),
    )
    c.execute("COMMIT")
    p.close()
    os.replace(db.with_suffix(".part"), db)
    return db


CHILD = r"""
import json, os, resource, sys, time
t0 = time.perf_counter()
mode, db = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
os.environ["QT_QPA_PLATFORM"] = "offscreen"
if mode == "sql":
    from annotator.store import browse
    from annotator.store.db import open_project
    p = open_project(db)
    ids = browse.identity_ids(p, "unreviewed")
    faces = browse.faces_of_identity(p, ids[0])
    print(json.dumps({"t": time.perf_counter() - t0}))
    sys.exit(0)
from PySide6.QtCore import QSettings
from annotator.gui.app import make_app
from annotator.gui.main_window import MainWindow
from annotator.store.db import open_project
app = make_app()
st = QSettings(sys.argv[4], QSettings.Format.IniFormat)
win = MainWindow(st, "bench")
win.resize(1400, 860)
win.set_project(open_project(db))
win.show()
ok = win.wait_painted(30)
t_first = time.perf_counter() - t0

# identity switch with cached thumbnails: visit 10 identities, then switch among them again
from annotator.store import browse
ids = win.model.ids[:10]
for i in ids:
    win.open_identity(i); win.wait_painted(10)
sw = []
for rep in range(3):
    for i in ids:
        a = time.perf_counter()
        win.open_identity(i)
        win.grid.viewport().repaint()
        app.processEvents()
        sw.append(time.perf_counter() - a)
        assert not win.loader.busy, "thumbnails should have been cached"
sw_sql = []
for i in ids * 3:
    a = time.perf_counter(); browse.faces_of_identity(win.project, i); sw_sql.append(time.perf_counter() - a)

# label key -> committed row
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from annotator.core.review import ops
win.activateWindow(); win.grid.setFocus(); app.processEvents()
lab = []
for k in range(40):
    if win.grid.currentIndex().row() >= len(win.grid_model.tiles) - 1:
        win.next_identity(); win.grid.setFocus()
    fid = win.grid.current_face_id()
    a = time.perf_counter()
    QTest.keyClick(win.grid, Qt.Key.Key_1)
    t = time.perf_counter() - a
    row = win.project.conn.execute("SELECT label FROM faces WHERE id = ?", (fid,)).fetchone()
    assert row[0] == "correct", row
    lab.append(t)
other = win.model.ids[-1]
faces = [t.id for t in browse.faces_of_identity(win.project, other)]
raw = []
for k in range(40):
    a = time.perf_counter()
    ops.label_faces(win.project, [faces[k % len(faces)]], ("unsure", "unusable")[k % 2], "bench")
    raw.append(time.perf_counter() - a)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"ok": ok, "first": t_first, "switch": sw, "switch_sql": sw_sql,
                  "label": lab, "label_raw": raw, "rss_mb": rss, "n_ids": len(win.model.ids)}))
win.close()
"""


def child(mode: str, db: Path, tmp: Path) -> tuple[dict, float]:
    (tmp / "s.ini").unlink(missing_ok=True)  # every launch starts like the first one
    a = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(db), str(ROOT), str(tmp / "s.ini")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - a
    if r.returncode != 0:
        raise SystemExit(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1]), wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100k faces / 10k identities")
    ap.add_argument("--keep", help="folder to keep the generated project in (reused)")
    a = ap.parse_args()
    n_ident, n_faces = (10_000, 100_000) if a.quick else (100_000, 1_000_000)
    d = Path(a.keep) if a.keep else Path(tempfile.gettempdir()) / "annotator-bench-gui"
    d.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    db = build(d, n_ident, n_faces)
    print(
        f"project: {db} ({n_faces:,} faces, {n_ident:,} identities; built/reused in "
        f"{time.perf_counter() - t:.1f}s)"
    )
    cache = db.with_name(db.name + ".cache")
    if cache.exists():
        for f in cache.iterdir():
            f.unlink()
    sql, sql_wall = child("sql", db, d)
    gui, gui_wall = child("gui", db, d)  # cold thumbnail cache
    gui2, gui2_wall = child("gui", db, d)  # warm disk cache
    med = statistics.median
    p95 = lambda xs: sorted(xs)[int(len(xs) * 0.95) - 1]  # noqa: E731
    rows = [
        ("launch -> first painted grid (cold cache, in-process)", gui["first"], sql["t"], 1.5),
        ("launch -> first painted grid (warm disk cache)", gui2["first"], sql["t"], 1.5),
        ("whole child process wall (all measures, not launch)", gui2_wall, sql_wall, None),
        (
            "identity switch, cached thumbnails (median)",
            med(gui2["switch"]),
            med(gui2["switch_sql"]),
            0.1,
        ),
        (
            "identity switch, cached thumbnails (p95)",
            p95(gui2["switch"]),
            p95(gui2["switch_sql"]),
            0.1,
        ),
        ("label key -> committed row (median)", med(gui2["label"]), med(gui2["label_raw"]), 0.01),
        ("label key -> committed row (p95)", p95(gui2["label"]), p95(gui2["label_raw"]), 0.01),
    ]
    print(f"{'measure':<56}{'time':>10}{'baseline':>10}{'ratio':>8}  goal")
    for name, v, base, goal in rows:
        g = (
            ""
            if goal is None
            else (f"<= {goal * 1000:.0f} ms " + ("ok" if v <= goal else "MISSED"))
        )
        print(f"{name:<56}{v * 1000:>8.1f}ms{base * 1000:>8.1f}ms{v / base:>8.1f}  {g}")
    rss = max(gui["rss_mb"], gui2["rss_mb"])
    print(
        f"{'peak RSS of the GUI process':<56}{rss:>8.0f}MB  goal <= 500 MB "
        + ("ok" if rss <= 500 else "MISSED")
    )
    print(
        f"(baselines: raw SQL of the first screen in a fresh process; raw faces query; "
        f"ops.label_faces alone. {gui2['n_ids']:,} identities listed.)"
    )


if __name__ == "__main__":
    main()
