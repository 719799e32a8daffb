"""Per-image hashes and measurements, bit-identical to ``imagehash`` where it matters.

For each image's bytes: SHA-256, a 64-bit pHash equal to ``imagehash.phash(Image.open(...))``,
a 64-bit dHash equal to ``imagehash.dhash(...)``, width, height, grayscale, sharpness, or the
decoder's reason when the bytes do not decode (a full decode is forced with ``.load()``).

How it stays exact and still fast:

* Each image is decoded once and converted once with Pillow's own ``convert("L")``.
* Pillow's LANCZOS ``resize`` of an 8-bit image is a two-pass (horizontal, then vertical)
  fixed-point convolution with integer coefficients (22 fractional bits). We rebuild the same
  integer coefficients (same double formulas, same libm ``sin``) and run both passes as float64
  matrix products batched over all images of one size. Every product and partial sum is an
  integer below 2**53, so float64 arithmetic is exact in any summation order and the result is
  Pillow's result bit for bit (checked against Pillow in tests/core/test_hashing.py).
* The 32x32 DCT (scipy.fftpack type II on both axes) is done as two float64 matrix products for
  the 8x8 low-frequency block. These differ from scipy's FFT in the last bits, so an image whose
  two middle coefficients (the ones that define the median) are within ``_TIE_TOL`` of each other
  is recomputed with scipy exactly as imagehash does; the bits of all others cannot differ.
* Hashes are 64-bit integers (first hash bit = most significant bit, the order of imagehash's
  hex), stored as signed int64 in SQLite; :func:`to_hex` gives imagehash's hex string.

Grayscale: mode L/LA/1/I/F, or every pixel's channels within ``GRAY_TOLERANCE`` levels (JPEG
chroma rounding makes a gray RGB JPEG differ by a level here and there).
Sharpness: variance of the 4-neighbour Laplacian of the grayscale image box-reduced by an integer
factor to about 64 px (pixel units squared); low means blurry (see annotator.core.flags.BLURRY_SHARPNESS).
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops

GRAY_TOLERANCE = 2
SHARPNESS_SIDE = 64  # sharpness is measured after box-reducing to about this many pixels
_PRECISION_BITS = 22  # Pillow Resample.c: 32 - 8 - 2
_TIE_TOL = 1e-3  # DCT coefficients are up to ~1e6; matmul-vs-FFT error is ~1e-9
_BATCH = 64  # images per matrix product (bounds float64 temporaries)
_GRAY_MODES = {"L", "LA", "1", "I", "F", "I;16", "I;16B", "I;16L", "La"}


@dataclass(slots=True)
class HashResult:
    """What a scan stores for one face."""

    face_id: int
    sha256: bytes
    phash: int | None  # signed int64 (see to_signed); None when corrupt
    dhash: int | None
    width: int | None
    height: int | None
    grayscale: bool | None
    sharpness: float | None
    corrupt: str | None  # decoder's reason; None when the image decodes


# -- int64 / hex helpers -----------------------------------------------------------------------
def to_signed(u: int) -> int:
    """uint64 value -> the signed int64 SQLite stores."""
    return u - (1 << 64) if u >= (1 << 63) else u


def to_unsigned(s: int) -> int:
    return s & 0xFFFFFFFFFFFFFFFF


def to_hex(h: int) -> str:
    """imagehash-compatible hex (``str(imagehash.phash(img))``) of a stored (signed) hash."""
    return f"{h & 0xFFFFFFFFFFFFFFFF:016x}"


def from_hex(s: str) -> int:
    """Signed int64 of an imagehash hex string."""
    return to_signed(int(s, 16))


def bits_to_uint64(bits: np.ndarray) -> np.ndarray:
    """(n, 64) booleans, row-major hash order -> (n,) uint64 with bit 0 as the MSB."""
    packed = np.packbits(bits.reshape(len(bits), 64).astype(np.uint8), axis=1)
    return packed.view(">u8").reshape(-1).astype(np.uint64)


# -- Pillow-exact LANCZOS resize ---------------------------------------------------------------
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
def _coeff_matrix(in_size: int, out_size: int) -> np.ndarray:
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


def _fixed_round(acc: np.ndarray) -> np.ndarray:
    """Pillow's clip8((1 << (PB-1)) + sum): arithmetic shift then clamp to 0..255."""
    v = acc.astype(np.int64) + (1 << (_PRECISION_BITS - 1))
    v >>= _PRECISION_BITS
    np.clip(v, 0, 255, out=v)
    return v.astype(np.float64)


def _passes(x: np.ndarray, out_w: int, out_h: int, vertical_first: bool) -> np.ndarray:
    n, h, w = x.shape
    for horizontal in (False, True) if vertical_first else (True, False):
        if horizontal and w != out_w:
            x = _fixed_round(x @ _coeff_matrix(w, out_w).T)
        elif not horizontal and h != out_h:
            x = _fixed_round(np.matmul(_coeff_matrix(h, out_h), x))
    return x


@lru_cache(maxsize=1024)
def _order(h: int, w: int, out_w: int, out_h: int) -> str:
    """Which pass order reproduces this Pillow build for this shape: "h", "v" or "pil".

    Pillow's C code is a two-pass fixed-point filter; recent versions pick the pass order by
    shape. Rather than mirror that heuristic, probe once per shape with random and extreme
    images and keep the order that matches Pillow exactly ("pil" = none did: use Pillow).
    """
    rng = np.random.default_rng(h * 100_003 + w)
    probe = rng.integers(0, 256, (3, h, w), dtype=np.uint8)
    probe[2] = np.where((np.indices((h, w)).sum(axis=0) % 2) == 0, 0, 255)
    ref = np.stack(
        [
            np.asarray(Image.fromarray(p).resize((out_w, out_h), Image.Resampling.LANCZOS))
            for p in probe
        ]
    )
    x = probe.astype(np.float64)
    for name, vfirst in (("h", False), ("v", True)):
        if np.array_equal(_passes(x, out_w, out_h, vfirst).astype(np.uint8), ref):
            return name
    return "pil"


def resize_batch(arr: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Pillow ``Image.resize((out_w, out_h), LANCZOS)`` of a stack of 8-bit L images.

    ``arr``: (n, H, W) uint8. Returns (n, out_h, out_w) uint8, bit-identical to Pillow.
    """
    n, h, w = arr.shape
    order = _order(h, w, out_w, out_h)
    if order == "pil":
        return np.stack(
            [
                np.asarray(Image.fromarray(a).resize((out_w, out_h), Image.Resampling.LANCZOS))
                for a in arr
            ]
        )
    return _passes(arr.astype(np.float64), out_w, out_h, order == "v").astype(np.uint8)


# -- DCT ------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _dct8() -> np.ndarray:
    """First 8 rows of scipy.fftpack's unnormalised DCT-II matrix for N=32."""
    k = np.arange(8)[:, None]
    n = np.arange(32)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / 64.0)


def _phash_exact(px32: np.ndarray) -> np.ndarray:
    """imagehash.phash's own arithmetic on one 32x32 uint8 array -> 64 booleans."""
    import scipy.fftpack

    dct = scipy.fftpack.dct(scipy.fftpack.dct(px32, axis=0), axis=1)
    low = dct[:8, :8]
    return (low > np.median(low)).reshape(64)


def phash_bits(px32: np.ndarray) -> np.ndarray:
    """(n, 32, 32) uint8 (already resized) -> (n, 64) pHash bits equal to imagehash's."""
    d = _dct8()
    low = np.matmul(np.matmul(d, px32.astype(np.float64)), d.T).reshape(len(px32), 64)
    srt = np.sort(low, axis=1)
    med = (srt[:, 31] + srt[:, 32]) / 2.0
    bits = low > med[:, None]
    for i in np.flatnonzero(srt[:, 32] - srt[:, 31] <= _TIE_TOL):
        bits[i] = _phash_exact(px32[i])
    return bits


def dhash_bits(px98: np.ndarray) -> np.ndarray:
    """(n, 8, 9) uint8 (resized to 9x8) -> (n, 64) dHash bits equal to imagehash.dhash."""
    return (px98[:, :, 1:] > px98[:, :, :-1]).reshape(len(px98), 64)


# -- one batch of images --------------------------------------------------------------------------
def _decode(data: bytes) -> tuple[Image.Image | None, str | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im = Image.open(io.BytesIO(data))
            im.load()
        return im, None
    except Exception as e:  # noqa: BLE001 - any decoder failure is "corrupt" with its message
        msg = str(e).strip() or type(e).__name__
        return None, msg.splitlines()[0][:300]


def _is_gray(im: Image.Image) -> bool:
    if im.mode in _GRAY_MODES:
        return True
    if im.mode == "P":
        im = im.convert("RGB")
    if im.mode not in ("RGB", "RGBA", "RGBX"):
        return False
    # Cheap early exit for colourful images (nearly every face): a 16x16 nearest-neighbour probe.
    probe = np.asarray(im.resize((16, 16), Image.Resampling.NEAREST), dtype=np.int16)
    if np.abs(probe[..., 0] - probe[..., 1]).max() > GRAY_TOLERANCE:
        return False
    if np.abs(probe[..., 1] - probe[..., 2]).max() > GRAY_TOLERANCE:
        return False
    r, g, b = im.split()[:3]
    return (
        ImageChops.difference(r, g).getextrema()[1] <= GRAY_TOLERANCE
        and ImageChops.difference(g, b).getextrema()[1] <= GRAY_TOLERANCE
    )


def _sharpness(gray: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grayscale image box-reduced to ~64 px.

    Reducing by an integer factor first makes the measure comparable across resolutions
    (and cheap): a 250x250 face and a 112x112 face of the same blur score alike.
    """
    f = max(1, min(gray.size) // SHARPNESS_SIDE)
    small = gray.reduce(f) if f > 1 else gray
    x = np.asarray(small, dtype=np.float32)
    if x.shape[0] < 3 or x.shape[1] < 3:
        return 0.0
    lap = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return float(lap.var())


def hash_images(face_ids: Sequence[int], blobs: Sequence[bytes]) -> list[HashResult]:
    """Hash a batch of images (bytes). Corrupt ones get their decoder's reason."""
    out: list[HashResult] = []
    groups: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
    for fid, data in zip(face_ids, blobs, strict=True):
        r = HashResult(
            int(fid), hashlib.sha256(data).digest(), None, None, None, None, None, None, None
        )
        out.append(r)
        im, why = _decode(data)
        if im is None:
            r.corrupt = why or "cannot decode"
            continue
        try:
            r.width, r.height = im.size
            r.grayscale = _is_gray(im)
            gray = im if im.mode == "L" else im.convert("L")
            a = np.asarray(gray)
            r.sharpness = _sharpness(gray)
        except Exception as e:  # noqa: BLE001 - e.g. a mode Pillow cannot convert
            r.corrupt = f"cannot convert to grayscale: {e}"
            continue
        groups.setdefault(a.shape, []).append((len(out) - 1, a))
    for members in groups.values():
        for s in range(0, len(members), _BATCH):
            part = members[s : s + _BATCH]
            stack = np.stack([a for _, a in part])
            ph = bits_to_uint64(phash_bits(resize_batch(stack, 32, 32)))
            dh = bits_to_uint64(dhash_bits(resize_batch(stack, 9, 8)))
            for j, (idx, _) in enumerate(part):
                r = out[idx]
                r.phash = to_signed(int(ph[j]))
                r.dhash = to_signed(int(dh[j]))
    return out


def hash_image(data: bytes, face_id: int = 0) -> HashResult:
    """Hash one image (convenience wrapper of :func:`hash_images`)."""
    return hash_images([face_id], [data])[0]


def hash_planned(items: Sequence[object]) -> tuple[list[HashResult], list[tuple[int, str]]]:
    """Worker entry point: read planned faces (annotator.formats.access.ReadItem) and hash them.

    Returns (results, read_errors) where read_errors are (face_id, message) for faces whose
    bytes could not be read at all (missing/changed source); those get no result so a later
    scan retries them.
    """
    from annotator.formats.access import read_planned

    datas = read_planned(items, errors="return")  # type: ignore[arg-type]
    ids: list[int] = []
    blobs: list[bytes] = []
    errors: list[tuple[int, str]] = []
    for item, d in zip(items, datas, strict=True):
        fid = int(item.face_id)  # type: ignore[attr-defined]
        if isinstance(d, bytes):
            ids.append(fid)
            blobs.append(d)
        else:
            errors.append((fid, str(d)))
    return hash_images(ids, blobs), errors
