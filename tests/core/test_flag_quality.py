"""Duplicate flags against the demo's truth at two sizes (issue 8: a precision that falls as the
set grows is the defect users meet, so the second size is >= 8k faces).

The demo draws aligned faces without any hash-friendly texture: unrelated faces of different
people collide in pHash within the candidate radius, more of them as N grows (the candidate
count below grows ~N^2), and only verified pairs may become duplicates. Exact figures are
printed for the closing note / README.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from annotator.core.export.run import export_dataset
from annotator.core.importer import import_source
from annotator.core.review import ops
from annotator.core.scan import scan
from annotator.demo.dataset import generate_demo
from annotator.store import flags as flags_store
from annotator.store.db import open_project

DUP_KINDS = ("exact_dup", "near_dup", "cross_identity_dup")
QUALITY = {}  # size -> {kind: (precision, recall)}


def _line(face: dict) -> int:
    return int(str(face["origin"]).split(":")[1])


def _build(tmp_path_factory, identities: int):
    d = tmp_path_factory.mktemp(f"quality{identities}")
    r = generate_demo(d, identities=identities, seed=11)
    p = open_project(d / "p.db", create=True)
    import_source(p, "msceleb", r.faces_tsv)
    res = scan(p)
    return d, p, json.loads(Path(r.truth_json).read_text()), res


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d, p, truth, res = _build(tmp_path_factory, 24)  # ~500 faces
    yield d, p, truth, res
    p.close()


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    d, p, truth, res = _build(tmp_path_factory, 400)  # ~8.6k faces
    yield d, p, truth, res
    p.close()


def _quality(p, truth) -> dict[str, tuple[float, float, int, int]]:
    flags = flags_store.list_flags(p)
    out = {}
    for kind in DUP_KINDS:
        pred = set()
        for f in flags:
            if f.kind == kind:
                pred |= {frozenset(x) for x in itertools.combinations(map(_line, f.faces), 2)}
        want = {frozenset(x) for x in truth[kind]}
        hit = len(pred & want)
        out[kind] = (hit / max(len(pred), 1), hit / len(want), len(pred), len(want))
    return out


def _check(name, p, truth, res):
    q = _quality(p, truth)
    QUALITY[name] = q
    faces = res.hashed
    print(
        f"\n{name}: {faces} faces, {res.pairs} pHash candidates within radius {res.radius}, "
        f"{res.verified} verified"
    )
    for kind, (prec, rec, n_pred, n_true) in q.items():
        print(f"  {kind:20s} precision {prec:.3f} recall {rec:.3f} ({n_pred} pairs, {n_true} true)")
        assert prec >= 0.98 and rec >= 0.98, (kind, prec, rec)
    # flag rows stay <= faces: one flag per group
    n_dup_flags = sum(flags_store.counts_by_kind(p).get(k, 0) for k in DUP_KINDS)
    assert n_dup_flags <= faces
    return q


def test_duplicate_quality_at_demo_size(small):
    _, p, truth, res = small
    q = _check("small", p, truth, res)
    # the candidates are not all true: without verification precision would be lower
    assert res.pairs > res.verified
    assert q


@pytest.mark.slow
def test_duplicate_quality_at_8k_faces_is_not_lower(large, small):
    _, p, truth, res = large
    assert res.hashed >= 8000
    q = _check("large", p, truth, res)
    # unverified candidates grow faster than the set: precision of the raw candidates falls,
    # the verified flags' does not
    small_q = QUALITY.get("small") or _quality(small[1], small[2])
    for kind in DUP_KINDS:
        assert q[kind][0] >= small_q[kind][0] - 1e-9, kind
        assert q[kind][1] >= small_q[kind][1] - 1e-9, kind


def _all_correct_export_keeps_all_but_copies(d, p, truth, res):
    """Every face labelled correct: the export keeps every decodable face except true copies
    (one face of each injected duplicate pair is the copy)."""
    faces = [f for (f,) in p.conn.execute("SELECT id FROM faces ORDER BY id")]
    ops.label_faces(p, faces, "correct", "lead")
    out = export_dataset(p, d / "clean", "csv")
    copies = sum(len(truth[k]) for k in DUP_KINDS)
    expected = res.hashed - res.corrupt - copies
    print(f"\nall-correct export: {out.faces} faces kept, expected {expected}; {out.excluded}")
    assert out.faces == expected, out.excluded


def test_all_correct_export_keeps_every_face_but_true_copies(small):
    _all_correct_export_keeps_all_but_copies(*small)


@pytest.mark.slow
def test_all_correct_export_at_8k_faces(large):
    _all_correct_export_keeps_all_but_copies(*large)
