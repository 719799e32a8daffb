"""Scan hashing on a Dask cluster (core/cluster.py) against the local process pool, same run.

On one machine: a demo project is hashed (``hash_faces``, the scan's per-face phase; the flag
step runs on the client either way) by
* the local process pool with W workers (the baseline),
* a Dask cluster on 127.0.0.1 with 1 and with W single-threaded worker processes,
each on a fresh copy of the unscanned project, best of --rounds; the hashes of every run are
checked equal to the baseline's. Reported: faces/s and the ratio of each to the baseline time
(the goal: W=2 Dask workers within 1.3x the local pool's time).

Per-chunk overhead: the time per empty chunk through the same executor
path (submit + result callback), 2 per worker thread in flight, and one at a time (the round
trip). With it the gain on N machines can be estimated: a chunk of C faces costs
C / (faces/s per worker) + overhead.

    python3 tests/bench/bench_cluster.py [--quick] [--workers W] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from distributed import LocalCluster  # noqa: E402

from annotator.core import cluster as C  # noqa: E402
from annotator.core.demo import generate_demo  # noqa: E402
from annotator.core.hashing import hash_planned  # noqa: E402
from annotator.core.importer import import_source  # noqa: E402
from annotator.core.scan import hash_faces  # noqa: E402
from annotator.core.workers import process_pool  # noqa: E402
from annotator.store.db import open_project  # noqa: E402

Q = "SELECT face_id, sha256, phash, dhash, sharpness, corrupt, thumb FROM face_hashes ORDER BY 1"


def timed_hash(base: Path, work: Path, **kw) -> tuple[float, int, list]:
    db = work / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.copy(base, db)
    with open_project(db) as p:
        t = time.perf_counter()
        res = hash_faces(p, **kw)
        dt = time.perf_counter() - t
        rows = p.conn.execute(Q).fetchall()
    return dt, res.hashed, rows


def overhead(cl: C.Cluster, project: Path, n: int, inflight: int) -> float:
    """Seconds per empty chunk through the executor scan uses (submit, run_on_worker with no
    faces, the result callback), ``inflight`` chunks in flight."""
    with open_project(project) as p, cl.executor(p) as ex:
        t = time.perf_counter()
        pending: set = set()
        for _ in range(n):
            if len(pending) >= inflight:
                _, pending = wait(pending, return_when="FIRST_COMPLETED")
            pending.add(ex.submit(hash_planned, []))
        wait(pending)
        return (time.perf_counter() - t) / n


def pool_start(w: int) -> float:
    """Seconds to start the local pool and run one empty task per worker."""
    t = time.perf_counter()
    with process_pool(w) as pool:
        list(pool.map(abs, range(w)))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    w = a.workers
    tmp = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    try:
        n_id = 40 if a.quick else 120
        r = generate_demo(tmp, identities=n_id, seed=1)
        base = tmp / "base.db"
        with open_project(base, create=True) as p:
            import_source(p, "msceleb", r.faces_tsv)
        work = tmp / "work"
        work.mkdir()

        def best(**kw) -> tuple[float, int, list]:
            runs = [timed_hash(base, work, **kw) for _ in range(a.rounds)]
            return min(runs, key=lambda x: x[0])

        t_local, n, rows_local = best(workers=w)
        print(
            f"{n} faces; local process pool, {w} workers: {t_local:.2f}s ({n / t_local:,.0f} faces/s)"
        )
        t_start = min(pool_start(w) for _ in range(a.rounds))
        print(
            f"  of which the pool's start-up ({w} 'spawn' processes, one empty task each): "
            f"{t_start:.2f}s (Dask workers are already running); without it "
            f"{n / (t_local - t_start):,.0f} faces/s"
        )
        results = {}
        for k in sorted({1, w}):
            with LocalCluster(
                processes=True,
                n_workers=k,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=":0",
                silence_logs=40,
            ) as lc:
                with C.connect(lc.scheduler_address) as cl:
                    cl.client.run(lambda: None)  # workers up
                    t, n2, rows = best(cluster=cl)
                    assert n2 == n and rows == rows_local, "cluster hashes differ from local"
                    results[k] = t
                    print(
                        f"Dask, {k} worker{'s' * (k != 1)}: {t:.2f}s ({n / t:,.0f} faces/s), "
                        f"{t / t_local:.2f}x the local pool's time"
                    )
                    if k == w:
                        m = 200 if a.quick else 1000
                        o_par = overhead(cl, base, m, 2 * k)
                        o_seq = overhead(cl, base, m // 4, 1)
                        print(
                            f"per-chunk overhead: {o_par * 1e3:.2f} ms per empty chunk with "
                            f"{2 * k} in flight, {o_seq * 1e3:.2f} ms round trip one at a time "
                            f"(a chunk of 256 faces is ~{256 / (n / t_local) * w * 1e3:,.0f} ms "
                            "of one worker's work)"
                        )
        ratio = results[w] / t_local
        print(f"goal: Dask with {w} workers within 1.3x the local pool: {ratio:.2f}x", end=" ")
        print("ok" if ratio <= 1.3 else "MISSED", end="; ")
        print(f"against the pool without its start-up: {results[w] / (t_local - t_start):.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
