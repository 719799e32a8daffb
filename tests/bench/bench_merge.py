"""Benchmark of reviewer packages: pack and merge of a 100k-label package into a 1M-face home.

    python3 tests/bench/bench_merge.py [--quick] [--keep DIR]

1. A home project of 1M faces in 100k identities (10 faces each; --quick: 100k / 10k) is built
   with plain SQL (no pixels: pack and merge never read them).
2. ``pack`` of 10k identities (100k faces; --quick: 1k / 10k) — time.
3. In the package, a reviewer labels every face through ``core.ops``, one batch per identity
   (as the GUI would: 10k batches, 100k events); meanwhile home relabels 1% of the packed
   faces differently (they must come out as conflicts).
4. ``merge`` — time (goal: <= 10 s for 100k labels), then a second merge (a no-op) — time.
   Baseline in the same run: ``labels import`` of the same 100k labels (a CSV of face id,
   label) into a copy of the home project taken just before the merge.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from annotator.core.review import labels_io, ops  # noqa: E402
from annotator.core.review import merge as merge_core  # noqa: E402
from annotator.core.review import pack as core  # noqa: E402
from annotator.model import LABELS  # noqa: E402
from annotator.store.db import open_project  # noqa: E402

PER_IDENTITY = 10


def build_home(db: Path, n_ident: int) -> None:
    open_project(db, create=True).close()  # schema by the migrations
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute(
        "INSERT INTO sources(id, path, format, size, mtime, fingerprint, added_at, complete)"
        " VALUES (1, '/data/faces.tsv', 'msceleb', 1, 0, 'f', '2026-01-01T00:00:00Z', 1)"
    )
    c.executemany(
        "INSERT INTO identities(id, key, face_count, suspicion) VALUES (?, ?, ?, ?)",
        ((i, f"m.{i:07d}", PER_IDENTITY, (i * 7919 % 1000) / 1000) for i in range(1, n_ident + 1)),
    )
    c.executemany(
        "INSERT INTO faces(id, identity_id, orig_identity_id, source_id, record, offset, length,"
        " rank, face_ref) VALUES (?, ?, ?, 1, ?, ?, 1000, ?, ?)",
        (
            (
                f,
                (f - 1) // PER_IDENTITY + 1,
                (f - 1) // PER_IDENTITY + 1,
                f,
                f * 1000,
                f % 10,
                f"F{f}",
            )
            for f in range(1, n_ident * PER_IDENTITY + 1)
        ),
    )
    c.commit()
    c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100k faces, a 10k-label package")
    ap.add_argument("--keep", help="work folder (kept)")
    ap.add_argument(
        "--chunk", type=int, default=merge_core.MERGE_CHUNK_EVENTS, help="events per write"
    )
    a = ap.parse_args()
    n_ident = 10_000 if a.quick else 100_000
    n_pack = n_ident // 10
    d = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="annotator-bench-merge-"))
    d.mkdir(parents=True, exist_ok=True)
    home = d / "home.db"
    pkg = d / "pkg.db"
    for f in d.glob("*.db*"):
        f.unlink()
    t = time.perf_counter()
    build_home(home, n_ident)
    print(
        f"home: {n_ident * PER_IDENTITY:,} faces, {n_ident:,} identities ({time.perf_counter() - t:.1f} s)"
    )

    with open_project(home) as p:
        ids = list(range(1, n_pack + 1))
        t = time.perf_counter()
        res = core.pack(p, ids, pkg)
        t_pack = time.perf_counter() - t
    print(f"pack {res.identities:,} identities / {res.faces:,} faces: {t_pack:.2f} s")

    t = time.perf_counter()
    labels: dict[int, str] = {}
    with open_project(pkg) as k:
        for i in ids:
            faces = list(range((i - 1) * PER_IDENTITY + 1, i * PER_IDENTITY + 1))
            lab = LABELS[i % len(LABELS)]
            ops.label_faces(k, faces, lab, "bob")
            labels.update(dict.fromkeys(faces, lab))
    print(
        f"labelled {len(labels):,} faces in {n_pack:,} batches in the package ({time.perf_counter() - t:.1f} s)"
    )
    with open_project(home) as p:
        changed = [f for f in labels if f % 100 == 7]
        ops.label_faces(p, changed, "unsure", "alice")  # 'unsure' never equals bob's label here
        expected_conflicts = sum(1 for f in changed if labels[f] != "unsure")

    shutil.copy(home, d / "baseline.db")
    csv = d / "labels.csv"
    csv.write_text("".join(f"{f},{lab}\n" for f, lab in labels.items()))

    ticks: list[float] = []

    def tick(done: int, total: int) -> None:
        ticks.append(time.perf_counter())

    with open_project(home) as p:
        t = time.perf_counter()
        t0 = t
        m = merge_core.merge(p, pkg, progress=tick, chunk_events=a.chunk)
        t_merge = time.perf_counter() - t
        t = time.perf_counter()
        again = merge_core.merge(p, pkg)
        t_again = time.perf_counter() - t
    assert len(m.conflicts) == expected_conflicts, (len(m.conflicts), expected_conflicts)
    assert not again.changed
    with open_project(d / "baseline.db") as p:
        t = time.perf_counter()
        imp = labels_io.import_labels(p, csv, "bob")
        t_import = time.perf_counter() - t
    print(
        f"merge: {m.batches:,} batches, {m.events:,} events, {m.applied:,} faces, "
        f"{len(m.conflicts):,} conflicts: {t_merge:.2f} s ({m.events / t_merge:,.0f} events/s)"
    )
    gaps = [y - x for x, y in zip(ticks, ticks[1:], strict=False)]
    print(
        f"  {len(gaps)} home transactions of <= {a.chunk:,} events, the longest "
        f"{max(gaps, default=0):.2f} s (package checks before them: {ticks[0] - t0:.2f} s)"
    )
    print(f"second merge (nothing new): {t_again:.2f} s")
    print(
        f"baseline `labels import` of the same {len(labels):,} labels: {t_import:.2f} s ({imp.applied:,} applied)"
    )
    print(f"ratio merge / labels import: {t_merge / t_import:.2f}")
    goal = "met" if t_merge <= 10 or a.quick else "MISSED"
    print(f"goal (100k-label merge <= 10 s): {goal}")


if __name__ == "__main__":
    main()
