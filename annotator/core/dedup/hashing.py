"""Per-image hashes and measurements, bit-identical to ``imagehash`` where it matters.

For each image's bytes: SHA-256, a 64-bit pHash equal to ``imagehash.phash``, a 64-bit dHash
equal to ``imagehash.dhash``, width, height, grayscale, sharpness and the verification
thumbnails, or the decoder's reason when the bytes do not decode (a full decode is forced).

Why it is exact and still fast: each image is decoded and converted to gray once; Pillow's
LANCZOS resize is rebuilt as float64 matrix products over Pillow's own integer coefficients
(core/dedup/lanczos.py: every partial sum is an integer below 2**53, so the result is Pillow's
bit for bit); the dHash's and the crop dHashes' horizontal passes are one product (each crop's
coefficients at its columns); the 32x32 DCT's 8x8 low blocks of the pHash and of the crop
pHashes are two matrix products over a whole group, and a hash whose two median coefficients
are within ``_TIE_TOL`` is recomputed with scipy exactly as imagehash does. BLAS runs on one thread
here: the products are small and the scan's parallelism is its worker processes. Images over
``_FLOAT_PIXELS`` are resized by Pillow itself on their 8-bit pixels (the same bytes, without a
float64 copy), and a batch measures a size group once it holds ``_GROUP_PIXELS``: a large face
costs a worker its decoded pixels, not ~40 bytes a pixel.
tests/core/test_hashing.py checks all of it against imagehash and Pillow.

Hashes are 64-bit integers (first hash bit = most significant bit), stored as signed int64;
:func:`to_hex` gives imagehash's hex string. Grayscale: mode L/LA/1/I/F, or every pixel's
channels within ``GRAY_TOLERANCE`` levels (JPEG chroma rounding). Sharpness: variance of the
4-neighbour Laplacian of the gray image box-reduced to about 64 px; low means blurry (the
``blurry_sharpness`` setting). Speed: tests/bench/bench_hash.py (``--against TREE`` compares
with another checkout).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from annotator.core.dedup.crops import CROP_SCALES, crop_box, crop_windows
from annotator.core.dedup.lanczos import coeff_matrix, pass_order, pil_resize, resize_f, round8
from annotator.core.dedup.verify import COLOUR_BYTES, COLOUR_SIDE, GRAY_BYTES, THUMB_BYTES
from annotator.core.infra.access import read_planned
from annotator.core.infra.blas import one_blas_thread
from annotator.core.infra.decode import open_image

GRAY_TOLERANCE = 2
SHARPNESS_SIDE = 64  # sharpness is measured after box-reducing to about this many pixels
_TIE_TOL = 1e-3  # DCT coefficients are up to ~1e6; matmul-vs-FFT error is ~1e-9
_SUB_PIXELS = 1 << 17  # pixels per resize step (1 MB of float64: stays in the L2 cache)
_GROUP_PIXELS = 1 << 25  # gray pixels a batch holds for one size before it is measured (32 MB)
_FLOAT_PIXELS = 1 << 20  # larger images are resized by Pillow itself on their 8-bit pixels: the
# float64 copy and the pass-order probe (3 float64 images) would cost ~40 bytes a pixel
_COLOUR_SAMPLE = 64  # colour thumbnails of larger images: from a 64x64 nearest-neighbour sample
_RGB_MODES = {"RGB", "RGBA", "RGBX", "P"}  # grayscale when every pixel's channels are close
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
    thumb: bytes | None = None  # verification thumbnails (core/dedup/verify.py); None when corrupt
    crop: tuple[int, ...] | None = None  # signed pHashes, then dHashes, of centred crops
    # (core/dedup/crops.py)


# -- int64 / hex helpers -----------------------------------------------------------------------
def to_signed(u: int) -> int:
    """uint64 value -> the signed int64 SQLite stores."""
    return u - (1 << 64) if u >= (1 << 63) else u


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
    """(n, 32, 32) pixels (uint8, or float64 holding them; already resized) -> (n, 64) pHash
    bits equal to imagehash's."""
    d = _dct8()
    low = np.matmul(np.matmul(d, px32.astype(np.float64)), d.T).reshape(len(px32), 64)
    srt = np.sort(low, axis=1)
    med = (srt[:, 31] + srt[:, 32]) / 2.0
    bits = low > med[:, None]
    for i in np.flatnonzero(srt[:, 32] - srt[:, 31] <= _TIE_TOL):
        bits[i] = _phash_exact(px32[i].astype(np.uint8))
    return bits


@lru_cache(maxsize=1)
def _dct_stack() -> np.ndarray:
    """(1 + len(CROP_SCALES), 8, 32): the pHash's DCT rows, then each crop's with its
    resampling folded in (the low block of D A X A^T D^T is (D A) X (D A)^T)."""
    d = _dct8()
    m = np.stack([d] + [d @ a for a in crop_windows()])
    m.setflags(write=False)
    return m


def phashes_with_crops(px32: np.ndarray) -> np.ndarray:
    """(n, 32, 32) float64 pHash images -> (n, 1 + len(CROP_SCALES)) uint64: each image's
    pHash (:func:`phash_bits`, imagehash's) and its crop pHashes (``crops.crop_phashes``'s
    bits), by two matrix products over every image and hash at once. The float sums differ
    from theirs by rounding only (~1e-9), far inside ``_TIE_TOL``, and a near tie is
    recomputed as they do, so the bits are theirs."""
    m = _dct_stack()
    k, n = len(m), len(px32)
    y = px32.reshape(n * 32, 32) @ m.reshape(k * 8, 32).T  # [(i, r), (j, v)]
    y = y.reshape(n, 32, k, 8).transpose(2, 1, 0, 3).reshape(k, 32, n * 8)  # [j, r, (i, v)]
    low = np.matmul(m, y).reshape(k, 8, n, 8).transpose(2, 0, 1, 3).reshape(n, k, 64)
    srt = np.sort(low, axis=2)
    bits = low > ((srt[..., 31] + srt[..., 32]) / 2.0)[..., None]
    wins = crop_windows()
    for i, j in zip(*np.nonzero(srt[..., 32] - srt[..., 31] <= _TIE_TOL), strict=True):
        px = px32[i] if j == 0 else np.matmul(np.matmul(wins[j - 1], px32[i]), wins[j - 1].T)
        bits[i, j] = _phash_exact(px.astype(np.uint8))
    return bits_to_uint64(bits.reshape(n * k, 64)).reshape(n, k)


def dhash_bits(px98: np.ndarray) -> np.ndarray:
    """(n, 8, 9) uint8 (resized to 9x8) -> (n, 64) dHash bits equal to imagehash.dhash."""
    return (px98[:, :, 1:] > px98[:, :, :-1]).reshape(len(px98), 64)


# -- one batch of images --------------------------------------------------------------------------
def _decode(data: bytes) -> tuple[Image.Image | None, str | None]:
    try:
        # full size (the hashes must equal imagehash's): an image over the pixel budget is
        # reported corrupt ("too large: ...") before any pixel is decoded
        im = open_image(data)
        im.load()
        return im, None
    except Exception as e:  # noqa: BLE001 - any decoder failure is "corrupt" with its message
        msg = str(e).strip() or type(e).__name__
        return None, msg.splitlines()[0][:300]


def _bands_close(core: object, tolerance: int = GRAY_TOLERANCE) -> bool:
    """Every pixel's R, G and B within ``tolerance`` of each other (Pillow core image)."""
    r, g, b = (core.getband(k) for k in range(3))  # type: ignore[attr-defined]
    return (
        r.chop_difference(g).getextrema()[1] <= tolerance
        and g.chop_difference(b).getextrema()[1] <= tolerance
    )


def _is_gray(rgb: object, thumb: object) -> bool:
    """Every pixel of the RGB core image ``rgb`` within GRAY_TOLERANCE, its colour thumbnail
    ``thumb`` (8x8 block means, :func:`_colour_thumb`) the cheap early exit for colourful
    images (nearly every face): a block mean is within 1 of the true mean of its pixels (or
    samples), so blocks of a gray image are within GRAY_TOLERANCE + 2; only when they all are
    is the whole image checked. (Pillow's core image methods: the Image wrappers cost several
    times more than the work here.)"""
    if not _bands_close(thumb, GRAY_TOLERANCE + 2):
        return False
    return _bands_close(rgb)


def _into(core: object, out: np.ndarray, mode: str) -> bool:
    """Convert a Pillow core image straight into ``out`` (C-contiguous uint8: (h, w) for "L",
    (h, w, 4) for "RGB", Pillow's own pixel layout). False where this Pillow cannot."""
    h, w = out.shape[:2]
    try:
        target = Image.core.map_buffer(out, (w, h), "raw", 0, (mode, 0, 1))
        core.convert_into(target)  # type: ignore[attr-defined]
        return True
    except (AttributeError, ValueError, TypeError):  # an older/newer Pillow: plain path
        return False


def _gray_pixels(im: Image.Image, out: np.ndarray | None = None) -> np.ndarray:
    """``np.asarray(im.convert("L"))`` (into ``out`` when given), converting straight into the
    array where Pillow allows (the same converter, without the intermediate image and its
    copy out)."""
    if out is None:
        w, h = im.size
        out = np.empty((h, w), dtype=np.uint8)
    if im.mode in ("RGB", "RGBA", "RGBX", "L") and _into(im.im, out, "L"):
        return out
    out[...] = np.asarray(im if im.mode == "L" else im.convert("L"))
    return out


def _colour_thumb(rgb: object, out: np.ndarray) -> object:
    """The 8x8 RGB block means of an RGB core image into ``out`` ((8, 8, 4) uint8: Pillow's RGB
    layout, the 4th byte is padding); returns them as a core image too.

    An image of at most 64x64 pixels: Pillow's BOX reduction (``resize((8, 8), BOX)``). A larger
    one: a 64x64 nearest-neighbour sample, reduced by 8 (each block the rounded mean of its 8x8
    samples): reading every pixel cost a large share of the hash stage, and the colour test
    cannot tell the two apart (tests/core/test_flag_quality.py; the figures are in
    docs/MEASUREMENTS.md, "Colour thumbnails from a sample").
    """
    w, h = rgb.size  # type: ignore[attr-defined]
    if w * h <= _COLOUR_SAMPLE * _COLOUR_SAMPLE:
        small = rgb.resize((COLOUR_SIDE, COLOUR_SIDE), Image.Resampling.BOX)  # type: ignore[attr-defined]
    else:
        k = _COLOUR_SAMPLE // COLOUR_SIDE
        sample = rgb.resize((_COLOUR_SAMPLE, _COLOUR_SAMPLE), Image.Resampling.NEAREST)  # type: ignore[attr-defined]
        small = sample.reduce((k, k), (0, 0, _COLOUR_SAMPLE, _COLOUR_SAMPLE))
    if not _into(small, out, "RGB"):
        out[..., :3] = np.asarray(Image.Image()._new(small))
    return small


def _gray_thumbs(px32: np.ndarray) -> np.ndarray:
    """:func:`annotator.core.dedup.verify.gray_from_px32` (16x16 2x2 means, rounded) for the integer
    pixels the resize gives: the sums are exact, so sum / 4 + 0.5 truncated is the same
    rounding without its slower mean over two axes."""
    t = px32[:, 0::2, 0::2] + px32[:, 0::2, 1::2]
    t += px32[:, 1::2, 0::2]
    t += px32[:, 1::2, 1::2]
    t *= 0.25
    t += 0.5
    return t.astype(np.uint8).reshape(len(px32), GRAY_BYTES)


def _sharpness(a: np.ndarray) -> np.ndarray:
    """Per image of ``a`` (n, H, W) uint8 gray: variance of the 4-neighbour Laplacian after a
    box mean over f x f blocks, f = round(min(H, W) / SHARPNESS_SIDE) clamped to 1..16 (edge
    pixels that do not fill a block are dropped).

    Reducing to about SHARPNESS_SIDE pixels first makes the measure comparable across
    resolutions (and cheap): a 250x250 face and a 112x112 face of the same blur score alike.
    Computed on integers (box sums in uint16, the Laplacian of the sums in int16 while it
    fits, f <= 5, else int32), exactly, then scaled by 1/f**2.
    """
    n, h, w = a.shape
    f = max(1, min(16, round(min(h, w) / SHARPNESS_SIDE)))
    if f > 1:
        y = a[:, : h // f * f, : w // f * f]
        r = np.add(y[:, 0::f, :], y[:, 1::f, :], dtype=np.uint16)
        for k in range(2, f):
            r += y[:, k::f, :]
        y = np.add(r[:, :, 0::f], r[:, :, 1::f])
        for k in range(2, f):
            y += r[:, :, k::f]
    else:
        y = a
    if y.shape[1] < 3 or y.shape[2] < 3:
        return np.zeros(n)
    if f <= 5 and y.dtype == np.uint16:  # sums <= 25 * 255: the same values as int16
        y = y.view(np.int16)
    else:  # |Laplacian| <= 4 * 25 * 255 < 2**15 for f <= 5
        y = y.astype(np.int16 if f <= 5 else np.int32)
    lap = y[:, :-2, 1:-1] + y[:, 2:, 1:-1]
    lap += y[:, 1:-1, :-2]
    lap += y[:, 1:-1, 2:]
    lap -= y[:, 1:-1, 1:-1] * 4
    v = lap.reshape(n, -1).astype(np.float64)
    mean = v.mean(axis=1)
    var = np.einsum("ni,ni->n", v, v) / v.shape[1] - mean * mean
    return var / float(f**4)


class _Group:
    """A batch's decodable images of one size: their gray pixels, written straight into blocks
    of ``step`` images (the steps :func:`_measure` works in), and their places in the batch."""

    __slots__ = ("blocks", "members", "shape", "step")

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.step = max(1, _SUB_PIXELS // (shape[0] * shape[1]))
        self.blocks: list[np.ndarray] = []
        self.members: list[int] = []

    def slot(self) -> np.ndarray:
        """Where the next image's pixels go; it counts once :meth:`add` is called."""
        k = len(self.members)
        if k == len(self.blocks) * self.step:
            self.blocks.append(np.empty((self.step, *self.shape), dtype=np.uint8))
        return self.blocks[k // self.step][k % self.step]

    def add(self, index: int) -> None:
        self.members.append(index)


@lru_cache(maxsize=256)
def _dhash_plan(h: int, w: int) -> tuple[np.ndarray, tuple] | None:
    """The dHash and the crop dHashes of an h x w image from one horizontal product: (the
    (w, 32) coefficients side by side, 9 columns a hash: Pillow's integer coefficients of each
    crop's own resize at its columns, zeros elsewhere; per hash (y0, y1, its (y1 - y0, 8)
    vertical coefficients)). The sums are the same integers as resizing each crop on its own,
    so the bytes are Pillow's. None where a crop needs the general path (Pillow's vertical
    pass first, or a pass it skips)."""
    boxes = [(0, 0, w, h)] + [crop_box(w, h, s) for s in CROP_SCALES]
    cols = np.zeros((w, -(-9 * len(boxes) // 8) * 8))  # 32 columns: measured faster than 27
    rows = []
    for j, (x0, y0, x1, y1) in enumerate(boxes):
        cw, ch = x1 - x0, y1 - y0
        if cw == 9 or ch == 8 or pass_order(ch, cw, 9, 8) != "h":
            return None
        cols[x0:x1, 9 * j : 9 * j + 9] = coeff_matrix(cw, 9).T
        rows.append((y0, y1, np.ascontiguousarray(coeff_matrix(ch, 8).T)))
    cols.setflags(write=False)
    return cols, tuple(rows)


def _dhashes(xs: np.ndarray, plan: tuple[np.ndarray, tuple], out: np.ndarray, s0: int) -> None:
    """The 9x8 images of :func:`_dhash_plan` of a step of images ``xs`` (k, h, w) float64
    into ``out[:, s0:s0 + k]`` ((1 + len(CROP_SCALES), n, 8, 9))."""
    cols, rows = plan
    k, h, w = xs.shape
    t = round8(xs.reshape(k * h, w) @ cols).reshape(k, h, -1).transpose(0, 2, 1)
    for j, (y0, y1, cv) in enumerate(rows):
        v = round8(t[:, 9 * j : 9 * j + 9, y0:y1].reshape(k * 9, y1 - y0) @ cv)
        out[j, s0 : s0 + k] = v.reshape(k, 9, 8).transpose(0, 2, 1)


def _measure(group: _Group) -> tuple[np.ndarray, ...]:
    """pHash, dHash (uint64), sharpness, 16x16 verification thumbnails (the 2x2 means of
    the 32x32 image the pHash is taken from), the crop pHashes (core/dedup/crops.py, from
    the same 32x32 image) and the crop dHashes (the crop of the image itself, resized as the
    dHash is) of a group's same-size 8-bit gray images.

    Images go through in small steps so the float64 pixels stay in cache for both resizes and
    the sharpness; the DCT and the bit packing then run once over the whole group.
    """
    h, w = group.shape
    n = len(group.members)
    px32 = np.empty((n, 32, 32))
    px98 = np.empty((1 + len(CROP_SCALES), n, 8, 9))  # the dHash's image, then the crops'
    boxes = [(0, 0, w, h)] + [crop_box(w, h, s) for s in CROP_SCALES]
    sharp = np.empty(n)
    big = h * w > _FLOAT_PIXELS  # Pillow's own resize: the same bytes, no float64 copies
    plan = None if big else _dhash_plan(h, w)
    x = np.empty((0 if big else min(group.step, n), h, w))
    for s0 in range(0, n, group.step):
        st = group.blocks[s0 // group.step][: n - s0]
        s1 = s0 + len(st)
        sharp[s0:s1] = _sharpness(st)
        if big:
            px32[s0:s1] = pil_resize(st, 32, 32)
            for k, (x0, y0, x1, y1) in enumerate(boxes):
                px98[k, s0:s1] = pil_resize(np.ascontiguousarray(st[:, y0:y1, x0:x1]), 9, 8)
            continue
        xs = x[: len(st)]
        xs[...] = st
        px32[s0:s1] = resize_f(xs, 32, 32)
        if plan is not None:
            _dhashes(xs, plan, px98, s0)
            continue
        for k, (x0, y0, x1, y1) in enumerate(boxes):
            px98[k, s0:s1] = resize_f(np.ascontiguousarray(xs[:, y0:y1, x0:x1]), 9, 8)
    ph = phashes_with_crops(px32)
    dh = bits_to_uint64(dhash_bits(px98.reshape(-1, 8, 9))).reshape(len(px98), n)
    return ph[:, 0], dh[0], sharp, _gray_thumbs(px32), np.concatenate([ph[:, 1:], dh[1:].T], 1)


def _finish(g: _Group, out: list[HashResult], colour: np.ndarray) -> None:
    """Measure a group and fill in its members' results."""
    with one_blas_thread():
        ph, dh, sharp, gray, crop = _measure(g)
    thumbs = np.empty((len(g.members), THUMB_BYTES), dtype=np.uint8)
    thumbs[:, :GRAY_BYTES] = gray
    thumbs[:, GRAY_BYTES:] = colour[g.members, :, :, :3].reshape(-1, COLOUR_BYTES)
    for idx, p, d, s, t, c in zip(
        g.members,
        ph.view(np.int64).tolist(),  # the signed int64 SQLite stores (to_signed)
        dh.view(np.int64).tolist(),
        sharp.tolist(),
        thumbs,
        crop.view(np.int64).tolist(),
        strict=True,
    ):
        r = out[idx]
        r.phash, r.dhash, r.sharpness, r.thumb, r.crop = p, d, s, t.tobytes(), tuple(c)


def hash_images(face_ids: Sequence[int], blobs: Sequence[bytes]) -> list[HashResult]:
    """Hash a batch of images (bytes). Corrupt ones get their decoder's reason."""
    out: list[HashResult] = []
    groups: dict[tuple[int, int], _Group] = {}
    colour = np.empty((len(blobs), COLOUR_SIDE, COLOUR_SIDE, 4), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (fid, data) in enumerate(zip(face_ids, blobs, strict=True)):
            r = HashResult(
                int(fid), hashlib.sha256(data).digest(), None, None, None, None, None, None, None
            )
            out.append(r)
            im, why = _decode(data)
            if im is None:
                r.corrupt = why or "cannot decode"
                continue
            try:
                w, h = r.width, r.height = im.size
                mode = im.mode
                rgb = im.im if mode == "RGB" else im.convert("RGB").im if mode == "P" else None
                if mode not in _RGB_MODES:
                    r.grayscale = mode in _GRAY_MODES
                g = groups.get((h, w)) or groups.setdefault((h, w), _Group((h, w)))
                _gray_pixels(im, g.slot())
                if rgb is None:
                    rgb = im.convert("RGB").im
                thumb = _colour_thumb(rgb, colour[i])
                if r.grayscale is None:
                    r.grayscale = _is_gray(rgb, thumb)
            except Exception as e:  # noqa: BLE001 - e.g. a mode Pillow cannot convert
                r.corrupt = f"cannot convert to grayscale: {e}"
                continue
            g.add(i)
            if len(g.members) * w * h >= _GROUP_PIXELS:  # a batch of large faces: measured
                _finish(groups.pop((h, w)), out, colour)  # now, its gray pixels freed
    for g in groups.values():
        _finish(g, out, colour)
    return out


def hash_image(data: bytes, face_id: int = 0) -> HashResult:
    """Hash one image (convenience wrapper of :func:`hash_images`)."""
    return hash_images([face_id], [data])[0]


def hash_planned(items: Sequence[object]) -> tuple[list[HashResult], list[tuple[int, str]]]:
    """Worker entry point: read planned faces (annotator.core.infra.access.ReadItem) and hash them.

    Returns (results, read_errors) where read_errors are (face_id, message) for faces whose
    bytes could not be read at all (missing/changed source); those get no result so a later
    scan retries them.
    """
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
