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

from annotator.demo.dataset import (
    BROKEN_KINDS,
    INJECTED_KINDS,
    DemoResult,
    generate_demo,
    injected_counts,
    jpeg_pool,
)
from annotator.demo.drawing import (
    DEFAULT_SIZE,
    IdentityParams,
    ImageParams,
    draw_face,
    encode_jpeg,
    identity_params,
    image_params,
    phash_int,
)
from annotator.demo.names import LANGS, invent_mid, invent_names
from annotator.demo.variants import NEAR_MAX_BITS, near_variant

__all__ = [
    "BROKEN_KINDS",
    "DEFAULT_SIZE",
    "INJECTED_KINDS",
    "LANGS",
    "NEAR_MAX_BITS",
    "DemoResult",
    "IdentityParams",
    "ImageParams",
    "draw_face",
    "encode_jpeg",
    "generate_demo",
    "identity_params",
    "image_params",
    "injected_counts",
    "invent_mid",
    "invent_names",
    "jpeg_pool",
    "near_variant",
    "phash_int",
]
