"""Crop-proof near copies: the same photo cut by a few per cent a side (and resized back) or
shifted, which the pHash candidate search misses (a 2-5 % crop moves the pHash by 6-16 bits,
past the radius of 8).

* At scan time every decodable face also gets the pHashes of two centred crops of its 32x32
  pHash image, at CROP_SCALES of its side (bilinear, :func:`crop_phashes`; a few small matrix
  products a face, no second pass over the image). A copy made by cropping ``c`` (0.88-0.96
  of the side) has a full pHash near the original's crop hash of the nearest scale.
* The flag step's second candidate source (:func:`candidates`): pairs (x, y) whose full pHash
  of x is within CROP_RADIUS of a crop hash of y, by a bipartite search (full hashes against
  crop hashes only: :mod:`annotator.core.dedup.neighbors_cross`). Full-against-full pairs are
  the first source's; crop-against-crop pairs are never looked at.
* The cheap test (as the pHash path's): x's dHash within ``dhash_max`` bits of a crop dHash of
  y (the crop of the image itself, resized as the dHash is; stored at scan time).
* A candidate is then verified by registering y onto x (:func:`registered_test`): y's 16x16 gray
  thumbnail resampled over centred windows of scales around the matched one and shifts of up
  to ``SHIFTS`` thumbnail pixels; both images then blurred by a [1 2 1] kernel (the resampled
  one is smoothed by the interpolation; blurring both makes them comparable), SSIM as in
  :mod:`annotator.core.dedup.verify`, the best window kept; then the 8x8 colour thumbnails in
  that window, brightness-normalised, within COLOUR_MAX.
* Then the photos themselves (:func:`fine_test`), the most alike pairs first; a pair whose
  faces an earlier verified pair (or the pHash stage) already joined is not tested again.

Thresholds: docs/MEASUREMENTS.md ("Crop-proof near copies") holds the measured distributions
(real photos, drawn demo); tests/core/test_crops.py checks a drawn 2-5 % crop is found and a
different drawn photo of the same person is not.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from annotator.core.dedup import verify
from annotator.core.dedup.neighbors_cross import cross_pairs
from annotator.model import CancelledFn, ProgressFn
from annotator.settings import DEFAULTS, Values

CROP_SCALES = (0.95, 0.90)  # sides of the centred crops hashed at scan time
CROP_RADIUS = DEFAULTS.crop_radius  # bits between a full pHash and a crop pHash (a setting)
SCALE_STEPS = (-0.025, 0.0, 0.025)  # scales tried around the matched crop scale
SHIFTS = (-0.5, 0.0, 0.5)  # thumbnail pixels (of 16) tried each way
REG_SSIM_MIN = DEFAULTS.crop_thumb_ssim_min  # blurred SSIM of the registered thumbnails
PRE_SSIM_MIN = 0.85  # the same in the matched scale's centred window, before the search
COLOUR_MAX = 0.3  # colour distance in the best window: only plainly other colours (the 8x8
# block means of a 64x64 sample move with a crop: true copies measured up to 0.2-0.3)
_CHUNK = 2048  # pairs registered at once


@lru_cache(maxsize=256)
def _lin(n_out: int, n_in: int, scale: float, shift: float = 0.0) -> np.ndarray:
    """(n_out, n_in) bilinear sampling matrix of a centred window ``scale`` of the side,
    moved by ``shift`` input pixels (pixel centres; clamped at the border)."""
    c = (n_in - 1) / 2 + shift
    x = c + (np.arange(n_out) - (n_out - 1) / 2) * scale * n_in / n_out
    x = np.clip(x, 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = x - i0
    a = np.zeros((n_out, n_in))
    np.add.at(a, (np.arange(n_out), i0), 1 - w)
    np.add.at(a, (np.arange(n_out), i1), w)
    a.setflags(write=False)
    return a


def crop_box(w: int, h: int, scale: float) -> tuple[int, int, int, int]:
    """The centred crop of ``scale`` of a w x h image as integer (x0, y0, x1, y1) (at least
    9x8 pixels: the dHash's input)."""
    cw, ch = max(9, round(w * scale)), max(8, round(h * scale))
    x0, y0 = max(0, (w - cw) // 2), max(0, (h - ch) // 2)
    return x0, y0, min(w, x0 + cw), min(h, y0 + ch)


def crop_windows() -> tuple[np.ndarray, ...]:
    """(32, 32) bilinear resampling matrices, one per CROP_SCALES: the crop of a 32x32 pHash
    image X resampled to 32x32 is ``A @ X @ A.T``."""
    return tuple(_lin(32, 32, s) for s in CROP_SCALES)


def crop_phashes(px32: np.ndarray, phash: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(n, 32, 32) float gray pHash images -> (n, len(CROP_SCALES)) uint64 pHashes of their
    centred crops (each crop resampled to 32x32, then ``phash``: hashing's DCT and median
    rule, passed in so that hashing.py and this module do not import each other). The
    definition of the stored crop pHashes; the scan computes the same bits fused with the main
    pHash (``hashing.phashes_with_crops``), tests/core/test_hashing.py checks they agree."""
    out = np.empty((len(px32), len(CROP_SCALES)), np.uint64)
    for k, a in enumerate(crop_windows()):
        out[:, k] = phash(np.matmul(np.matmul(a, px32), a.T))
    return out


def candidates(
    phash: np.ndarray,
    crop: np.ndarray,
    radius: int = CROP_RADIUS,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    threads: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, scale index, distance): pairs where ``phash[x]`` is within ``radius`` bits of
    ``crop[y, scale]`` (x != y; positions into the arrays). ``crop`` rows of zeros (no crop
    hash: scanned before they existed) take no part. A bipartite search (full hashes against
    crop hashes only: :func:`neighbors_cross.cross_pairs`)."""
    k = crop.shape[1]
    has = np.flatnonzero(crop[:, 0] != 0)
    cr = np.concatenate([crop[has, s] for s in range(k)])
    x, c, d = cross_pairs(
        np.asarray(phash).view(np.uint64),
        cr,
        radius,
        progress=progress,
        cancelled=cancelled,
        threads=threads,
    )
    scale = c // max(len(has), 1)
    y = has[c % max(len(has), 1)] if len(has) else c
    keep = x != y
    return x[keep], y[keep], scale[keep], d[keep]


def _blur(g: np.ndarray) -> np.ndarray:
    """[1 2 1] x [1 2 1] / 16 blur of (k, 16, 16) float images (edges repeated)."""
    p = np.pad(g, ((0, 0), (1, 1), (1, 1)), mode="edge")
    y = 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]
    return 0.25 * y[:, :, :-2] + 0.5 * y[:, :, 1:-1] + 0.25 * y[:, :, 2:]


def _params() -> list[tuple[float, float, float]]:
    return [(ds, dy, dx) for ds in SCALE_STEPS for dy in SHIFTS for dx in SHIFTS]


@lru_cache(maxsize=1)
def _blur_matrix() -> np.ndarray:
    """(16, 16): the [1 2 1] / 4 blur along one axis with edges repeated, as a matrix (so a
    window's resampling and its blur are one product: blur(A G A'^T) = (B A) G (B A')^T)."""
    b = np.zeros((16, 16))
    for r in range(16):
        for c, w in ((r - 1, 0.25), (r, 0.5), (r + 1, 0.25)):
            b[r, min(max(c, 0), 15)] += w
    b.setflags(write=False)
    return b


@lru_cache(maxsize=256)
def _blurred_lin(scale: float, shift: float) -> np.ndarray:
    """(16, 16) matrix of the window's resampling followed by the blur."""
    m = _blur_matrix() @ _lin(16, 16, scale, shift)
    m.setflags(write=False)
    return m


def _window_sims(
    bx: np.ndarray, gy: np.ndarray, ss: np.ndarray, params: list[tuple[float, float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """(best blurred SSIM, index of its window in ``params``) of the blurred gray thumbnails
    ``bx`` against ``gy`` resampled over each window (crop scale index ``ss`` + its step) and
    blurred the same way."""
    k = len(bx)
    best = np.full(k, -2.0)
    best_p = np.zeros(k, np.int64)
    # the 8-bit thumbnails SSIM compares (as stored and read back by verify.ssim_pairs); x's
    # side is the same for every window: its window sums once
    a = np.clip(bx + 0.5, 0, 255).astype(np.uint8).astype(np.float32)
    sums_a = verify.first_sums(a)
    groups = [(si, np.flatnonzero(ss == si)) for si in np.unique(ss).tolist()]
    w = np.empty_like(gy)
    for p, (ds, dy, dx) in enumerate(params):
        for si, m in groups:
            s = CROP_SCALES[si] + ds
            w[m] = _blurred_lin(s, dy) @ gy[m] @ _blurred_lin(s, dx).T
        b = np.clip(w + 0.5, 0, 255).astype(np.uint8).astype(np.float32)
        sim = verify.ssim_fixed(sums_a, a, b)
        better = sim > best
        best[better] = sim[better]
        best_p[better] = p
    return best, best_p


def registered_test(
    thumbs: np.ndarray, x: np.ndarray, y: np.ndarray, scale: np.ndarray, windows: bool = False
):
    """Per pair: the best blurred SSIM of ``thumbs[x]`` against ``thumbs[y]`` resampled over
    the windows around crop scale ``CROP_SCALES[scale]``, or -1 when the colours in the best
    window differ (a pair passes when this is >= REG_SSIM_MIN). ``thumbs``:
    (n, THUMB_BYTES) uint8 as stored by the scan. ``windows``: also return each pair's best
    window (scale, dy, dx in thumbnail pixels), for :func:`fine_test`."""
    out = np.full(len(x), -1.0, np.float32)
    win = np.zeros((len(x), 3))
    g = np.asarray(thumbs)[:, : verify.GRAY_BYTES].reshape(-1, 16, 16)
    col = np.asarray(thumbs)[:, verify.GRAY_BYTES : verify.THUMB_BYTES].reshape(-1, 8, 8, 3)
    params = _params()
    centre = params.index((0.0, 0.0, 0.0))
    for s0 in range(0, len(x), _CHUNK):
        xs, ys, ss = x[s0 : s0 + _CHUNK], y[s0 : s0 + _CHUNK], scale[s0 : s0 + _CHUNK]
        k = len(xs)
        bx = _blur(g[xs].astype(np.float64))
        gy = g[ys].astype(np.float64)
        # the matched scale's centred window first: a pair far from it is not searched further
        best, best_p = _window_sims(bx, gy, ss, [params[centre]])
        best_p[:] = centre
        go = np.flatnonzero(best >= PRE_SSIM_MIN)
        if len(go):  # the other windows (the centre's figure is known): the first best wins
            bo, po = _window_sims(bx[go], gy[go], ss[go], params[:centre] + params[centre + 1 :])
            po += po >= centre
            c = best[go]
            take = (bo > c) | ((bo == c) & (po < centre))
            best[go] = np.where(take, bo, c)
            best_p[go] = np.where(take, po, centre)
        # the colours in the best window (8x8 thumbnails: half the gray shift)
        cx = col[xs].astype(np.float64)
        cy = col[ys].astype(np.float64)
        wc = np.empty_like(cy)
        for key in set(zip(ss.tolist(), best_p.tolist(), strict=True)):
            si, p = key
            m = (ss == si) & (best_p == p)
            ds, dy, dx = params[p]
            s = CROP_SCALES[si] + ds
            ay, ax = _lin(8, 8, s, dy / 2), _lin(8, 8, s, dx / 2)
            # (p, 8, 8, 3) -> the channels first: small matrix products, no einsum loops
            wc[m] = (ay @ cy[m].transpose(0, 3, 1, 2) @ ax.T).transpose(0, 2, 3, 1)
        a = cx.reshape(k, -1)
        b = wc.reshape(k, -1)
        a = a / (a.mean(axis=1, keepdims=True) + 1e-3)
        b = b / (b.mean(axis=1, keepdims=True) + 1e-3)
        colour_ok = np.abs(a - b).mean(axis=1) <= COLOUR_MAX
        out[s0 : s0 + k] = np.where(colour_ok, best, -1.0)
        prm = np.asarray(params)[best_p]
        win[s0 : s0 + k] = np.c_[np.asarray(CROP_SCALES)[ss] + prm[:, 0], prm[:, 1:]]
    return (out, win) if windows else out


def verified_pairs(
    data: np.ndarray,
    okidx: np.ndarray,
    labels: np.ndarray,
    thumbs_of,
    images_of,
    threads: int = 1,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    values: Values = DEFAULTS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The flag step's crop stage: candidates among the decodable faces ``okidx`` (positions
    into ``data``, load_hashes rows with ``crop1``/``crop2``), less pairs whose faces are
    already in one group (``labels``), verified by :func:`registered_test` on thumbnails read
    by ``thumbs_of(face ids)``, then by :func:`fine_test` on the photos ``images_of(face ids)``
    returns (bytes, or None for a face that cannot be read: never verified). Returns (x, y,
    distance, similarity = the fine test's figure) of the verified pairs as positions into
    ``data``, and the number of candidates. Without ``images_of`` the stage does not run."""
    empty = np.zeros(0, np.int64)
    if not len(okidx) or images_of is None or "crop1" not in (data.dtype.names or ()):
        return empty, empty, empty.astype(np.uint8), empty.astype(np.float32), 0
    crop = np.stack([data["crop1"][okidx], data["crop2"][okidx]], axis=1).view(np.uint64)
    x, y, scale, d = candidates(
        data["phash"][okidx],
        crop,
        values.crop_radius,
        progress=progress,
        cancelled=cancelled,
        threads=threads,
    )
    n_cand = len(x)
    x, y = okidx[x].astype(np.int64), okidx[y].astype(np.int64)
    need = labels[x] != labels[y]
    # the cheap test: x's dHash near a crop dHash of y (either scale; 0: none stored)
    dx = data["dhash"][x].view(np.uint64)
    near = np.zeros(len(x), bool)
    for col in ("cdh1", "cdh2"):
        if col in (data.dtype.names or ()):
            c = data[col][y]
            near |= (c != 0) & (verify.popcount64(dx ^ c.view(np.uint64)) <= values.dhash_max)
    need &= near
    x, y, scale, d = x[need], y[need], scale[need], d[need]
    if not len(x):
        return empty, empty, empty.astype(np.uint8), empty.astype(np.float32), n_cand
    if cancelled and cancelled():
        raise InterruptedError
    u = np.unique(np.concatenate([x, y]))
    thumbs, present = thumbs_of(data["face_id"][u].astype(np.int64))
    ux, uy = np.searchsorted(u, x), np.searchsorted(u, y)
    sim, win = registered_test(thumbs, ux, uy, scale, windows=True)
    sim[~(present[ux] & present[uy])] = -1.0
    v = np.flatnonzero(sim >= values.crop_thumb_ssim_min)
    v = v[np.argsort(-sim[v], kind="stable")]  # the most alike first
    x, y, d, win = x[v], y[v], d[v], win[v]
    fine = np.full(len(x), -1.0, np.float32)
    # a pair whose faces an earlier verified pair (or the pHash stage) already joined is not
    # tested again: the groups are the same (most pairs come both ways, x a crop of y and y
    # of x), at about half the photo tests where copies are found
    parent: dict[int, int] = {}

    def root(g: int) -> int:
        while parent.get(g, g) != g:
            g = parent[g]
        return g

    for s0 in range(0, len(x), _CHUNK):  # the photos of a slice of pairs at a time
        if cancelled and cancelled():
            raise InterruptedError
        xs, ys = x[s0 : s0 + _CHUNK], y[s0 : s0 + _CHUNK]
        ids = np.unique(np.concatenate([xs, ys]))
        blobs = dict(
            zip(ids.tolist(), images_of(data["face_id"][ids].astype(np.int64)), strict=True)
        )
        for k, (a, b) in enumerate(zip(xs.tolist(), ys.tolist(), strict=True)):
            ga, gb = root(int(labels[a])), root(int(labels[b]))
            if ga == gb or blobs[a] is None or blobs[b] is None:
                continue
            fine[s0 + k] = fine_test(blobs[a], blobs[b], win[s0 + k], values.crop_photo_ssim_min)
            if fine[s0 + k] >= values.crop_photo_ssim_min:
                parent[ga] = gb
    v = fine >= values.crop_photo_ssim_min
    return x[v], y[v], d[v].astype(np.uint8), fine[v], n_cand


FINE_SIDE = 64  # the fine test compares the two photos at this many pixels a side
FINE_SCALE_STEP = 0.0125  # the window's side, around the thumbnails' best window
FINE_SHIFT_STEP = 0.25  # thumbnail pixels (1/16 of the side)
FINE_STEPS = (1.0, 0.5, 0.25)  # coarse to fine
_MOVES = ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))
FINE_SSIM_MIN = DEFAULTS.crop_photo_ssim_min  # SSIM of the middles at 64 px (a setting)
_FW = 7  # SSIM window of the fine test
FINE_MARGIN = 13  # SSIM windows this far from the edge (of 58 a side) are left out


def _gray(data: bytes):

    from annotator.core.infra.decode import open_image

    im = open_image(data)
    im.draft("L", (4 * FINE_SIDE, 4 * FINE_SIDE))  # a JPEG decodes at a smaller scale
    return im.convert("L") if im.mode != "L" else im


@lru_cache(maxsize=8)
def _box_rows(n: int) -> np.ndarray:
    """(n - _FW + 1, n): row i sums inputs i .. i + _FW - 1 (every box window inside)."""
    m = np.zeros((n - _FW + 1, n))
    for i in range(n - _FW + 1):
        m[i, i : i + _FW] = 1.0
    m.setflags(write=False)
    return m


def _box_sums(x: np.ndarray) -> np.ndarray:
    """Sums over every _FW x _FW window inside each of the (j, S', S') images ``x`` (two
    products with a band of ones; float64: exact for sums of 8-bit values and their products,
    so the same sums in any order or batch)."""
    box = _box_rows(x.shape[1])
    return np.matmul(box, np.matmul(x, box.T))


def _ssim_middle(aa: np.ndarray, bb: np.ndarray, sums_a: np.ndarray | None = None) -> np.ndarray:
    """Mean SSIM (7x7 box windows) over the middle of each pair aa[i], bb[i] of (k, S, S)
    images (8-bit values): FINE_MARGIN pixels a side left out (where the face is; a shared
    background is no proof of a copy). ``sums_a``: :func:`_middle_sums` of one image that is
    every ``aa[i]`` (its window sums once, not for each pair)."""
    m = FINE_MARGIN
    k = len(bb)
    # sums over every 7x7 window inside the image of a, b, a*a, b*b, a*b, as two small
    # products with a band of ones (not scipy.ndimage, whose import alone costs 0.1-0.3 s a
    # scan)
    n = bb.shape[1] - 2 * m
    if sums_a is None:
        x = np.empty((5 * k, n, n))
        a, b = x[:k], x[k : 2 * k]
        a[...] = aa[:, m:-m, m:-m]
        b[...] = bb[:, m:-m, m:-m]
        np.multiply(a, a, out=x[2 * k : 3 * k])
        np.multiply(b, b, out=x[3 * k : 4 * k])
        np.multiply(a, b, out=x[4 * k :])
        w = _box_sums(x)
        w = w.reshape(5, k, *w.shape[1:])
    else:
        x = np.empty((3 * k, n, n))
        b = x[:k]
        b[...] = bb[:, m:-m, m:-m]
        np.multiply(b, b, out=x[k : 2 * k])
        np.multiply(aa[:, m:-m, m:-m], b, out=x[2 * k :])
        wb = _box_sums(x)
        w = np.empty((5, k, *wb.shape[1:]))
        w[0], w[2] = sums_a[0], sums_a[1]
        w[1], w[3], w[4] = wb.reshape(3, k, *wb.shape[1:])
    ma, mb, saa, sbb, sab = (w / (_FW * _FW)).astype(np.float32)
    va = saa - ma * ma
    vb = sbb - mb * mb
    cov = sab - ma * mb
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return s.reshape(k, -1).mean(axis=1)


def _middle_sums(a: np.ndarray) -> np.ndarray:
    """(2, S', S'): the window sums of the middle of one (S, S) image and of its square, for
    :func:`_ssim_middle`."""
    m = FINE_MARGIN
    x = np.empty((2, a.shape[0] - 2 * m, a.shape[1] - 2 * m))
    x[0] = a[m:-m, m:-m]
    np.multiply(x[0], x[0], out=x[1])
    return _box_sums(x)


def window_box(w: int, h: int, s: float, dy: float, dx: float) -> tuple[float, float, float, float]:
    """The fine test's window of a w x h photo (scale ``s`` of the side, at most 1; moved by
    dy, dx sixteenths of the side from the centre, and back inside the photo where it leaves
    it): Pillow's resize box (x0, y0, x1, y1)."""
    s = min(s, 1.0)
    sw, sh = s * w, s * h
    x0 = min(max(w / 2 + dx * w / 16 - sw / 2, 0.0), w - sw)
    y0 = min(max(h / 2 + dy * h / 16 - sh / 2, 0.0), h - sh)
    return x0, y0, x0 + sw, y0 + sh


def _horizontal_first(w: int, h: int) -> bool:
    """Whether Pillow resizes a w x h image to FINE_SIDE a side horizontal pass first (Pillow
    13's rule: vertical first when the height shrinks by more than twice the width)."""
    return not (h > FINE_SIDE and h - FINE_SIDE > 2 * (w - FINE_SIDE))


@lru_cache(maxsize=1)
def _passes_apart_ok() -> bool:
    """Whether this Pillow's resize of a box is its two passes, in :func:`_horizontal_first`'s
    order (probed once on random images of both orders; else windows are resized at once)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for w, h in ((112, 111), (250, 250), (70, 300), (100, 150), (300, 70)):
        im = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))
        for s, dy, dx in ((0.9, 0.3, -0.7), (1.0, 0.0, 0.0), (0.87, -2.5, 2.1)):
            box = window_box(w, h, s, dy, dx)
            want = im.resize((FINE_SIDE, FINE_SIDE), Image.Resampling.LANCZOS, box=box)
            got = _two_passes(im, box, _horizontal_first(w, h), {})
            if want.tobytes() != got.tobytes():
                return False
    return True


def _two_passes(gy, box: tuple[float, float, float, float], across: bool, first: dict):
    """``gy`` resized to FINE_SIDE a side over ``box`` as Pillow's two passes run apart, the
    first pass's result kept in ``first`` (keyed by the box's columns when the horizontal pass
    goes first, ``across``, else by its rows)."""
    from PIL import Image

    lanczos = Image.Resampling.LANCZOS
    w, h = gy.size
    x0, y0, x1, y1 = box
    f = FINE_SIDE
    if across:
        t = first.get((x0, x1))
        if t is None:
            t = first[x0, x1] = gy.resize((f, h), lanczos, box=(x0, 0, x1, h))
        return t.resize((f, f), lanczos, box=(0, y0, f, y1))
    t = first.get((y0, y1))
    if t is None:
        t = first[y0, y1] = gy.resize((w, f), lanczos, box=(0, y0, w, y1))
    return t.resize((f, f), lanczos, box=(x0, 0, x1, f))


def _window_reader(gy):
    """(s, dy, dx) -> the :func:`window_box` of the photo ``gy`` (a Pillow image) resized to
    FINE_SIDE pixels a side with Lanczos, as float64.

    Pillow resizes a box in two passes, each rounded to 8 bits; the first pass of a window
    depends on its columns alone (horizontal first) or its rows alone, so the pattern
    search's moves along the other axis, and back to columns or rows seen before, reuse it.
    The same bytes as ``gy.resize(..., box=)`` at once (:func:`_passes_apart_ok`;
    tests/core/test_crops.py)."""
    from PIL import Image

    w, h = gy.size
    if not _passes_apart_ok():

        def at_once(s: float, dy: float, dx: float) -> np.ndarray:
            box = window_box(w, h, s, dy, dx)
            resized = gy.resize((FINE_SIDE, FINE_SIDE), Image.Resampling.LANCZOS, box=box)
            return np.asarray(resized, np.float64)

        return at_once
    across = _horizontal_first(w, h)
    first: dict[tuple[float, float], Image.Image] = {}

    def window(s: float, dy: float, dx: float) -> np.ndarray:
        return np.asarray(_two_passes(gy, window_box(w, h, s, dy, dx), across, first), np.float64)

    return window


def fine_test(
    x_bytes: bytes, y_bytes: bytes, window_guess: np.ndarray, enough: float = FINE_SSIM_MIN
) -> float:
    """The photos themselves: x at FINE_SIDE pixels against y's windows around ``window``
    (scale, dy, dx from :func:`registered_test`), both resized with Lanczos (antialiased), SSIM
    of 7x7 windows over the middle; the best, or the first at least ``enough`` (the pair is
    verified then, and the search stops). A different photo of one person from one event (another pose or
    expression on the same background) is told apart here, where 16x16 thumbnails agree."""
    from PIL import Image

    try:
        gx, gy = _gray(x_bytes), _gray(y_bytes)
    except Exception:  # noqa: BLE001 - a photo that no longer decodes is never verified
        return -1.0
    a = np.asarray(gx.resize((FINE_SIDE, FINE_SIDE), Image.Resampling.LANCZOS), np.float64)
    window = _window_reader(gy)
    at = tuple(float(v) for v in window_guess)
    sums_a = _middle_sums(a)  # x's side of every comparison, summed once
    best = float(_ssim_middle(a[None], window(*at)[None], sums_a)[0])
    for step in FINE_STEPS:  # a pattern search: one axis at a time, smaller steps
        if best >= enough:  # verified: a better window would change nothing
            break
        back = -1  # the move back to where the last one came from (its figure is below best)
        for _ in range(2):
            grid = [
                (
                    at[0] + d[0] * FINE_SCALE_STEP * step,
                    at[1] + d[1] * FINE_SHIFT_STEP * step,
                    at[2] + d[2] * FINE_SHIFT_STEP * step,
                )
                for d in _MOVES
            ]
            look = [k for k in range(len(grid)) if k != back]
            b = np.stack([window(*grid[k]) for k in look])
            sims = _ssim_middle(np.broadcast_to(a, b.shape), b, sums_a)
            k = int(np.argmax(sims))
            if sims[k] <= best:
                break
            best, at = float(sims[k]), grid[look[k]]
            back = look[k] ^ 1  # _MOVES come in pairs: +1, -1 along one axis
            if best >= enough:
                break
    return best
