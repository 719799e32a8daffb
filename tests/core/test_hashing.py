"""Hashes must be bit-identical to imagehash; corrupt images report the decoder's reason."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw

from annotator.core.dedup import hashing as H
from annotator.core.dedup.crops import CROP_SCALES, crop_box, crop_phashes
from annotator.core.dedup.lanczos import resize_batch


def _img(kind: str) -> Image.Image:
    if kind == "gradient":
        im = Image.new("RGB", (112, 112))
        d = ImageDraw.Draw(im)
        for y in range(112):
            d.line([(0, y), (111, y)], fill=(y * 2, 255 - y * 2, (y * 7) % 256))
    elif kind == "circle":
        im = Image.new("RGB", (250, 250), (30, 60, 90))
        d = ImageDraw.Draw(im)
        d.ellipse([50, 40, 200, 220], fill=(220, 180, 150))
        d.rectangle([90, 100, 160, 120], fill=(20, 20, 20))
    elif kind == "gray_checker":
        im = Image.new("L", (96, 112), 0)
        d = ImageDraw.Draw(im)
        for i in range(0, 96, 16):
            for j in range(0, 112, 16):
                if (i + j) // 16 % 2:
                    d.rectangle([i, j, i + 15, j + 15], fill=200)
    else:  # tall and narrow: Pillow resizes it vertical pass first
        im = Image.new("RGB", (31, 200), (250, 250, 250))
        d = ImageDraw.Draw(im)
        d.polygon([(0, 0), (30, 100), (0, 199)], fill=(10, 120, 40))
    return im


def _png(im: Image.Image) -> bytes:
    b = io.BytesIO()
    im.save(b, "PNG")
    return b.getvalue()


PINNED = {  # str(imagehash.phash(...)), str(imagehash.dhash(...)) with ImageHash 4.3
    "gradient": ("8080000000000080", "0000000000000000"),
    "circle": ("9661799565669699", "967169ccc4e871b2"),
    "gray_checker": ("a300010081000100", "db24db2424db24db"),
    "tall": ("aadc95684ab4a55b", "e6789e67679e78e6"),
}


@pytest.mark.parametrize("kind", sorted(PINNED))
def test_pinned_hashes(kind: str) -> None:
    data = _png(_img(kind))
    r = H.hash_image(data, 7)
    ph, dh = PINNED[kind]
    assert H.to_hex(r.phash) == ph == str(imagehash.phash(Image.open(io.BytesIO(data))))
    assert H.to_hex(r.dhash) == dh == str(imagehash.dhash(Image.open(io.BytesIO(data))))
    assert r.face_id == 7 and r.corrupt is None
    assert (r.width, r.height) == _img(kind).size
    assert r.grayscale == (kind == "gray_checker")
    assert H.from_hex(ph) == r.phash and -(2**63) <= r.phash < 2**63


def drawn_picture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A random RGB picture: a plain background and six random ellipses."""
    im = Image.new("RGB", (w, h), tuple(int(x) for x in rng.integers(0, 255, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = (int(v) for v in rng.integers(0, max(w, h), 2))
        d.ellipse(
            [x0, y0, x0 + w // 3 + 1, y0 + h // 4 + 1],
            fill=tuple(int(x) for x in rng.integers(0, 255, 3)),
        )
    return im


def _random_jpeg(rng: np.random.Generator, w: int, h: int, mode: str = "RGB") -> bytes:
    im = drawn_picture(rng, w, h)
    if mode != "RGB":
        im = im.convert(mode)
    b = io.BytesIO()
    im.save(b, "JPEG" if mode in ("RGB", "L") else "PNG", quality=85)
    return b.getvalue()


def test_batch_matches_imagehash_many_sizes_and_modes() -> None:
    rng = np.random.default_rng(3)
    blobs = []
    for w, h in [
        (112, 112),
        (250, 250),
        (96, 112),
        (33, 31),
        (31, 200),
        (32, 32),
        (9, 8),
        (5, 7),
        (1, 1),
        (400, 90),
    ]:
        for mode in ("RGB", "L", "RGBA", "P"):
            blobs += [_random_jpeg(rng, w, h, mode) for _ in range(3)]
    for v in (0, 128, 255):  # flat images: all AC coefficients tie -> exact scipy fallback
        blobs.append(_png(Image.new("L", (50, 50), v)))
    results = H.hash_images(list(range(len(blobs))), blobs)
    for data, r in zip(blobs, results, strict=True):
        im = Image.open(io.BytesIO(data))
        assert H.to_hex(r.phash) == str(imagehash.phash(im))
        assert H.to_hex(r.dhash) == str(imagehash.dhash(im))


def _crop_hashes_by_definition(data: bytes) -> tuple[int, ...]:
    """The crop hashes as crops.py defines them, each step on its own: the crop pHashes of the
    32x32 pHash image (``crop_phashes`` with ``phash_bits``), the crop dHashes of each centred
    crop resized by Pillow itself."""
    g = Image.open(io.BytesIO(data)).convert("L")
    px32 = np.asarray(g.resize((32, 32), Image.Resampling.LANCZOS), np.float64)[None]
    ph = crop_phashes(px32, lambda c: H.bits_to_uint64(H.phash_bits(c)))[0].tolist()
    dh = [
        H.bits_to_uint64(
            H.dhash_bits(
                np.asarray(g.crop(crop_box(*g.size, s)).resize((9, 8), Image.Resampling.LANCZOS))[
                    None
                ]
            )
        )[0]
        for s in CROP_SCALES
    ]
    return tuple(H.to_signed(int(v)) for v in [*ph, *dh])


def test_crop_hashes_equal_their_definition_at_many_sizes() -> None:
    """The scan computes the crop pHashes fused with the pHash and the crop dHashes in one
    product with the dHash (hashing.phashes_with_crops, _dhash_plan): the same bits as the
    definition, also on flat images and a gradient (near ties: the exact recomputation) and on shapes that
    take the general path (a crop Pillow would not resize along one axis)."""
    rng = np.random.default_rng(11)
    blobs = [
        _random_jpeg(rng, w, h, mode)
        for w, h in [(112, 112), (150, 150), (33, 31), (31, 200), (9, 8), (10, 9), (400, 90)]
        for mode in ("RGB", "L")
    ]
    blobs += [_png(Image.new("L", (50, 50), v)) for v in (0, 128)] + [_png(_img("gradient"))]
    results = H.hash_images(list(range(len(blobs))), blobs)
    for data, r in zip(blobs, results, strict=True):
        assert r.crop == _crop_hashes_by_definition(data)


def test_resize_batch_equals_pillow() -> None:
    rng = np.random.default_rng(0)
    for h, w in [(112, 112), (200, 31), (31, 200), (40, 10), (10, 40), (251, 250), (3, 64)]:
        a = rng.integers(0, 256, (2, h, w), dtype=np.uint8)
        for ow, oh in [(32, 32), (9, 8)]:
            ref = np.stack(
                [
                    np.asarray(Image.fromarray(x).resize((ow, oh), Image.Resampling.LANCZOS))
                    for x in a
                ]
            )
            assert np.array_equal(resize_batch(a, ow, oh), ref)


def test_corrupt_and_truncated() -> None:
    good = _random_jpeg(np.random.default_rng(1), 112, 112)
    results = H.hash_images([1, 2, 3, 4], [b"not an image", good[: len(good) // 2], b"", good])
    assert results[0].corrupt and "cannot identify" in results[0].corrupt
    assert results[1].corrupt and "truncated" in results[1].corrupt
    assert results[2].corrupt
    assert results[3].corrupt is None and results[3].phash is not None
    assert all(r.phash is None for r in results[:3])
    assert results[0].sha256 == __import__("hashlib").sha256(b"not an image").digest()


def test_grayscale_and_sharpness() -> None:
    rng = np.random.default_rng(2)
    sharp = Image.fromarray(rng.integers(0, 256, (112, 112), dtype=np.uint8)).convert("RGB")
    blurred = Image.new("RGB", (112, 112), (120, 120, 120))
    colour = Image.new("RGB", (112, 112), (200, 30, 30))
    rs = H.hash_images([1, 2, 3], [_png(sharp), _png(blurred), _png(colour)])
    assert rs[0].grayscale and rs[1].grayscale and not rs[2].grayscale
    assert rs[0].sharpness > 1000 and rs[1].sharpness == 0.0


def test_hex_roundtrip() -> None:
    assert H.to_hex(-1) == "ffffffffffffffff"
    assert H.from_hex("8000000000000000") == -(2**63)
    assert H.to_hex(H.from_hex("0123456789abcdef")) == "0123456789abcdef"
    bits = np.zeros((1, 64), dtype=bool)
    bits[0, 0] = True
    assert int(H.bits_to_uint64(bits)[0]) == 1 << 63


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "RGBX", "L", "P", "LA", "CMYK", "I;16", "1", "F"])
def test_gray_pixels_equal_pillow_convert(mode: str) -> None:
    rng = np.random.default_rng(4)
    im = Image.fromarray(rng.integers(0, 256, (23, 37, 3), dtype=np.uint8)).convert(mode)
    want = np.asarray(im.convert("L"))
    got = H._gray_pixels(im)
    assert got.dtype == np.uint8 and np.array_equal(got, want)


def test_sharpness_falls_with_blur_at_any_size() -> None:
    from PIL import ImageFilter

    from annotator.demo.dataset import jpeg_pool

    for size in (112, 250):
        im = Image.open(io.BytesIO(jpeg_pool(1, size=size, seed=9)[0])).convert("RGB")
        s = []
        for sigma in (0, 2, 3):
            b = im.filter(ImageFilter.GaussianBlur(sigma * size / 112)) if sigma else im
            s.append(H.hash_image(_png(b)).sharpness)
        assert s[0] > 300 > s[1] > s[2] > 0, (size, s)


def test_large_images_resized_by_pillow_give_the_same_results(monkeypatch) -> None:
    """Images over ``_FLOAT_PIXELS`` (issue 20 #14: a 4096x4096 face cost a worker ~0.8 GB) go
    through Pillow's own resize on 8-bit pixels: every stored value is what the float64 path
    gives, and the hashes are imagehash's."""
    rng = np.random.default_rng(5)
    blobs = [
        _random_jpeg(rng, w, h, m)
        for w, h in [(250, 250), (31, 200), (400, 90)]
        for m in ("RGB", "L")
    ]
    blobs.append(_png(_img("circle")))
    ids = list(range(len(blobs)))
    ref = H.hash_images(ids, blobs)
    monkeypatch.setattr(H, "_FLOAT_PIXELS", 64)  # every image above takes the large path
    got = H.hash_images(ids, blobs)
    assert got == ref
    for data, r in zip(blobs, got, strict=True):
        im = Image.open(io.BytesIO(data))
        assert H.to_hex(r.phash) == str(imagehash.phash(im))
        assert H.to_hex(r.dhash) == str(imagehash.dhash(im))


def test_a_batch_of_large_faces_is_measured_as_it_goes(monkeypatch) -> None:
    """A group of same-size images is measured once it holds ``_GROUP_PIXELS`` (so a chunk of
    256 large faces does not hold all their gray pixels): the results do not change."""
    rng = np.random.default_rng(6)
    blobs = [_random_jpeg(rng, 120, 100) for _ in range(7)] + [_random_jpeg(rng, 50, 60)] * 2
    blobs.insert(3, b"not an image")
    ids = list(range(len(blobs)))
    ref = H.hash_images(ids, blobs)
    sizes = []
    real = H._measure
    monkeypatch.setattr(H, "_measure", lambda g: sizes.append(len(g.members)) or real(g))
    monkeypatch.setattr(H, "_GROUP_PIXELS", 3 * 120 * 100)
    got = H.hash_images(ids, blobs)
    assert got[3].corrupt and ref[3].corrupt  # its message names an object's address
    del got[3], ref[3]
    assert got == ref
    assert sorted(sizes) == [1, 2, 3, 3]
