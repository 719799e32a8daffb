"""Benchmark of bulk withdrawal: 1,000 requested people on a 1M-face project (goal <= 2 min).

    python3 tests/bench/bench_takedown_bulk.py [--faces N] [--people K] [--kill] [--keep DIR]

1. A scanned project of N faces (default 1M) in N/10 identities, built with plain SQL: a name
   per identity, a SHA-256 / pHash / dHash per face, 1% of faces in verified duplicate pairs
   across identities (with their cross-identity flags), 10% of faces labeled (one batch per
   identity), a note on some events. No pixels: a takedown never reads them.
2. Baseline in the same run: one ``annotator takedown KEY`` (core ``takedown``, with its VACUUM)
   and a bare VACUUM of the same file.
3. ``requests.plan`` + ``requests.run`` of K people (default 1,000; half named by key, half by
   name, plus 10 unknown names): time, per person, and as a ratio of the baseline.
4. With --import-identities N: the import's photo check — ``import`` of an N-identity drawn demo
   TSV into a new project, plain and with a ledger that holds photo digests (every face's bytes
   are then read and hashed), 3 rounds each, the ratio of the medians.
5. With --kill: the same bulk run as ``annotator takedown --from`` in a subprocess on a fresh
   copy, killed with SIGKILL part-way, then run again; checks that every person is withdrawn
   exactly once and the file passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from annotator.core.review import requests  # noqa: E402
from annotator.core.review.takedown import takedown  # noqa: E402
from annotator.store.db import open_project  # noqa: E402

PER_IDENTITY = 10


def _sha(f: int) -> bytes:
    return hashlib.sha256(f.to_bytes(8, "little")).digest()


def build(db: Path, n_faces: int) -> None:
    open_project(db, create=True).close()  # schema by the migrations
    n_ident = n_faces // PER_IDENTITY
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute(
        "INSERT INTO sources(id, path, format, size, mtime, fingerprint, added_at, complete)"
        " VALUES (1, '/data/faces.tsv', 'msceleb', 1, 0, 'f', '2026-01-01T00:00:00Z', 1)"
    )
    c.execute("INSERT INTO reviewers(id, name, created_at) VALUES (1, 'rev', 'x')")
    c.executemany(
        "INSERT INTO identities(id, key, face_count, labeled_count) VALUES (?, ?, ?, ?)",
        ((i, f"m.{i:07d}", PER_IDENTITY, 1 if i % 10 == 0 else 0) for i in range(1, n_ident + 1)),
    )
    c.executemany(
        "INSERT INTO identity_names(identity_id, lang, name) VALUES (?, 'en', ?)",
        ((i, f"Person Number{i:07d} Benchmark") for i in range(1, n_ident + 1)),
    )
    c.executemany(
        "INSERT INTO name_words(word, identity_id) VALUES (?, ?)",
        ((w, i) for i in range(1, n_ident + 1) for w in ("person", f"number{i:07d}", "benchmark")),
    )
    c.executemany(
        "INSERT INTO faces(id, identity_id, orig_identity_id, source_id, record, offset, length,"
        " rank, face_ref, label) VALUES (?, ?, ?, 1, ?, ?, 1000, ?, ?, ?)",
        (
            (
                f,
                (f - 1) // PER_IDENTITY + 1,
                (f - 1) // PER_IDENTITY + 1,
                f,
                f * 1000,
                f % 10,
                f"F{f}",
                "correct" if f % 100 == 1 else None,
            )
            for f in range(1, n_faces + 1)
        ),
    )
    c.executemany(
        "INSERT INTO face_hashes(face_id, sha256, phash, dhash, width, height, grayscale,"
        " sharpness, corrupt, scanned_at) VALUES (?, ?, ?, ?, 112, 112, 0, 1.0, NULL, 'x')",
        (
            (f, _sha(f), f * 2654435761 % (1 << 62), f * 40503 % (1 << 62))
            for f in range(1, n_faces + 1)
        ),
    )
    # 1% of faces in verified pairs across identities: face f and f + 5 * PER_IDENTITY
    pairs = [(f, f + 5 * PER_IDENTITY) for f in range(1, n_faces - 5 * PER_IDENTITY, 200)]
    c.executemany(
        "INSERT INTO dup_groups(face_id, group_id, is_keeper) VALUES (?, ?, ?)",
        ((x, a, int(x == a)) for a, b in pairs for x in (a, b)),
    )
    c.executemany(
        "INSERT INTO flags(id, kind, score, fingerprint, similarity, created_at)"
        " VALUES (?, 'cross_identity_dup', 2.9, ?, 0.9, 'x')",
        ((k, f"cross_identity_dup:{a},{b}") for k, (a, b) in enumerate(pairs, 1)),
    )
    c.executemany(
        "INSERT INTO flag_faces(flag_id, face_id) VALUES (?, ?)",
        ((k, x) for k, (a, b) in enumerate(pairs, 1) for x in (a, b)),
    )
    # history: one batch per tenth identity labelling its first face
    c.executemany(
        "INSERT INTO batches(id, reviewer_id, at, kind, description) VALUES (?, 1, 'x', 'do', 'l')",
        ((i,) for i in range(10, n_ident + 1, 10)),
    )
    c.executemany(
        "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id, identity_id, value, note)"
        " VALUES (?, 1, 'x', 'label', ?, ?, 'correct', ?)",
        (
            (i, (i - 1) * PER_IDENTITY + 1, i, f"checked m.{i + 3:07d}" if i % 50 == 0 else None)
            for i in range(10, n_ident + 1, 10)
        ),
    )
    c.execute(
        "INSERT INTO meta(key, value) VALUES ('flags_state', 'ready')"
        " ON CONFLICT(key) DO UPDATE SET value = 'ready'"
    )
    c.commit()
    c.close()


def requests_for(n_ident: int, k: int) -> list[str]:
    step = max(1, (n_ident - 20) // k)
    picked = list(range(7, n_ident, step))[:k]
    out = [
        f"m.{i:07d}" if j % 2 == 0 else f"Person Number{i:07d} Benchmark"
        for j, i in enumerate(picked)
    ]
    return out + [f"Nobody Known{j}" for j in range(10)]


def timed(fn):
    t = time.perf_counter()
    r = fn()
    return r, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=1_000_000)
    ap.add_argument("--people", type=int, default=1_000)
    ap.add_argument("--kill", action="store_true", help="also kill -9 a CLI run and rerun it")
    ap.add_argument("--import-identities", type=int, default=0, help="also time the import check")
    ap.add_argument("--keep", help="work folder (kept)")
    a = ap.parse_args()
    d = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="annotator-bench-td-"))
    d.mkdir(parents=True, exist_ok=True)
    base = d / "base.db"
    n_ident = a.faces // PER_IDENTITY
    try:
        if not base.exists():
            _, t_build = timed(lambda: build(base, a.faces))
            print(f"built {a.faces:,} faces / {n_ident:,} identities in {t_build:.1f} s")
        print(f"project file: {base.stat().st_size / 1e6:.0f} MB")

        work = d / "one.db"
        shutil.copy(base, work)
        with open_project(work) as p:
            _, t_one = timed(lambda: takedown(p, f"m.{n_ident - 3:07d}", "bench"))
            _, t_vac = timed(lambda: p.conn.execute("VACUUM"))
        print(f"baseline: one takedown (with VACUUM) {t_one:.2f} s; bare VACUUM {t_vac:.2f} s")

        work = d / "bulk.db"
        shutil.copy(base, work)
        reqs = requests_for(n_ident, a.people)
        with open_project(work) as p:
            pl, t_plan = timed(lambda: requests.plan(p, reqs))
            res, t_run = timed(lambda: requests.run(p, pl.people, "bench"))
        n = len(res.done)
        total = t_plan + t_run
        print(
            f"bulk: {n} people withdrawn ({len(pl.unknown)} unknown, {len(res.failed)} failed):"
            f" plan {t_plan:.1f} s, run {t_run:.1f} s, total {total:.1f} s"
            f" = {total / max(n, 1) * 1000:.0f} ms a person"
            f" = {total / t_one:.0f}x one takedown, {total / t_vac:.1f}x a bare VACUUM"
        )

        if a.import_identities:
            import_check(d, a.import_identities)
        if a.kill:
            kill_and_rerun(base, d, reqs, t_run)
    finally:
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)


def import_check(d: Path, n_ident: int) -> None:
    from annotator.core.importer import import_source
    from annotator.core.review.withdrawal import person_digests
    from annotator.demo.dataset import generate_demo
    from annotator.store import withdrawal as ledger_store

    demo = generate_demo(d / "demo", identities=n_ident, faces_per_identity=(8, 12), seed=2)
    times: dict[str, list[float]] = {"plain": [], "ledger": []}
    n = 0
    for rnd in range(3):
        for mode in times:
            with open_project(d / f"imp-{mode}{rnd}.db", create=True) as p:
                if mode == "ledger":
                    with p.tx() as c:
                        tid = c.execute(
                            "INSERT INTO takedowns(at, key_digest, faces_removed)"
                            " VALUES ('x', 'y', 1)"
                        ).lastrowid
                    digests = person_digests(p.meta("salt"), "k", [], ["00" * 32])
                    ledger_store.add_digests(p, tid, digests)
                r, t = timed(lambda p=p: import_source(p, "msceleb", demo.faces_tsv))
                times[mode].append(t)
                n = r.imported
    med = {k: sorted(v)[1] for k, v in times.items()}
    print(
        f"import of {n:,} faces: plain {med['plain']:.2f} s, with photo digests in the ledger"
        f" {med['ledger']:.2f} s = {med['ledger'] / med['plain']:.2f}x (medians of 3)"
    )


def kill_and_rerun(base: Path, d: Path, reqs: list[str], t_run: float) -> None:
    work = d / "kill.db"
    shutil.copy(base, work)
    req = d / "requests.txt"
    req.write_text("# bench\n" + "\n".join(reqs) + "\n", encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "annotator",
        "takedown",
        "--from",
        str(req),
        "-p",
        str(work),
        "-r",
        "bench",
        "--yes",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(max(2.0, t_run * 0.4))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    c = sqlite3.connect(work)
    done_before = c.execute("SELECT count(*) FROM takedowns").fetchone()[0]
    c.close()
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    t_rest = time.perf_counter() - t
    c = sqlite3.connect(work)
    done_after = c.execute("SELECT count(*) FROM takedowns").fetchone()[0]
    dup = c.execute(
        "SELECT count(*) FROM (SELECT key_digest FROM takedowns GROUP BY key_digest HAVING count(*) > 1)"
    ).fetchone()[0]
    ok = c.execute("PRAGMA integrity_check").fetchone()[0]
    c.close()
    print(
        f"kill -9 after {done_before} people; rerun exit {r.returncode} in {t_rest:.1f} s:"
        f" {done_after} withdrawn in all, {dup} twice, integrity {ok}"
    )
    print("  " + " | ".join(r.stdout.strip().splitlines()[:3]))


if __name__ == "__main__":
    main()
