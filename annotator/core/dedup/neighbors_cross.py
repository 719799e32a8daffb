"""All pairs (a, b) of two sets of 64-bit hashes within Hamming radius R, one from each set —
exactly the brute-force answer, without the pairs inside either set.

The crop stage (:mod:`annotator.core.dedup.crops`) needs full pHashes against crop pHashes
only; searching the two together (:func:`neighbors.pairs_within` on the concatenation) also
finds every full-full and crop-crop pair, which are many (a photo's crop hashes are near each
other and near its cluster's) and thrown away.

Method: the multi-index tables of :mod:`neighbors` (block widths and per-block thresholds
with sum(t + 1) >= R + 1, chosen by :func:`cross_plan`'s cost model), but bipartite: per indexed block, ``b`` is sorted
by key into buckets and every distinct key of ``a`` is probed with each XOR pattern of weight
0..t (all of them: the pair (u, u ^ p) is not symmetric here); each bucket pair's cross product
is verified with ``np.bitwise_count``. A pair is emitted only by the first table whose block is
within its threshold, so no pair comes twice. Brute force (blocks of ``a`` against all of
``b``) when the plan says the tables do not pay.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from annotator.core.dedup.neighbors_plan import (
    C_BF,
    C_KEY,
    C_SLOT,
    C_TABLE,
    MAX_THRESHOLD,
    PROBE_BATCH,
    Plan,
    as_uint64,
    block_stats,
    check_layout,
    layouts,
    n_patterns,
    offsets,
    patterns,
    popcount,
)
from annotator.model import CancelledFn, ProgressFn

_CHUNK = 1 << 21  # brute force: candidate pairs at once
_BF_ROWS = 64
_SAMPLE = 50_000  # hashes (of both sets) the planner's block statistics come from, at most
_SAMPLE_MIN = 4096  # ... and at least (or all): an eighth of them in between, so that the
# planning of a small search does not cost more than the search (on a project of 8,400 faces,
# 25,000 hashes: the whole set took as long as the search it planned)
# Cost model of a bipartite table (CPU seconds per unit; fitted to runs of cross_pairs on the
# 2-core test machine at 100k and 1M clustered hashes; only ratios matter): a probe is one
# (pattern, distinct key of a) lookup, a candidate one (a member, b member) verified.
CX_PROBE = 8e-9
CX_CAND = 5e-8


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)


def _cat(found: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not found:
        return _empty()
    i, j, d = (np.concatenate(z) for z in zip(*found, strict=True))
    return i.astype(np.int64), j.astype(np.int64), d.astype(np.uint8)


def brute_cross(
    a: np.ndarray, b: np.ndarray, R: int, cancelled: CancelledFn | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (i, j, d) with ``popcount(a[i] ^ b[j]) = d <= R`` by blocks of ``a`` against
    all of ``b``; sorted by (i, j)."""
    a, b = as_uint64(a), as_uint64(b)
    found: list[tuple[np.ndarray, ...]] = []
    step = max(1, min(_BF_ROWS, _CHUNK // max(len(b), 1)))
    for s in range(0, len(a), step):
        if cancelled and cancelled():
            raise InterruptedError("cancelled")
        d = popcount(a[s : s + step, None] ^ b[None, :])
        ii, jj = np.nonzero(d <= R)
        if len(ii):
            found.append((ii + s, jj, d[ii, jj]))
    return _cat(found)


class _Sorted:
    """One set's hashes sorted by one block's key: distinct keys, bucket starts and sizes."""

    def __init__(self, h: np.ndarray, off: int, bits: int) -> None:
        key = ((h >> np.uint64(off)) & np.uint64((1 << bits) - 1)).astype(np.int64)
        order = np.argsort(key, kind="stable")
        skey = key[order]
        self.hs = h[order]
        self.idx = order
        first = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]]) if len(h) else order[:0]
        self.uk = skey[first]
        self.su = first
        self.cu = np.diff(np.r_[first, len(h)])


_RANK_MAX = 32  # b ranges up to this long are verified by rank, longer ones expanded


def _verify(
    qa: _Sorted, tb: _Sorted, sa, ca, sb, cb, R: int, earlier
) -> list[tuple[np.ndarray, ...]]:
    """Bucket pairs (a bucket at sa of ca members, b bucket at sb of cb) -> verified pairs as
    original positions, less those an earlier table finds. Each a member meets a range of b
    members; short ranges go "by rank" (sorted by length, then for x = 0, 1, ... the ranges
    longer than x are a prefix: an add, a gather, xor and popcount a candidate, as in
    :mod:`neighbors`), long ones are expanded."""
    if len(ca) and int(ca.max()) > 1:  # one entry per a member
        e = int(ca.sum())
        base = np.cumsum(ca) - ca
        pa = np.repeat(sa - base, ca)
        pa += np.arange(e, dtype=pa.dtype)
        sb, cb = np.repeat(sb, ca), np.repeat(cb, ca)
    else:
        pa = sa
    found: list[tuple[np.ndarray, ...]] = []
    long_ = cb > _RANK_MAX
    if long_.any():
        p, q, c = pa[long_], sb[long_], cb[long_]
        ia = np.repeat(p, c)
        ib = np.repeat(q - (np.cumsum(c) - c), c) + np.arange(int(c.sum()))
        _keep(found, qa, tb, ia, ib, qa.hs[ia] ^ tb.hs[ib], R, earlier)
        pa, sb, cb = pa[~long_], sb[~long_], cb[~long_]
    if not len(pa):
        return found
    o = np.argsort(-cb.astype(np.int8), kind="stable")  # radix sort, descending
    pa, sb, cb = pa[o], sb[o], cb[o]
    top = int(cb[0])
    longer = len(cb) - np.cumsum(np.bincount(cb, minlength=top + 1))
    ha = qa.hs[pa]
    for x in range(top):
        k = int(longer[x])
        qx = sb[:k] + x if x else sb[:k]
        _keep(found, qa, tb, pa[:k], qx, np.take(tb.hs, qx) ^ ha[:k], R, earlier)
    return found


def _keep(found, qa: _Sorted, tb: _Sorted, ia, ib, x, R: int, earlier) -> None:
    """The candidates (sorted positions ia, ib; x their XOR) within R that no earlier table
    finds, appended to ``found`` as original positions."""
    d = popcount(x)
    ok = np.flatnonzero(d <= R)
    if not len(ok):
        return
    x, d, ia, ib = x[ok], d[ok], ia[ok], ib[ok]
    if earlier:
        keep = np.ones(len(x), dtype=bool)
        for mask, te in earlier:
            keep &= popcount(x & mask) > te
        x, d, ia, ib = x[keep], d[keep], ia[keep], ib[keep]
    found.append((qa.idx[ia], tb.idx[ib], d))


def _probe(
    qa: _Sorted, tb: _Sorted, bid: np.ndarray, pats: np.ndarray, R: int, earlier, cancelled=None
):
    """Every distinct key of ``a`` XOR each pattern of ``pats``, looked up in ``b``'s buckets."""
    found: list[tuple[np.ndarray, ...]] = []
    per = max(1, PROBE_BATCH // max(len(qa.uk), 1))
    for p0 in range(0, len(pats), per):
        if cancelled and cancelled():
            raise InterruptedError("cancelled")
        pb = pats[p0 : p0 + per]
        tgt = (qa.uk[None, :] ^ pb[:, None]).reshape(-1)
        bj = np.take(bid, tgt)
        hit = np.flatnonzero(bj >= 0)
        if not len(hit):
            continue
        bj = bj[hit]
        ai = hit % len(qa.uk)
        found += _verify(qa, tb, qa.su[ai], qa.cu[ai], tb.su[bj], tb.cu[bj], R, earlier)
    return found


def _cross_table_cost(na: int, nb: int, w: int, t: int, st) -> float:
    """Estimated CPU seconds of one bipartite table: keys, slots, probes, candidates (the
    uniform share plus the sample's excess of near keys, the cross share of it)."""
    slots = 2.0**w
    share = 2.0 * na * nb / float(na + nb) ** 2  # of the pairs of the two sets together
    lam = st.excess1 / st.excess0 if st.excess0 > 0 else 0.0
    cand = na * nb * n_patterns(w, t) / slots
    for k in range(t + 1):
        if st.excess0 > 0:
            cand += share * st.excess0 * lam**k / math.factorial(k)
        elif k >= 1:
            cand += share * st.excess1 * (1.0 if k == 1 else 0.5 ** (k - 1))
    probes = slots * -math.expm1(-na / slots) * n_patterns(w, t)  # distinct keys of a
    return C_TABLE + C_KEY * (na + nb) + C_SLOT * slots + CX_PROBE * probes + CX_CAND * cand


def cross_plan(a: np.ndarray, b: np.ndarray, R: int) -> Plan:
    """Block widths and thresholds for :func:`cross_pairs` by the cost model above (block
    statistics from a sample of both sets), or brute force when that is cheaper."""
    na, nb = len(a), len(b)
    brute = na * nb * C_BF
    best = Plan("brute", cost=brute, brute_cost=brute)
    if not na or not nb:
        return best
    h = np.concatenate([a, b])
    ns = min(len(h), _SAMPLE, max(_SAMPLE_MIN, len(h) // 8))
    s = h if len(h) <= ns else h[np.random.default_rng(0).choice(len(h), ns, False)]
    stats: dict[tuple[int, int], object] = {}
    for widths in layouts():
        dp: dict[int, tuple[float, tuple[int, ...]]] = {0: (0.0, ())}
        for blk in zip(offsets(widths), widths, strict=True):
            if blk not in stats:
                stats[blk] = block_stats(s, len(h), *blk)
            costs = [_cross_table_cost(na, nb, blk[1], t, stats[blk]) for t in range(5)]
            nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
            for k, (c, ts) in dp.items():
                for t in range(-1, MAX_THRESHOLD + 1):
                    k2, c2 = min(R + 1, k + t + 1), c + (costs[t] if t >= 0 else 0.0)
                    if k2 not in nxt or c2 < nxt[k2][0]:
                        nxt[k2] = (c2, ts + (t,))
            dp = nxt
        got = dp.get(R + 1)
        if got is not None and got[0] < best.cost:
            best = Plan("tables", widths, got[1], got[0], brute)
    return best


def cross_pairs(
    a: np.ndarray,
    b: np.ndarray,
    R: int,
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    threads: int = 1,
    force: Plan | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, d): every pair with ``d = popcount(a[i] ^ b[j]) <= R`` (int64 positions into
    ``a`` and ``b``, uint8 distances), each once, in no particular order. The table layout is
    :func:`cross_plan`'s; ``threads``: a table's patterns on that many
    threads (the same answer)."""
    if not 0 <= R <= 64:
        raise ValueError("radius must be between 0 and 64")
    a, b = as_uint64(a), as_uint64(b)
    if not len(a) or not len(b):
        return _empty()
    pl = force or cross_plan(a, b, R)
    if pl.method == "brute":
        out = brute_cross(a, b, R, cancelled)
        if progress:
            progress(1, 1)
        return out
    check_layout(pl.widths, pl.thresholds, R)
    tables = [
        (o, w, t)
        for o, w, t in zip(offsets(pl.widths), pl.widths, pl.thresholds, strict=True)
        if t >= 0
    ]
    found: list[tuple[np.ndarray, ...]] = []
    earlier: list[tuple[np.uint64, int]] = []
    threads = max(1, int(threads))
    # one bucket index for every table (a table's keys are below 1 << its width), its entries
    # reset after each: a fresh 4-16 MB array a table cost page faults on every scan
    bid = np.full(1 << max(w for _o, w, _t in tables), -1, dtype=np.int32)
    for k, (off, w, t) in enumerate(tables):
        if cancelled and cancelled():
            raise InterruptedError("cancelled")
        qa, tb = _Sorted(a, off, w), _Sorted(b, off, w)
        bid[tb.uk] = np.arange(len(tb.uk), dtype=np.int32)
        pats = patterns(w, t)
        if threads == 1 or len(pats) < 2 * threads:
            found += _probe(qa, tb, bid, pats, R, earlier, cancelled)
        else:
            parts = np.array_split(pats, threads)
            with ThreadPoolExecutor(threads) as pool:
                job = partial(_probe, qa, tb, bid, R=R, earlier=earlier, cancelled=cancelled)
                for got in pool.map(lambda p, job=job: job(pats=p), parts):
                    found += got
        earlier.append((np.uint64(((1 << w) - 1) << off), t))
        bid[tb.uk] = -1
        del qa, tb
        if progress:
            progress(k + 1, len(tables))
    return _cat(found)
