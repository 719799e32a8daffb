"""A synthetic identity dataset: cartoon-like faces drawn with Pillow + NumPy.

No real person's image is anywhere in here. Each *identity* is a set of drawing parameters
(face shape, skin tone, hair, eyes, brows, nose, mouth, sometimes glasses or a beard); each
*photo* adds per-image variation (pose, lighting, background, expression, JPEG quality).

:func:`annotator.demo.dataset.generate_demo` writes a small dataset in the MS-Celeb-1M shapes — a 7-column aligned TSV
``faces.tsv``, an entity-name list ``names.tsv`` — with a few injected problems (exact, near and
cross-identity duplicates, wrong-identity faces, broken and truncated rows) and their ground
truth in ``truth.json`` (1-based line numbers of ``faces.tsv``).

Distinct photos are drawn so that their pHashes (``imagehash.phash``) are far apart (> 10 bits
for >= 99% of pairs): each photo gets a random low-frequency lighting field and background,
which dominate the 8x8 low-frequency DCT block pHash looks at. Near duplicates (re-encoded,
cropped by 1-3 px, +-10% brightness) stay within a few bits.
"""
