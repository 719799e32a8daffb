"""All pairs of 64-bit hashes within Hamming radius R — exactly the brute-force answer, far cheaper.

Method: multi-index hashing (Norouzi et al.) with per-block thresholds (the general pigeonhole
principle, as in Qin et al.'s pigeonring / GPH):

* Cut the 64 bits into blocks of at most 24 bits (``widths``; bits left over are not indexed) and
  give each block a threshold ``t_i`` (-1 = not indexed) with ``sum(t_i + 1) >= R + 1``. If a
  pair differed in more than ``t_i`` bits in every block it would differ in at least
  ``sum(t_i + 1) > R`` bits, so every pair within R agrees to within ``t_i`` bits on some block.
  Unequal thresholds matter: for R = 6 over three 21-bit blocks, (2, 1, 1) probes 276 patterns
  per key where the classic (2, 2, 2) probes 696.
* One table per indexed block. Its keys index a direct table (``2**width`` slots); the hashes are
  sorted by key, so a bucket is a contiguous run. Only distinct keys are probed (clustered data
  has far fewer than N): for each XOR pattern ``p`` of weight 1..t the bucket pair
  ``(u, u ^ p)`` is taken once, from the side where the highest bit of ``p`` is 0, and the
  weight-0 pattern gives the pairs inside each bucket. Each bucket pair's cross product is
  expanded in bounded chunks and verified with ``np.bitwise_count``.
* A pair is emitted only by the *first* table whose block is within its threshold (one masked
  popcount per earlier table on the few verified pairs), so no pair is emitted twice and no
  global dedupe is needed. Memory stays bounded: per table O(N + 2**width), per chunk O(_CHUNK).
* :func:`plan` (in :mod:`neighbors_plan`) picks widths and thresholds with a cost model (probes, candidates estimated from a
  sample's real bucket collisions, keys) and falls back to a blocked brute-force scan when that
  is cheaper (small N with large R).

Measured speed and memory against the blocked brute force: README's benchmark table
(tests/bench/bench_neighbors.py).

Output: ``(i, j, d)`` arrays with i < j, sorted by (i, j): i and j int32 (int64 from 2**31
hashes on), d uint8 — 9 bytes a pair, so the 10**8 pairs of 10M clustered hashes fit in memory.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from annotator.core.dedup.neighbors_plan import (
    PROBE_BATCH,
    Plan,
    as_uint64,
    check_layout,
    n_patterns,
    offsets,
    patterns,
    plan,
    popcount,
)
from annotator.model import CancelledFn, ProgressFn

__all__ = ["brute_force_pairs", "clustered_hashes", "pairs_within", "table_pairs"]

_CHUNK = 1 << 22  # candidate pairs verified at once (~150 MB of temporaries)
_PART = 1 << 23  # packed output pairs per stored part (64 MB)
_RANK_MAX = 32  # candidate ranges up to this long are verified by rank, longer ones expanded
_BF_COLS = 8192  # brute-force block: 32 x 8192 hashes (2 MB of XOR, fits in L2)
_BF_ROWS = 32


# -- output ---------------------------------------------------------------------------------
class _Pairs:
    """Collects (i, j, d) with i < j, packed into one int64 (i << 35 | j << 7 | d) when
    N < 2**28, in a staging buffer flushed to parts of _PART values: parts that big are their
    own memory mappings, so freeing them after the final concatenation gives the memory back
    (small parts would stay resident in the heap and nearly double the peak)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.packed = n < (1 << 28)
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.stage = np.empty(0, dtype=np.int64)
        self.fill = 0

    def add(self, i: np.ndarray, j: np.ndarray, d: np.ndarray) -> None:
        if not len(i):
            return
        lo = np.minimum(i, j).astype(np.int64)
        hi = np.maximum(i, j).astype(np.int64)
        if not self.packed:
            self.parts.append((lo, hi, d.astype(np.int64)))
            return
        lo <<= 35
        hi <<= 7
        lo |= hi
        lo |= d
        if len(lo) >= _PART // 2:
            self._flush()  # what is staged goes first: the output keeps the order of the adds
            self.parts.append((lo,))
            return
        if self.fill + len(lo) > len(self.stage):
            self._flush()
            if not len(self.stage):
                self.stage = np.empty(_PART, dtype=np.int64)
        self.stage[self.fill : self.fill + len(lo)] = lo
        self.fill += len(lo)

    def _flush(self) -> None:
        if self.fill:
            self.parts.append((self.stage[: self.fill].copy(),))
        self.fill = 0

    def finish(self, ordered: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(i, j, d), sorted by (i, j) — or, with ``ordered=False``, in no particular order
        and decoded part by part, each part freed once decoded: the peak is then the 9 bytes a
        pair of the answer instead of 25 (parts, their concatenation and the answer)."""
        idt = np.int32 if self.n < (1 << 31) else np.int64
        if not self.parts and not self.fill:
            return np.zeros(0, idt), np.zeros(0, idt), np.zeros(0, np.uint8)
        if self.packed and not ordered:
            self._flush()
            self.stage = np.empty(0, dtype=np.int64)
            total = sum(len(x[0]) for x in self.parts)
            i, j, d = np.empty(total, idt), np.empty(total, idt), np.empty(total, np.uint8)
            at = 0
            self.parts.reverse()
            while self.parts:
                (p,) = self.parts.pop()
                for s in range(0, len(p), _CHUNK):
                    q = p[s : s + _CHUNK]
                    e = at + len(q)
                    d[at:e] = q & 127
                    j[at:e] = (q >> 7) & ((1 << 28) - 1)
                    i[at:e] = q >> 35
                    at = e
                    del q
                del p  # this part's memory goes back now
            return i, j, d
        if self.packed:
            self._flush()
            self.stage = np.empty(0, dtype=np.int64)
            p = np.concatenate([x[0] for x in self.parts])
            self.parts = []
            p.sort()
            i, j, d = np.empty(len(p), idt), np.empty(len(p), idt), np.empty(len(p), np.uint8)
            for s in range(0, len(p), _CHUNK):  # decode in chunks: bounded temporaries
                q = p[s : s + _CHUNK]
                d[s : s + _CHUNK] = q & 127
                j[s : s + _CHUNK] = (q >> 7) & ((1 << 28) - 1)
                i[s : s + _CHUNK] = q >> 35
            return i, j, d
        i = np.concatenate([x[0] for x in self.parts])
        j = np.concatenate([x[1] for x in self.parts])
        d = np.concatenate([x[2] for x in self.parts])
        order = np.lexsort((j, i))
        return i[order].astype(idt), j[order].astype(idt), d[order].astype(np.uint8)


# -- brute force -----------------------------------------------------------------------------
def brute_force_pairs(
    h: np.ndarray,
    R: int,
    cancelled: CancelledFn | None = None,
    progress: ProgressFn | None = None,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocked brute force: blocks of queries x all later hashes, with bitwise_count.

    Blocks are small (_BF_ROWS x _BF_COLS) and reuse three buffers, so the XOR, popcount and
    compare stay in cache. With ``rows`` (sorted query indices), only pairs involving those
    queries (against all hashes) are returned — used by the benchmark to time and check a
    sample.
    """
    h = as_uint64(h)
    n = len(h)
    out = _Pairs(n)
    qs = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    xb = np.empty((_BF_ROWS, _BF_COLS), dtype=np.uint64)
    db = np.empty((_BF_ROWS, _BF_COLS), dtype=np.uint8)
    mb = np.empty((_BF_ROWS, _BF_COLS), dtype=bool)
    for s in range(0, len(qs), _BF_ROWS):
        if cancelled and cancelled():
            raise InterruptedError("cancelled")
        q = qs[s : s + _BF_ROWS]
        hq = h[q][:, None]
        first = int(q[0]) if rows is None else 0
        for c0 in range(first, n, _BF_COLS):
            cols = h[None, c0 : c0 + _BF_COLS]
            x, d, m = (z[: len(q), : cols.shape[1]] for z in (xb, db, mb))
            np.bitwise_xor(hq, cols, out=x)
            np.bitwise_count(x, out=d)
            np.less_equal(d, R, out=m)
            a, b = np.nonzero(m)
            if not len(a):
                continue
            dd = d[a, b]
            a = q[a]
            b = b + c0
            keep = b > a if rows is None else b != a
            out.add(a[keep], b[keep], dd[keep])
        if progress:
            progress(min(s + _BF_ROWS, len(qs)), len(qs))
    i, j, d = out.finish()
    if rows is not None and len(i):  # a pair of two sampled queries was found from both ends
        k = np.r_[True, (i[1:] != i[:-1]) | (j[1:] != j[:-1])]
        i, j, d = i[k], j[k], d[k]
    return i, j, d


# -- the table search ---------------------------------------------------------------------------
class _Table:
    """One indexed block: hashes sorted by key, distinct keys, a dense key -> bucket map."""

    def __init__(self, h: np.ndarray, off: int, b: int) -> None:
        key = ((h >> np.uint64(off)) & np.uint64((1 << b) - 1)).astype(np.int64)
        order = np.argsort(key, kind="stable")
        skey = key[order]
        del key
        self.hs = h[order]
        n = len(h)
        self.idx = order.astype(np.int32) if n < (1 << 31) else order
        del order
        pdt = np.int32 if n < (1 << 31) else np.int64  # sorted positions
        first = np.flatnonzero(np.r_[True, skey[1:] != skey[:-1]]) if n else np.zeros(0, int)
        self.uk = skey[first]  # distinct keys, ascending (int64)
        del skey
        self.su = first.astype(pdt)  # bucket start (sorted position)
        self.cu = np.diff(np.r_[first, n]).astype(pdt)  # bucket size
        self.bid = np.full(1 << b, -1, dtype=np.int32)  # key -> bucket number
        self.bid[self.uk] = np.arange(len(self.uk), dtype=np.int32)
        self.b = b


def _bucket_pairs_to_ranges(
    sa: np.ndarray, ca: np.ndarray, sb: np.ndarray, cb: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bucket pairs -> one entry per member of bucket a: (position, b start, b size)."""
    if len(ca) and int(ca.max()) == 1:
        return sa, sb, cb
    e = int(ca.sum())
    base = np.cumsum(ca) - ca
    pa = np.repeat(sa - base, ca)
    pa += np.arange(e, dtype=pa.dtype)
    return pa, np.repeat(sb, ca), np.repeat(cb, ca)


class _Search:
    def __init__(
        self,
        h: np.ndarray,
        R: int,
        widths: tuple[int, ...],
        thresholds: tuple[int, ...],
        progress: ProgressFn | None,
        cancelled: CancelledFn | None,
        ordered: bool = True,
        threads: int = 1,
    ) -> None:
        self.h, self.R = h, R
        self.ordered = ordered
        self.threads = max(1, int(threads))
        # on threads, each thread's chunk of candidates is smaller: the temporaries stay about
        # those of one thread, whatever the core count
        self.chunk = _CHUNK if self.threads == 1 else max(1 << 18, _CHUNK // self.threads)
        self.lock = threading.Lock()  # the counters, shared by the threads
        self.local = threading.local()  # .out: the pairs of the bit a thread is probing
        self.out = _Pairs(len(h))
        offs = offsets(widths)
        self.tables = [
            (o, b, t) for o, b, t in zip(offs, widths, thresholds, strict=True) if t >= 0
        ]
        self.progress, self.cancelled = progress, cancelled
        self.total = sum(n_patterns(b, t) for _, b, t in self.tables)
        self.done = 0
        self.stop = False  # set when one thread's bit failed: the others stop too
        self.candidates = 0  # counters for the cost model (tests/bench)
        self.probes = 0

    def run(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        earlier: list[tuple[np.uint64, int]] = []
        for off, b, t in self.tables:
            self._check()
            tab = _Table(self.h, off, b)
            self._one_table(tab, t, earlier)
            del tab
            earlier.append((np.uint64(((1 << b) - 1) << off), t))
        return self.out.finish(self.ordered)

    def _check(self) -> None:
        if self.cancelled and self.cancelled():
            raise InterruptedError("cancelled")

    def _tick(self, k: int) -> None:
        self.done += k
        if self.progress:
            self.progress(self.done, self.total)

    def _one_table(self, tab: _Table, t: int, earlier: list[tuple[np.uint64, int]]) -> None:
        # weight 0: pairs inside each bucket (member x with members x+1 .. end)
        big = tab.cu >= 2
        s, c = tab.su[big], tab.cu[big]
        if len(s):
            m = c - 1
            e = int(m.sum())
            base = np.cumsum(m) - m
            pa = np.repeat(s - base, m)
            pa += np.arange(e, dtype=pa.dtype)
            end = np.repeat(s + c, m)
            self._ranges(tab, pa, pa + 1, end - pa - 1, earlier)
        self._tick(1)
        if t == 0:
            return
        if self.threads == 1:
            for hb in range(tab.b):
                self._tick(self._probe_bit(tab, t, hb, earlier, PROBE_BATCH))
            return
        # bits on a thread pool (NumPy releases the GIL in the work); each thread's batches
        # are smaller so the temporaries stay those of one thread; progress from this thread
        batch = max(1 << 16, PROBE_BATCH // self.threads)
        with ThreadPoolExecutor(self.threads) as pool:
            futs = [pool.submit(self._bit_apart, tab, t, hb, earlier, batch) for hb in range(tab.b)]
            try:
                for f in futs:  # each bit's pairs join the output in bit order, as on one thread
                    done, parts = f.result()
                    self.out._flush()
                    self.out.parts.extend(parts)
                    self._tick(done)
            finally:
                self.stop = True  # a failed or cancelled bit stops the others early
                for f in futs:
                    f.cancel()
            self.stop = False

    def _bit_apart(
        self, tab: _Table, t: int, hb: int, earlier: list[tuple[np.uint64, int]], batch: int
    ) -> tuple[int, list[tuple[np.ndarray, ...]]]:
        """:meth:`_probe_bit` on a thread, its pairs collected apart: (patterns done, parts)."""
        own = _Pairs(self.out.n)
        self.local.out = own
        try:
            done = self._probe_bit(tab, t, hb, earlier, batch)
        finally:
            self.local.out = None
        own._flush()
        return done, own.parts

    def _probe_bit(
        self, tab: _Table, t: int, hb: int, earlier: list[tuple[np.uint64, int]], batch: int
    ) -> int:
        """Probe every key with bit ``hb`` clear against the keys that differ from it in bit
        ``hb`` and at most t - 1 lower bits (each bucket pair once); returns the patterns done."""
        self._check()
        uk = tab.uk
        pats = patterns(hb, t - 1) | np.int64(1 << hb)
        aidx = np.flatnonzero(((uk >> hb) & 1) == 0)
        if not len(aidx):
            return len(pats)
        ak = uk[aidx]
        per = max(1, batch // len(aidx))
        for p0 in range(0, len(pats), per):
            if self.stop:
                raise InterruptedError("cancelled")
            pb = pats[p0 : p0 + per]
            tgt = (ak[None, :] ^ pb[:, None]).reshape(-1)
            bj = np.take(tab.bid, tgt)
            with self.lock:
                self.probes += len(tgt)
            hit = np.flatnonzero(bj >= 0)
            bj = bj[hit]
            ai = aidx[hit % len(aidx)] if len(pb) > 1 else aidx[hit]
            ca, cb = np.take(tab.cu, ai), np.take(tab.cu, bj)
            sa, sb = np.take(tab.su, ai), np.take(tab.su, bj)
            one = (ca == 1) & (cb == 1)  # most bucket pairs: one candidate, no expansion
            if one.all():
                self._pairs(tab, sa, sb, earlier)
            else:
                k = np.flatnonzero(one)
                self._pairs(tab, sa[k], sb[k], earlier)
                k = np.flatnonzero(~one)
                pa, sb, cb = _bucket_pairs_to_ranges(sa[k], ca[k], sb[k], cb[k])
                self._ranges(tab, pa, sb, cb, earlier)
        return len(pats)

    def _ranges(
        self,
        tab: _Table,
        pa: np.ndarray,
        sb: np.ndarray,
        cb: np.ndarray,
        earlier: list[tuple[np.uint64, int]],
    ) -> None:
        """Verify every pair (pa[k], sb[k] + x) for x < cb[k] (sorted positions), in chunks.

        Short ranges (the vast majority) go "by rank": entries sorted by range length, then for
        x = 0, 1, ... the entries longer than x form a prefix, so each candidate costs one add,
        one gather, xor and popcount (no index expansion). Long ranges are expanded with repeat.
        """
        if not len(pa):
            return
        long_ = cb > _RANK_MAX
        if long_.any():
            self._ranges_repeat(tab, pa[long_], sb[long_], cb[long_], earlier)
            keep = ~long_
            pa, sb, cb = pa[keep], sb[keep], cb[keep]
        cum = np.cumsum(cb, dtype=np.int64)
        start = 0
        while start < len(pa):
            base = int(cum[start - 1]) if start else 0
            end = int(np.searchsorted(cum, base + self.chunk, side="right"))
            end = max(end, start + 1)
            p, q, c = pa[start:end], sb[start:end], cb[start:end]
            start = end
            one = c == 1
            if one.all():
                self._pairs(tab, p, q, earlier)
                continue
            k = np.flatnonzero(one)
            self._pairs(tab, p[k], q[k], earlier)
            k = np.flatnonzero(~one)
            p, q, c = p[k], q[k], c[k]
            top = int(c.max())
            o = np.argsort(-c.astype(np.int8), kind="stable")  # radix sort, descending
            p, q, c = p[o], q[o], c[o]
            longer = len(c) - np.cumsum(np.bincount(c, minlength=top + 1))  # ranges longer than x
            ha = np.take(tab.hs, p)
            found: list[tuple[np.ndarray, ...]] = []
            for x in range(top):
                k = int(longer[x])
                qx = q[:k] + x if x else q[:k]
                hx = np.take(tab.hs, qx)
                hx ^= ha[:k]
                with self.lock:
                    self.candidates += k
                d = popcount(hx)
                ok = np.flatnonzero(d <= self.R)
                if len(ok):
                    found.append((hx[ok], d[ok], p[ok], qx[ok]))
            if found:
                self._emit(tab, *(np.concatenate(z) for z in zip(*found, strict=True)), earlier)

    def _pairs(
        self, tab: _Table, ia: np.ndarray, ib: np.ndarray, earlier: list[tuple[np.uint64, int]]
    ) -> None:
        """Verify the candidate pairs (ia[k], ib[k]) (sorted positions)."""
        if not len(ia):
            return
        with self.lock:
            self.candidates += len(ia)
        x = np.take(tab.hs, ia)
        x ^= np.take(tab.hs, ib)
        d = popcount(x)
        ok = np.flatnonzero(d <= self.R)
        if len(ok):
            self._emit(tab, x[ok], d[ok], ia[ok], ib[ok], earlier)

    def _ranges_repeat(
        self,
        tab: _Table,
        pa: np.ndarray,
        sb: np.ndarray,
        cb: np.ndarray,
        earlier: list[tuple[np.uint64, int]],
    ) -> None:
        cum = np.cumsum(cb, dtype=np.int64)
        start = 0
        while start < len(pa):
            base = int(cum[start - 1]) if start else 0
            end = int(np.searchsorted(cum, base + self.chunk, side="right"))
            end = max(end, start + 1)
            c = cb[start:end]
            total = int(cum[end - 1]) - base
            ia = np.repeat(pa[start:end], c)
            off = (cum[start:end] - c - base).astype(sb.dtype)
            ib = np.repeat(sb[start:end] - off, c)
            ib += np.arange(total, dtype=ib.dtype)
            start = end
            self._pairs(tab, ia, ib, earlier)

    def _emit(
        self,
        tab: _Table,
        x: np.ndarray,
        d: np.ndarray,
        ia: np.ndarray,
        ib: np.ndarray,
        earlier: list[tuple[np.uint64, int]],
    ) -> None:
        """Verified pairs (sorted positions) -> output, unless an earlier table found them."""
        if earlier:
            keep = np.ones(len(x), dtype=bool)
            for mask, te in earlier:
                keep &= popcount(x & mask) > te
            d, ia, ib = d[keep], ia[keep], ib[keep]
        out = getattr(self.local, "out", None)
        (self.out if out is None else out).add(np.take(tab.idx, ia), np.take(tab.idx, ib), d)


def table_pairs(
    h: np.ndarray,
    R: int,
    widths: tuple[int, ...],
    thresholds: tuple[int, ...],
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    ordered: bool = True,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs within R with the given block layout (see module docstring); sorted by
    (i, j) unless ``ordered`` is False (less memory: see :meth:`_Pairs.finish`); a table's
    probing on ``threads`` threads."""
    widths, thresholds = tuple(widths), tuple(thresholds)
    check_layout(widths, thresholds, R)
    return _Search(as_uint64(h), R, widths, thresholds, progress, cancelled, ordered, threads).run()


def pairs_within(
    h: np.ndarray,
    R: int,
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    force: Plan | None = None,
    ordered: bool = True,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i < j) of ``h`` (uint64 or int64 hashes) with Hamming distance <= R.

    Exactly the brute-force answer, sorted by (i, j); with ``ordered=False`` the same pairs
    in no particular order, for callers that do not need it (the flag step): the table
    search's peak memory is then 9 bytes a pair less the sort's copies. ``threads``: the table
    search probes on that many threads (the same answer). The method is chosen by :func:`plan`.
    """
    if not 0 <= R <= 64:
        raise ValueError("radius must be between 0 and 64")
    h = as_uint64(h)
    pl = force or plan(h, R)
    if pl.method == "brute":
        return brute_force_pairs(h, R, cancelled, progress)
    return table_pairs(h, R, pl.widths, pl.thresholds, progress, cancelled, ordered, threads)


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
