"""All pairs of 64-bit hashes within Hamming radius R — exactly the brute-force answer, far cheaper.

Method (generalised multi-index hashing / permuted tables):

* Split the 64 bits into ``m`` blocks. A pair within R bits has, for every ordering of its m block
  distances, a set of ``k`` blocks whose distances sum to at most
  ``r(k) = k*q + max(0, k - m + rem)`` with ``q, rem = divmod(R, m)`` (the k smallest of m
  non-negative integers summing to <= R). So for every k-subset S of blocks ("table") key each
  hash by the bits of S, and a pair within R has, in at least one table, keys within r(k) bits.
* Per table: sort the keys; for every XOR pattern p of weight <= r(k) on the key bits, join each
  key^p against the sorted keys (binary search), expand candidates in bounded chunks and verify
  the full 64-bit distance with ``np.bitwise_count``.
* A pair is emitted only by the *first* table (in ``itertools.combinations`` order) in which its
  key distance is <= r(k), so no pair is emitted twice and no global set is needed.
  ``k = 1`` is classic multi-index hashing (Norouzi et al.); ``r = 0`` is Manku et al.'s permuted
  tables (exact match on k blocks).
* (m, k) is chosen per (N, R) by a cost model using the real bucket collisions of a sample of
  the data; when no filter beats a blocked brute-force scan (e.g. R near 10 with small N), the
  blocked brute force runs instead.

Output: ``(i, j, d)`` int64 arrays with i < j, sorted by (i, j).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

_CHUNK = 1 << 22  # candidates expanded at once (bounds memory: ~100 MB of temporaries)
_BF_COLS = 1 << 16
_BF_ROWS = 256
_CSR_BITS = 24  # keys up to this many bits use a direct bucket table, longer ones binary search
_PROBE_BATCH = 1 << 22  # (pattern, hash) probes per vectorised batch

# Cost model constants (seconds per unit), measured roughly on the 2-core box.
C_BF = 1.5e-9  # brute force, per pair
C_KEY = 2.0e-8  # per hash per table: key gather + argsort share
C_PROBE = 1.5e-8  # per hash per pattern: direct bucket table lookup (key <= 24 bits)
C_PROBE_BS = 1.5e-7  # per hash per pattern: binary search (longer keys)
C_VERIFY = 3.0e-8  # per candidate pair: expand + popcount + filter


@dataclass(frozen=True)
class Plan:
    method: str  # "tables" | "brute"
    m: int = 0
    k: int = 0
    r: int = 0
    cost: float = 0.0
    brute_cost: float = 0.0


def as_uint64(h: np.ndarray) -> np.ndarray:
    """Signed int64 (as stored in SQLite) or uint64 -> uint64 view/copy."""
    h = np.asarray(h)
    if h.dtype == np.uint64:
        return h
    return h.astype(np.int64).view(np.uint64)


def popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(x)


def blocks(m: int) -> list[tuple[int, int]]:
    """(offset, length) of the m blocks splitting 64 bits as evenly as possible."""
    base, extra = divmod(64, m)
    out, off = [], 0
    for b in range(m):
        ln = base + (1 if b < extra else 0)
        out.append((off, ln))
        off += ln
    return out


def r_of(R: int, m: int, k: int) -> int:
    q, rem = divmod(R, m)
    return k * q + max(0, k - m + rem)


def n_patterns(b: int, r: int) -> int:
    return sum(math.comb(b, i) for i in range(min(r, b) + 1))


def patterns(b: int, r: int) -> np.ndarray:
    """All b-bit masks of weight <= r (uint64), weight 0 first."""
    out = [np.zeros(1, dtype=np.uint64)]
    for w in range(1, min(r, b) + 1):
        combs = np.array(list(itertools.combinations(range(b), w)), dtype=np.uint64)
        out.append(np.bitwise_or.reduce(np.uint64(1) << combs, axis=1))
    return np.concatenate(out)


def _keys(
    h: np.ndarray, blks: list[tuple[int, int]], subset: tuple[int, ...]
) -> tuple[np.ndarray, int]:
    key = np.zeros(len(h), dtype=np.uint64)
    shift = 0
    for b in subset:
        off, ln = blks[b]
        key |= ((h >> np.uint64(off)) & np.uint64((1 << ln) - 1)) << np.uint64(shift)
        shift += ln
    return key, shift


# -- brute force -----------------------------------------------------------------------------
def brute_force_pairs(
    h: np.ndarray, R: int, cancelled: Callable[[], bool] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocked brute force: chunks of queries x all later hashes, with bitwise_count."""
    h = as_uint64(h)
    n = len(h)
    ii, jj, dd = [], [], []
    for r0 in range(0, n, _BF_ROWS):
        if cancelled and cancelled():
            raise InterruptedError("cancelled")
        rows = h[r0 : r0 + _BF_ROWS]
        for c0 in range(r0, n, _BF_COLS):
            cols = h[c0 : c0 + _BF_COLS]
            d = popcount(rows[:, None] ^ cols[None, :])
            a, b = np.nonzero(d <= R)
            a = a + r0
            b = b + c0
            keep = b > a
            ii.append(a[keep])
            jj.append(b[keep])
            dd.append(d[a[keep] - r0, b[keep] - c0])
    return _finish(ii, jj, dd)


def _finish(ii: list, jj: list, dd: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not ii:
        e = np.zeros(0, dtype=np.int64)
        return e, e.copy(), e.copy()
    i = np.concatenate(ii).astype(np.int64)
    j = np.concatenate(jj).astype(np.int64)
    d = np.concatenate(dd).astype(np.int64)
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


# -- planning -----------------------------------------------------------------------------------
def _collisions(h: np.ndarray, blks: list[tuple[int, int]], subset: tuple[int, ...]) -> float:
    """Estimated sum over buckets of C(size, 2) for this table, from a sample."""
    n = len(h)
    s = h if n <= 200_000 else h[np.random.default_rng(0).choice(n, 200_000, replace=False)]
    key, _ = _keys(s, blks, subset)
    _, counts = np.unique(key, return_counts=True)
    c = float((counts.astype(np.float64) * (counts - 1) / 2).sum())
    return c * (n / len(s)) ** 2


def plan(h: np.ndarray, R: int) -> Plan:
    """Choose (m, k) by the cost model, or brute force when filtering does not pay."""
    n = len(h)
    brute = n * (n - 1) / 2 * C_BF
    best = Plan("brute", cost=brute, brute_cost=brute)
    if n < 2:
        return best
    logn = math.log2(max(n, 2))
    for m in range(2, 17):
        blks = blocks(m)
        for k in range(1, m + 1):
            r = r_of(R, m, k)
            b = sum(ln for _, ln in blks[:k])
            if b < 8 or b > 64:
                continue
            t = math.comb(m, k)
            p = n_patterns(b, r)
            if t > 600 or p > 20_000 or t * p > 200_000:
                continue
            probe = C_PROBE if b <= _CSR_BITS else C_PROBE_BS
            lower = t * (n * (C_KEY + 5e-9 * logn) + p * n * probe)
            if lower >= best.cost:
                continue
            coll = _collisions(h, blks, tuple(range(k)))
            # Collisions under XOR pattern p != 0 are bounded by the equal-key collisions
            # (Cauchy-Schwarz); the uniform share 2^-b per pattern is the optimistic case.
            cand = coll + (p - 1) * max(coll, n * n / 2 / 2.0**b)
            cost = lower + t * cand * C_VERIFY
            if cost < best.cost:
                best = Plan("tables", m, k, r, cost, brute)
    return best


# -- the table search ---------------------------------------------------------------------------
def _expand(
    q: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (query, sorted-position) pairs for ranges [lo, hi) in chunks of <= _CHUNK."""
    cnt = hi - lo
    nz = cnt > 0
    q, lo, cnt = q[nz], lo[nz], cnt[nz]
    if len(q) == 0:
        return
    cum = np.cumsum(cnt)
    start = 0
    while start < len(q):
        base = cum[start - 1] if start else 0
        end = int(np.searchsorted(cum, base + _CHUNK, side="right"))
        end = max(end, start + 1)
        c = cnt[start:end]
        total = int(c.sum())
        qq = np.repeat(q[start:end], c)
        offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
        pos = np.repeat(lo[start:end], c) + offs
        yield qq, pos
        start = end


def table_pairs(
    h: np.ndarray,
    R: int,
    m: int,
    k: int,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs within R using C(m, k) tables of k blocks each (see module docstring)."""
    h = as_uint64(h)
    n = len(h)
    blks = blocks(m)
    r = r_of(R, m, k)
    subsets = list(itertools.combinations(range(m), k))
    bmask = [np.uint64(((1 << ln) - 1) << off) for off, ln in blks]
    ii, jj, dd = [], [], []
    idx = np.arange(n, dtype=np.int64)
    for t, subset in enumerate(subsets):
        if cancelled and cancelled():
            raise InterruptedError("cancelled")
        key, b = _keys(h, blks, subset)
        order = np.argsort(key, kind="stable")
        skey = key[order]
        pats = patterns(b, r)
        if b <= _CSR_BITS:
            starts = np.zeros((1 << b) + 1, dtype=np.int64)
            np.cumsum(np.bincount(key.astype(np.int64), minlength=1 << b), out=starts[1:])

            def ranges(
                target: np.ndarray, starts: np.ndarray = starts
            ) -> tuple[np.ndarray, np.ndarray]:
                ti = target.astype(np.int64)
                return starts[ti], starts[ti + 1]
        else:

            def ranges(
                target: np.ndarray, skey: np.ndarray = skey
            ) -> tuple[np.ndarray, np.ndarray]:
                return (
                    np.searchsorted(skey, target, side="left"),
                    np.searchsorted(skey, target, side="right"),
                )

        # weight-0 pattern: later positions in the run of equal keys (each pair once)
        pos = np.empty(n, dtype=np.int64)
        pos[order] = idx
        gens = [(_expand(idx, pos + 1, ranges(key)[1]), False)]
        per = max(1, _PROBE_BATCH // max(n, 1))
        for s0 in range(1, len(pats), per):
            pb = pats[s0 : s0 + per]
            target = (key[None, :] ^ pb[:, None]).reshape(-1)
            lo, hi = ranges(target)
            gens.append((_expand(np.tile(idx, len(pb)), lo, hi), True))
        for gen, later_only in gens:
            for qq, cc in gen:
                cc = order[cc]
                if later_only:  # a pair differing by pattern p is probed from both ends
                    keep = cc > qq
                    qq, cc = qq[keep], cc[keep]
                x = h[qq] ^ h[cc]
                d = popcount(x)
                ok = d <= R
                qq, cc, x, d = qq[ok], cc[ok], x[ok], d[ok]
                if t and len(qq):
                    # canonical table: drop pairs an earlier table already matched
                    bd = [popcount(x & mk).astype(np.int16) for mk in bmask]
                    seen = np.zeros(len(qq), dtype=bool)
                    for u in range(t):
                        sm = bd[subsets[u][0]].copy()
                        for blk in subsets[u][1:]:
                            sm += bd[blk]
                        seen |= sm <= r
                    keep = ~seen
                    qq, cc, d = qq[keep], cc[keep], d[keep]
                ii.append(np.minimum(qq, cc))
                jj.append(np.maximum(qq, cc))
                dd.append(d)
        if progress:
            progress(t + 1, len(subsets))
    return _finish(ii, jj, dd)


def pairs_within(
    h: np.ndarray,
    R: int,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    force: Plan | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i < j) of ``h`` (uint64 or int64 hashes) with Hamming distance <= R.

    Exactly the brute-force answer; the method is chosen by :func:`plan`.
    """
    if not 0 <= R <= 64:
        raise ValueError("radius must be between 0 and 64")
    h = as_uint64(h)
    pl = force or plan(h, R)
    if pl.method == "brute":
        return brute_force_pairs(h, R, cancelled)
    return table_pairs(h, R, pl.m, pl.k, progress, cancelled)


# -- synthetic data for tests and benches ---------------------------------------------------------
def clustered_hashes(
    n: int, seed: int = 0, flips: int = 6, alpha: float = 1.6, max_cluster: int = 64
) -> np.ndarray:
    """Hashes in clusters: random centres, members a few random bit flips away, heavy-tailed sizes.

    Cluster sizes follow a Zipf law (exponent ``alpha``, capped at ``max_cluster``); each member
    flips 0..``flips`` random bits of its centre. Returns uint64, shuffled.
    """
    rng = np.random.default_rng(seed)
    sizes = []
    total = 0
    while total < n:
        s = int(min(rng.zipf(alpha), max_cluster))
        sizes.append(s)
        total += s
    sizes_a = np.array(sizes)
    sizes_a[-1] -= total - n
    centres = rng.integers(0, 2**63, len(sizes_a), dtype=np.int64).view(np.uint64) ^ (
        rng.integers(0, 2, len(sizes_a), dtype=np.uint64) << np.uint64(63)
    )
    h = np.repeat(centres, sizes_a)
    nflip = rng.integers(0, flips + 1, n)
    for f in range(1, flips + 1):
        sel = np.flatnonzero(nflip >= f)
        h[sel] ^= np.uint64(1) << rng.integers(0, 64, len(sel)).astype(np.uint64)
    rng.shuffle(h)
    return h
