"""How :mod:`annotator.core.dedup.neighbors` searches: block widths and per-block thresholds
chosen by a cost model, or the blocked brute force when that is cheaper.

The model counts what a table search costs (keys, direct-table slots, probes of distinct keys,
candidate pairs estimated from a sample's real bucket collisions) in CPU seconds per unit,
fitted to the 2-core test machine (tests/bench/bench_neighbors.py); only the ratios matter. Also
the small helpers of block layouts that the search uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np

MAX_KEY_BITS = 24  # direct table of 2**24 int32 slots = 64 MB
MAX_THRESHOLD = 4
PROBE_BATCH = 1 << 22  # (pattern, key) probes per vectorised step
_SAMPLE = 50_000

# Cost model (CPU seconds per unit), fitted to runs on the 2-core box (see the counters in
# _Search and tests/bench/bench_neighbors.py). Only ratios matter: they pick the layout and
# decide between the tables and the brute-force scan.
C_BF = 3.0e-9  # brute force, per pair
C_KEY = 1.5e-7  # per hash per table: key, argsort, gathers
C_SLOT = 2e-9  # per direct-table slot per table
C_PROBE = 2e-8  # per probed (pattern, distinct key), including the bucket pairs it yields
C_CAND = 1.2e-8  # per candidate pair (expand, gather, popcount)
C_TABLE = 4e-3  # fixed per table, plus C_BATCH per probe step (one per high bit at least)
C_BATCH = 4e-4


@dataclass(frozen=True)
class Plan:
    method: str  # "tables" | "brute"
    widths: tuple[int, ...] = ()
    thresholds: tuple[int, ...] = ()
    cost: float = 0.0
    brute_cost: float = 0.0

    def describe(self) -> str:
        if self.method == "brute":
            return "brute"
        return "+".join(
            f"{b}:{t}" for b, t in zip(self.widths, self.thresholds, strict=True) if t >= 0
        )


def as_uint64(h: np.ndarray) -> np.ndarray:
    """Signed int64 (as stored in SQLite) or uint64 -> uint64 view/copy."""
    h = np.asarray(h)
    if h.dtype == np.uint64:
        return h
    return h.astype(np.int64).view(np.uint64)


def popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x)


def n_patterns(b: int, r: int) -> int:
    """Number of b-bit masks of weight <= r."""
    return sum(math.comb(b, i) for i in range(min(r, b) + 1)) if r >= 0 else 0


@lru_cache(maxsize=256)
def patterns(b: int, r: int) -> np.ndarray:
    """All b-bit masks of weight <= r (int64), weight 0 first."""
    out = [np.zeros(1, dtype=np.int64)]
    for w in range(1, min(r, b) + 1):
        combs = np.array(list(combinations(range(b), w)), dtype=np.int64).reshape(-1, w)
        out.append(np.bitwise_or.reduce(np.int64(1) << combs, axis=1))
    return np.concatenate(out)


def offsets(widths: tuple[int, ...]) -> list[int]:
    return [sum(widths[:i]) for i in range(len(widths))]


def check_layout(widths: tuple[int, ...], thresholds: tuple[int, ...], R: int) -> None:
    """Raise ValueError unless (widths, thresholds) finds every pair within R."""
    if len(widths) != len(thresholds) or sum(widths) > 64 or min(widths, default=1) < 1:
        raise ValueError(f"bad block widths {widths}")
    for b, t in zip(widths, thresholds, strict=True):
        if t >= 0 and b > MAX_KEY_BITS:
            raise ValueError(f"an indexed block has at most {MAX_KEY_BITS} bits (got {b})")
    if sum(t + 1 for t in thresholds if t >= 0) < R + 1:
        raise ValueError(f"thresholds {thresholds} do not cover radius {R}")


# -- planning -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _BlockStats:
    distinct: float  # distinct keys expected in the full data
    excess0: float  # equal-key pairs beyond the uniform share, scaled to the full data
    excess1: float  # distance-1 key pairs beyond the uniform share, scaled


def block_stats(s: np.ndarray, n: int, off: int, b: int) -> _BlockStats:
    key = ((s >> np.uint64(off)) & np.uint64((1 << b) - 1)).astype(np.int64)
    uk, cu = np.unique(key, return_counts=True)
    ns = len(s)
    scale = (n / ns) ** 2
    cuf = cu.astype(np.float64)
    s0 = float((cuf * (cuf - 1) / 2).sum())
    s1 = 0.0
    bits = np.unique(np.linspace(0, b - 1, min(b, 8)).round().astype(int))
    for bit in bits.tolist():
        a = ((uk >> bit) & 1) == 0
        tgt = uk[a] ^ (1 << bit)
        pos = np.searchsorted(uk, tgt)
        pos[pos >= len(uk)] = 0
        hit = uk[pos] == tgt
        s1 += float((cuf[a][hit] * cuf[pos[hit]]).sum())
    s1 *= b / len(bits)
    pairs_s = ns * (ns - 1) / 2
    uni0 = pairs_s / 2.0**b
    e0 = max(0.0, s0 - uni0) * scale
    e1 = max(0.0, s1 - uni0 * b) * scale
    slots = 2.0**b
    distinct = min(slots * -math.expm1(-n / slots), len(uk) * n / ns)
    return _BlockStats(distinct, e0, e1)


def _table_cost(n: int, b: int, t: int, st: _BlockStats) -> float:
    slots = 2.0**b
    pairs = n * (n - 1) / 2
    lam = st.excess1 / st.excess0 if st.excess0 > 0 else 0.0
    cand = 0.0
    for w in range(t + 1):
        cand += pairs * math.comb(b, w) / slots
        cand += st.excess0 * lam**w / math.factorial(w) if st.excess0 > 0 else 0.0
        if st.excess0 == 0 and w >= 1:
            cand += st.excess1 * (1.0 if w == 1 else 0.5 ** (w - 1))
    probes = st.distinct * (n_patterns(b, t) - 1) / 2
    steps = b + probes / PROBE_BATCH if t > 0 else 1
    fixed = C_TABLE + C_BATCH * steps
    return fixed + C_KEY * n + C_SLOT * slots + C_PROBE * probes + C_CAND * cand


def layouts() -> list[tuple[int, ...]]:
    """Candidate block widths: j blocks of <= MAX_KEY_BITS bits, spread evenly, plus skews."""
    out: list[tuple[int, ...]] = []
    for j in range(1, 9):
        if j * MAX_KEY_BITS <= 64:
            out.append((MAX_KEY_BITS,) * j)
            if j == 2:
                out.append((20, 20))
        else:
            base, extra = divmod(64, j)
            out.append(tuple(base + (1 if i < extra else 0) for i in range(j)))
    out += [(24, 20, 20), (23, 21, 20), (24, 24, 16)]
    return out


def _thresholds(
    n: int, R: int, widths: tuple[int, ...], stats: list[_BlockStats]
) -> tuple[float, tuple[int, ...]] | None:
    """Cheapest thresholds for these blocks with sum(t + 1) >= R + 1 (a small DP; each block's
    cost depends only on its own threshold)."""
    need = R + 1
    dp: dict[int, tuple[float, tuple[int, ...]]] = {0: (0.0, ())}
    for b, st in zip(widths, stats, strict=True):
        costs = [_table_cost(n, b, t, st) for t in range(MAX_THRESHOLD + 1)]
        nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
        for k, (c, ts) in dp.items():
            for t in range(-1, MAX_THRESHOLD + 1):
                k2 = min(need, k + t + 1)
                c2 = c + (costs[t] if t >= 0 else 0.0)
                if k2 not in nxt or c2 < nxt[k2][0]:
                    nxt[k2] = (c2, ts + (t,))
        dp = nxt
    return dp.get(need)


def _distinct(h: np.ndarray, off: int, b: int) -> int:
    key = ((h >> np.uint64(off)) & np.uint64((1 << b) - 1)).astype(np.int64)
    return int(np.count_nonzero(np.bincount(key, minlength=1 << b)))


def plan(h: np.ndarray, R: int) -> Plan:
    """Choose block widths and thresholds by the cost model, or brute force when cheaper.

    Block statistics come from a sample; for the few most promising layouts the number of
    distinct keys (what probing costs) is then counted exactly on all the data.
    """
    h = as_uint64(h)
    n = len(h)
    brute = n * (n - 1) / 2 * C_BF
    best = Plan("brute", cost=brute, brute_cost=brute)
    if n < 2:
        return best
    s = h if n <= _SAMPLE else h[np.random.default_rng(0).choice(n, _SAMPLE, replace=False)]
    stats: dict[tuple[int, int], _BlockStats] = {}
    ranked: list[tuple[float, tuple[int, ...]]] = []
    for widths in layouts():
        blocks = list(zip(offsets(widths), widths, strict=True))
        for blk in blocks:
            if blk not in stats:
                stats[blk] = block_stats(s, n, *blk)
        got = _thresholds(n, R, widths, [stats[blk] for blk in blocks])
        if got is not None:
            ranked.append((got[0], widths))
    ranked.sort()
    exact: set[tuple[int, int]] = set()
    for _, widths in ranked[:4]:
        blocks = list(zip(offsets(widths), widths, strict=True))
        if n > len(s):
            for blk in blocks:
                if blk not in exact:
                    st = stats[blk]
                    stats[blk] = _BlockStats(_distinct(h, *blk), st.excess0, st.excess1)
                    exact.add(blk)
        got = _thresholds(n, R, widths, [stats[blk] for blk in blocks])
        if got is not None and got[0] < best.cost:
            best = Plan("tables", widths, got[1], got[0], brute)
    return best
