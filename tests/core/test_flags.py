"""Flags on the synthetic demo data vs its truth.json; incremental and resumed scans."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from annotator.core.dedup import flags as F
from annotator.core.dedup import flagset
from annotator.core.importer import import_source
from annotator.core.scan import hash_faces, scan, update_flags
from annotator.demo.dataset import generate_demo
from annotator.store import flags as flags_store
from annotator.store import hashes as hashes_store
from annotator.store.db import open_project


def _pairs(flags, kind: str) -> set[frozenset[int]]:
    out = set()
    for f in flags:
        if f.kind != kind:
            continue
        lines = [int(str(x["origin"]).split(":")[1]) for x in f.faces]
        out |= {frozenset(p) for p in itertools.combinations(lines, 2)}
    return out


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    r = generate_demo(d, identities=24, seed=5)
    p = open_project(d / "p.db", create=True)
    import_source(p, "msceleb", r.faces_tsv)
    res = scan(p, workers=1)
    yield p, json.loads(Path(r.truth_json).read_text()), res
    p.close()


@pytest.mark.parametrize("kind", ["exact_dup", "near_dup", "cross_identity_dup"])
def test_recall_precision_on_demo(demo, kind: str) -> None:
    p, truth, _ = demo
    pred = _pairs(flags_store.list_flags(p), kind)
    want = {frozenset(x) for x in truth[kind]}
    assert want, "demo has no injected problems of this kind"
    hit = len(pred & want)
    recall, precision = hit / len(want), hit / max(len(pred), 1)
    print(
        f"{kind}: recall {recall:.3f} precision {precision:.3f} ({len(pred)} predicted, {len(want)} true)"
    )
    assert recall == 1.0
    assert precision >= 0.95


def test_corrupt_truncated_and_counts(demo) -> None:
    p, truth, res = demo
    corrupt = {
        int(str(f.faces[0]["origin"]).split(":")[1]) for f in flags_store.list_flags(p, "corrupt")
    }
    assert set(truth["truncated"]) <= corrupt
    assert res.corrupt == len(corrupt)
    hashed, n_corrupt = hashes_store.counts(p)
    assert n_corrupt == res.corrupt and hashed == res.hashed
    # suspicion: identities with cross-identity duplicates rank high
    top = p.conn.execute("SELECT count(*) FROM identities WHERE suspicion > 0").fetchone()[0]
    assert top > 0


def test_rescan_is_idempotent_and_incremental(demo) -> None:
    p, _, _ = demo
    before = {(f.kind, tuple(x["id"] for x in f.faces)) for f in flags_store.list_flags(p)}
    ids_before = {f.id for f in flags_store.list_flags(p)}
    res = scan(p, workers=1)
    assert res.hashed == 0  # nothing new to hash
    after = flags_store.list_flags(p)
    assert {(f.kind, tuple(x["id"] for x in f.faces)) for f in after} == before
    assert {f.id for f in after} == ids_before  # updated in place, not duplicated


def test_wrong_identity_distance_report(demo) -> None:
    """What wrong-identity faces (not duplicates) look like to pHash: their distance to their
    labelled identity's majority hash, compared with genuine faces (printed for the report)."""
    p, truth, _ = demo
    data = hashes_store.load_hashes(p)
    rec = dict(p.conn.execute("SELECT id, record FROM faces"))
    ok = data["corrupt"] == 0
    dist, z = F.majority_outliers(data["phash"][ok], data["identity_id"][ok])
    lines = np.array([rec[int(f)] for f in data["face_id"][ok]])
    wrong = np.isin(lines, truth["wrong_identity"])
    print(
        f"wrong-identity: mean dist {dist[wrong].mean():.1f}, genuine {dist[~wrong].mean():.1f}; "
        f"z>=3: wrong {np.mean(z[wrong] >= 3):.2f}, genuine {np.nanmean(z[~wrong] >= 3):.3f}"
    )
    assert wrong.sum() > 0


def test_resumed_scan(tmp_path) -> None:
    r = generate_demo(tmp_path, identities=6, seed=2)
    p = open_project(tmp_path / "p.db", create=True)
    import_source(p, "msceleb", r.faces_tsv)
    total = p.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
    calls = {"n": 0}

    def cancel_after_first_chunk() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    import annotator.core.scan as S

    old = S.CHUNK
    S.CHUNK = 16
    try:
        res = hash_faces(p, workers=1, cancelled=cancel_after_first_chunk)
    finally:
        S.CHUNK = old
    assert res.cancelled and 0 < res.hashed < total
    assert hashes_store.counts(p)[0] == res.hashed  # committed chunk survives
    res2 = hash_faces(p, workers=1)
    assert res.hashed + res2.hashed == total
    update_flags(p)
    assert hashes_store.counts(p)[0] == total
    p.close()


def _thumbs_from_hash(phash: np.ndarray) -> np.ndarray:
    """Synthetic verification thumbnails: each pHash bit paints one 2x2 block of a 16x16 image
    (the rest a fixed texture), so faces a few bits apart have similar thumbnails and the SSIM
    test passes for small distances only."""
    bits = np.unpackbits(phash.astype(">i8").view(np.uint8).reshape(-1, 8), axis=1)
    t = np.tile(np.arange(256, dtype=np.uint8).reshape(16, 16) // 2, (len(phash), 1, 1))
    blocks = np.kron(bits.reshape(-1, 8, 8), np.ones((2, 2), np.uint8)) * 120
    gray = (t + blocks).reshape(len(phash), 256).astype(np.uint8)
    colour = np.full((len(phash), 192), 100, np.uint8)  # alike: only the gray part decides
    return np.concatenate([gray, colour], axis=1)


def _thumbs_of(data):
    by_id = dict(zip(data["face_id"].tolist(), _thumbs_from_hash(data["phash"]), strict=True))
    return lambda ids: (
        np.array([by_id[int(f)] for f in ids]).reshape(-1, 448),
        np.ones(len(ids), bool),
    )


def test_keeper_rules() -> None:
    data = np.zeros(4, dtype=hashes_store.HASH_DTYPE)
    data["face_id"] = [10, 11, 12, 13]
    data["identity_id"] = [1, 1, 1, 2]
    data["phash"] = [0, 1, 3, -1]
    data["dhash"] = data["phash"]
    data["width"] = data["height"] = [100, 120, 120, 100]
    data["rank"] = [1, 5, 2, 1]
    data["sharpness"] = 100
    fs = F.compute_flags(data, [], radius=2, thumbs_of=_thumbs_of(data))
    groups = {f: (g, k) for f, g, k in fs.groups}
    assert set(groups) == {10, 11, 12}
    assert groups[12][1] == 1 and groups[11][1] == 0  # same size: better rank wins
    # one flag for the whole group, with its largest distance and lowest similarity
    (flag,) = fs.flags
    assert (flag.kind, flag.faces, flag.distance) == ("near_dup", (10, 11, 12), 2)
    assert F.verify.SSIM_MIN <= flag.similarity < 1


def test_unverified_candidates_are_not_duplicates() -> None:
    """Two faces within the radius whose thumbnails differ are candidates, never a group."""
    data = np.zeros(3, dtype=hashes_store.HASH_DTYPE)
    data["face_id"] = [1, 2, 3]
    data["identity_id"] = [1, 2, 1]
    data["phash"] = [0, 1, 1 << 40]
    data["dhash"] = data["phash"]
    data["width"] = data["height"] = 100
    data["sharpness"] = 100
    rng = np.random.default_rng(0)
    thumbs = {1: rng.integers(0, 255, 448), 2: rng.integers(0, 255, 448), 3: np.zeros(448)}
    fs = F.compute_flags(
        data,
        [],
        radius=1,
        thumbs_of=lambda ids: (np.array([thumbs[int(f)] for f in ids]), np.ones(len(ids), bool)),
    )
    assert fs.pairs == 2 and fs.verified == 0
    assert not len(fs.groups) and not [f for f in fs.flags if f.kind.endswith("dup")]
    # the same pair with equal thumbnails is a cross-identity group
    thumbs[2] = thumbs[1]
    fs = F.compute_flags(
        data,
        [],
        radius=1,
        thumbs_of=lambda ids: (np.array([thumbs[int(f)] for f in ids]), np.ones(len(ids), bool)),
    )
    assert [(f.kind, f.faces) for f in fs.flags if f.kind.endswith("dup")] == [
        ("cross_identity_dup", (1, 2))
    ]


def _reference_flags(data, sha_groups, radius, thumbs_of):
    """The flag rules written the plain way (per pair, per face, union-find for groups), to
    check the vectorised ones."""
    from annotator.core.dedup import verify

    face, ident = data["face_id"], data["identity_id"]
    pos = {int(f): k for k, f in enumerate(face)}
    ok = [k for k in range(len(data)) if data["corrupt"][k] == 0]
    okset = set(ok)
    out = set()
    sha_of = {}
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    def join(a: int, b: int) -> None:
        parent[root(a)] = root(b)

    for g, ids in enumerate(sha_groups):
        members = [f for f in sorted(ids) if f in pos and pos[f] in okset]
        for f in members:
            sha_of[f] = g
        for f in members[1:]:
            join(f, members[0])
    h = data["phash"].view(np.uint64)
    dh = data["dhash"].view(np.uint64)
    thumbs = {int(f): t for f, t in zip(face, thumbs_of(face)[0], strict=True)}
    edges = []
    for x, a in enumerate(ok):
        for b in ok[x + 1 :]:
            d = int(np.bitwise_count(h[a] ^ h[b]))
            fa, fb = int(face[a]), int(face[b])
            if d > radius or (fa in sha_of and sha_of.get(fa) == sha_of.get(fb)):
                continue
            if int(np.bitwise_count(dh[a] ^ dh[b])) > verify.DHASH_MAX:
                continue
            sim = float(
                verify.pixel_test(np.array([thumbs[fa], thumbs[fb]]), np.array([0]), np.array([1]))[
                    0
                ]
            )
            if sim >= verify.SSIM_MIN:
                edges.append((fa, fb, d, sim))
                join(fa, fb)
    comps: dict[int, list[int]] = {}
    for f in list(parent):
        comps.setdefault(root(f), []).append(f)
    for members in comps.values():
        if len(members) < 2:
            continue
        ms = tuple(sorted(members))
        es = [e for e in edges if root(e[0]) == root(ms[0])]
        d = max([e[2] for e in es], default=0)
        sim = min([e[3] for e in es], default=1.0)
        cross = len({int(ident[pos[f]]) for f in ms}) > 1
        exact = len({sha_of.get(f, -1 - f) for f in ms}) == 1
        kind = "cross_identity_dup" if cross else "exact_dup" if exact else "near_dup"
        score = 2 + sim if cross else 1.0 if exact else sim
        out.add((kind, ms, d, round(score, 5), round(sim, 4)))
    for iid in np.unique(ident[ok]):
        ks = [k for k in ok if ident[k] == iid]
        bits = np.unpackbits(h[ks].astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
        maj = np.packbits((bits.sum(0) * 2 > len(ks)).astype(np.uint8)).view(">u8")[0]
        dd = np.array([int(np.bitwise_count(h[k] ^ np.uint64(maj))) for k in ks])
        if len(ks) < F.OUTLIER_MIN_FACES:
            continue
        med = np.median(dd)
        z = (dd - med) / (1.4826 * np.median(np.abs(dd - med)) + 1)
        out |= {
            ("outlier", (int(face[k]),), int(v), round(float(zz), 5), None)
            for k, v, zz in zip(ks, dd, z, strict=False)
            if zz >= F.OUTLIER_Z
        }
    for k in range(len(data)):
        f = (int(face[k]),)
        if data["corrupt"][k]:
            out.add(("corrupt", f, None, 1.0, None))
            continue
        side = min(data["width"][k], data["height"][k])
        if side < F.TINY_PX:
            out.add(("tiny", f, None, round(1 - side / F.TINY_PX, 5), None))
        if data["grayscale"][k] == 1:
            out.add(("grayscale", f, None, 0.25, None))
        if 0 <= data["sharpness"][k] < F.BLURRY_SHARPNESS:
            out.add(
                ("blurry", f, None, round(1 - data["sharpness"][k] / F.BLURRY_SHARPNESS, 5), None)
            )
    return out


def _synthetic(n: int, seed: int):
    from annotator.core.dedup.neighbors import clustered_hashes

    rng = np.random.default_rng(seed)
    data = np.zeros(n, dtype=hashes_store.HASH_DTYPE)
    data["face_id"] = rng.permutation(np.arange(10, 10 + 3 * n, 3))
    data["identity_id"] = rng.integers(1, n // 8, n)
    data["phash"] = clustered_hashes(n, seed=seed, flips=4).view(np.int64)
    data["width"] = rng.choice([30, 112, 250], n)
    data["height"] = data["width"]
    data["grayscale"] = rng.random(n) < 0.05
    data["sharpness"] = rng.choice([-1.0, 10.0, 500.0], n)
    data["corrupt"] = rng.random(n) < 0.03
    data["rank"] = rng.integers(0, 50, n)
    ids = rng.permutation(data["face_id"])[: n // 5].tolist()
    cuts = np.sort(rng.choice(np.arange(1, len(ids)), len(ids) // 3, replace=False))
    sha_groups = [sorted(g) for g in np.split(np.array(ids), cuts) if len(g) >= 2]
    sha_groups.append([10**9, 10**9 + 1])  # ids not in the data are ignored
    for g in sha_groups:  # byte-identical copies share the pHash
        sel = np.isin(data["face_id"], g)
        if sel.any():
            data["phash"][sel] = data["phash"][sel][0]
    # dHash: the pHash with a few more bits flipped (some pairs fail the cheap test)
    flips = rng.integers(0, 64, (n, 3))
    noise = np.zeros(n, np.uint64)
    for c in range(3):
        keep = rng.random(n) < 0.5
        noise |= np.where(keep, np.uint64(1) << flips[:, c].astype(np.uint64), np.uint64(0))
    data["dhash"] = (data["phash"].view(np.uint64) ^ noise).view(np.int64)
    return data, sha_groups


def _rows(fs):
    return {
        (k, f, d, round(s, 5), None if m is None else round(m, 4)) for k, f, d, s, m in fs.rows()
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_vectorised_rules_equal_plain_rules(seed: int) -> None:
    data, sha_groups = _synthetic(400, seed)
    thumbs_of = _thumbs_of(data)
    for radius in (3, 6):
        fs = F.compute_flags(data, sha_groups, radius, thumbs_of=thumbs_of)
        got = _rows(fs)
        want = _reference_flags(data, sha_groups, radius, thumbs_of)
        assert got == want
        assert len(got) == len(fs)  # no flag twice
        assert fs.verified > 0 and fs.pairs > fs.verified  # some candidates fail verification
        # the array form of the byte-identical groups gives the same flags
        faces = np.array([f for g in sha_groups for f in g])
        gid = np.repeat(np.arange(len(sha_groups)), [len(g) for g in sha_groups])
        fs2 = F.compute_flags(data, (faces, gid), radius, thumbs_of=thumbs_of)
        assert _rows(fs2) == got
        assert fs2.suspicion == fs.suspicion


def test_groups_keepers_and_suspicion_against_plain_code() -> None:
    data, sha_groups = _synthetic(300, 7)
    fs = F.compute_flags(data, sha_groups, 6, thumbs_of=_thumbs_of(data))
    row = {int(f): k for k, f in enumerate(data["face_id"])}
    want: set[tuple[int, int, int]] = set()
    dup = [f for k, f, *_ in fs.rows() if k in ("near_dup", "cross_identity_dup", "exact_dup")]
    for members in dup:  # one flag per group: its faces are the group
        keeper = min(
            members,
            key=lambda f: (
                -int(data["width"][row[f]]) * int(data["height"][row[f]]),
                int(data["rank"][row[f]]),
                f,
            ),
        )
        want |= {(f, keeper, int(f == keeper)) for f in members}
    assert {tuple(r) for r in fs.groups.tolist()} == want
    assert sum(len(m) for m in dup) == len(fs.groups)  # every grouped face in exactly one flag
    # suspicion: the rule written with dicts
    size: dict[int, int] = {}
    for i in data["identity_id"].tolist():
        size[i] = size.get(i, 0) + 1
    kinds_of: dict[int, set[str]] = {}
    for k, faces, *_ in fs.rows():
        for f in faces:
            kinds_of.setdefault(f, set()).add(k)
    score: dict[int, float] = {}
    flagged: dict[int, int] = {}
    for f, kinds in kinds_of.items():
        iid = int(data["identity_id"][row[f]])
        flagged[iid] = flagged.get(iid, 0) + 1
        score[iid] = score.get(iid, 0.0) + sum(flagset.WEIGHTS[k] for k in kinds) / size[iid]
    assert fs.suspicion == [(i, round(score[i], 6), flagged[i]) for i in sorted(score)]


def test_replace_flags_keeps_ids_updates_and_removes(tmp_path) -> None:
    r = generate_demo(tmp_path, identities=6, seed=3)
    p = open_project(tmp_path / "p.db", create=True)
    import_source(p, "msceleb", r.faces_tsv)
    seen: list[tuple[int, int]] = []
    scan(p, workers=1, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] and len({t for _, t in seen}) <= 2
    assert all(a[0] <= b[0] or a[1] != b[1] for a, b in zip(seen, seen[1:], strict=False))
    before = flags_store.list_flags(p)
    rows = [
        (f.kind, tuple(x["id"] for x in f.faces), f.distance, f.score, f.similarity) for f in before
    ]
    ids = {(k, fs): f.id for (k, fs, *_), f in zip(rows, before, strict=False)}
    changed = [(rows[0][0], rows[0][1], rows[0][2], rows[0][3] + 1.0, rows[0][4])] + rows[2:]
    new_face = next(
        f
        for (f,) in p.conn.execute("SELECT id FROM faces ORDER BY id")
        if ("tiny", (f,)) not in ids
    )
    changed.append(("tiny", (new_face,), None, 0.5, None))
    assert flags_store.replace_flags(p, changed) == (1, 1, 1)
    after = flags_store.list_flags(p)
    got = {(f.kind, tuple(x["id"] for x in f.faces)): f for f in after}
    assert (rows[1][0], rows[1][1]) not in got  # removed
    assert got[(rows[0][0], rows[0][1])].score == rows[0][3] + 1.0
    assert all(got[(k, fs)].id == ids[(k, fs)] for k, fs, *_ in rows[2:])  # ids kept
    assert flags_store.replace_flags(p, changed) == (0, 0, 0)  # idempotent
    p.close()


def test_replace_flags_skips_repeats_across_batches(tmp_path, monkeypatch) -> None:
    """A flag given twice (in one batch or in two) is stored once; the rest keep their ids."""
    r = generate_demo(tmp_path, identities=4, seed=4)
    p = open_project(tmp_path / "p.db", create=True)
    import_source(p, "msceleb", r.faces_tsv)
    ids = [f for (f,) in p.conn.execute("SELECT id FROM faces ORDER BY id LIMIT 6")]
    monkeypatch.setattr(flags_store, "WRITE_BATCH", 2)
    rows = [("tiny", (f,), None, 0.5, None) for f in ids[:4]]
    rows += [rows[0], rows[3], ("near_dup", (ids[5], ids[4]), 2, 0.25, 0.97), rows[1]]
    assert flags_store.replace_flags(p, rows) == (5, 0, 0)
    got = {(f.kind, tuple(x["id"] for x in f.faces)): f.id for f in flags_store.list_flags(p)}
    assert len(got) == 5 and ("near_dup", (ids[4], ids[5])) in got
    rows2 = [*rows[:3], ("near_dup", (ids[4], ids[5]), 3, 0.1, 0.97), rows[0]]
    assert flags_store.replace_flags(p, rows2) == (0, 1, 1)
    got2 = {(f.kind, tuple(x["id"] for x in f.faces)): f.id for f in flags_store.list_flags(p)}
    assert got2 == {k: v for k, v in got.items() if k != ("tiny", (ids[3],))}
    p.close()


def test_sliced_rules_equal_unsliced(monkeypatch) -> None:
    """The bounded-memory slices (pairs, flags, faces, rows) do not change any result."""
    data, sha_groups = _synthetic(400, 3)
    fs = F.compute_flags(data, sha_groups, 6, thumbs_of=_thumbs_of(data))
    monkeypatch.setattr(F, "PAIR_CHUNK", 7)
    monkeypatch.setattr(F, "FACE_CHUNK", 16)
    monkeypatch.setattr(flagset, "ROWS_CHUNK", 5)
    monkeypatch.setattr(F.verify, "SSIM_CHUNK", 3)
    asked: list[int] = []
    thumbs = _thumbs_of(data)

    def counted(ids):
        asked.append(len(ids))
        return thumbs(ids)

    F.compute_flags(data, sha_groups, 6, thumbs_of=counted)
    assert len(asked) == 1  # within THUMB_BUDGET: every face's thumbnail read once
    monkeypatch.setattr(F, "THUMB_BUDGET", 0)  # over it: read per slice of the pixel test
    monkeypatch.setattr(F, "PIXEL_PART", 2)  # the pixel test in parts over three threads
    fs2 = F.compute_flags(data, sha_groups, 6, thumbs_of=_thumbs_of(data), threads=3)
    assert fs.pairs > 3 * 7 and len(fs) > 3 * 5
    assert list(fs2.rows()) == list(fs.rows())
    assert {tuple(r) for r in fs2.groups.tolist()} == {tuple(r) for r in fs.groups.tolist()}
    assert fs2.suspicion == fs.suspicion
    # other pixel-test slices skip other already-joined pairs: the same groups and flags, but a
    # group's figures (largest distance, lowest similarity) are of the pairs that were tested
    monkeypatch.setattr(F, "VERIFY_FIRST", 2)
    monkeypatch.setattr(F, "VERIFY_CHUNK", 8)
    fs3 = F.compute_flags(data, sha_groups, 6, thumbs_of=_thumbs_of(data))
    assert [r[:2] for r in fs3.rows()] == [r[:2] for r in fs.rows()]
    assert {tuple(r) for r in fs3.groups.tolist()} == {tuple(r) for r in fs.groups.tolist()}
    assert fs3.suspicion == fs.suspicion


def test_nearest_first_yields_every_pair_once_in_distance_order(monkeypatch) -> None:
    monkeypatch.setattr(F, "PAIR_CHUNK", 5)
    monkeypatch.setattr(F, "VERIFY_FIRST", 3)
    monkeypatch.setattr(F, "VERIFY_CHUNK", 10)
    rng = np.random.default_rng(4)
    n = 97
    i, j = np.arange(n, dtype=np.int32), np.arange(n, dtype=np.int32) + 1000
    d = rng.integers(0, 9, n).astype(np.uint8)
    slices = list(F._nearest_first(i, j, d, 8))
    sizes = [len(a) for a, _, _ in slices]
    assert sizes[:3] == [3, 6, 10] and max(sizes) == 10 and sum(sizes) == n
    got_i = np.concatenate([a for a, _, _ in slices])
    got_d = np.concatenate([x for _, _, x in slices])
    assert np.all(np.diff(got_d.astype(int)) >= 0)  # nearest first
    assert sorted(got_i.tolist()) == i.tolist()  # each pair once
    assert np.array_equal(np.concatenate([b for _, b, _ in slices]), got_i + 1000)
    assert np.array_equal(got_d, d[got_i])
    assert list(F._nearest_first(i[:0], j[:0], d[:0], 8)) == []


def test_replace_flags_with_colliding_first_keys(tmp_path, monkeypatch) -> None:
    """Stored flags are matched on both 64-bit keys: a shared first key is walked, not trusted."""
    real = flags_store._keys
    monkeypatch.setattr(flags_store, "_keys", lambda fps: (real(fps)[0] * 0, real(fps)[1]))
    r = generate_demo(tmp_path, identities=4, seed=6)
    p = open_project(tmp_path / "p.db", create=True)
    import_source(p, "msceleb", r.faces_tsv)
    ids = [f for (f,) in p.conn.execute("SELECT id FROM faces ORDER BY id LIMIT 8")]
    rows = [("tiny", (f,), None, 0.5, None) for f in ids]
    assert flags_store.replace_flags(p, rows) == (8, 0, 0)
    before = {f.faces[0]["id"]: f.id for f in flags_store.list_flags(p)}
    rows[2] = ("tiny", (ids[2],), None, 0.75, None)
    assert flags_store.replace_flags(p, rows[1:]) == (0, 1, 1)
    after = {f.faces[0]["id"]: (f.id, f.score) for f in flags_store.list_flags(p)}
    assert after == {f: (before[f], 0.75 if f == ids[2] else 0.5) for f in ids[1:]}
    p.close()


def test_faces_scanned_before_thumbnails_are_hashed_again(tmp_path) -> None:
    """A project scanned before migration m006 has hashes but no thumbnails: the next scan
    hashes just those faces again (not the corrupt ones, not the others)."""
    r = generate_demo(tmp_path, identities=4, seed=8)
    p = open_project(tmp_path / "p.db", create=True)
    import_source(p, "msceleb", r.faces_tsv)
    first = scan(p, workers=1)
    decodable = first.hashed - first.corrupt
    some = [f for (f,) in p.conn.execute("SELECT face_id FROM face_hashes WHERE corrupt IS NULL")]
    with p.tx() as c:  # what an older scan left: no thumbnails
        c.executemany(
            "UPDATE face_hashes SET thumb = NULL WHERE face_id = ?", [(f,) for f in some[:7]]
        )
    assert len(hashes_store.unhashed_face_ids(p)) == 7
    again = scan(p, workers=1)
    assert again.hashed == 7 and len(hashes_store.unhashed_face_ids(p)) == 0
    assert (
        decodable
        == p.conn.execute("SELECT count(*) FROM face_hashes WHERE length(thumb) = 448").fetchone()[
            0
        ]
    )
    p.close()
