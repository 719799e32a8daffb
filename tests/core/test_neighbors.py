"""Near-duplicate search must equal brute force exactly."""

from __future__ import annotations

import numpy as np
import pytest

from annotator.core.dedup import neighbors as N
from annotator.core.dedup import neighbors_plan


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


def test_brute_force_is_a_plain_double_loop() -> None:
    rng = np.random.default_rng(3)
    h = rng.integers(0, 2**63, 300, dtype=np.int64).view(np.uint64)
    h[100:150] = h[:50] ^ (np.uint64(1) << rng.integers(0, 64, 50).astype(np.uint64))
    want = [
        (a, b, int(np.bitwise_count(h[a] ^ h[b])))
        for a in range(300)
        for b in range(a + 1, 300)
        if np.bitwise_count(h[a] ^ h[b]) <= 20
    ]
    i, j, d = N.brute_force_pairs(h, 20)
    assert list(zip(i.tolist(), j.tolist(), d.tolist(), strict=True)) == want


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


@pytest.mark.parametrize("R", [6, 10])
def test_clustered_tables_at_scale_equal_brute_force(R: int, monkeypatch) -> None:
    # large enough that the planner picks tables, not brute force
    h = N.clustered_hashes(15_000, seed=40 + R)
    pl = neighbors_plan.plan(h, R)
    assert pl.method == "tables"
    bf = N.brute_force_pairs(h, R)
    assert _same(N.pairs_within(h, R, force=pl), bf)
    # unordered (the flag step's lower-memory answer): the same pairs, each once, also when
    # they come in many parts decoded in small chunks
    monkeypatch.setattr(N, "_PART", 256)
    monkeypatch.setattr(N, "_CHUNK", 100)
    i, j, d = N.pairs_within(h, R, force=pl, ordered=False)
    assert len(i) > 4 * 256
    o = np.lexsort((j, i))
    assert _same((i[o], j[o], d[o]), bf)
    # a table's probing on threads (small batches: many per thread): the same pairs
    monkeypatch.setattr(N, "PROBE_BATCH", 1 << 12)
    assert _same(N.pairs_within(h, R, force=pl, threads=3), bf)
    i, j, d = N.pairs_within(h, R, force=pl, ordered=False, threads=2)
    # unordered, but the same order run after run (bits join the output in bit order,
    # whichever thread finishes first)
    assert _same((i, j, d), N.pairs_within(h, R, force=pl, ordered=False, threads=2))
    o = np.lexsort((j, i))
    assert _same((i[o], j[o], d[o]), bf)


LAYOUTS = [
    ((24,), (0,), 0),
    ((24, 24), (1, 0), 2),
    ((24, 24, 16), (1, 1, -1), 3),
    ((22, 21, 21), (2, 1, 1), 6),
    ((22, 21, 21), (2, 2, 2), 8),
    ((24, 20, 20), (2, 3, 3), 10),
    ((16, 16, 16, 16), (2, 2, 2, 1), 10),
    ((16, 16, 16, 16), (0, 0, 0, 0), 3),
    ((13, 13, 13, 13, 12), (4, 0, 0, 0, 0), 8),
    ((8,) * 8, (0, 0, 1, 0, 0, 0, 0, -1), 7),
]


@pytest.mark.parametrize(("widths", "thresholds", "R"), LAYOUTS)
def test_every_table_layout_is_exact(widths, thresholds, R) -> None:
    h = N.clustered_hashes(3000, seed=sum(widths) + R, flips=6)
    for r in sorted({0, R // 2, R}):
        got = N.table_pairs(h, r, widths, thresholds)
        assert _same(got, N.brute_force_pairs(h, r)), (widths, thresholds, r)


def test_layout_must_cover_radius() -> None:
    with pytest.raises(ValueError, match="cover"):
        N.table_pairs(np.zeros(3, np.uint64), 3, (21, 21, 22), (1, 0, -1))
    with pytest.raises(ValueError, match="at most"):
        N.table_pairs(np.zeros(3, np.uint64), 0, (32, 32), (0, 0))


def test_threshold_pigeonhole() -> None:
    # R differing bits spread over the blocks in any way leave some block within its threshold
    rng = np.random.default_rng(0)
    for _ in range(3000):
        m = int(rng.integers(1, 9))
        R = int(rng.integers(0, 14))
        t = rng.integers(-1, 5, m)
        if (t[t >= 0] + 1).sum() < R + 1:
            continue
        parts = np.bincount(rng.integers(0, m, R), minlength=m)
        assert ((parts <= t) & (t >= 0)).any()


def test_big_buckets_and_small_chunks(monkeypatch) -> None:
    # hundreds of identical and near-identical hashes (blank images do this) exercise the
    # long-range expansion; a tiny chunk size exercises every chunk boundary
    rng = np.random.default_rng(5)
    base = np.uint64(0x0123456789ABCDEF)
    flips = np.uint64(1) << rng.integers(0, 64, 300).astype(np.uint64)
    h = np.concatenate(
        [np.full(200, base), base ^ flips, rng.integers(0, 2**63, 2000).astype(np.uint64)]
    )
    monkeypatch.setattr(N, "_CHUNK", 997)
    monkeypatch.setattr(N, "_PART", 1024)
    for R in (0, 2):
        bf = N.brute_force_pairs(h, R)
        assert _same(N.table_pairs(h, R, (22, 21, 21), (R, 0, 0)), bf)
        assert _same(N.table_pairs(h, R, (16, 16, 16, 16), (0, 0, 0, -1)), bf)


def test_brute_force_rows_sample() -> None:
    h = N.clustered_hashes(2000, seed=4)
    rows = np.sort(np.random.default_rng(1).choice(2000, 40, replace=False))
    i, j, d = N.brute_force_pairs(h, 6)
    sel = np.isin(i, rows) | np.isin(j, rows)
    assert _same(N.brute_force_pairs(h, 6, rows=rows), (i[sel], j[sel], d[sel]))


def test_progress_and_cancel() -> None:
    h = N.clustered_hashes(5000, seed=2)
    seen: list[tuple[int, int]] = []
    N.table_pairs(h, 4, (22, 21, 21), (2, 1, -1), progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    with pytest.raises(InterruptedError):
        N.pairs_within(h, 4, cancelled=lambda: True)
    # on threads: progress still whole and in order; a cancel midway stops every thread
    seen.clear()
    N.table_pairs(
        h, 4, (22, 21, 21), (2, 1, -1), progress=lambda d, t: seen.append((d, t)), threads=2
    )
    assert seen and seen[-1][0] == seen[-1][1]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    calls = [0]

    def later() -> bool:
        calls[0] += 1
        return calls[0] > 3

    with pytest.raises(InterruptedError):
        N.table_pairs(h, 4, (22, 21, 21), (2, 1, -1), cancelled=later, threads=2)


def test_signed_input_and_plan() -> None:
    h = N.clustered_hashes(2000, seed=9)
    assert _same(N.pairs_within(h.view(np.int64), 4), N.brute_force_pairs(h, 4))
    assert neighbors_plan.plan(h, 0).method == "tables"
    assert neighbors_plan.plan(h[:50], 10).method == "brute"
    with pytest.raises(ValueError):
        N.pairs_within(h, 65)
