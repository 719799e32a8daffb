"""All pairs within R over clustered 64-bit hashes: our search vs blocked brute force.

Brute force runs on a sample of queries and is extrapolated (N^2 scaling) where the full run is
too long; the pairs of our search are checked against brute force on that sample of queries.

    python3 tests/bench/bench_neighbors.py [--quick]      # --quick: 100k and 1M only
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402

from annotator.core import neighbors as N  # noqa: E402


def brute_sample(h: np.ndarray, R: int, q: np.ndarray) -> tuple[float, set[tuple[int, int]]]:
    """Brute force for the queries q against all hashes; returns (seconds, pairs)."""
    t = time.perf_counter()
    pairs = set()
    for s in range(0, len(q), 64):
        rows = q[s : s + 64]
        for c0 in range(0, len(h), 1 << 16):
            d = np.bitwise_count(h[rows][:, None] ^ h[None, c0 : c0 + (1 << 16)])
            a, b = np.nonzero(d <= R)
            for x, y in zip(rows[a].tolist(), (b + c0).tolist(), strict=True):
                if x != y:
                    pairs.add((min(x, y), max(x, y)))
    return time.perf_counter() - t, pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    cases = [(100_000, r) for r in (0, 3, 6, 8, 10)] + [(1_000_000, r) for r in (3, 6, 8, 10)]
    if not a.quick:
        cases.append((10_000_000, 6))
    print(
        f"{'N':>10} {'R':>3} {'plan':>10} {'pairs':>12} {'ours s':>8} {'brute s':>9} {'ratio':>7} {'exact':>6} {'RSS GB':>7}"
    )
    for n, R in cases:
        h = N.clustered_hashes(n, seed=n + R)
        t = time.perf_counter()
        pl = N.plan(h, R)
        i, j, d = N.pairs_within(h, R, force=pl)
        ours = time.perf_counter() - t
        rng = np.random.default_rng(0)
        q = rng.choice(n, min(n, 512), replace=False)
        bt, bpairs = brute_sample(h, R, q)
        brute = bt * n / len(q) / 2  # all queries, each pair once
        qs = set(q.tolist())
        mine = {(x, y) for x, y in zip(i.tolist(), j.tolist(), strict=True) if x in qs or y in qs}
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        name = "brute" if pl.method == "brute" else f"m{pl.m}k{pl.k}r{pl.r}"
        print(
            f"{n:>10,} {R:>3} {name:>10} {len(i):>12,} {ours:>8.1f} {brute:>9.1f} {brute / ours:>7.1f} {str(mine == bpairs):>6} {rss:>7.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
