"""Verification of near-duplicate candidates: a pair found by the pHash search becomes a
duplicate only when two independent tests agree (DESIGN convention 9).

1. A cheap hash test: the dHash (gradient signs, 64 bits) of the two faces within
   ``DHASH_MAX`` bits. dHash looks at other image features than pHash (left-right gradients
   of a 9x8 image instead of the low 8x8 DCT block), so two unrelated aligned faces that
   collide in pHash rarely collide in both.
2. A pixel test on small thumbnails stored by the scan (448 bytes a face: the 16x16 grayscale
   2x2 mean of the 32x32 image the pHash is taken from, then an 8x8 RGB box reduction):
   SSIM (5x5 windows, the usual constants) of the gray thumbnails at least ``SSIM_MIN``, and
   the colours alike: the mean absolute difference of the 8x8 RGB thumbnails, each divided by
   its own mean (so a brightness change does not count), at most ``COLOUR_MAX``. Grayscale
   structure alone confuses two photos of one person on backgrounds of different hue but
   equal brightness; colour alone confuses unrelated faces on similar backgrounds.

Thresholds, measured on the demo drawn without any hash-friendly texture (aligned faces on
plain, gradient, striped or blotched backgrounds; 8,432 decodable faces, 6,099 candidate pairs
within pHash radius 8, 696 of them true copies):

* dHash distance of true copies: at most 8 bits; ``DHASH_MAX = 10`` keeps them all and drops
  ~92 % of the false candidates.
* SSIM16 of true copies >= 0.975, of false candidates <= 0.951; ``SSIM_MIN = 0.96``.
  Both tests together: 696 of 696 true pairs kept, 0 false ones.
* On a second demo (seed 11, 8,229 faces, 5,777 candidates) one false pair reached SSIM16
  0.970 (two photos of one person, backgrounds of different hue): the colour distance of true
  copies is <= 0.047 there (<= 0.035 on the first), of false candidates >= 0.109 (>= 0.114);
  ``COLOUR_MAX = 0.075``. All three tests: 660 of 660 and 696 of 696 true pairs, 0 false.

See tests/core/test_verify.py and tests/core/test_flag_quality.py for the figures as tests.
"""

from __future__ import annotations

import numpy as np

THUMB_SIDE = 16
GRAY_BYTES = THUMB_SIDE * THUMB_SIDE  # 16x16 gray
COLOUR_SIDE = 8
COLOUR_BYTES = COLOUR_SIDE * COLOUR_SIDE * 3  # 8x8 RGB
THUMB_BYTES = GRAY_BYTES + COLOUR_BYTES  # one BLOB a face: gray then colour
DHASH_MAX = 10
SSIM_MIN = 0.96
COLOUR_MAX = 0.075
_W = 5  # SSIM window side
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
PAIR_CHUNK = 1 << 15


def gray_from_px32(px32: np.ndarray) -> np.ndarray:
    """(n, 32, 32) float gray pixels -> (n, 256) uint8 16x16 thumbnails (2x2 means)."""
    n = len(px32)
    t = px32.reshape(n, THUMB_SIDE, 2, THUMB_SIDE, 2).mean(axis=(2, 4))
    return np.clip(t + 0.5, 0, 255).astype(np.uint8).reshape(n, GRAY_BYTES)


def colour_distance(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Mean absolute difference of the pairs' 8x8 RGB thumbnails, each divided by its own mean
    (0 = same colours up to brightness), float32."""
    c = np.asarray(thumbs)[:, GRAY_BYTES:THUMB_BYTES]
    out = np.empty(len(i), dtype=np.float32)
    for s in range(0, len(i), PAIR_CHUNK):
        a = c[i[s : s + PAIR_CHUNK]].astype(np.float32)
        b = c[j[s : s + PAIR_CHUNK]].astype(np.float32)
        a /= a.mean(axis=1, keepdims=True) + 1e-3
        b /= b.mean(axis=1, keepdims=True) + 1e-3
        out[s : s + PAIR_CHUNK] = np.abs(a - b).mean(axis=1)
    return out


def _window_sums(x: np.ndarray) -> np.ndarray:
    """(n, 16, 16) -> (n, 12, 12) sums over every 5x5 window (separable sliding sums)."""
    k = x.shape[1] - _W + 1
    r = x[:, :, 0:k].copy()
    for d in range(1, _W):
        r += x[:, :, d : d + k]
    out = r[:, 0:k, :].copy()
    for d in range(1, _W):
        out += r[:, d : d + k, :]
    return out


def ssim_pairs(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Mean SSIM of the thumbnails ``thumbs[i[k]]`` and ``thumbs[j[k]]`` (float32, -1..1).

    ``thumbs``: (n, THUMB_BYTES) uint8 (the gray part is used). Works on slices of PAIR_CHUNK pairs: memory is the uint8
    thumbnails plus a few float32 arrays of one slice, whatever the pair count."""
    t = np.asarray(thumbs)[:, :GRAY_BYTES].reshape(-1, THUMB_SIDE, THUMB_SIDE)
    out = np.empty(len(i), dtype=np.float32)
    area = np.float32(_W * _W)
    for s in range(0, len(i), PAIR_CHUNK):
        xa = t[i[s : s + PAIR_CHUNK]].astype(np.float32)
        xb = t[j[s : s + PAIR_CHUNK]].astype(np.float32)
        ma = _window_sums(xa) / area
        mb = _window_sums(xb) / area
        va = _window_sums(xa * xa) / area - ma * ma
        vb = _window_sums(xb * xb) / area - mb * mb
        cov = _window_sums(xa * xb) / area - ma * mb
        num = (2 * ma * mb + _C1) * (2 * cov + _C2)
        den = (ma * ma + mb * mb + _C1) * (va + vb + _C2)
        out[s : s + PAIR_CHUNK] = (num / den).mean(axis=(1, 2))
    return out


def popcount64(x: np.ndarray) -> np.ndarray:
    """Bits set in each 64-bit integer of ``x`` (uint8)."""
    x = np.asarray(x).view(np.uint64)
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0: one instruction a value
        return np.bitwise_count(x).astype(np.uint8, copy=False)
    b = x.view(np.uint8).reshape(*x.shape, 8)
    return np.unpackbits(b, axis=-1).sum(axis=-1, dtype=np.uint8)


def pixel_test(thumbs: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The pixel test's figure per pair: the gray SSIM, or -1 where the colours differ (a pair
    is verified when this is >= SSIM_MIN)."""
    sim = np.full(len(i), -1.0, dtype=np.float32)
    alike = np.flatnonzero(colour_distance(thumbs, i, j) <= COLOUR_MAX)  # the cheaper test first
    if len(alike):
        sim[alike] = ssim_pairs(thumbs, i[alike], j[alike])
    return sim


def cheap_test(dhash_i: np.ndarray, dhash_j: np.ndarray, dhash_max: int = DHASH_MAX) -> np.ndarray:
    """The hash test: dHash distance of each pair within ``dhash_max`` bits (bool mask)."""
    return popcount64(np.asarray(dhash_i) ^ np.asarray(dhash_j)) <= dhash_max
