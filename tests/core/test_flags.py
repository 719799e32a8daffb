"""Flags on the synthetic demo data vs its truth.json; incremental and resumed scans."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from annotator.core import flags as F
from annotator.core.demo import generate_demo
from annotator.core.importer import import_source
from annotator.core.scan import hash_faces, scan, update_flags
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


def test_keeper_rules() -> None:
    data = np.zeros(4, dtype=hashes_store.HASH_DTYPE)
    data["face_id"] = [10, 11, 12, 13]
    data["identity_id"] = [1, 1, 1, 2]
    data["phash"] = [0, 1, 3, -1]
    data["width"] = data["height"] = [100, 120, 120, 100]
    data["rank"] = [1, 5, 2, 1]
    data["sharpness"] = 100
    fs = F.compute_flags(data, [], radius=2)
    groups = {f: (g, k) for f, g, k in fs.groups}
    assert set(groups) == {10, 11, 12}
    assert groups[12][1] == 1 and groups[11][1] == 0  # same size: better rank wins
    kinds = sorted((f.kind, f.faces, f.distance) for f in fs.flags)
    assert kinds == [
        ("near_dup", (10, 11), 1),
        ("near_dup", (10, 12), 2),
        ("near_dup", (11, 12), 1),
    ]
