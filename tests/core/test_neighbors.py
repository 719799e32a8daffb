"""Near-duplicate search must equal brute force exactly."""

from __future__ import annotations

import numpy as np
import pytest

from annotator.core import neighbors as N


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_brute_force_small_known() -> None:
    h = np.array([0, 1, 3, 0xFF, 2**63], dtype=np.uint64)
    i, j, d = N.brute_force_pairs(h, 2)
    assert list(zip(i.tolist(), j.tolist(), d.tolist(), strict=True)) == [
        (0, 1, 1),
        (0, 2, 2),
        (0, 4, 1),
        (1, 2, 1),
        (1, 4, 2),
    ]


@pytest.mark.parametrize("R", [0, 1, 3, 6, 8, 10])
def test_random_equals_brute_force(R: int) -> None:
    rng = np.random.default_rng(R)
    base = rng.integers(0, 2**63, 3000, dtype=np.int64).view(np.uint64)
    # add near copies so there is something to find
    near = base[:600] ^ (np.uint64(1) << rng.integers(0, 64, 600).astype(np.uint64))
    h = np.concatenate([base, near, base[:50]])
    bf = N.brute_force_pairs(h, R)
    assert len(bf[0]) >= (650 if R else 50)
    assert _same(N.pairs_within(h, R), bf)


@pytest.mark.parametrize("R", [0, 1, 3, 6, 8, 10])
def test_clustered_equals_brute_force(R: int) -> None:
    h = N.clustered_hashes(6000, seed=R, flips=5)
    bf = N.brute_force_pairs(h, R)
    assert _same(N.pairs_within(h, R), bf)


@pytest.mark.parametrize(("m", "k"), [(2, 1), (4, 1), (7, 1), (8, 2), (8, 5), (5, 3), (6, 4)])
def test_every_table_layout_is_exact(m: int, k: int) -> None:
    h = N.clustered_hashes(3000, seed=m * 10 + k, flips=6)
    for R in (0, 2, 6):
        if N.n_patterns(64 * k // m, N.r_of(R, m, k)) > 3000:
            continue
        assert _same(N.table_pairs(h, R, m, k), N.brute_force_pairs(h, R)), (m, k, R)


def test_r_of_bound() -> None:
    # the k smallest of m non-negative integers summing to <= R sum to at most r(k)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        m = int(rng.integers(2, 12))
        R = int(rng.integers(0, 12))
        parts = np.bincount(rng.integers(0, m, R), minlength=m)
        srt = np.sort(parts)
        for k in range(1, m + 1):
            assert srt[:k].sum() <= N.r_of(R, m, k)


def test_signed_input_and_plan() -> None:
    h = N.clustered_hashes(2000, seed=9)
    assert _same(N.pairs_within(h.view(np.int64), 4), N.brute_force_pairs(h, 4))
    assert N.plan(h, 0).method == "tables"
    assert N.plan(h[:50], 10).method == "brute"
