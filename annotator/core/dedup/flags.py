"""Suspicion flags computed from stored hashes (no SQL, no Qt).

Kinds (each flag: kind, faces, Hamming distance, score — higher score = look first):

Duplicates come as GROUPS, one flag per group (flag rows stay <= the number of faces). A pair
of faces is a duplicate when it has the same SHA-256, or when it is a pHash candidate (within
the candidate radius R) that passes both verification tests of :mod:`annotator.core.dedup.verify`
(dHash distance, then SSIM of the 16x16 thumbnails). Groups are the connected components of
those pairs; a face that does not decode is never in one.

* ``cross_identity_dup`` — the group spans identities: a label conflict; score 2 + similarity
  (ranked first).
* ``exact_dup`` — one identity, all faces byte-identical; score 1.
* ``near_dup`` — one identity, at least one verified near copy; score = similarity.
  Each group flag carries its largest pHash distance and its lowest thumbnail similarity.
* ``outlier`` — a face whose pHash is far from its identity's bitwise-majority hash compared with
  the identity's own spread: z = (d - median) / (1.4826 * MAD + 1) >= OUTLIER_Z, identities with
  >= OUTLIER_MIN_FACES decodable faces only; score = z. A weak signal: ranked, not asserted.
* ``corrupt`` — does not decode (score 1); ``tiny`` — min side < TINY_PX (score 1 - side/TINY_PX);
  ``grayscale`` (score 0.25); ``blurry`` — sharpness < BLURRY_SHARPNESS
  (score 1 - sharpness/BLURRY_SHARPNESS).

Candidate radius: DEFAULT_RADIUS = 8 bits of pHash (every pHash has 32 bits set, so only even
radii differ). The demo's near copies (re-encoded, 1-3 px crops, +-10% brightness) are within 4
bits; unrelated aligned faces also collide within 8 bits, and more of them as the set grows
(pairs grow with N^2) — which is why a candidate is only a candidate until verified.

Blurry threshold: sharpness (annotator.core.dedup.hashing: Laplacian variance at about 64 px) of the demo's
synthetic faces at 112 and 250 px is >= 550 unblurred; after a Gaussian blur of sigma 2 px per 112 px
of face its median is 81-127, after sigma 3 px 26-43 (max 66). BLURRY_SHARPNESS = 60 flags the
latter and leaves sharp faces alone.

Everything is vectorised (flags are columns, see FlagSet). Memory: the rules work on slices
(PAIR_CHUNK pairs or flags, FACE_CHUNK faces), so their temporaries are bounded; what grows with
the pair count is the search's pair list (9 bytes a pair; the cheap test compacts it in place and
the pixel test walks it nearest-first without a sorted copy), and the pixel test holds the
thumbnails of one slice of at most VERIFY_CHUNK pairs. Flags are one per duplicate group, so
their columns grow with the faces, not the pairs. Measured time and memory: README's benchmark
table (tests/bench/bench_flags.py).

The keeper of a duplicate group is its largest-resolution face, then best (lowest) search rank, then lowest face id
(:func:`group_rows`, the one home of that rule).

Identity suspicion = sum over kinds of WEIGHTS[kind] * (share of the identity's faces with a flag
of that kind); flagged_count = faces with any flag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from annotator.core.dedup import crops, verify
from annotator.core.dedup.components import component_labels
from annotator.core.dedup.flagset import (
    CODE_WEIGHTS,
    KIND_CODE,
    KINDS,
    Flag,
    FlagBuilder,
    FlagSet,
)
from annotator.core.dedup.neighbors import pairs_within
from annotator.core.infra.blas import one_blas_thread
from annotator.core.infra.workers import usable_cores
from annotator.model import CancelledFn, ProgressFn
from annotator.settings import DEFAULTS, Values

DEFAULT_RADIUS = DEFAULTS.radius  # the thresholds' defaults and meanings: annotator.settings
PAIR_CHUNK = 1 << 20  # pairs (or flags) per slice of the vectorised rules
VERIFY_CHUNK = 1 << 19  # candidate pairs per slice of the pixel test (at most): its
# thumbnails (448 bytes a face, at most 2 faces a pair) stay under ~0.5 GB
VERIFY_FIRST = 1 << 15  # the first slice; each next one twice as large
PIXEL_PART = 1 << 14  # pairs per thread task of the pixel test
MAX_THREADS = 8  # threads of the search and the pixel test at most (each adds temporaries)
THUMB_BLOCK = 1 << 18  # faces per read of the thumbnails (a cancel check between reads)
THUMB_BUDGET = 1 << 30  # bytes of thumbnails read at once for the pixel test (~2.4M faces)
FACE_CHUNK = 1 << 18  # faces per slice of the majority-hash bit matrix
TINY_PX = DEFAULTS.tiny_px
BLURRY_SHARPNESS = DEFAULTS.blurry_sharpness
OUTLIER_Z = DEFAULTS.outlier_z
OUTLIER_MIN_FACES = DEFAULTS.outlier_min_faces


def _group_median(values: np.ndarray, seg: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Median of each segment of ``values`` (segments given by start ``seg`` and ``sizes``;
    values sorted within each segment)."""
    lo = values[seg + (sizes - 1) // 2]
    hi = values[seg + sizes // 2]
    return (lo + hi) / 2.0


def majority_outliers(
    phash: np.ndarray, identity: np.ndarray, min_faces: int = OUTLIER_MIN_FACES
) -> tuple[np.ndarray, np.ndarray]:
    """(distance to identity majority hash, z score) per face. z is NaN for identities of
    fewer than ``min_faces`` faces."""
    n = len(phash)
    dist = np.zeros(n, dtype=np.int64)
    z = np.full(n, np.nan)
    if n == 0:
        return dist, z
    order = np.argsort(identity, kind="stable")
    ids = identity[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], n]
    # majority hashes, in slices of ~FACE_CHUNK faces to bound the (faces x 64) bit matrix
    s = 0
    while s < len(starts):
        e = int(np.searchsorted(ends, starts[s] + FACE_CHUNK, side="right"))
        e = max(e, s + 1)
        lo, hi = starts[s], ends[e - 1]
        sel = order[lo:hi]
        h = phash[sel].astype(np.int64).view(np.uint64)
        bits = np.unpackbits(h.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
        seg = starts[s:e] - lo
        sums = np.add.reduceat(bits, seg, axis=0, dtype=np.int32)
        del bits
        sizes = np.diff(np.r_[seg, hi - lo])
        maj = (sums * 2 > sizes[:, None]).astype(np.uint8)
        maj_h = np.packbits(maj, axis=1).view(">u8").reshape(-1).astype(np.uint64)
        which = np.repeat(np.arange(len(seg)), sizes)
        dist[sel] = np.bitwise_count(h ^ maj_h[which]).astype(np.int64)
        s = e
    # robust z per identity (median and MAD of the distances), vectorised over identities
    sizes = ends - starts
    gid = np.repeat(np.arange(len(starts)), sizes)  # identity index per sorted position
    dsorted = dist[order]
    o1 = np.lexsort((dsorted, gid))
    med = _group_median(dsorted[o1].astype(np.float64), starts, sizes)
    dev = np.abs(dsorted - med[gid])
    o2 = np.lexsort((dev, gid))
    mad = _group_median(dev[o2], starts, sizes)
    zz = (dsorted - med[gid]) / (1.4826 * mad[gid] + 1.0)
    big = sizes[gid] >= min_faces
    z[order[big]] = zz[big]
    return dist, z


def group_rows(
    group: np.ndarray, face: np.ndarray, rank: np.ndarray, area: np.ndarray
) -> np.ndarray:
    """The keeper rule, in one place: in each duplicate group the keeper is the face with the
    largest image area, then the best (lowest) search rank, then the lowest face id.

    One entry per face (its group label, id, rank, width x height); returns the
    ``dup_groups`` rows (face id, group id = the keeper's face id, is_keeper), keepers first
    within each group."""
    order = np.lexsort((face, rank, -area, group))  # last key primary
    lab = group[order]
    first = np.r_[True, lab[1:] != lab[:-1]]
    faces = face[order]
    keeper_face = faces[np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))]
    return np.stack([faces, keeper_face, first.astype(np.int64)], axis=1)


def keepers(members: Sequence[tuple[int, int, int, int, int]]) -> list[tuple[int, int]]:
    """(group id, keeper face id) for stored groups given as (group id, face id, width,
    height, rank) rows — the same rule as :func:`group_rows` (a takedown that removes a
    group's keeper asks it for the next one)."""
    if not members:
        return []
    m = np.array(members, dtype=np.int64)
    rows = group_rows(m[:, 0], m[:, 1], m[:, 4], m[:, 2] * m[:, 3])
    group_of = dict(zip(m[:, 1].tolist(), m[:, 0].tolist(), strict=True))
    return [(group_of[f], f) for f, _k, first in rows.tolist() if first]


def _components(
    n: int, edges: list[tuple[np.ndarray, np.ndarray]], labels: np.ndarray | None = None
) -> np.ndarray:
    """Connected-component label per node of the graph with edges ``edges`` ((i, j) arrays),
    starting from the components ``labels`` (every node alone when None).

    Edges go in slices of PAIR_CHUNK: each slice's edges join the current components
    (``labels[i]``, ``labels[j]``), and the components of that small graph relabel them
    (:func:`components.component_labels`: scipy's numbering, without importing scipy)."""
    if labels is None:
        labels = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    for i, j in edges:
        for s in range(0, len(i), PAIR_CHUNK):
            a, b = labels[i[s : s + PAIR_CHUNK]], labels[j[s : s + PAIR_CHUNK]]
            relabel = component_labels(n, a, b)
            del a, b
            labels = relabel.astype(labels.dtype)[labels]
    return labels


def _nearest_first(
    i: np.ndarray, j: np.ndarray, d: np.ndarray, radius: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The pairs (i, j, d) in slices, nearest distance first: VERIFY_FIRST pairs, each next
    slice twice as large up to VERIFY_CHUNK (the nearest pairs join most groups early, and the
    later slices skip pairs already joined). Distances are small integers, so this walks the
    arrays once per distance instead of sorting them: no sorted copy of the pair list."""
    step = VERIFY_FIRST
    pend: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    size = 0
    for dist in range(int(radius) + 1):
        for s in range(0, len(d), PAIR_CHUNK):
            at = np.flatnonzero(d[s : s + PAIR_CHUNK] == dist)
            while len(at):
                take = at[: step - size]
                at = at[len(take) :]
                pend.append((i[s + take], j[s + take], d[s + take]))
                size += len(take)
                if size >= step:
                    yield tuple(np.concatenate(c) for c in zip(*pend, strict=True))  # type: ignore[misc]
                    pend, size = [], 0
                    step = min(2 * step, VERIFY_CHUNK)
    if pend:
        yield tuple(np.concatenate(c) for c in zip(*pend, strict=True))  # type: ignore[misc]


def _sha_arrays(
    sha_groups: Sequence[Sequence[int]] | tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """(face ids, group index) of byte-identical faces, from a list of id lists or arrays."""
    if (
        isinstance(sha_groups, tuple)
        and len(sha_groups) == 2
        and isinstance(sha_groups[0], np.ndarray)
    ):
        return np.asarray(sha_groups[0], np.int64), np.asarray(sha_groups[1], np.int64)
    lens = [len(g) for g in sha_groups]
    faces = np.fromiter((int(f) for g in sha_groups for f in g), np.int64, sum(lens))
    return faces, np.repeat(np.arange(len(lens), dtype=np.int64), lens)


def _group_flags(
    fb: FlagBuilder,
    labels: np.ndarray,
    idx: np.ndarray,
    face: np.ndarray,
    ident: np.ndarray,
    sha_of: np.ndarray,
    ei: np.ndarray,
    ed: np.ndarray,
    esim: np.ndarray,
) -> None:
    """One flag per duplicate group (the components ``labels`` of the positions ``idx``).

    Kind: ``cross_identity_dup`` when the group spans identities, else ``exact_dup`` when all
    its faces are byte-identical, else ``near_dup``. Distance: the largest pHash distance of
    the group's verified pairs (0 for byte-identical copies); similarity: their lowest
    thumbnail SSIM (1.0 for byte-identical copies). Score: cross 2 + similarity (a label
    conflict comes first), exact 1.0, near = similarity.
    ``ei``/``ed``/``esim``: one face position, distance and similarity per verified pair."""
    order = np.lexsort((face[idx], labels[idx]))
    pos = idx[order]
    lab = labels[pos]
    start = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    size = np.diff(np.r_[start, len(pos)])
    g = np.repeat(np.arange(len(start)), size)  # group index per member
    # identities per group: more than one -> a label conflict
    id_lo = np.minimum.reduceat(ident[pos], start)
    id_hi = np.maximum.reduceat(ident[pos], start)
    sh = sha_of[pos]
    sh_lo = np.minimum.reduceat(sh, start)
    sh_hi = np.maximum.reduceat(sh, start)
    exact = (sh_lo >= 0) & (sh_lo == sh_hi)
    cross = id_lo != id_hi
    # the verified pairs' figures per group
    dist = np.zeros(len(start), np.int64)
    sim = np.ones(len(start), np.float64)
    if len(ei):
        eg = np.searchsorted(lab[start], labels[ei])
        np.maximum.at(dist, eg, ed.astype(np.int64))
        np.minimum.at(sim, eg, esim.astype(np.float64))
    score = np.where(cross, 2.0 + sim, np.where(exact, 1.0, sim))
    del g
    for kind, m in (
        ("cross_identity_dup", cross),
        ("exact_dup", ~cross & exact),
        ("near_dup", ~cross & ~exact),
    ):
        if not m.any():
            continue
        members = np.repeat(m, size)
        fb.add_csr(kind, size[m], face[pos[members]], dist[m], score[m], sim[m])


def _pixel_test(
    pool: ThreadPoolExecutor | None,
    thumbs: np.ndarray,
    ua: np.ndarray,
    ub: np.ndarray,
    colour_max: float = verify.COLOUR_MAX,
) -> np.ndarray:
    """verify.pixel_test, in parts of PIXEL_PART pairs spread over the pool's threads."""
    if pool is None or len(ua) < 2 * PIXEL_PART:
        return verify.pixel_test(thumbs, ua, ub, colour_max)
    parts = [slice(s, s + PIXEL_PART) for s in range(0, len(ua), PIXEL_PART)]
    return np.concatenate(
        list(pool.map(lambda sl: verify.pixel_test(thumbs, ua[sl], ub[sl], colour_max), parts))
    )


def _read_thumbs(
    thumbs_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    ids: np.ndarray,
    cancelled: CancelledFn | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``thumbs_of(ids)`` in blocks of THUMB_BLOCK faces, with a cancel check between them."""
    thumbs = np.empty((len(ids), verify.THUMB_BYTES), np.uint8)
    present = np.empty(len(ids), bool)
    for s in range(0, len(ids), THUMB_BLOCK):
        if cancelled and cancelled():
            raise InterruptedError
        thumbs[s : s + THUMB_BLOCK], present[s : s + THUMB_BLOCK] = thumbs_of(
            ids[s : s + THUMB_BLOCK]
        )
    return thumbs, present


def _positions(face: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``face`` of those of ``ids`` that are there, which ones are)."""
    n = len(face)
    forder = np.argsort(face, kind="stable")
    fsorted = face[forder]
    p = np.searchsorted(fsorted, ids)
    p[p >= n] = 0
    ok = fsorted[p] == ids if n else np.zeros(len(ids), bool)
    return forder[p[ok]], ok


def compute_flags(
    data: np.ndarray,
    sha_groups: Sequence[Sequence[int]] | tuple[np.ndarray, np.ndarray],
    radius: int = DEFAULT_RADIUS,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    thumbs_of: Callable[[np.ndarray], np.ndarray] | None = None,
    threads: int | None = None,
    values: Values = DEFAULTS,
    images_of: Callable[[np.ndarray], list[bytes | None]] | None = None,
) -> FlagSet:
    """All flags of a project from its hashes (``annotator.store.hashes.load_hashes`` rows).

    ``sha_groups``: byte-identical faces, as lists of face ids or as (face ids, group index)
    arrays. ``thumbs_of(face_ids)``: (the (k, 256) uint8 verification thumbnails of those faces,
    which of them have one) (``annotator.store.hashes.load_thumbs``), asked once for the faces of the candidate pairs
    that pass the cheap test. ``images_of(face_ids)``: their photos' bytes (None: unreadable),
    for the crop stage's fine test (core/dedup/crops.py; without it that stage is skipped). ``progress(done, total)`` runs from 0 to 1000. The pixel test
    and the candidate search run on ``threads`` threads (default: one per usable core, at most
    MAX_THREADS; NumPy and BLAS release the GIL). ``values``: the project's thresholds
    (:mod:`annotator.settings`; the candidate radius is ``radius``).
    """
    out = FlagSet()
    # views into data where the dtype already fits (no 8-byte copy a face while the search,
    # the flag step's largest phase, runs)
    face = data["face_id"].astype(np.int64, copy=False)
    fdt = np.int32 if len(face) == 0 or (face.min() >= 0 and face.max() < 2**31) else np.int64
    fb = FlagBuilder(fdt)
    ident = data["identity_id"].astype(np.int64, copy=False)
    n = len(data)

    def tick(done: int) -> None:
        if progress:
            progress(done, 1000)

    tick(0)
    ok = data["corrupt"] == 0
    # byte-identical decodable faces (a face that does not decode is never a duplicate)
    g_face, g_id = _sha_arrays(sha_groups)
    g_pos, known = _positions(face, g_face)
    g_id = g_id[known]
    keep = ok[g_pos]
    g_pos, g_id = g_pos[keep], g_id[keep]
    sha_of = np.full(n, -1, dtype=np.int32 if len(g_id) < 2**31 else np.int64)
    sha_of[g_pos] = g_id
    del g_face, known, keep

    # candidates: pHash within the radius
    threads = threads if threads is not None else min(MAX_THREADS, usable_cores())
    okidx = np.flatnonzero(ok).astype(np.int32 if n < 2**31 else np.int64)

    def search_progress(done: int, total: int) -> None:
        tick(50 + int(650 * done / max(total, 1)))

    i, j, d = pairs_within(
        data["phash"][okidx],
        radius,
        progress=search_progress,
        cancelled=cancelled,
        ordered=False,
        threads=threads,
    )
    out.pairs = len(i)
    tick(700)
    # verification, part 1 (slice by slice): positions into data instead of into the decodable
    # faces; drop pairs that are byte-identical anyway (joined below by their SHA-256) and pairs
    # failing the cheap dHash test; the kept pairs move to the front of the same arrays (no
    # second copy of the pair list, which is the largest thing the flag step holds)
    if n >= np.iinfo(i.dtype).max:
        i, j = i.astype(np.int64), j.astype(np.int64)
    okp = okidx.astype(i.dtype)
    del okidx
    dh = data["dhash"]
    kept_n = 0
    for s in range(0, len(i), PAIR_CHUNK):
        a, b = okp[i[s : s + PAIR_CHUNK]], okp[j[s : s + PAIR_CHUNK]]
        m = ~((sha_of[a] >= 0) & (sha_of[a] == sha_of[b]))
        m &= verify.cheap_test(dh[a], dh[b], values.dhash_max)
        k = int(np.count_nonzero(m))
        i[kept_n : kept_n + k] = a[m]
        j[kept_n : kept_n + k] = b[m]
        d[kept_n : kept_n + k] = d[s : s + PAIR_CHUNK][m]
        kept_n += k
    del okp
    # the survivors in arrays of their own size, one at a time (each search buffer is freed
    # before the next copy is made)
    i = i[:kept_n].copy()
    j = j[:kept_n].copy()
    d = d[:kept_n].copy()
    # thumbnails: read once for every face the surviving candidates name when they fit in
    # THUMB_BUDGET (each face is then read once, whatever its number of pairs), else per slice
    # of the pixel test below (bounded memory; a face in many slices is read again)
    named = np.zeros(n, bool)  # a byte a face, not a sorted copy of the pairs
    named[i] = True
    named[j] = True
    all_faces = np.flatnonzero(named).astype(i.dtype)
    del named
    if len(all_faces) and thumbs_of is None:
        raise ValueError("near-duplicate candidates need thumbnails (thumbs_of)")
    cached = None
    if 0 < len(all_faces) * verify.THUMB_BYTES <= THUMB_BUDGET and thumbs_of is not None:
        cached = (all_faces, *_read_thumbs(thumbs_of, face[all_faces], cancelled))
    del all_faces
    # groups start from the byte-identical copies (decodable ones; see sha_of)
    sha_edges = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(g_pos):
        o = np.argsort(g_id, kind="stable")
        gp, gg = g_pos[o], g_id[o]
        first = np.r_[True, gg[1:] != gg[:-1]]
        head = np.maximum.accumulate(np.where(first, np.arange(len(gp)), 0))
        sha_edges = (gp[head[~first]], gp[~first])
    labels = _components(n, [sha_edges])
    # part 2, the pixel test: nearest candidates first, in slices; a pair whose faces an earlier
    # verified pair (or their bytes) already joined is not tested again — a group needs one
    # verified path between its faces, so the work stays near the number of groups' edges
    # even where copies are many
    kept: list[tuple[np.ndarray, ...]] = []
    done = 0
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    try:
        with one_blas_thread():  # once for all threads (the setting is process-wide)
            for a, b, dd in _nearest_first(i, j, d, radius):
                if cancelled and cancelled():
                    raise InterruptedError
                done += len(a)
                need = labels[a] != labels[b]
                a, b, dd = a[need], b[need], dd[need]
                if not len(a):
                    continue
                if cached is not None:
                    u, thumbs, present = cached
                else:
                    u = np.unique(np.concatenate([a, b]))
                    thumbs, present = thumbs_of(face[u])  # type: ignore[misc]
                ua, ub = np.searchsorted(u, a), np.searchsorted(u, b)
                sim = _pixel_test(pool, thumbs, ua, ub, values.colour_max)
                sim[~(present[ua] & present[ub])] = -1.0  # no thumbnail: never verified
                del thumbs, present, u, ua, ub
                v = sim >= values.ssim_min
                a, b, dd, sim = a[v], b[v], dd[v], sim[v]
                if len(a):
                    kept.append((a, b, dd, sim))
                    labels = _components(n, [(a, b)], labels)
                tick(700 + int(100 * done / max(len(i), 1)))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    del i, j, d
    # the second candidate source: crops (core/dedup/crops.py), after the pHash pairs have
    # joined what they could
    ci, cj, cd, csim, out.crop_pairs = crops.verified_pairs(
        data,
        np.flatnonzero(ok),
        labels,
        thumbs_of,
        images_of,
        threads,
        lambda dn, t: tick(800 + int(40 * dn / max(t, 1))),
        cancelled,
        values,
    )
    if len(ci):
        kept.append((ci, cj, cd, csim))
        labels = _components(n, [(ci, cj)], labels)
    del ci, cj, cd, csim
    i = np.concatenate([k[0] for k in kept]) if kept else np.zeros(0, np.int64)
    j = np.concatenate([k[1] for k in kept]) if kept else np.zeros(0, np.int64)
    d = np.concatenate([k[2] for k in kept]) if kept else np.zeros(0, np.uint8)
    sim = np.concatenate([k[3] for k in kept]) if kept else np.zeros(0, np.float32)
    del kept
    out.verified = len(i)
    tick(850)

    # duplicate groups: the components of verified pairs + byte-identical copies; one flag each
    if len(i) or len(sha_edges[0]):
        involved = np.zeros(n, dtype=bool)
        for gi, gj in ((i, j), sha_edges):
            involved[gi] = True
            involved[gj] = True
        idx = np.flatnonzero(involved)
        area = data["width"][idx].astype(np.int64) * data["height"][idx]
        out.groups = group_rows(labels[idx], face[idx], data["rank"][idx], area)
        _group_flags(fb, labels, idx, face, ident, sha_of, i, d, sim)
    del i, j, d, sim, labels
    tick(870)

    # outliers
    okidx = np.flatnonzero(ok)
    dist, z = majority_outliers(data["phash"][okidx], ident[okidx], values.outlier_min_faces)
    k = np.flatnonzero(z >= values.outlier_z)
    fb.add("outlier", face[okidx[k]][:, None], dist[k], z[k])

    # per-face quality flags
    k = np.flatnonzero(~ok)
    fb.add("corrupt", face[k][:, None], None, np.ones(len(k)))
    side = np.minimum(data["width"], data["height"]).astype(np.float64)
    tiny = values.tiny_px
    k = np.flatnonzero(ok & (side < tiny))
    fb.add("tiny", face[k][:, None], None, 1.0 - side[k] / tiny)
    k = np.flatnonzero(ok & (data["grayscale"] == 1))
    fb.add("grayscale", face[k][:, None], None, np.full(len(k), 0.25))
    sharp = data["sharpness"]
    blurry = values.blurry_sharpness
    k = np.flatnonzero(ok & (sharp >= 0) & (sharp < blurry))
    fb.add("blurry", face[k][:, None], None, 1.0 - sharp[k] / blurry)

    fb.build(out)
    out.suspicion = suspicion_arrays(out.kind, out.offsets, out.face_ids, face, ident)
    tick(1000)
    return out


def suspicion_arrays(
    kind: np.ndarray, offsets: np.ndarray, face_ids: np.ndarray, face: np.ndarray, ident: np.ndarray
) -> list[tuple[int, float, int]]:
    """(identity id, suspicion, flagged faces) for identities with any flagged face.

    Flags in columns (see :class:`FlagSet`); ``face``/``ident``: every scanned face and its
    identity. A face counts each kind once, however many flags of that kind it has.
    """
    if not len(face_ids) or not len(face):
        return []
    # one bit per kind per scanned face, set flag slice by flag slice (bounded temporaries)
    face = np.asarray(face, np.int64)
    order = np.argsort(face, kind="stable")
    fs = face[order]
    mask = np.zeros(len(fs), np.uint16)  # a bit per kind (> 8 kinds)
    kind = np.asarray(kind)
    offsets = np.asarray(offsets, np.int64)
    for s in range(0, len(kind), PAIR_CHUNK):
        e = min(s + PAIR_CHUNK, len(kind))
        f = np.asarray(face_ids[int(offsets[s]) : int(offsets[e])], np.int64)
        bit = np.repeat(np.left_shift(1, kind[s:e].astype(np.uint16)), np.diff(offsets[s : e + 1]))
        p = np.searchsorted(fs, f)
        p[p >= len(fs)] = 0
        known = fs[p] == f
        p, bit = p[known], bit[known].astype(np.uint16)
        for b in np.unique(bit).tolist():
            mask[p[bit == b]] |= np.uint16(b)  # one bit for all of them: repeats are harmless
    hitf = np.flatnonzero(mask)
    uid, size = np.unique(ident, return_counts=True)
    g = np.searchsorted(uid, np.asarray(ident)[order][hitf])
    m = mask[hitf]
    w = np.zeros(len(hitf))
    for k in range(len(KINDS)):
        w += ((m >> k) & 1) * CODE_WEIGHTS[k]
    score = np.bincount(g, weights=w, minlength=len(uid)) / size
    flagged = np.bincount(g, minlength=len(uid))
    hit = np.flatnonzero(flagged)
    return [(int(uid[x]), round(float(score[x]), 6), int(flagged[x])) for x in hit.tolist()]


def suspicion(
    flags: Sequence[Flag], face: np.ndarray, ident: np.ndarray
) -> list[tuple[int, float, int]]:
    """(identity id, suspicion, flagged faces) for identities with any flagged face."""
    kinds = np.array([KIND_CODE[f.kind] for f in flags], dtype=np.int8)
    counts = np.array([len(f.faces) for f in flags], dtype=np.int64)
    ids = np.fromiter((x for f in flags for x in f.faces), np.int64, int(counts.sum()))
    return suspicion_arrays(kinds, np.r_[0, np.cumsum(counts)], ids, face, ident)
