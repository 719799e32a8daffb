"""core/dedup/crops.py: a drawn photo cut by 2-5 % a side (or shifted) and resized back is found
as a near copy through the crop hashes and the registered pixel test; another drawn photo of
the same person (same background: one event) is not."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image

from annotator.core.dedup import crops, flagset
from annotator.core.dedup import flags as F
from annotator.core.dedup.hashing import hash_images
from annotator.demo.drawing import draw_face, encode_jpeg, identity_params, image_params
from annotator.store import hashes as hashes_store

SIZE = 150


def _cut(jpeg: bytes, box: tuple[int, int, int, int], quality: int = 80) -> bytes:
    left, t, r, b = box
    im = Image.open(io.BytesIO(jpeg)).convert("RGB")
    return encode_jpeg(
        im.crop((left, t, SIZE - r, SIZE - b)).resize((SIZE, SIZE), Image.LANCZOS), quality
    )


def _photos(seed: int) -> tuple[bytes, bytes]:
    """Two photos of one drawn person from one event: same background and light, another
    pose and expression."""
    rng = np.random.default_rng(seed)
    person = identity_params(rng)
    a = image_params(rng)
    b = image_params(rng)
    same = ("bg_color", "bg_color2", "bg_kind", "bg_angle", "light", "light_strength")
    b = dataclasses.replace(b, texture_seed=a.texture_seed, **{k: getattr(a, k) for k in same})
    return tuple(encode_jpeg(draw_face(person, ip, SIZE), 90) for ip in (a, b))  # type: ignore[return-value]


def _flags(blobs: list[bytes]) -> flagset.FlagSet:
    rs = hash_images(list(range(1, len(blobs) + 1)), blobs)
    data = np.zeros(len(rs), dtype=hashes_store.HASH_DTYPE)
    for k, r in enumerate(rs):
        data[k] = (r.face_id, 1, r.phash, r.dhash, r.width, r.height, 0, r.sharpness, 0, 0, *r.crop)
    thumbs = {r.face_id: np.frombuffer(r.thumb, np.uint8) for r in rs}

    def thumbs_of(ids):
        return np.stack([thumbs[int(f)] for f in ids]), np.ones(len(ids), bool)

    def images_of(ids):
        return [blobs[int(f) - 1] for f in ids]

    return F.compute_flags(data, [], thumbs_of=thumbs_of, threads=1, images_of=images_of)


def _groups(fs: flagset.FlagSet) -> list[set[int]]:
    return [set(f.faces) for f in fs.flags if f.kind in ("near_dup", "exact_dup")]


def _other_event(seed: int) -> tuple[bytes, bytes]:
    """Two photos of one drawn person from different events (own backgrounds and light)."""
    rng = np.random.default_rng(seed)
    person = identity_params(rng)
    return tuple(encode_jpeg(draw_face(person, image_params(rng), SIZE), 90) for _ in range(2))  # type: ignore[return-value]


def test_copies_found_and_photos_of_other_events_not_joined() -> None:
    rng = np.random.default_rng(5)
    found = joined = 0
    for seed in range(8):
        orig, other = _other_event(200 + seed)
        box = tuple(int(v) for v in rng.integers(3, 9, 4))
        g = _groups(_flags([orig, _cut(orig, box), other]))  # type: ignore[arg-type]
        found += any({1, 2} <= x for x in g)
        joined += any(3 in x for x in g)
    assert found >= 7
    assert joined == 0


def test_photos_of_one_event_are_never_joined() -> None:
    """Another pose on the same background and light: the 16x16 thumbnails agree after
    registration (6 of 40 such pairs passed that test alone), the photos' middles do not."""
    rng = np.random.default_rng(5)
    joined = 0
    for seed in range(20):
        orig, other = _photos(1000 + seed)
        box = tuple(int(v) for v in rng.integers(3, 9, 4))
        joined += any(3 in x for x in _groups(_flags([orig, _cut(orig, box), other])))
    assert joined == 0


def test_a_pair_already_joined_is_not_tested_on_the_photos_again(monkeypatch) -> None:
    """Two cuts of one photo and the photo: candidates come both ways (x a crop of y, y of
    x) and between the cuts; once a verified pair has joined two faces, no other pair of the
    same group reaches the photo test. The group is the same (found: all three)."""
    calls = []
    real = crops.fine_test
    monkeypatch.setattr(crops, "fine_test", lambda *a, **k: calls.append(1) or real(*a, **k))
    orig, other = _photos(5004)
    g = _groups(_flags([orig, _cut(orig, (4, 5, 3, 6)), _cut(orig, (6, 3, 5, 4)), other]))
    assert g == [{1, 2, 3}]
    assert 1 <= len(calls) <= 2  # testing every candidate that passed the thumbnails: 4


def test_crop_hashes_match_the_original_crop_and_not_another_photo() -> None:
    orig, other = _other_event(9)
    copy = _cut(orig, (5, 4, 6, 5))
    ro, rc, rx = hash_images([1, 2, 3], [orig, copy, other])
    crop = np.array([ro.crop, rc.crop, rx.crop], np.int64).view(np.uint64)
    full = np.array([ro.phash, rc.phash, rx.phash], np.int64)
    x, y, scale, d = crops.candidates(full, crop)
    found = set(zip(x.tolist(), y.tolist(), strict=True))
    assert (1, 0) in found  # the copy's full hash is near a crop hash of the original
    # the registered test: the copy against the original, and against the other photo
    thumbs = np.stack([np.frombuffer(r.thumb, np.uint8) for r in (ro, rc, rx)])
    s = int(np.argmin([bin((rc.phash ^ c) & (2**64 - 1)).count("1") for c in ro.crop]))
    sim = crops.registered_test(
        thumbs, np.array([1, 2, 2]), np.array([0, 0, 1]), np.array([s, s, s])
    )
    assert sim[0] >= crops.REG_SSIM_MIN
    assert sim[1] < crops.REG_SSIM_MIN and sim[2] < crops.REG_SSIM_MIN


def test_faces_without_crop_hashes_take_no_part() -> None:
    full = np.array([1, 2], np.int64)
    crop = np.zeros((2, 2), np.uint64)
    x, _y, _s, _d = crops.candidates(full, crop)
    assert len(x) == 0


def test_fine_ssim_with_the_first_photo_summed_once_is_bit_for_bit_the_same() -> None:
    """The fine test sums x's windows once for all windows of y: the same figures exactly."""
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (crops.FINE_SIDE, crops.FINE_SIDE)).astype(np.float64)
    b = rng.integers(0, 256, (7, crops.FINE_SIDE, crops.FINE_SIDE)).astype(np.float64)
    b[0] = a  # the same image: SSIM 1
    b[1] = np.clip(a + rng.integers(-9, 10, a.shape), 0, 255)
    aa = np.broadcast_to(a, b.shape)
    want = crops._ssim_middle(aa, b)
    got = crops._ssim_middle(aa, b, crops._middle_sums(a))
    np.testing.assert_array_equal(got, want)
    assert want[0] == np.float32(1.0) and want[1] > want[2]


def test_fine_windows_in_two_passes_are_pillows_resize_of_the_box() -> None:
    """The fine test resizes a window's columns once and its rows from them (Pillow's own two
    passes, kept apart): the same bytes as resizing the box at once, windows that leave the
    photo and the whole photo included, in both of Pillow's pass orders (a tall photo goes
    vertical first)."""
    assert crops._passes_apart_ok()  # else the fine test resizes each window at once
    rng = np.random.default_rng(3)
    shapes = ((112, 112), (112, 111), (250, 250), (150, 171), (64, 64), (70, 300), (300, 70))
    for w, h in shapes + ((100, 150), (90, 143), (90, 144), (40, 200)):
        im = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))
        read = crops._window_reader(im)
        for _ in range(40):
            s = float(rng.choice([rng.uniform(0.8, 1.05), 1.0]))
            dy, dx = (float(v) for v in rng.uniform(-3, 3, 2))
            box = crops.window_box(w, h, s, dy, dx)
            want = im.resize((crops.FINE_SIDE,) * 2, Image.Resampling.LANCZOS, box=box)
            assert np.array_equal(read(s, dy, dx), np.asarray(want, np.float64)), (w, h, box)
