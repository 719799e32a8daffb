"""All pairs within R over clustered 64-bit hashes: our search vs blocked brute force.

Each case runs in a fresh process (so its peak RSS is its own). The baseline is
``neighbors.brute_force_pairs`` (NumPy bitwise_count in cache-sized blocks): over all pairs at
N <= --full-brute, otherwise over a random sample of query rows against all N hashes, timed and
extrapolated to the N(N-1)/2 pairs of a full run. Exactness: at full brute force the two results
are compared whole; with a sample, the pairs of the sampled rows must be identical.

    python3 tests/bench/bench_neighbors.py                 # 100k, 1M and 10M cases
    python3 tests/bench/bench_neighbors.py --quick         # 100k and 1M only
    python3 tests/bench/bench_neighbors.py --case 1000000:8 --case 10000000:6
    python3 tests/bench/bench_neighbors.py --flags 100000      # flag recompute at scale

``--flags N`` builds a project of N faces (N/8 identities) with clustered pHashes already stored
and times ``scan.update_flags`` (load hashes, flag rules incl. the pair search, store flags) at
the default radius: a first run (all flags new) and a second one (nothing changes).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402

from annotator.core.dedup import neighbors as N  # noqa: E402
from annotator.core.dedup import neighbors_plan


def run_case(n: int, R: int, sample_rows: int, full_brute: int) -> dict[str, object]:
    h = N.clustered_hashes(n, seed=n + R)
    t, c = time.perf_counter(), time.process_time()
    pl = neighbors_plan.plan(h, R)
    i, j, d = N.pairs_within(h, R, force=pl)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # GB (Linux: kB)
    if n <= full_brute:
        t, c = time.perf_counter(), time.process_time()
        bi, bj, bd = N.brute_force_pairs(h, R)
        bwall, bcpu = time.perf_counter() - t, time.process_time() - c
        exact = all(np.array_equal(x, y) for x, y in ((i, bi), (j, bj), (d, bd)))
        how = "full"
    else:
        rows = np.sort(np.random.default_rng(R).choice(n, sample_rows, replace=False))
        t, c = time.perf_counter(), time.process_time()
        bi, bj, bd = N.brute_force_pairs(h, R, rows=rows)
        scale = (n - 1) / (2 * sample_rows)
        bwall, bcpu = (time.perf_counter() - t) * scale, (time.process_time() - c) * scale
        sel = np.isin(i, rows) | np.isin(j, rows)
        exact = all(np.array_equal(x, y) for x, y in ((i[sel], bi), (j[sel], bj), (d[sel], bd)))
        how = f"{sample_rows} rows"
    return {
        "n": n,
        "R": R,
        "plan": pl.describe(),
        "pairs": len(i),
        "wall": wall,
        "cpu": cpu,
        "bwall": bwall,
        "bcpu": bcpu,
        "how": how,
        "exact": exact,
        "rss": rss,
    }


def _child(args: tuple[int, int, int, int], q: multiprocessing.Queue) -> None:
    q.put(run_case(*args))


def bench_flags(n: int) -> None:
    import tempfile

    from annotator.core.scan import update_flags
    from annotator.store import faces as faces_store
    from annotator.store import hashes as hashes_store
    from annotator.store.db import open_project

    with tempfile.TemporaryDirectory() as d:
        p = open_project(os.path.join(d, "p.db"), create=True)
        src = faces_store.add_source(p, os.path.join(d, "none.tsv"), "msceleb", 0, 0.0, "x")
        rng = np.random.default_rng(0)
        h = N.clustered_hashes(n, seed=1).view(np.int64)
        with p.tx():
            ids = faces_store.create_identities(p, [f"m.{k:06d}" for k in range(n // 8)])
            iid = np.array(list(ids.values()))[rng.integers(0, len(ids), n)]
            rows = [(int(iid[k]), src.id, k + 1) + (None,) * 11 for k in range(n)]
            faces_store.insert_faces(p, rows)  # type: ignore[arg-type]
            hashes_store.insert_hashes(
                p,
                (
                    (
                        k + 1,
                        bytes(8) + k.to_bytes(8, "little"),
                        int(h[k]),
                        0,
                        112,
                        112,
                        0,
                        500.0,
                        None,
                    )
                    for k in range(n)
                ),
            )
        for label in ("first", "again"):
            t, cpu = time.perf_counter(), time.process_time()
            res = update_flags(p)
            print(
                f"flags {label}: {n:,} faces, {res.pairs:,} pairs, "
                f"{sum(res.flags.values()):,} flags: {time.perf_counter() - t:.1f} s "
                f"({time.process_time() - cpu:.1f} s cpu)",
                flush=True,
            )
        p.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--case", action="append", default=[], help="N:R (repeatable)")
    ap.add_argument("--sample-rows", type=int, default=512)
    ap.add_argument("--full-brute", type=int, default=100_000)
    ap.add_argument("--flags", type=int, default=0, help="time the flag recompute at N faces")
    a = ap.parse_args()
    if a.flags:
        bench_flags(a.flags)
        return
    if a.case:
        cases = [tuple(int(x) for x in c.split(":")) for c in a.case]
    else:
        cases = [(100_000, r) for r in (0, 3, 6, 8, 10)] + [(1_000_000, r) for r in (3, 6, 8, 10)]
        if not a.quick:
            cases.append((10_000_000, 6))
    print(
        f"{'N':>10} {'R':>3} {'plan':>16} {'pairs':>12} {'ours s':>8} {'(cpu)':>7} "
        f"{'brute s':>9} {'(cpu)':>9} {'ratio':>7} {'(cpu)':>7} {'brute run':>10} {'exact':>6} "
        f"{'peak GB':>7}",
        flush=True,
    )
    ctx = multiprocessing.get_context("spawn")
    for n, R in cases:
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=((n, R, a.sample_rows, a.full_brute), q))
        p.start()
        r = q.get()
        p.join()
        print(
            f"{r['n']:>10,} {r['R']:>3} {r['plan']:>16} {r['pairs']:>12,} {r['wall']:>8.1f} "
            f"{r['cpu']:>7.1f} {r['bwall']:>9.1f} {r['bcpu']:>9.1f} "
            f"{r['bwall'] / r['wall']:>7.1f} {r['bcpu'] / r['cpu']:>7.1f} {r['how']:>10} "
            f"{str(r['exact']):>6} {r['rss']:>7.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
