"""The one way the project decodes a face's image bytes: with a pixel budget.

A face crop is small; a 450 KB PNG can still declare 12000x12000 pixels (under Pillow's own
decompression-bomb limit) and a full decode would take gigabytes. :func:`open_image` reads only
the header, and refuses an image over :data:`MAX_PIXELS` before any pixel is decoded -- except a
JPEG when the caller can use a smaller picture (``fit``), which is then decoded at 1/2, 1/4 or
1/8 scale by libjpeg's DCT scaling (``Image.draft``) when that brings it within the budget.
Every decode path (scan hashing, thumbnails) goes through here.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image

MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE


class ImageTooLarge(ValueError):
    """The image declares more pixels than the budget allows."""


def open_image(
    data: bytes, fit: tuple[int, int] | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Open image bytes (header only; decode with ``.load()`` or by using the pixels).

    Raises :class:`ImageTooLarge` (message starting "too large") when the image has more than
    ``max_pixels`` pixels and cannot be drafted down to ``fit``; other decoder errors propagate
    as Pillow raises them.
    """
    with warnings.catch_warnings():  # Pillow's bomb warning: the budget below is stricter
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(io.BytesIO(data))
    w, h = im.size
    if w * h <= max_pixels:
        return im
    if fit is not None and im.format == "JPEG":
        im.draft("RGB", fit)  # picks the smallest 1/2^k scale still >= fit
        dw, dh = im.size
        if dw * dh <= max_pixels:
            return im
    im.close()
    raise ImageTooLarge(
        f"too large: {w}x{h} pixels (over the {MAX_SIDE}x{MAX_SIDE} pixel budget for a face)"
    )
