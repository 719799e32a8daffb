"""Nearest other identity centres, without comparing every face with every centre.

Exact k-nearest centres of each centre (blocked float32 matrix products over all centres), and
triangle-inequality bounds that let a face look only at its own centre's K nearest centres: a
face f of identity A can be closer than t to a centre B only if |c_A - c_B| < |f - c_A| + t,
so when its identity's K-th nearest centre is farther than that, no other centre can raise its
flag; otherwise the face is compared with every centre. The same holds for pairs of centres
(``same_person``). Every candidate's distance is recomputed the one canonical way
(:func:`canonical`), so the indexed and the exact computations agree to the last bit.
"""

from __future__ import annotations

import numpy as np

_NOT_LOADED = object()
# faiss's exact IndexFlatL2: the same search, measured several times faster here. Imported on
# first use (:func:`_load_faiss`): the import costs 0.1-0.2 s CPU a process, and a scan of a
# project without vectors never searches. None: not installed (the blocked NumPy search below
# does the same).
faiss: object = _NOT_LOADED


def _load_faiss() -> object:
    global faiss
    if faiss is _NOT_LOADED:
        try:
            import faiss as module  # type: ignore[import-not-found]
        except ImportError:  # pragma: no cover
            module = None
        faiss = module
    return faiss


K = 32  # nearest centres kept per centre
SLACK = 1e-4  # float32 distances are trusted to this much
TOP = 4  # candidates recomputed canonically per face
BLOCK = 2048  # query rows per block of a distance matrix


def canonical(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Distances of the rows of ``x`` to the rows of ``c`` (same shape), in float64."""
    diff = np.asarray(x, np.float64) - np.asarray(c, np.float64)
    return np.sqrt(np.einsum("...j,...j->...", diff, diff))


def _sq_dist(Q: np.ndarray, C: np.ndarray, c2: np.ndarray) -> np.ndarray:
    q = np.asarray(Q, np.float32)
    return np.maximum((q * q).sum(1)[:, None] + c2[None] - 2.0 * (q @ C.T), 0.0)


def knn(Q: np.ndarray, C: np.ndarray, k: int, exclude: np.ndarray | None = None):
    """(approximate float32 distances, indices) of the ``k`` nearest rows of ``C`` to each row
    of ``Q``, nearest first; ``exclude[i]``: a row of C never returned for query i."""
    C = np.ascontiguousarray(C, np.float32)
    k = min(k, len(C) - (exclude is not None))
    if k > 0 and len(Q) and _load_faiss() is not None:
        return _knn_faiss(np.ascontiguousarray(Q, np.float32), C, k, exclude)
    c2 = (C * C).sum(1)
    dist = np.empty((len(Q), max(k, 0)), np.float32)
    idx = np.empty((len(Q), max(k, 0)), np.int64)
    if k <= 0:
        return dist, idx
    step = max(1, min(BLOCK, (1 << 24) // max(len(C), 1)))
    for s in range(0, len(Q), step):
        D = _sq_dist(Q[s : s + step], C, c2)
        r = np.arange(len(D))
        if exclude is not None:
            D[r, exclude[s : s + step]] = np.inf
        if k < len(C):
            p = np.argpartition(D, k - 1, axis=1)[:, :k]
        else:
            p = np.tile(np.arange(len(C)), (len(D), 1))
        d = D[r[:, None], p]
        o = np.argsort(d, axis=1, kind="stable")
        idx[s : s + step] = p[r[:, None], o]
        dist[s : s + step] = np.sqrt(d[r[:, None], o])
    return dist, idx


def min_dist(Q: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Approximate float32 distance of each row of ``Q`` to its nearest row of ``C`` (inf
    without rows), by blocked matrix products: for a few centres (an incremental refresh's
    changed ones) against many faces, where an index costs more than it saves. Rows go a
    cache-sized block at a time (converted once into one buffer), best on one BLAS thread."""
    out = np.full(len(Q), np.inf, np.float32)
    if not len(Q) or not len(C):
        return out
    C = np.asarray(C, np.float32)
    c2 = (C * C).sum(1)
    cs = min(len(C), BLOCK * 2)
    rs = max(1, min(BLOCK * 2, (1 << 22) // cs))
    buf = np.empty((min(rs, len(Q)), C.shape[1]), np.float32)
    for r in range(0, len(Q), rs):
        q = buf[: min(rs, len(Q) - r)]
        q[...] = Q[r : r + len(q)]
        q2 = np.einsum("ij,ij->i", q, q)[:, None]
        best = np.full(len(q), np.inf, np.float32)
        for c in range(0, len(C), cs):
            d = q @ C[c : c + cs].T
            d *= -2.0
            d += c2[c : c + cs]
            d += q2
            np.minimum(best, d.min(1), out=best)
        out[r : r + len(q)] = np.sqrt(np.maximum(best, 0.0))
    return out


def _knn_faiss(Q: np.ndarray, C: np.ndarray, k: int, exclude: np.ndarray | None):
    index = faiss.IndexFlatL2(C.shape[1])  # type: ignore[attr-defined]
    index.add(C)
    kk = k + (exclude is not None)
    d2, idx = index.search(Q, kk)
    if exclude is not None:  # drop the excluded row where it came back, else the farthest
        keep = idx != np.asarray(exclude)[:, None]
        keep[keep.all(1), -1] = False
        idx = idx[keep].reshape(len(Q), k)
        d2 = d2[keep].reshape(len(Q), k)
    return np.sqrt(np.maximum(d2, 0.0)).astype(np.float32), idx.astype(np.int64)


def centre_neighbours(C: np.ndarray, k: int | None = None):
    """Each centre's ``k`` (default K) nearest other centres: (distances, indices), nearest
    first."""
    return knn(C, C, K if k is None else k, exclude=np.arange(len(C)))


def _ranked(
    X: np.ndarray, C: np.ndarray, cand: np.ndarray, top: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of X its candidate centres ``cand`` (rows, c) ordered by the canonical
    distance, ties in the candidates' order: (distances, centre indices), (rows, ``top``)
    padded with inf / -1."""
    d = canonical(X[:, None, :], C[cand])
    o = np.argsort(d, axis=1, kind="stable")
    d, cand = np.take_along_axis(d, o, 1)[:, :top], np.take_along_axis(cand, o, 1)[:, :top]
    pad = top - d.shape[1]
    if pad > 0:
        d = np.pad(d, ((0, 0), (0, pad)), constant_values=np.inf)
        cand = np.pad(cand, ((0, 0), (0, pad)), constant_values=-1)
    return d, cand


def nearest_other(
    X: np.ndarray,
    own: np.ndarray,
    reach: np.ndarray,
    C: np.ndarray,
    nb: tuple[np.ndarray, np.ndarray],
    top: int = TOP,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The ``top`` nearest centres other than its own (``own``: centre index) for each face
    of ``X``, nearest first, exact for every centre within t of the face (``reach``: |f -
    c_own| + t): each such centre is among its own centre's neighbours, or the face is
    compared with every centre (at least TOP of them recomputed the canonical way). Returns
    (distances, centre indices: (n, ``top``), padded inf / -1; faces compared with every
    centre); beyond t they are the nearest of its own centre's neighbours."""
    nb_d, nb_i = nb
    n = len(X)
    d_other = np.full((n, top), np.inf)
    near = np.full((n, top), -1, np.int64)
    if n == 0 or nb_i.shape[1] == 0:
        return d_other, near, 0
    full = nb_d.shape[1] >= len(C) - 1
    inside = full | (reach + SLACK < nb_d[own, -1])
    loc = np.flatnonzero(inside)
    for s in range(0, len(loc), BLOCK):
        k = loc[s : s + BLOCK]
        cand = nb_i[own[k]]
        approx = np.sqrt(_sq_dist_rows(X[k], C, cand))
        best = np.argsort(approx, axis=1, kind="stable")[:, : max(top, TOP)]
        d_other[k], near[k] = _ranked(X[k], C, np.take_along_axis(cand, best, 1), top)
    glob = np.flatnonzero(~inside)
    if len(glob):
        _d, idx = knn(X[glob], C, max(top, TOP), exclude=own[glob])
        d_other[glob], near[glob] = _ranked(X[glob], C, idx, top)
    return d_other, near, len(glob)


def _sq_dist_rows(X: np.ndarray, C: np.ndarray, cand: np.ndarray) -> np.ndarray:
    x = np.asarray(X, np.float32)
    c = C[cand]
    return np.maximum(
        (x * x).sum(1)[:, None] + (c * c).sum(2) - 2.0 * np.einsum("ij,ikj->ik", x, c), 0.0
    )


def nearest_other_exact(
    X: np.ndarray, own: np.ndarray, C: np.ndarray, top: int = TOP
) -> tuple[np.ndarray, np.ndarray]:
    """The reference: every face against every centre (its own left out), as
    :func:`nearest_other` returns them."""
    if len(X) == 0 or len(C) < 2:
        return np.full((len(X), top), np.inf), np.full((len(X), top), -1, np.int64)
    _d, idx = knn(X, C, max(top, TOP), exclude=own)
    return _ranked(X, C, idx, top)


def close_pairs(
    C: np.ndarray,
    lim_of,
    lim_max: np.ndarray,
    nb: tuple[np.ndarray, np.ndarray] | None,
    query: np.ndarray | None = None,
) -> list[tuple[int, int, float]]:
    """Pairs (a < b, canonical distance) of centres closer than ``lim_of(a, b)`` (arrays of
    centre indices -> limits, <= 0 for a centre that takes no part), with a in ``query``
    (default: all); ``lim_max[a]`` bounds every limit of a. With ``nb`` (each centre's K
    nearest) a centre looks beyond them only when its K-th is within its bound; without, every
    pair is tried (the exact reference)."""
    m = len(C)
    q = np.arange(m) if query is None else np.asarray(query, np.int64)
    ok = q[lim_max[q] > 0]
    if m < 2 or not len(ok):
        return []
    if nb is not None and nb[1].shape[1] < m - 1:
        inside = ok[lim_max[ok] + SLACK < nb[0][ok, -1]]
        glob = np.setdiff1d(ok, inside)
        a = np.repeat(inside, nb[1].shape[1])
        b = nb[1][inside].reshape(-1)
        da = nb[0][inside].reshape(-1)
        keep = da < lim_max[a] + SLACK
        pa, pb = [a[keep]], [b[keep]]
    else:
        glob, pa, pb = ok, [], []
    c2 = (C * C).sum(1)
    for s in range(0, len(glob), BLOCK):
        g = glob[s : s + BLOCK]
        D = np.sqrt(_sq_dist(C[g], C, c2))
        D[np.arange(len(g)), g] = np.inf
        r, j = np.nonzero(D < lim_max[g][:, None] + SLACK)
        pa.append(g[r])
        pb.append(j)
    a, b = np.concatenate(pa), np.concatenate(pb)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs = np.unique(np.stack([lo, hi], 1), axis=0) if len(lo) else np.zeros((0, 2), np.int64)
    if not len(pairs):
        return []
    d = canonical(C[pairs[:, 0]], C[pairs[:, 1]])
    hit = d < lim_of(pairs[:, 0], pairs[:, 1])
    return [
        (int(x), int(y), float(v))
        for x, y, v in zip(
            pairs[hit, 0].tolist(), pairs[hit, 1].tolist(), d[hit].tolist(), strict=True
        )
    ]
