"""Drawing one cartoon-like face with Pillow + NumPy: identity and per-photo parameters, rendering, JPEG."""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

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
    return img * _light(ip, size)[..., None]


def _finish(img: np.ndarray, ip: ImageParams, rng: np.random.Generator) -> Image.Image:
    if ip.noise > 0:
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(ip.noise)
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")


def face_box(
    identity: IdentityParams | dict[str, Any], image: ImageParams | dict[str, Any]
) -> tuple[float, float, float, float]:
    """Where a face detector would put the box on :func:`draw_face`'s photo, as MS-Celeb's
    FaceRectangle (x0, y0, x1, y1, fractions of the image): cheek to cheek, brows to chin, the
    photo's scale and shift applied (its rotation, at most 12 degrees, is not)."""
    p, ip = _as_identity(identity), _as_image(image)
    top = p.eye_y * p.face_h + 2.0 * p.eye_size  # brows above the head's centre
    x0, x1 = -p.face_w, p.face_w
    y0, y1 = -top, p.face_h
    cx, cy = 0.5 + ip.dx, 0.55 + ip.dy
    return (
        round(cx + x0 * ip.scale, 4),
        round(cy + y0 * ip.scale, 4),
        round(cx + x1 * ip.scale, 4),
        round(cy + y1 * ip.scale, 4),
    )


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
