"""Verification of near-duplicate candidates: a pair found by the pHash search becomes a
duplicate only when two independent tests agree (DESIGN convention 9).

1. A cheap hash test: dHash (left-right gradients, 64 bits) within ``dhash_max`` bits. It looks
   at other features than pHash, so two unrelated aligned faces rarely collide in both.
2. A pixel test on the 448-byte thumbnails the scan stores (16x16 gray from the pHash's 32x32
   image, 8x8 RGB block means; see :mod:`annotator.core.dedup.hashing`): SSIM (5x5 windows) of
   the gray thumbnails at least ``ssim_min``, and the brightness-normalised mean absolute
   difference of the colour thumbnails at most ``colour_max`` — gray structure alone confuses
   one person on backgrounds of different hue, colour alone unrelated faces on similar ones.

The thresholds are project settings (:mod:`annotator.settings`); how they were chosen, with the
measured distributions, is in docs/MEASUREMENTS.md (tests/core/test_verify.py and
test_flag_quality.py hold them as tests). SSIM's window sums are two small matrix products per
slice of SSIM_CHUNK pairs on one BLAS thread, in slices that stay in cache.
"""

from __future__ import annotations

import numpy as np

from annotator.core.infra.blas import one_blas_thread
from annotator.settings import DEFAULTS

THUMB_SIDE = 16
GRAY_BYTES = THUMB_SIDE * THUMB_SIDE  # 16x16 gray
COLOUR_SIDE = 8
COLOUR_BYTES = COLOUR_SIDE * COLOUR_SIDE * 3  # 8x8 RGB
THUMB_BYTES = GRAY_BYTES + COLOUR_BYTES  # one BLOB a face: gray then colour
DHASH_MAX = DEFAULTS.dhash_max  # the defaults; a project's values: annotator.settings
SSIM_MIN = DEFAULTS.ssim_min
COLOUR_MAX = DEFAULTS.colour_max
_W = 5  # SSIM window side
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
SSIM_CHUNK = 512  # pairs per slice of the SSIM work (its float32 arrays stay in cache)


def gray_from_px32(px32: np.ndarray) -> np.ndarray:
    """(n, 32, 32) float gray pixels -> (n, 256) uint8 16x16 thumbnails (2x2 means)."""
    n = len(px32)
    t = px32.reshape(n, THUMB_SIDE, 2, THUMB_SIDE, 2).mean(axis=(2, 4))
    return np.clip(t + 0.5, 0, 255).astype(np.uint8).reshape(n, GRAY_BYTES)


def colour_distance(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Mean absolute difference of the pairs' 8x8 RGB thumbnails, each divided by its own mean
    (0 = same colours up to brightness), float32. Slices of SSIM_CHUNK pairs (in cache)."""
    c = np.asarray(thumbs)[:, GRAY_BYTES:THUMB_BYTES]
    out = np.empty(len(i), dtype=np.float32)
    for s in range(0, len(i), SSIM_CHUNK):
        a = c[i[s : s + SSIM_CHUNK]].astype(np.float32)
        b = c[j[s : s + SSIM_CHUNK]].astype(np.float32)
        a /= a.mean(axis=1, keepdims=True) + 1e-3
        b /= b.mean(axis=1, keepdims=True) + 1e-3
        a -= b
        np.abs(a, out=a)
        out[s : s + SSIM_CHUNK] = a.mean(axis=1)
    return out


_K = THUMB_SIDE - _W + 1  # 12 window positions a side
# _BAND[a, r] = 1 when row (or column) a is inside window r: X @ _BAND sums every 5-wide window
_BAND = (
    (np.arange(THUMB_SIDE)[:, None] >= np.arange(_K)[None])
    & (np.arange(THUMB_SIDE)[:, None] < np.arange(_K)[None] + _W)
).astype(np.float32)


def _window_sums(x: np.ndarray) -> np.ndarray:
    """(n, 16, 16) float32 -> (n, 144) sums over every 5x5 window, as two large matrix
    products (rows, then columns; the windows come out transposed, the same way for every
    input, which SSIM's elementwise formula does not mind). Exact: the sums of 8-bit pixels and
    of their products stay below 2**24."""
    n = len(x)
    r = (x.reshape(n * THUMB_SIDE, THUMB_SIDE) @ _BAND).reshape(n, THUMB_SIDE, _K)
    r = np.ascontiguousarray(r.transpose(0, 2, 1)).reshape(n * _K, THUMB_SIDE)
    return (r @ _BAND).reshape(n, _K * _K)


def ssim_pairs(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Mean SSIM of the thumbnails ``thumbs[i[k]]`` and ``thumbs[j[k]]`` (float32, -1..1).

    ``thumbs``: (n, THUMB_BYTES) uint8 (the gray part is used). Works on slices of SSIM_CHUNK
    pairs, sized so that their float32 arrays stay in cache: the five window sums a pair needs
    (of a, b, a*a, b*b, a*b) are two matrix products for the whole slice. Memory: the uint8
    thumbnails plus a few MB, whatever the pair count. (Per-face window figures computed once
    would save work but cost 1.7 kB a face: gigabytes for the millions of faces one slice of
    candidates can name, and gathering them from memory is slower than recomputing them.)"""
    t = np.asarray(thumbs)[:, :GRAY_BYTES].reshape(-1, THUMB_SIDE, THUMB_SIDE)
    out = np.empty(len(i), dtype=np.float32)
    x = np.empty((5, SSIM_CHUNK, THUMB_SIDE, THUMB_SIDE), np.float32)
    with one_blas_thread():
        for s in range(0, len(i), SSIM_CHUNK):
            a, b = i[s : s + SSIM_CHUNK], j[s : s + SSIM_CHUNK]
            k = len(a)
            xa, xb = x[0, :k], x[1, :k]
            xa[...] = t[a]
            xb[...] = t[b]
            np.multiply(xa, xa, out=x[2, :k])
            np.multiply(xb, xb, out=x[3, :k])
            np.multiply(xa, xb, out=x[4, :k])
            w = _window_sums(x[:, :k].reshape(5 * k, THUMB_SIDE, THUMB_SIDE)).reshape(5, k, -1)
            out[s : s + k] = _ssim_of_sums(w)
    return out


def _ssim_of_sums(w: np.ndarray) -> np.ndarray:
    """(5, k, 144) float32 window sums of a, b, a*a, b*b, a*b (overwritten) -> (k,) mean SSIM."""
    inv_area = np.float32(1 / (_W * _W))
    c1, c2 = np.float32(_C1), np.float32(_C2)
    w *= inv_area  # window means of a, b, a*a, b*b, a*b
    ma, mb, va, vb, num = w
    va -= ma * ma
    vb -= mb * mb
    mab = ma * mb
    num -= mab  # covariance
    num *= 2
    num += c2
    mab *= 2
    mab += c1
    num *= mab  # (2 ma mb + C1) (2 cov + C2)
    ma *= ma
    mb *= mb
    ma += mb
    ma += c1
    va += vb
    va += c2
    ma *= va  # (ma^2 + mb^2 + C1) (va + vb + C2)
    num /= ma
    return num.mean(axis=1)


def first_sums(a: np.ndarray) -> np.ndarray:
    """(k, 16, 16) float32 gray images (8-bit values) -> (2, k, 144) window sums of a and a*a,
    for :func:`ssim_fixed` (one side of many comparisons, summed once)."""
    k = len(a)
    x = np.empty((2, k, THUMB_SIDE, THUMB_SIDE), np.float32)
    x[0] = a
    np.multiply(a, a, out=x[1])
    with one_blas_thread():
        return _window_sums(x.reshape(2 * k, THUMB_SIDE, THUMB_SIDE)).reshape(2, k, -1)


def ssim_fixed(sums_a: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean SSIM of a[k] and b[k] ((k, 16, 16) float32, 8-bit values) with ``sums_a`` =
    :func:`first_sums` (a): the figures of :func:`ssim_pairs` (the window sums are exact
    integers, the formula the same code), without summing ``a`` again for each ``b``."""
    out = np.empty(len(a), dtype=np.float32)
    x = np.empty((3, SSIM_CHUNK, THUMB_SIDE, THUMB_SIDE), np.float32)
    with one_blas_thread():
        for s in range(0, len(a), SSIM_CHUNK):
            k = len(a[s : s + SSIM_CHUNK])
            xb = x[0, :k]
            xb[...] = b[s : s + k]
            np.multiply(xb, xb, out=x[1, :k])
            np.multiply(a[s : s + k], xb, out=x[2, :k])
            w3 = _window_sums(x[:, :k].reshape(3 * k, THUMB_SIDE, THUMB_SIDE)).reshape(3, k, -1)
            w = np.empty((5, k, _K * _K), np.float32)
            w[0], w[2] = sums_a[0, s : s + k], sums_a[1, s : s + k]
            w[1], w[3], w[4] = w3
            out[s : s + k] = _ssim_of_sums(w)
    return out


def popcount64(x: np.ndarray) -> np.ndarray:
    """Bits set in each 64-bit integer of ``x`` (uint8)."""
    x = np.asarray(x).view(np.uint64)
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0: one instruction a value
        return np.bitwise_count(x).astype(np.uint8, copy=False)
    b = x.view(np.uint8).reshape(*x.shape, 8)
    return np.unpackbits(b, axis=-1).sum(axis=-1, dtype=np.uint8)


def pixel_test(
    thumbs: np.ndarray, i: np.ndarray, j: np.ndarray, colour_max: float = COLOUR_MAX
) -> np.ndarray:
    """The pixel test's figure per pair: the gray SSIM, or -1 where the colours differ by
    more than ``colour_max`` (a pair is verified when this is >= SSIM_MIN)."""
    sim = np.full(len(i), -1.0, dtype=np.float32)
    alike = np.flatnonzero(colour_distance(thumbs, i, j) <= colour_max)  # the cheaper test first
    if len(alike):
        sim[alike] = ssim_pairs(thumbs, i[alike], j[alike])
    return sim


def cheap_test(dhash_i: np.ndarray, dhash_j: np.ndarray, dhash_max: int = DHASH_MAX) -> np.ndarray:
    """The hash test: dHash distance of each pair within ``dhash_max`` bits (bool mask)."""
    return popcount64(np.asarray(dhash_i) ^ np.asarray(dhash_j)) <= dhash_max
