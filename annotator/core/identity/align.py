"""Alignment: how a face crop becomes the 150x150 chip dlib's network reads (identity/embed.py).

The chip is dlib's (``dlib.get_face_chip(img, shape, size=150, padding=0.25)``) from 5
landmarks (2 corners of each eye, the base of the nose); the alignments differ in where those
landmarks come from:

* ``box``: dlib's 5-point model run on the face's own rectangle (MS-Celeb's FaceRectangle, kept
  by the importer) — the way dlib's network was trained (landmarks on a detector's box). A face
  without a usable rectangle, or whose landmarks on it are not a plausible frontal set, gets the
  ``template`` chip instead (:func:`box_chip` says which).
* ``template``: the project's template (:class:`Template`, the per-point median of the 5
  landmarks over a sample of crops) scaled to the crop: one similarity map for every crop.
* ``chip``: the 5-point model on a rectangle covering the whole crop.
* ``crop``: the whole crop resized (no landmarks).

No dlib import here: the caller passes the loaded ``dlib`` module and shape predictor, so this
module stays importable without the ``[embed]`` extra.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CHIP_SIZE = 150
CHIP_PADDING = 0.25
CHIP_INSET = 0.0  # fraction of the crop's side left out on each side of the landmark rectangle
N_POINTS = 5
TEMPLATE_MIN = 8  # fewer plausible landmark sets than this: no template (crop is used)
BOX_MIN_PX = 12  # a face rectangle narrower or lower than this (in pixels) is not used
Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the crop

# why a face meant for ``box`` got another chip (stored as the reason of its vector)
NO_RECT = "no face rectangle"
BAD_RECT = "face rectangle unusable"
ODD_LANDMARKS = "landmarks on the face rectangle implausible"


@dataclass(frozen=True, slots=True)
class Template:
    """The project's crop geometry: the median position of each of dlib's 5 landmarks as
    fractions of the crop's width and height, over ``faces`` plausible landmark sets of a
    sample of ``sampled`` faces. ``spread``: the median distance of a set's points from the
    template's (a fraction of the crop; how much the crops' geometry varies)."""

    points: tuple[tuple[float, float], ...]
    faces: int = 0
    sampled: int = 0
    spread: float = 0.0

    def fingerprint(self) -> str:
        """8 hex digits naming the points (rounded to 1/1000 of the crop): part of the model
        id, so vectors of two templates are never mixed."""
        text = ";".join(f"{x:.3f},{y:.3f}" for x, y in self.points)
        return hashlib.sha1(text.encode()).hexdigest()[:8]

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    def as_dict(self) -> dict[str, object]:
        return {
            "points": [list(p) for p in self.points],
            "faces": self.faces,
            "sampled": self.sampled,
            "spread": self.spread,
        }

    @classmethod
    def from_json(cls, text: str) -> Template:
        d = json.loads(text)
        pts = tuple((float(x), float(y)) for x, y in d["points"])
        if len(pts) != N_POINTS:
            raise ValueError(f"a template has {N_POINTS} points, not {len(pts)}")
        return cls(
            pts, int(d.get("faces", 0)), int(d.get("sampled", 0)), float(d.get("spread", 0.0))
        )


def plausible_landmarks(pts: np.ndarray) -> np.ndarray:
    """Which (n, 5, 2) landmark sets (relative to the crop, or to the box they were found on)
    look like a face seen from the front: all finite and near the frame (within a quarter of
    its side outside it), the eyes (points 0-1 and 2-3) side by side with 15-90 % of the side
    between their centres, the nose base (4) below the eyes and between them."""
    pts = np.asarray(pts, np.float64).reshape(-1, N_POINTS, 2)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(pts).all(axis=(1, 2))
        ok &= ((pts >= -0.25) & (pts <= 1.25)).all(axis=(1, 2))
        eye_a, eye_b = pts[:, 0:2].mean(1), pts[:, 2:4].mean(1)
        gap = eye_a[:, 0] - eye_b[:, 0]  # dlib: points 0-1 lie right of 2-3 in the image
        ok &= (gap >= 0.15) & (gap <= 0.9) & (np.abs(eye_a[:, 1] - eye_b[:, 1]) <= 0.5 * gap)
        nose = pts[:, 4]
        ok &= nose[:, 1] > np.maximum(eye_a[:, 1], eye_b[:, 1])
        ok &= (nose[:, 0] > eye_b[:, 0]) & (nose[:, 0] < eye_a[:, 0])
    return ok


def plausible_set(points: Sequence[tuple[float, float]]) -> bool:
    """:func:`plausible_landmarks` of one set of 5 (x, y) points, in plain floats: the same
    comparisons on the same float64 values (``box`` checks every face's set; NumPy's cost on
    arrays of 10 numbers was a few percent of a face's whole embedding)."""
    if len(points) != N_POINTS:
        return False
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y)):
            return False
        if not (-0.25 <= x <= 1.25 and -0.25 <= y <= 1.25):
            return False
    (x0, y0), (x1, y1), (x2, y2), (x3, y3), (nx, ny) = points
    ax, ay = (x0 + x1) / 2, (y0 + y1) / 2
    bx, by = (x2 + x3) / 2, (y2 + y3) / 2
    gap = ax - bx
    if not (0.15 <= gap <= 0.9 and abs(ay - by) <= 0.5 * gap):
        return False
    return ny > max(ay, by) and bx < nx < ax


def template_from_landmarks(pts: np.ndarray, min_faces: int = TEMPLATE_MIN) -> Template | None:
    """The median of each point over the plausible sets of ``pts`` ((n, 5, 2), crop-relative;
    NaN for a face whose landmarks could not be taken); None with fewer than ``min_faces``
    plausible sets (the caller falls back to ``crop``)."""
    pts = np.asarray(pts, np.float64).reshape(-1, N_POINTS, 2)
    ok = plausible_landmarks(pts)
    if int(ok.sum()) < max(min_faces, 1):
        return None
    med = np.median(pts[ok], axis=0)
    spread = float(np.median(np.linalg.norm(pts[ok] - med, axis=2)))
    return Template(
        tuple((round(float(x), 4), round(float(y), 4)) for x, y in med),
        int(ok.sum()),
        len(pts),
        round(spread, 4),
    )


def box_pixels(rect: Rect | None, w: int, h: int) -> tuple[int, int, int, int] | None:
    """A relative face rectangle as dlib's pixel box (left, top, right, bottom) on a w x h
    crop; None when there is none or it cannot frame a face here: narrower or lower than
    BOX_MIN_PX, its centre off the crop, or larger than twice the crop."""
    if rect is None:
        return None
    x0, y0, x1, y1 = (float(v) for v in rect)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None
    box = (round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))
    bw, bh = box[2] - box[0], box[3] - box[1]
    if bw < BOX_MIN_PX or bh < BOX_MIN_PX or bw > 2 * w or bh > 2 * h:
        return None
    if not (0 <= (box[0] + box[2]) / 2 < w and 0 <= (box[1] + box[3]) / 2 < h):
        return None
    return box


def landmarks_on(dlib: Any, sp: Any, img: np.ndarray, box: tuple[int, int, int, int]) -> Any:
    """dlib's 5 points found on ``box`` (left, top, right, bottom pixels) of ``img``."""
    return sp(img, dlib.rectangle(*box))


def crop_landmarks(dlib: Any, sp: Any, img: np.ndarray) -> Any:
    """dlib's 5 points on a rectangle covering the crop (inset by CHIP_INSET per side)."""
    h, w = img.shape[:2]
    dx, dy = int(round(w * CHIP_INSET)), int(round(h * CHIP_INSET))
    return landmarks_on(dlib, sp, img, (dx, dy, w - 1 - dx, h - 1 - dy))


def template_shape(dlib: Any, template: Template, w: int, h: int) -> Any:
    """The template's points on a w x h crop, as the dlib shape get_face_chip takes."""
    pts = dlib.points()
    for x, y in template.points:
        pts.append(dlib.point(int(round(x * w)), int(round(y * h))))
    return dlib.full_object_detection(dlib.rectangle(0, 0, w - 1, h - 1), pts)


def resized_crop(img: np.ndarray) -> np.ndarray:
    """The whole crop resized to the chip's size (``crop``)."""
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((CHIP_SIZE, CHIP_SIZE), Image.BILINEAR))


def chip_of(dlib: Any, img: np.ndarray, shape: Any) -> np.ndarray:
    """dlib's chip of ``img`` for the 5-point ``shape``."""
    return dlib.get_face_chip(img, shape, size=CHIP_SIZE, padding=CHIP_PADDING)


def box_shape(dlib: Any, sp: Any, img: np.ndarray, rect: Rect | None) -> tuple[Any, str]:
    """(the 5 landmarks found on the face's rectangle, "") or (None, why not): no rectangle,
    one that cannot frame a face on this crop, or landmarks that are not a plausible frontal
    set relative to the box (see :func:`plausible_landmarks`)."""
    h, w = img.shape[:2]
    box = box_pixels(rect, w, h)
    if box is None:
        return None, (NO_RECT if rect is None else BAD_RECT)
    shape = landmarks_on(dlib, sp, img, box)
    left, top = box[0], box[1]
    bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
    rel = [((p.x - left) / bw, (p.y - top) / bh) for p in shape.parts()]
    if not plausible_set(rel):
        return None, ODD_LANDMARKS
    return shape, ""


def box_chip(
    dlib: Any, sp: Any, img: np.ndarray, rect: Rect | None, template: Template | None
) -> tuple[np.ndarray, str]:
    """(chip, how) for ``box``: dlib's chip of the landmarks on the face's rectangle (how
    ``""``), else the template's chip (how ``"template <fingerprint>: <why>"``), else, without
    a template, the resized crop (``"crop: <why>"``)."""
    shape, why = box_shape(dlib, sp, img, rect)
    if shape is not None:
        return chip_of(dlib, img, shape), ""
    if template is not None:
        h, w = img.shape[:2]
        return (
            chip_of(dlib, img, template_shape(dlib, template, w, h)),
            f"template {template.fingerprint()}: {why}",
        )
    return resized_crop(img), f"crop: {why}"
