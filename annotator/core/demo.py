"""A synthetic identity dataset: cartoon-like faces drawn with Pillow + NumPy.

No real person's image is anywhere in here. Each *identity* is a set of drawing parameters
(face shape, skin tone, hair, eyes, brows, nose, mouth, sometimes glasses or a beard); each
*photo* adds per-image variation (pose, lighting, background, expression, JPEG quality).

:func:`generate_demo` writes a small dataset in the MS-Celeb-1M shapes — a 7-column aligned TSV
``faces.tsv``, an entity-name list ``names.tsv`` — with a few injected problems (exact, near and
cross-identity duplicates, wrong-identity faces, broken and truncated rows) and their ground
truth in ``truth.json`` (1-based line numbers of ``faces.tsv``).

Distinct photos are drawn so that their pHashes (``imagehash.phash``) are far apart (> 10 bits
for >= 99% of pairs): each photo gets a random low-frequency lighting field and background,
which dominate the 8x8 low-frequency DCT block pHash looks at. Near duplicates (re-encoded,
cropped by 1-3 px, +-10% brightness) stay within a few bits.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from annotator.model import CancelledFn, ProgressFn

DEFAULT_SIZE = 112
SUPERSAMPLE = 2  # draw at 2x and downscale: cheap anti-aliasing

HAIR_STYLES = ("short", "long", "bald", "curly", "bun", "spiky")

# --------------------------------------------------------------------------------------------
# Parameters


@dataclass(frozen=True)
class IdentityParams:
    """What stays the same across every photo of one (invented) person."""

    face_w: float  # half-width of the face, fraction of the image
    face_h: float  # half-height
    jaw: float  # 0 = round chin, 1 = pointed
    skin: tuple[int, int, int]
    hair_style: str
    hair_color: tuple[int, int, int]
    hair_volume: float
    eye_spacing: float  # half-distance between the eyes, fraction of face width
    eye_size: float
    eye_color: tuple[int, int, int]
    eye_y: float  # vertical position of the eyes, fraction of face height above centre
    brow_thick: float
    brow_tilt: float
    nose_len: float
    nose_w: float
    mouth_w: float
    lip_color: tuple[int, int, int]
    ear_size: float
    glasses: bool
    glasses_color: tuple[int, int, int]
    beard: bool


@dataclass(frozen=True)
class ImageParams:
    """What changes from one photo to the next."""

    angle: float  # degrees
    dx: float  # shift, fraction of the image
    dy: float
    scale: float
    smile: float  # -1 .. 1
    mouth_open: float  # 0 .. 1
    eye_open: float  # 0.3 .. 1
    gaze: float  # -1 .. 1
    bg_color: tuple[int, int, int]
    bg_color2: tuple[int, int, int]
    bg_kind: str  # flat | gradient | texture | stripes
    bg_angle: float
    light: tuple[float, ...]  # coefficients of a low-frequency lighting field
    light_strength: float
    texture_seed: int  # background texture, shading field and sensor noise
    shade_amp: float  # grey levels of the mottled shading (see _shade)
    noise: float
    jpeg_quality: int


def _color(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    c = rng.integers(lo, hi, 3)
    return (int(c[0]), int(c[1]), int(c[2]))


_SKIN = np.array(
    [
        (255, 224, 196),
        (241, 194, 160),
        (224, 172, 128),
        (198, 134, 90),
        (161, 102, 64),
        (120, 75, 45),
        (90, 56, 37),
        (255, 210, 170),
    ],
    dtype=np.float64,
)
_HAIR = np.array(
    [
        (20, 16, 14),
        (60, 40, 25),
        (110, 70, 35),
        (180, 140, 80),
        (230, 200, 130),
        (150, 60, 30),
        (200, 200, 200),
        (90, 90, 95),
        (40, 40, 120),
        (150, 40, 110),
    ],
    dtype=np.float64,
)
_EYES = [(60, 40, 20), (40, 90, 140), (60, 120, 70), (30, 30, 30), (110, 80, 50), (100, 120, 140)]


def identity_params(rng: np.random.Generator) -> IdentityParams:
    """Draw one invented person's parameters."""
    skin = _SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 10, 3)
    hair = _HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 12, 3)
    return IdentityParams(
        face_w=float(rng.uniform(0.25, 0.33)),
        face_h=float(rng.uniform(0.33, 0.41)),
        jaw=float(rng.uniform(0, 1)),
        skin=tuple(int(v) for v in np.clip(skin, 0, 255)),  # type: ignore[arg-type]
        hair_style=HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))],
        hair_color=tuple(int(v) for v in np.clip(hair, 0, 255)),  # type: ignore[arg-type]
        hair_volume=float(rng.uniform(0.6, 1.2)),
        eye_spacing=float(rng.uniform(0.32, 0.46)),
        eye_size=float(rng.uniform(0.035, 0.06)),
        eye_color=_EYES[int(rng.integers(len(_EYES)))],
        eye_y=float(rng.uniform(0.05, 0.2)),
        brow_thick=float(rng.uniform(0.008, 0.022)),
        brow_tilt=float(rng.uniform(-0.3, 0.3)),
        nose_len=float(rng.uniform(0.08, 0.16)),
        nose_w=float(rng.uniform(0.03, 0.07)),
        mouth_w=float(rng.uniform(0.25, 0.45)),
        lip_color=_color(rng, 120, 220),
        ear_size=float(rng.uniform(0.05, 0.09)),
        glasses=bool(rng.random() < 0.25),
        glasses_color=_color(rng, 0, 120),
        beard=bool(rng.random() < 0.2),
    )


def image_params(rng: np.random.Generator) -> ImageParams:
    """Draw one photo's variation (pose, expression, light, background, JPEG quality)."""
    bg_kinds = ("flat", "gradient", "texture", "stripes")
    return ImageParams(
        angle=float(rng.uniform(-12, 12)),
        dx=float(rng.uniform(-0.06, 0.06)),
        dy=float(rng.uniform(-0.06, 0.06)),
        scale=float(rng.uniform(0.88, 1.12)),
        smile=float(rng.uniform(-0.6, 1)),
        mouth_open=float(rng.uniform(0, 1) ** 2),
        eye_open=float(rng.uniform(0.35, 1)),
        gaze=float(rng.uniform(-1, 1)),
        bg_color=_color(rng),
        bg_color2=_color(rng),
        bg_kind=bg_kinds[int(rng.integers(len(bg_kinds)))],
        bg_angle=float(rng.uniform(0, 2 * math.pi)),
        light=tuple(float(v) for v in rng.normal(0, 1, 12)),
        light_strength=float(rng.uniform(0.1, 0.25)),
        texture_seed=int(rng.integers(2**31)),
        shade_amp=float(rng.uniform(10, 13)),
        noise=float(rng.uniform(0, 4)),
        jpeg_quality=int(rng.integers(70, 96)),
    )


# --------------------------------------------------------------------------------------------
# Drawing


def _as_identity(p: IdentityParams | dict[str, Any]) -> IdentityParams:
    return p if isinstance(p, IdentityParams) else IdentityParams(**p)


def _as_image(p: ImageParams | dict[str, Any]) -> ImageParams:
    return p if isinstance(p, ImageParams) else ImageParams(**p)


@functools.lru_cache(maxsize=8)
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / max(n - 1, 1)
    return yy, xx


def _background(ip: ImageParams, n: int) -> np.ndarray:
    """An n x n x 3 float background."""
    c1 = np.array(ip.bg_color, dtype=np.float32)
    c2 = np.array(ip.bg_color2, dtype=np.float32)
    if ip.bg_kind == "flat":
        return np.broadcast_to(c1, (n, n, 3)).copy()
    yy, xx = _grid(n)
    ca, sa = math.cos(ip.bg_angle), math.sin(ip.bg_angle)
    t = (xx - 0.5) * ca + (yy - 0.5) * sa
    if ip.bg_kind == "gradient":
        w = np.clip(t + 0.5, 0, 1)[..., None]
    elif ip.bg_kind == "stripes":
        w = (0.5 + 0.5 * np.sin(t * 2 * math.pi * 3))[..., None]
    else:  # texture: smooth random blobs
        trng = np.random.default_rng(ip.texture_seed)
        small = Image.fromarray((trng.random((5, 5)) * 255).astype(np.uint8), "L")
        w = np.asarray(small.resize((n, n), Image.BICUBIC), dtype=np.float32)[..., None] / 255
    return c1 * (1 - w) + c2 * w


def _light(ip: ImageParams, n: int) -> np.ndarray:
    """A smooth multiplicative lighting field (low-order cosines with random weights)."""
    x = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    c = np.cos(math.pi * np.arange(4)[:, None] * x[None, :])  # (u, x)
    w = np.zeros((4, 4))
    k = 0
    for u in range(4):
        for v in range(4):
            if u == v == 0 or u + v > 3:
                continue
            w[v, u] = ip.light[k % len(ip.light)]
            k += 1
    field_ = (c.T @ w @ c).astype(np.float32)  # rows: y (v), columns: x (u)
    field_ /= max(float(np.abs(field_).max()), 1e-6)
    return 1.0 + ip.light_strength * field_


def _shade(ip: ImageParams, n: int) -> np.ndarray:
    """Mottled additive shading: a random mix of the 8x8 lowest 2-D cosine frequencies.

    These are exactly the frequencies pHash looks at, so every photo gets its own random,
    strong low-frequency signature: distinct photos land ~32 bits apart, while re-encoding,
    1-3 px crops and small brightness changes barely move it. Each coefficient has a
    magnitude of 60-100% of ``shade_amp`` and a random sign (none sits near the median).
    """
    r = np.random.default_rng([ip.texture_seed, 0x5AADE])
    a = r.choice([-1.0, 1.0], (8, 8)) * r.uniform(0.6, 1.0, (8, 8)) * ip.shade_amp
    a[0, 0] = 0.0
    x = (np.arange(n, dtype=np.float64) + 0.5) / n
    c = np.cos(np.pi * np.arange(8)[:, None] * x[None, :])
    return (c.T @ a @ c).astype(np.float32)


def _ellipse(
    d: ImageDraw.ImageDraw,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    fill: Any,
    outline: Any = None,
    width: int = 0,
) -> None:
    d.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=fill, outline=outline, width=width)


def _darker(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return (int(c[0] * f), int(c[1] * f), int(c[2] * f))


def _face_layer(p: IdentityParams, ip: ImageParams, n: int) -> Image.Image:
    """The face on a transparent n x n canvas, upright and centred."""
    layer = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    cx, cy = 0.5 * n, 0.55 * n
    fw, fh = p.face_w * n, p.face_h * n
    hv = p.hair_volume
    hair = p.hair_color + (255,)
    skin = p.skin + (255,)

    # Hair behind the head.
    if p.hair_style == "long":
        d.rounded_rectangle(
            (cx - fw * 1.25 * hv, cy - fh * 1.1, cx + fw * 1.25 * hv, cy + fh * 1.05),
            radius=int(fw * 0.6),
            fill=hair,
        )
    elif p.hair_style == "bun":
        _ellipse(d, cx, cy - fh * 1.15, fw * 0.45 * hv, fw * 0.4 * hv, hair)
    # Ears and neck.
    _ellipse(d, cx - fw, cy, p.ear_size * n, p.ear_size * n * 1.4, _darker(p.skin, 0.9) + (255,))
    _ellipse(d, cx + fw, cy, p.ear_size * n, p.ear_size * n * 1.4, _darker(p.skin, 0.9) + (255,))
    d.rectangle(
        (cx - fw * 0.45, cy + fh * 0.6, cx + fw * 0.45, n), fill=_darker(p.skin, 0.85) + (255,)
    )
    # Head: an ellipse plus a chin polygon for pointed jaws.
    _ellipse(d, cx, cy, fw, fh, skin)
    if p.jaw > 0.4:
        jw = fw * (1.1 - 0.4 * p.jaw)
        d.polygon(
            [(cx - jw, cy + fh * 0.2), (cx + jw, cy + fh * 0.2), (cx, cy + fh * 1.05)], fill=skin
        )
    # Beard.
    if p.beard:
        d.chord((cx - fw * 0.95, cy - fh * 0.2, cx + fw * 0.95, cy + fh * 1.02), 0, 180, fill=hair)
    # Hair on top.
    if p.hair_style in ("short", "long", "bun"):
        d.chord(
            (cx - fw * 1.05, cy - fh * 1.1 * hv, cx + fw * 1.05, cy + fh * 0.3), 180, 360, fill=hair
        )
    elif p.hair_style == "curly":
        for i in range(9):
            a = math.pi * (1 + i / 8)
            _ellipse(
                d,
                cx + math.cos(a) * fw * 0.95,
                cy - fh * 0.35 + math.sin(a) * fh * 0.75,
                fw * 0.28 * hv,
                fw * 0.28 * hv,
                hair,
            )
    elif p.hair_style == "spiky":
        pts = []
        for i in range(11):
            a = math.pi * (1 + i / 10)
            r = (1.25 * hv if i % 2 else 0.95) * fw
            pts.append((cx + math.cos(a) * r, cy - fh * 0.3 + math.sin(a) * r * fh / fw))
        d.polygon(pts, fill=hair)
    # Eyes.
    ey = cy - p.eye_y * fh
    ex = p.eye_spacing * fw
    er = p.eye_size * n
    for sx in (-1, 1):
        x = cx + sx * ex
        _ellipse(d, x, ey, er * 1.5, er * ip.eye_open, (250, 250, 250, 255))
        _ellipse(
            d,
            x + ip.gaze * er * 0.5,
            ey,
            er * 0.7 * min(1.0, ip.eye_open + 0.3),
            er * 0.7 * ip.eye_open,
            p.eye_color + (255,),
        )
        _ellipse(d, x + ip.gaze * er * 0.5, ey, er * 0.3, er * 0.3 * ip.eye_open, (10, 10, 10, 255))
        # Brows.
        by = ey - er * 2.0
        bt = max(1, int(p.brow_thick * n))
        d.line(
            (x - er * 1.6, by + sx * p.brow_tilt * er, x + er * 1.6, by - sx * p.brow_tilt * er),
            fill=_darker(p.hair_color, 0.8) + (255,),
            width=bt,
        )
    # Glasses.
    if p.glasses:
        gw = max(1, n // 60)
        for sx in (-1, 1):
            d.rounded_rectangle(
                (cx + sx * ex - er * 2.1, ey - er * 1.6, cx + sx * ex + er * 2.1, ey + er * 1.6),
                radius=int(er),
                outline=p.glasses_color + (255,),
                width=gw,
            )
        d.line(
            (cx - ex + er * 2.1, ey, cx + ex - er * 2.1, ey),
            fill=p.glasses_color + (255,),
            width=gw,
        )
    # Nose.
    ny = ey + p.nose_len * n
    d.polygon(
        [(cx, ey + er), (cx - p.nose_w * n, ny), (cx + p.nose_w * n, ny)],
        fill=_darker(p.skin, 0.82) + (255,),
    )
    # Mouth: an arc whose curvature is the smile; open mouths are a dark ellipse.
    my = ny + (cy + fh - ny) * 0.4
    mw = p.mouth_w * fw
    if ip.mouth_open > 0.3:
        _ellipse(
            d,
            cx,
            my,
            mw * 0.7,
            ip.mouth_open * n * 0.035 + 1,
            (70, 20, 25, 255),
            outline=p.lip_color + (255,),
            width=max(1, n // 80),
        )
    else:
        curve = ip.smile * n * 0.04
        pts = [(cx + mw * t, my - curve * (1 - t * t) + curve) for t in np.linspace(-1, 1, 9)]
        d.line(pts, fill=p.lip_color + (255,), width=max(2, n // 45), joint="curve")
    return layer


def _render(p: IdentityParams, ip: ImageParams, size: int) -> np.ndarray:
    """The photo as a float32 size x size x 3 array (before noise and JPEG)."""
    n = size * SUPERSAMPLE
    layer = _face_layer(p, ip, n)
    # Pose: rotate about the face centre, scale and shift (one affine resample).
    # Downscale first (anti-aliasing), then one bicubic affine resample at the final size.
    layer = layer.resize((size, size), Image.BOX)
    a = math.radians(ip.angle)
    c, s = math.cos(a) / ip.scale, math.sin(a) / ip.scale
    ox, oy = 0.5 * size, 0.55 * size
    tx, ty = ox + ip.dx * size, oy + ip.dy * size
    # inverse map: output (x, y) -> input
    coeffs = (c, s, ox - c * tx - s * ty, -s, c, oy + s * tx - c * ty)
    layer = layer.transform((size, size), Image.AFFINE, coeffs, resample=Image.BICUBIC)
    rgba = np.asarray(layer, dtype=np.float32)
    alpha = rgba[..., 3:4] / 255.0
    img = _background(ip, size) * (1 - alpha) + rgba[..., :3] * alpha
    # The mottled shading (each photo's pHash signature) is on the background only: on the
    # face it dominated dlib's face embedding, hiding who the drawn person is (d' 1.0 -> 1.6).
    return img * _light(ip, size)[..., None] + _shade(ip, size)[..., None] * (1 - alpha)


def _finish(img: np.ndarray, ip: ImageParams, rng: np.random.Generator) -> Image.Image:
    if ip.noise > 0:
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(ip.noise)
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")


def draw_face(
    identity: IdentityParams | dict[str, Any],
    image: ImageParams | dict[str, Any],
    size: int = DEFAULT_SIZE,
) -> Image.Image:
    """Draw one photo of ``identity`` with the variation ``image`` (deterministic)."""
    ipar = _as_image(image)
    rng = np.random.default_rng(ipar.texture_seed ^ 0x5EED)
    return _finish(_render(_as_identity(identity), ipar, size), ipar, rng)


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(quality), optimize=False)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Near-duplicate variants of one photo


def phash_int(jpeg: bytes) -> int:
    """``imagehash.phash`` of a JPEG as a 64-bit integer."""
    import imagehash

    with Image.open(io.BytesIO(jpeg)) as im:
        return int(str(imagehash.phash(im)), 16)


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


_CONS = "kstnmrldbpvgh"
_VOWS = "aeiou"
_CYR = dict(zip("kstnmrldbpvghaeiou", "кстнмрлдбпвгхаэиоу", strict=True))
_GRK = dict(zip("kstnmrldbpvghaeiou", "κστνμρλδμπβγχαειου", strict=True))
_ARA = dict(zip("kstnmrldbpvghaeiou", "كستنمرلدبپفغهاييوو", strict=True))
_KATA_ROWS = {  # consonant -> katakana for a, i, u, e, o
    "k": "カキクケコ",
    "s": "サシスセソ",
    "t": "タチツテト",
    "n": "ナニヌネノ",
    "m": "マミムメモ",
    "r": "ラリルレロ",
    "l": "ラリルレロ",
    "d": "ダヂヅデド",
    "b": "バビブベボ",
    "p": "パピプペポ",
    "v": "ヴァヴィヴヴェヴォ",
    "g": "ガギグゲゴ",
    "h": "ハヒフヘホ",
}
_KATA_VOWEL = {"a": 0, "i": 1, "u": 2, "e": 3, "o": 4}
_HANGUL_L = {
    "k": 0,
    "s": 9,
    "t": 3,
    "n": 2,
    "m": 6,
    "r": 5,
    "l": 5,
    "d": 3,
    "b": 7,
    "p": 17,
    "v": 7,
    "g": 0,
    "h": 18,
}
_HANGUL_V = {"a": 0, "e": 5, "i": 20, "o": 8, "u": 13}
_HANZI = "卡萨塔纳马拉达巴帕瓦加哈基西蒂尼米里迪比皮维吉希库苏图努穆鲁杜布普武古胡科索托诺莫罗多博波沃戈霍"
LANGS = ("de", "fr", "es", "it", "ru", "el", "ar", "ja", "zh", "ko")


def _word(rng: np.random.Generator, syllables: int) -> list[str]:
    return [
        _CONS[int(rng.integers(len(_CONS)))] + _VOWS[int(rng.integers(len(_VOWS)))]
        for _ in range(syllables)
    ]


def _kata(syl: str) -> str:
    row = _KATA_ROWS[syl[0]]
    if syl[0] == "v":
        return ("ヴァ", "ヴィ", "ヴ", "ヴェ", "ヴォ")[_KATA_VOWEL[syl[1]]]
    return row[_KATA_VOWEL[syl[1]]]


def _hangul(syl: str) -> str:
    return chr(0xAC00 + (_HANGUL_L[syl[0]] * 21 + _HANGUL_V[syl[1]]) * 28)


def _render_name(words: list[list[str]], lang: str) -> str:
    if lang in ("en", "de", "fr", "es", "it"):
        return " ".join("".join(w).capitalize() for w in words)
    if lang == "ru":
        return " ".join("".join(_CYR[ch] for ch in "".join(w)).capitalize() for w in words)
    if lang == "el":
        return " ".join("".join(_GRK[ch] for ch in "".join(w)).capitalize() for w in words)
    if lang == "ar":
        return " ".join("".join(_ARA[ch] for ch in "".join(w)) for w in words)
    if lang == "ja":
        return "・".join("".join(_kata(s) for s in w) for w in words)
    if lang == "ko":
        return " ".join("".join(_hangul(s) for s in w) for w in words)
    if lang == "zh":
        return "·".join(
            "".join(_HANZI[(_CONS.index(s[0]) * 5 + _VOWS.index(s[1])) % len(_HANZI)] for s in w)
            for w in words
        )
    raise ValueError(lang)


def invent_names(rng: np.random.Generator) -> dict[str, str]:
    """An invented person's name in English and 1-4 other languages (several scripts)."""
    words = [_word(rng, int(rng.integers(2, 4))), _word(rng, int(rng.integers(2, 4)))]
    k = int(rng.integers(1, 5))
    langs = ["en"] + sorted(str(x) for x in rng.choice(LANGS, size=k, replace=False))
    return {lang: _render_name(words, lang) for lang in langs}


_MID_CHARS = "0123456789abcdefghijklmnopqrstuvwxyz_"


def invent_mid(rng: np.random.Generator) -> str:
    """A Freebase-style MID such as ``m.0abc12`` (invented)."""
    k = int(rng.integers(4, 7))
    return "m.0" + "".join(_MID_CHARS[int(i)] for i in rng.integers(0, len(_MID_CHARS), k))


# --------------------------------------------------------------------------------------------
# The dataset


@dataclass
class DemoResult:
    out_dir: Path
    faces_tsv: Path
    names_tsv: Path
    truth_json: Path
    rows: int = 0  # lines in faces.tsv
    faces: int = 0  # lines that should import (rows minus broken)
    identities: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # injected problems by kind
    complete: bool = True  # False when cancelled (then no files are left behind)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("out_dir", "faces_tsv", "names_tsv", "truth_json"):
            d[k] = str(d[k])
        return d


@dataclass
class _Row:
    mid: str
    jpeg: bytes
    kind: str = (
        "clean"  # clean exact_dup near_dup cross_identity_dup wrong_identity truncated broken
    )
    ref: int | None = None  # index (into the row list) of the photo this one copies
    broken: str | None = None
    true_mid: str | None = None
    line: int = 0


def _rect(rng: np.random.Generator) -> tuple[float, float, float, float]:
    x0, y0 = rng.uniform(0.05, 0.45, 2)
    w = rng.uniform(0.15, 0.5)
    return (float(x0), float(y0), float(min(x0 + w, 1.0)), float(min(y0 + w * 1.2, 1.0)))


def _broken_line(kind: str, mid: str, rng: np.random.Generator, jpeg: bytes, n: int) -> bytes:
    rect = base64.b64encode(struct.pack("<4f", *_rect(rng)))
    data = base64.b64encode(jpeg)
    cols = [
        mid.encode(),
        str(n).encode(),
        f"http://example.invalid/img/{n}.jpg".encode(),
        f"http://example.invalid/page/{n}.html".encode(),
        f"FaceId-{n}".encode(),
        rect,
        data,
    ]
    if kind == "columns":
        del cols[int(rng.integers(1, 5))]
    elif kind == "empty_mid":
        cols[0] = b""
    elif kind == "base64":
        cut = len(data) // 2
        cols[6] = data[:cut] + b"!*#" + data[cut + 3 :] if rng.random() < 0.5 else data[:-3]
    elif kind == "not_image":
        cols[6] = base64.b64encode(b"<html><body>404 Not Found</body></html>" + bytes(n % 7))
    elif kind == "rect":
        if rng.random() < 0.5:
            cols[5] = base64.b64encode(struct.pack("<4f", 0.8, 0.7, 0.2, 0.1))  # x0 > x1
        else:
            cols[5] = base64.b64encode(struct.pack("<3f", 0.1, 0.1, 0.5))  # 12 bytes
    else:
        raise ValueError(kind)
    return b"\t".join(cols) + b"\n"


BROKEN_KINDS = ("columns", "empty_mid", "base64", "not_image", "rect")


def _plan_count(total: int, frac: float, minimum: int = 3) -> int:
    return max(minimum, round(total * frac))


INJECTED_KINDS = (
    "exact_dup",
    "near_dup",
    "cross_identity_dup",
    "wrong_identity",
    "broken",
    "truncated",
)


def injected_counts(truth: dict[str, Any]) -> dict[str, int]:
    """How many problems of each kind a demo's ``truth.json`` says were injected."""
    return {k: len(truth[k]) for k in INJECTED_KINDS}


def generate_demo(
    out_dir: str | os.PathLike[str],
    *,
    identities: int = 40,
    faces_per_identity: tuple[int, int] = (8, 30),
    seed: int = 0,
    size: int = DEFAULT_SIZE,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> DemoResult:
    """Draw the demo dataset into ``out_dir`` (faces.tsv, names.tsv, truth.json).

    Deterministic: the same arguments give byte-identical files. Files are written under a
    temporary name and renamed at the end, so a cancelled run leaves nothing half-written.
    """
    if identities < 2:
        raise ValueError("the demo needs at least 2 identities")
    lo, hi = faces_per_identity
    if lo < 2 or hi < lo:
        raise ValueError("faces_per_identity must be (lo, hi) with 2 <= lo <= hi")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0xDE30])

    # Identities: key, names, parameters, number of clean photos.
    mids: list[str] = []
    seen: set[str] = set()
    while len(mids) < identities:
        m = invent_mid(rng)
        if m not in seen:
            seen.add(m)
            mids.append(m)
    names = {m: invent_names(rng) for m in mids}
    params = {m: identity_params(rng) for m in mids}
    n_clean = {m: int(rng.integers(lo, hi + 1)) for m in mids}
    total_clean = sum(n_clean.values())
    n_inject = {
        k: _plan_count(total_clean, 0.03)
        for k in ("exact_dup", "near_dup", "cross_identity_dup", "wrong_identity", "truncated")
    }
    needed = sum(n_inject[k] for k in ("exact_dup", "near_dup", "cross_identity_dup", "truncated"))
    if total_clean < needed:
        raise ValueError(
            f"too few photos ({total_clean}) to inject the problems ({needed} originals needed); "
            "use more identities or faces per identity"
        )
    n_broken = max(len(BROKEN_KINDS), _plan_count(total_clean, 0.03))
    work = (
        total_clean
        + n_inject["wrong_identity"]
        + n_inject["near_dup"]
        + n_inject["cross_identity_dup"]
    )
    done = 0
    prog = progress or (lambda d, t: None)
    stop = cancelled or (lambda: False)

    def photo(mid: str, k: int) -> bytes:
        prng = np.random.default_rng([seed, mids.index(mid), k])
        ip = image_params(prng)
        return encode_jpeg(draw_face(params[mid], ip, size), ip.jpeg_quality)

    # Clean photos, per identity.
    blocks: dict[str, list[_Row]] = {}
    for m in mids:
        rows = []
        for k in range(n_clean[m]):
            if done % 16 == 0 and stop():
                return _cancelled(out)
            rows.append(_Row(m, photo(m, k)))
            done += 1
            prog(done, work)
        blocks[m] = rows

    sample_jpeg = blocks[mids[0]][0].jpeg  # payload for broken rows (before any truncation)
    # Pick distinct originals for the duplicate kinds and truncation (each used once).
    pool = [(m, i) for m in mids for i in range(n_clean[m])]
    order = rng.permutation(len(pool))
    picks = iter(pool[int(j)] for j in order)

    def other_mid(m: str) -> str:
        while True:
            o = mids[int(rng.integers(len(mids)))]
            if o != m:
                return o

    extra: dict[str, list[_Row]] = {m: [] for m in mids}
    for kind in ("exact_dup", "near_dup", "cross_identity_dup"):
        for _ in range(n_inject[kind]):
            m, i = next(picks)
            src = blocks[m][i]
            if kind == "exact_dup":
                extra[m].append(_Row(m, src.jpeg, kind, ref=id(src)))
            elif kind == "near_dup":
                extra[m].append(_Row(m, near_variant(src.jpeg, rng), kind, ref=id(src)))
                done += 1
            else:
                dst = other_mid(m)
                data = src.jpeg if rng.random() < 0.5 else near_variant(src.jpeg, rng)
                extra[dst].append(_Row(dst, data, kind, ref=id(src), true_mid=m))
                done += 1
            prog(done, work)
    for _ in range(n_inject["truncated"]):
        m, i = next(picks)
        src = blocks[m][i]
        cut = int(len(src.jpeg) * rng.uniform(0.3, 0.7))
        src.jpeg = src.jpeg[:cut]
        src.kind = "truncated"
    for j in range(n_inject["wrong_identity"]):
        if stop():
            return _cancelled(out)
        true = mids[int(rng.integers(len(mids)))]
        filed = other_mid(true)
        extra[filed].append(_Row(filed, photo(true, 10_000 + j), "wrong_identity", true_mid=true))
        done += 1
        prog(done, work)
    for j in range(n_broken):
        m = mids[int(rng.integers(len(mids)))]
        kind = BROKEN_KINDS[j % len(BROKEN_KINDS)]
        extra[m].append(_Row(m, b"", "broken", broken=kind))

    # Lay out: each identity's rows together (as MS-Celeb files are), extras shuffled in.
    lines: list[_Row] = []
    for m in mids:
        rows = blocks[m]
        for r in extra[m]:
            rows.insert(int(rng.integers(len(rows) + 1)), r)
        lines.extend(rows)
    by_id = {id(r): r for r in lines}
    for n, r in enumerate(lines, start=1):
        r.line = n

    truth: dict[str, Any] = {
        "exact_dup": [],
        "near_dup": [],
        "cross_identity_dup": [],
        "wrong_identity": [],
        "broken": [],
        "truncated": [],
        "identities": {m: {"lines": [], "names": names[m]} for m in mids},
        "true_identity": {},
        "params": {
            "identities": identities,
            "faces_per_identity": [lo, hi],
            "seed": seed,
            "size": size,
        },
    }
    faces_part = out / "faces.tsv.part"
    with open(faces_part, "wb") as fh:
        rank: dict[str, int] = {}
        for r in lines:
            rank[r.mid] = rank.get(r.mid, 0) + 1
            n = r.line
            if r.kind == "broken":
                fh.write(_broken_line(r.broken or "", r.mid, rng, sample_jpeg, n))
                truth["broken"].append({"line": n, "kind": r.broken})
                continue
            _write_row(fh, r.mid, rank[r.mid], n, _rect(rng), r.jpeg)
            truth["identities"][r.mid]["lines"].append(n)
            if r.kind in ("exact_dup", "near_dup", "cross_identity_dup"):
                truth[r.kind].append(sorted([by_id[r.ref].line, n]))  # type: ignore[index]
            elif r.kind == "wrong_identity":
                truth["wrong_identity"].append(n)
            elif r.kind == "truncated":
                truth["truncated"].append(n)
            if r.true_mid is not None:
                truth["true_identity"][str(n)] = r.true_mid
    names_part = out / "names.tsv.part"
    with open(names_part, "wb") as fh:
        for m in mids:
            for lang, nm in names[m].items():
                fh.write(f'{m}\t"{nm}"@{lang}\n'.encode())
    truth_part = out / "truth.json.part"
    truth_part.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    result = DemoResult(out, out / "faces.tsv", out / "names.tsv", out / "truth.json")
    os.replace(faces_part, result.faces_tsv)
    os.replace(names_part, result.names_tsv)
    os.replace(truth_part, result.truth_json)
    result.rows = len(lines)
    result.faces = len(lines) - len(truth["broken"])
    result.identities = identities
    result.counts = injected_counts(truth)
    prog(work, work)
    return result


def _write_row(
    fh: Any, mid: str, rank: int, n: int, rect: tuple[float, float, float, float], jpeg: bytes
) -> None:
    try:
        from annotator.formats.msceleb import write_row
    except ImportError:  # pragma: no cover - the formats package is part of the app
        write_row = None
    url = f"http://example.invalid/img/{mid}/{rank}.jpg"
    page = f"http://example.invalid/page/{mid}/{rank}.html"
    if write_row is not None:
        write_row(fh, mid, rank, url, page, f"FaceId-{n}", rect, jpeg)
        return
    r = base64.b64encode(struct.pack("<4f", *rect))
    fh.write(
        b"\t".join(
            [
                mid.encode(),
                str(rank).encode(),
                url.encode(),
                page.encode(),
                f"FaceId-{n}".encode(),
                r,
                base64.b64encode(jpeg),
            ]
        )
        + b"\n"
    )


def _cancelled(out: Path) -> DemoResult:
    return DemoResult(out, out / "faces.tsv", out / "names.tsv", out / "truth.json", complete=False)


def jpeg_pool(n: int, size: int = DEFAULT_SIZE, seed: int = 0) -> list[bytes]:
    """``n`` distinct synthetic face JPEGs (a new invented person every 8 photos)."""
    out: list[bytes] = []
    ident: IdentityParams | None = None
    for i in range(n):
        rng = np.random.default_rng([seed, 0x9001, i])
        if i % 8 == 0:
            ident = identity_params(np.random.default_rng([seed, 0x9002, i]))
        ip = image_params(rng)
        assert ident is not None
        out.append(encode_jpeg(draw_face(ident, ip, size), ip.jpeg_quality))
    return out
