"""store.hashes.load_thumbs: the verification thumbnails of any set of faces, in the order asked."""

import numpy as np

from annotator.core.dedup.verify import THUMB_BYTES
from annotator.store import hashes as hashes_store


def test_load_thumbs_order_missing_and_short(make_project):
    p = make_project([700])  # face ids 1..700, more than one IN list
    rng = np.random.default_rng(0)
    thumbs = rng.integers(0, 256, (701, THUMB_BYTES), dtype=np.uint8)
    rows = []
    for f in range(1, 701):
        thumb = thumbs[f].tobytes()
        if f % 7 == 0:
            thumb = None  # scanned before thumbnails existed
        elif f % 11 == 0:
            thumb = thumb[:256]  # a short (older) thumbnail is no thumbnail
        rows.append((f, bytes(32), 1, 2, 112, 112, 0, 500.0, None, thumb))
    hashes_store.insert_hashes(p, rows)
    ask = np.array([650, 3, 7, 22, 1, 699, 999, 500, 2], np.int64)  # 999: no such face
    got, present = hashes_store.load_thumbs(p, ask)
    assert got.shape == (len(ask), THUMB_BYTES)
    want_present = [f <= 700 and f % 7 != 0 and f % 11 != 0 for f in ask.tolist()]
    assert present.tolist() == want_present
    for k, f in enumerate(ask.tolist()):
        if want_present[k]:
            assert np.array_equal(got[k], thumbs[f])
        else:
            assert not got[k].any()
    many = np.arange(700, 0, -1, dtype=np.int64)  # 700 ids in descending order: two IN lists
    got, present = hashes_store.load_thumbs(p, many)
    assert present.sum() == sum(1 for f in range(1, 701) if f % 7 and f % 11)
    assert np.array_equal(got[1], thumbs[699])
    assert hashes_store.load_thumbs(p, np.zeros(0, np.int64))[0].shape == (0, THUMB_BYTES)
