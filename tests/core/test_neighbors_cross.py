"""The bipartite search (core/dedup/neighbors_cross.py) gives exactly the brute-force pairs."""

from __future__ import annotations

import numpy as np
import pytest

from annotator.core.dedup import crops
from annotator.core.dedup.neighbors import clustered_hashes
from annotator.core.dedup.neighbors_cross import brute_cross, cross_pairs, cross_plan
from annotator.core.dedup.neighbors_plan import Plan


def _flip(h: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    out = h.copy()
    for _ in range(bits):
        out ^= np.uint64(1) << rng.integers(0, 64, len(out)).astype(np.uint64)
    return out


def _sets(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = clustered_hashes(n, seed=seed, alpha=2.0)
    b = np.concatenate([_flip(a, 6, rng), _flip(a, 12, rng)])
    return a, b[rng.permutation(len(b))]


def _keys(r: tuple[np.ndarray, ...]) -> np.ndarray:
    i, j, d = r
    return np.sort(i.astype(np.int64) * (1 << 32) + j.astype(np.int64) * 128 + d)


def _brute(a: np.ndarray, b: np.ndarray, R: int) -> np.ndarray:
    d = np.bitwise_count(a[:, None] ^ b[None, :])
    i, j = np.nonzero(d <= R)
    return _keys((i, j, d[i, j]))


@pytest.mark.parametrize(
    "layout",
    [None, ((16, 16, 16, 16), (1, 1, 2, 1)), ((22, 21, 21), (2, 2, 2)), ((20, 20, 20), (2, 3, 2))],
)
def test_exactly_the_brute_force_pairs(layout) -> None:
    a, b = _sets(2000)
    force = Plan("tables", *layout) if layout else None
    got = cross_pairs(a, b, 8, force=force)
    want = _brute(a, b, 8)
    assert len(want) > 2000  # the crop hashes of a cluster meet its other members
    assert np.array_equal(_keys(got), want)  # each pair once, none missing, none extra
    assert np.array_equal(_keys(cross_pairs(a, b, 8, force=force, threads=3)), want)


def test_brute_force_path_and_other_radii() -> None:
    a, b = _sets(400, seed=2)
    assert cross_plan(a, b, 8).method == "brute"
    for R in (0, 3, 8):
        assert np.array_equal(_keys(brute_cross(a, b, R)), _brute(a, b, R))
        tables = cross_pairs(a, b, R, force=Plan("tables", (16, 16, 16, 16), (R, 0, 0, 0)))
        assert np.array_equal(_keys(tables), _brute(a, b, R))


def test_large_sets_are_planned_as_tables_and_empty_sets_give_nothing() -> None:
    a, b = _sets(20_000, seed=3)
    assert cross_plan(a, b, 8).method == "tables"
    assert all(len(x) == 0 for x in cross_pairs(a[:0], b, 8))
    assert all(len(x) == 0 for x in cross_pairs(a, b[:0], 8))
    with pytest.raises(ValueError):
        cross_pairs(a, b, 65)


def test_crop_candidates_are_the_full_against_crop_pairs() -> None:
    rng = np.random.default_rng(4)
    full = clustered_hashes(2000, seed=4, alpha=2.0)
    crop = np.stack([_flip(full, 6, rng), _flip(full, 12, rng)], axis=1)
    crop[rng.random(len(full)) < 0.1] = 0  # faces without crop hashes take no part
    x, y, s, d = crops.candidates(full.view(np.int64), crop)
    got = set(zip(x.tolist(), y.tolist(), s.tolist(), d.tolist(), strict=True))
    dist = np.bitwise_count(full[:, None, None] ^ crop[None, :, :])  # (x, y, scale)
    xi, yi, si = np.nonzero((dist <= crops.CROP_RADIUS) & (crop[None, :, 0:1] != 0))
    keep = xi != yi
    want = set(
        zip(
            xi[keep].tolist(),
            yi[keep].tolist(),
            si[keep].tolist(),
            dist[xi[keep], yi[keep], si[keep]].tolist(),
            strict=True,
        )
    )
    assert len(want) > 500 and got == want


def test_cancelled_search_stops_inside_a_table() -> None:
    a, b = _sets(2000, seed=5)
    asked = []

    def cancelled() -> bool:  # not before the first table: inside its probing
        asked.append(1)
        return len(asked) > 1

    with pytest.raises(InterruptedError):
        cross_pairs(a, b, 8, force=Plan("tables", (22, 21, 21), (2, 2, 2)), cancelled=cancelled)
    assert len(asked) == 2
