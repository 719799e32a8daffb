"""Pillow's LANCZOS resize of 8-bit gray images, bit for bit, as float64 matrix products.

Pillow's two-pass fixed-point filter is rebuilt over its own integer coefficients: every
partial sum is an integer below 2**53, so a product in any order gives Pillow's sums exactly,
and :func:`round8` is Pillow's shift and clamp. Which pass Pillow runs first is probed once per
shape (:func:`pass_order`). Used by the scan's hashing (core/dedup/hashing.py); split out of it so
each stays readable. tests/core/test_hashing.py checks it against Pillow.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image

_PRECISION_BITS = 22  # Pillow Resample.c: 32 - 8 - 2


def _lanczos(x: float) -> float:
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


@lru_cache(maxsize=256)
def coeff_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) integer coefficients of Pillow's precompute_coeffs + normalize_coeffs_8bpc
    for LANCZOS over the whole axis, as float64."""
    scale = filterscale = float(in_size) / out_size
    if filterscale < 1.0:
        filterscale = 1.0
    support = 3.0 * filterscale
    m = np.zeros((out_size, in_size), dtype=np.float64)
    one = float(1 << _PRECISION_BITS)
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = int(center - support + 0.5)
        if xmin < 0:
            xmin = 0
        xmax = int(center + support + 0.5)
        if xmax > in_size:
            xmax = in_size
        xmax -= xmin
        ws = [_lanczos((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for w in ws:
            ww += w
        for x, w in enumerate(ws):
            if ww != 0.0:
                w = w / ww
            k = int(-0.5 + w * one) if w < 0 else int(0.5 + w * one)
            m[xx, x + xmin] = k
    return m


@lru_cache(maxsize=256)
def _bands(in_size: int, out_size: int) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """The coefficient matrix cut into bands: (o0, o1, c0, c1, coeff[o0:o1, c0:c1].T).

    A LANCZOS output pixel reads only ~6 * scale input pixels, so the dense product wastes most
    of its work; groups of neighbouring outputs with their input window cut that 2-4x. Groups
    of ``_band_width`` outputs: OpenBLAS's kernels work on 4 or 8 float64 columns at a time, and
    timing every group size from 1 to out_size (inputs of 48-400 px, 32, 9 and 8 outputs) put
    these first or within a few % of the best everywhere; other sizes leave part of a kernel
    idle and the dense product does 1.5-3x the work.
    """
    c = coeff_matrix(in_size, out_size)
    g = _band_width(out_size)
    groups = []
    for o0 in range(0, out_size, g):
        o1 = min(o0 + g, out_size)
        nz = np.flatnonzero((c[o0:o1] != 0).any(axis=0))
        c0, c1 = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 1)
        groups.append((o0, o1, c0, c1, np.ascontiguousarray(c[o0:o1, c0:c1].T)))
    return tuple(groups)


def _band_width(out_size: int) -> int:
    return 8 if out_size >= 16 else 4


def round8(x: np.ndarray) -> np.ndarray:
    """Pillow's clip8((1 << (PB-1)) + sum): arithmetic shift then clamp to 0..255, in place.

    ``x`` holds exact integers; adding 2**21 and scaling by 2**-22 are exact in float64, so
    floor() is exactly the C arithmetic shift.
    """
    x += float(1 << (_PRECISION_BITS - 1))
    x *= 1.0 / (1 << _PRECISION_BITS)
    np.floor(x, out=x)
    np.maximum(x, 0.0, out=x)  # np.clip's Python wrapper costs more than the work here
    np.minimum(x, 255.0, out=x)
    return x


def _pass(a: np.ndarray, in_size: int, out_size: int) -> np.ndarray:
    """One Pillow resample pass along the last axis of ``a`` (rows, in_size), float64 ->
    (rows, out_size); ``a`` itself when the size does not change (Pillow skips that pass)."""
    if in_size == out_size:
        return a
    out = np.empty((a.shape[0], out_size))
    for o0, o1, c0, c1, g in _bands(in_size, out_size):
        np.matmul(a[:, c0:c1], g, out=out[:, o0:o1])
    return round8(out)


def _resize(x: np.ndarray, out_w: int, out_h: int, order: str) -> np.ndarray:
    """(n, H, W) float64 -> (n, out_h, out_w) float64 (a view), Pillow's LANCZOS bit for bit.

    ``order`` "h": horizontal pass first (what Pillow does), "v": vertical first.
    """
    n, h, w = x.shape
    if order == "h":
        y = _pass(x.reshape(n * h, w), w, out_w)  # rows (image, y), columns out x
        y = np.ascontiguousarray(y.reshape(n, h, out_w).transpose(0, 2, 1))
        z = _pass(y.reshape(n * out_w, h), h, out_h)  # rows (image, out x), columns out y
        return z.reshape(n, out_w, out_h).transpose(0, 2, 1)
    y = np.ascontiguousarray(x.transpose(0, 2, 1)).reshape(n * w, h)
    y = _pass(y, h, out_h)  # rows (image, x), columns out y
    y = np.ascontiguousarray(y.reshape(n, w, out_h).transpose(0, 2, 1))
    z = _pass(y.reshape(n * out_h, w), w, out_w)
    return z.reshape(n, out_h, out_w)


def pil_resize(arr: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    return np.stack(
        [
            np.asarray(Image.fromarray(a).resize((out_w, out_h), Image.Resampling.LANCZOS))
            for a in arr
        ]
    )


@lru_cache(maxsize=1024)
def pass_order(h: int, w: int, out_w: int, out_h: int) -> str:
    """Which pass order reproduces this Pillow build for this shape: "h", "v" or "pil".

    Pillow's C code is a two-pass fixed-point filter. Rather than mirror how it orders the
    passes, probe once per shape with random and extreme images and keep the order that
    matches Pillow exactly ("pil" = none did: use Pillow itself).
    """
    rng = np.random.default_rng(h * 100_003 + w)
    probe = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
    probe[2] = np.where((np.indices((h, w)).sum(axis=0) % 2) == 0, 0, 255)
    ref = pil_resize(probe, out_w, out_h)
    x = probe.astype(np.float64)
    for name in ("h", "v"):
        if np.array_equal(_resize(x, out_w, out_h, name), ref):
            return name
    return "pil"


def resize_f(x: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    n, h, w = x.shape
    order = pass_order(h, w, out_w, out_h)
    if order == "pil":
        return pil_resize(x.astype(np.uint8), out_w, out_h).astype(np.float64)
    return _resize(x, out_w, out_h, order)


def resize_batch(arr: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Pillow ``Image.resize((out_w, out_h), LANCZOS)`` of a stack of 8-bit L images.

    ``arr``: (n, H, W) uint8. Returns (n, out_h, out_w) uint8, bit-identical to Pillow.
    """
    return resize_f(arr.astype(np.float64), out_w, out_h).astype(np.uint8)
