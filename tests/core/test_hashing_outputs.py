"""Every output of the hash stage equals its straightforward computation, whatever the batch.

``hash_images`` takes shortcuts for speed (Pillow's core image calls, pixels written straight
into step blocks, exact integer sums instead of means, banded matrix products); these tests pin
each stored value against the plain Pillow / imagehash / NumPy computation on synthetic images
of many modes and sizes (odd sizes, sizes not divisible by 8, tiny and upscaled ones).
"""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from PIL import Image

from annotator.core.dedup import hashing as H
from annotator.core.dedup import verify
from tests.core.test_hashing import drawn_picture

SIZES = [(112, 112), (250, 250), (33, 31), (127, 129), (31, 200), (400, 90), (64, 64), (9, 8)]
SIZES += [(5, 7), (1, 1), (20, 300)]


def _picture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    im = drawn_picture(rng, w, h)
    noise = rng.integers(-12, 13, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(im, dtype=np.int16) + noise, 0, 255).astype(np.uint8))


def _save(im: Image.Image, fmt: str) -> bytes:
    b = io.BytesIO()
    im.save(b, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return b.getvalue()


def _corpus() -> list[bytes]:
    rng = np.random.default_rng(8)
    blobs = []
    for w, h in SIZES:
        rgb = _picture(rng, w, h)
        blobs += [_save(rgb, "JPEG"), _save(rgb, "PNG")]
        blobs.append(_save(rgb.convert("L"), "JPEG"))
        blobs.append(_save(rgb.convert("CMYK"), "JPEG"))
        blobs.append(_save(rgb.convert("1"), "PNG"))
        rgba = rgb.copy()
        rgba.putalpha(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)))
        blobs.append(_save(rgba, "PNG"))
        p = rgb.convert("P")
        blobs.append(_save(p, "PNG"))
        p.info["transparency"] = 0
        blobs.append(_save(p, "PNG"))
        blobs.append(_save(rgb.convert("LA"), "PNG"))
        blobs.append(_save(rgb.convert("L").convert("RGB"), "JPEG"))  # gray-looking JPEG
    for w, h in [(112, 112), (40, 40)]:  # near the gray tolerance: channels 2 apart, or 3
        v = rng.integers(0, 250, (h, w)).astype(np.int16)
        near = np.stack([v, v + H.GRAY_TOLERANCE, v], axis=-1)
        blobs.append(_save(Image.fromarray(near.astype(np.uint8)), "PNG"))  # gray
        one = near.copy()
        one[h // 2, w // 3, 1] += 1
        blobs.append(_save(Image.fromarray(one.astype(np.uint8)), "PNG"))  # one pixel: not
        checker = near.copy()
        checker[::2, ::2, 1] += 2  # block means stay close, pixels do not
        blobs.append(_save(Image.fromarray(checker.astype(np.uint8)), "PNG"))
    return blobs


def _sharpness_reference(gray: np.ndarray) -> float:
    """The documented measure, plainly: box sums over f x f blocks, 4-neighbour Laplacian on
    int64, its variance (the same float64 formula), scaled by 1/f**4."""
    h, w = gray.shape
    f = max(1, min(16, round(min(h, w) / H.SHARPNESS_SIDE)))
    y = gray[: h // f * f, : w // f * f].astype(np.int64)
    y = y.reshape(h // f, f, w // f, f).sum(axis=(1, 3))
    if y.shape[0] < 3 or y.shape[1] < 3:
        return 0.0
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1]
    v = lap.reshape(1, -1).astype(np.float64)
    mean = v.mean(axis=1)
    var = np.einsum("ni,ni->n", v, v) / v.shape[1] - mean * mean
    return float(var[0] / float(f**4))


def _gray_reference(im: Image.Image) -> bool:
    if im.mode in H._GRAY_MODES:
        return True
    if im.mode not in ("RGB", "RGBA", "RGBX", "P"):
        return False
    a = np.asarray(im.convert("RGB"), dtype=np.int16)
    return bool(
        np.abs(a[..., 0] - a[..., 1]).max() <= H.GRAY_TOLERANCE
        and np.abs(a[..., 1] - a[..., 2]).max() <= H.GRAY_TOLERANCE
    )


@pytest.fixture(scope="module")
def corpus() -> tuple[list[bytes], list[H.HashResult]]:
    blobs = _corpus()
    return blobs, H.hash_images(list(range(len(blobs))), blobs)


def test_every_output_equals_the_plain_computation(corpus) -> None:
    blobs, results = corpus
    modes = set()
    for data, r in zip(blobs, results, strict=True):
        im = Image.open(io.BytesIO(data))
        modes.add(im.mode)
        assert r.corrupt is None
        assert H.to_hex(r.phash) == str(imagehash.phash(im))
        assert H.to_hex(r.dhash) == str(imagehash.dhash(im))
        assert (r.width, r.height) == im.size
        assert r.grayscale == _gray_reference(im)
        gray = np.asarray(im.convert("L"))
        assert r.sharpness == _sharpness_reference(gray)
        # the thumbnails: 2x2 means of the 32x32 LANCZOS image pHash is taken from, then the
        # 8x8 RGB box reduction (of a 64x64 nearest-neighbour sample when the image is larger)
        px32 = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS))
        want_gray = verify.gray_from_px32(px32[None].astype(np.float64))[0].tobytes()
        rgb = im.convert("RGB")
        if rgb.width * rgb.height <= 64 * 64:
            small = rgb.resize((8, 8), Image.Resampling.BOX)
        else:
            small = rgb.resize((64, 64), Image.Resampling.NEAREST).reduce(8)
        assert r.thumb == want_gray + small.tobytes()
    assert {"RGB", "L", "CMYK", "1", "RGBA", "P", "LA"} <= modes
    assert [r.grayscale for r in results[-6:]] == [True, False, False] * 2


def test_results_do_not_depend_on_the_batch(corpus) -> None:
    """One at a time, in odd-sized batches, or many same-size images (several step blocks per
    size, the last one partial): the same results."""
    blobs, results = corpus
    rng = np.random.default_rng(9)
    many = [_save(_picture(rng, 112, 112), "JPEG") for _ in range(23)]  # step is 10 at 112 px
    many += [_save(_picture(rng, 250, 250), "JPEG") for _ in range(5)]  # step 2 at 250 px
    want = results + [H.hash_image(b) for b in many]
    allb = blobs + many
    key = lambda r: (r.phash, r.dhash, r.width, r.height, r.grayscale, r.sharpness, r.thumb)  # noqa: E731
    for size in (1, 7, len(allb)):
        got = []
        for i in range(0, len(allb), size):
            got += H.hash_images(list(range(i, i + len(allb[i : i + size]))), allb[i : i + size])
        assert [key(r) for r in got] == [key(r) for r in want]


def test_gray_thumbs_equal_verify_definition() -> None:
    rng = np.random.default_rng(10)
    px = rng.integers(0, 256, (50, 32, 32)).astype(np.float64)
    px[0] = 0
    px[1] = 255
    px[2, ::2] = 254  # sums ending in .5 after / 4: the rounding direction matters
    px[2, 1::2] = 255
    assert np.array_equal(H._gray_thumbs(px), verify.gray_from_px32(px))


@pytest.mark.parametrize("side", [16, 64, 130, 250, 330, 700])
def test_sharpness_int16_and_int32_paths_equal_the_plain_computation(side: int) -> None:
    """f = 1..11 (int16 up to f = 5, int32 above); a checkerboard of f x f blocks of 0 and 255
    makes the largest Laplacian the sums can have (4 * f * f * 255)."""
    rng = np.random.default_rng(side)
    a = rng.integers(0, 256, (3, side, side + 3), dtype=np.uint8)
    f = max(1, min(16, round(side / H.SHARPNESS_SIDE)))
    yy, xx = np.indices((side, side + 3))
    a[1] = np.where((yy // f + xx // f) % 2 == 0, 0, 255)
    a[2] = 255
    got = H._sharpness(a)
    assert got.tolist() == [_sharpness_reference(x) for x in a]
