"""Near-copy variants of a drawn photo: re-encoded, cropped by a few pixels, brighter or darker."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from annotator.demo.drawing import encode_jpeg, phash_int

NEAR_MAX_BITS = 4


def near_variant(jpeg: bytes, rng: np.random.Generator, max_bits: int = NEAR_MAX_BITS) -> bytes:
    """The same photo changed as near duplicates on the web are: re-encoded at another JPEG
    quality, and often cropped by 1-3 px (at most 1 px per side) and/or made 4-10% brighter
    or darker.

    The variant is checked with ``imagehash.phash`` and drawn again (up to 20 times) when it
    moved more than ``max_bits`` bits, so the demo's near duplicates are within ``max_bits``
    by construction; the last resort is a plain high-quality re-encode.
    """
    with Image.open(io.BytesIO(jpeg)) as im:
        img = im.convert("RGB")
    w, h = img.size
    ref = phash_int(jpeg)
    for _ in range(20):
        out = _variant(img, w, h, jpeg, rng)
        if (phash_int(out) ^ ref).bit_count() <= max_bits:
            return out
    for q in (95, 90, 85, 80):
        out = encode_jpeg(img, q)
        if out != jpeg and (phash_int(out) ^ ref).bit_count() <= max_bits:
            return out
    raise RuntimeError("could not make a near-duplicate variant")  # pragma: no cover


def _variant(img: Image.Image, w: int, h: int, jpeg: bytes, rng: np.random.Generator) -> bytes:
    kind = int(rng.integers(3))  # 0 re-encode only, 1 crop, 2 brightness (each re-encoded)
    if kind == 1 or rng.random() < 0.3:
        sides = np.zeros(4, dtype=int)
        sides[rng.choice(4, int(rng.integers(1, 4)), replace=False)] = 1
        left, top, right, bottom = (int(v) for v in sides)
        img = img.crop((left, top, w - right, h - bottom))
    if kind == 2 or rng.random() < 0.3:
        f = float(rng.choice([-1, 1]) * rng.uniform(0.04, 0.10)) + 1
        arr = np.asarray(img, dtype=np.float32) * f
        img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
    while True:
        out = encode_jpeg(img, int(rng.integers(60, 96)))
        if out != jpeg:
            return out


# --------------------------------------------------------------------------------------------
# Names and keys
