"""core/dedup/verify.py: the two tests a pHash candidate must pass, against plain implementations,
and on real encoded images (re-encode / crop / brightness vs a different photo)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from annotator.core.dedup import verify
from annotator.core.dedup.hashing import hash_image
from annotator.demo.drawing import draw_face, identity_params, image_params


def _plain_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two 16x16 images written window by window."""
    c1, c2, w = (0.01 * 255) ** 2, (0.03 * 255) ** 2, 5
    vals = []
    for y in range(16 - w + 1):
        for x in range(16 - w + 1):
            pa = a[y : y + w, x : x + w].astype(np.float64).ravel()
            pb = b[y : y + w, x : x + w].astype(np.float64).ravel()
            ma, mb = pa.mean(), pb.mean()
            va, vb = pa.var(), pb.var()
            cov = ((pa - ma) * (pb - mb)).mean()
            vals.append(
                ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
            )
    return float(np.mean(vals))


def test_ssim_equals_the_plain_formula(monkeypatch):
    rng = np.random.default_rng(0)
    thumbs = rng.integers(0, 256, (12, verify.THUMB_BYTES), dtype=np.uint8)
    thumbs[1, : verify.GRAY_BYTES] = np.clip(thumbs[0, : verify.GRAY_BYTES] + 5, 0, 255)
    i = np.array([0, 0, 2, 5, 7, 11])
    j = np.array([1, 3, 4, 6, 7, 10])
    got = verify.ssim_pairs(thumbs, i, j)
    monkeypatch.setattr(verify, "SSIM_CHUNK", 4)  # slices (and a short last one) change nothing
    np.testing.assert_array_equal(verify.ssim_pairs(thumbs, i, j), got)
    g = thumbs[:, : verify.GRAY_BYTES].reshape(-1, 16, 16)
    want = [_plain_ssim(g[a], g[b]) for a, b in zip(i, j, strict=True)]
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert got[4] == pytest.approx(1.0)  # a face with itself
    assert len(verify.ssim_pairs(thumbs, i[:0], j[:0])) == 0


def test_ssim_with_one_side_summed_once_is_ssim_pairs_bit_for_bit(monkeypatch):
    """ssim_fixed (the crop stage's window search: x's window sums once for every window of
    y) gives ssim_pairs' figures exactly, in any slicing."""
    rng = np.random.default_rng(1)
    thumbs = rng.integers(0, 256, (40, verify.THUMB_BYTES), dtype=np.uint8)
    thumbs[1, : verify.GRAY_BYTES] = np.clip(thumbs[0, : verify.GRAY_BYTES] + 3, 0, 255)
    i = rng.integers(0, 40, 300)
    j = rng.integers(0, 40, 300)
    j[:5] = i[:5] ^ 1
    want = verify.ssim_pairs(thumbs, i, j)
    g = thumbs[:, : verify.GRAY_BYTES].reshape(-1, 16, 16).astype(np.float32)
    sums = verify.first_sums(g[i])
    np.testing.assert_array_equal(verify.ssim_fixed(sums, g[i], g[j]), want)
    monkeypatch.setattr(verify, "SSIM_CHUNK", 64)
    np.testing.assert_array_equal(verify.ssim_fixed(sums, g[i], g[j]), want)
    assert len(verify.ssim_fixed(sums[:, :0], g[i][:0], g[j][:0])) == 0


def test_colour_distance_equals_the_plain_formula(monkeypatch):
    rng = np.random.default_rng(2)
    thumbs = rng.integers(0, 256, (9, verify.THUMB_BYTES), dtype=np.uint8)
    i, j = np.array([0, 1, 2, 3, 8]), np.array([4, 5, 6, 3, 0])
    c = thumbs[:, verify.GRAY_BYTES :].astype(np.float64)
    c /= c.mean(axis=1, keepdims=True) + 1e-3
    want = np.abs(c[i] - c[j]).mean(axis=1)
    monkeypatch.setattr(verify, "SSIM_CHUNK", 2)
    np.testing.assert_allclose(verify.colour_distance(thumbs, i, j), want, atol=1e-5)


def test_colour_distance_ignores_brightness_not_hue():
    rng = np.random.default_rng(1)
    base = rng.integers(40, 200, verify.COLOUR_BYTES).astype(np.float64)
    brighter = np.clip(base * 1.1, 0, 255)
    hue = base.reshape(-1, 3)[:, [2, 0, 1]].ravel()  # channels swapped: other colours
    thumbs = np.zeros((3, verify.THUMB_BYTES), np.uint8)
    for k, c in enumerate((base, brighter, hue)):
        thumbs[k, verify.GRAY_BYTES :] = np.round(c).astype(np.uint8)
    d = verify.colour_distance(thumbs, np.array([0, 0]), np.array([1, 2]))
    assert d[0] < 0.01 < verify.COLOUR_MAX < d[1]


def test_popcount_and_cheap_test():
    x = np.array([0, 1, -1, 1 << 40], dtype=np.int64)
    assert verify.popcount64(x).tolist() == [0, 1, 64, 1]
    assert verify.cheap_test(x, np.zeros(4, np.int64), 1).tolist() == [True, True, False, True]


def _jpeg(img: Image.Image, q: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return buf.getvalue()


def _thumb(data: bytes) -> np.ndarray:
    r = hash_image(data)
    assert r.thumb is not None and len(r.thumb) == verify.THUMB_BYTES
    return np.frombuffer(r.thumb, np.uint8)


def test_near_copies_pass_and_other_photos_of_the_person_do_not():
    rng = np.random.default_rng(3)
    person = identity_params(rng)
    photo = draw_face(person, image_params(np.random.default_rng(10)))
    other = draw_face(person, image_params(np.random.default_rng(11)))
    orig = _jpeg(photo, 90)
    copies = [
        _jpeg(photo, 70),  # re-encoded
        _jpeg(photo.crop((1, 1, photo.width - 1, photo.height)), 85),  # cropped
        _jpeg(ImageEnhance.Brightness(photo).enhance(1.08), 88),  # brighter
    ]
    thumbs = np.stack([_thumb(orig), *(_thumb(c) for c in copies), _thumb(_jpeg(other, 90))])
    i = np.zeros(4, np.int64)
    j = np.arange(1, 5)
    fig = verify.pixel_test(thumbs, i, j)
    assert (fig[:3] >= verify.SSIM_MIN).all(), fig
    assert fig[3] < verify.SSIM_MIN, fig
