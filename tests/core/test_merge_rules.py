"""The merge's rules as plain functions over rows (no project, no SQL)."""

from __future__ import annotations

import hashlib

from annotator.core.review import merge_rules as rules
from annotator.core.review.merge_rules import (
    FaceMatch,
    HomeFace,
    PkgBatch,
    PkgEvent,
    Scope,
)

SCOPE = Scope(
    base_batch=10,
    faces=frozenset({1, 2, 3}),
    identities={1: "a", 2: "b", 9: "stub"},
    reviewers={1: "alice", 2: "bob", 3: " eve", 4: "x" * 300},
    batches=frozenset({5, 11, 12}),
)


def batch(i=11, rev=2, kind="do", target=None) -> PkgBatch:
    return PkgBatch(i, rev, "2026-01-01T00:00:00.000Z", kind, target, "label 1 face")


def ev(i=100, kind="label", face=1, ident=1, value="correct", prev=None, b=11, rev=2) -> PkgEvent:
    return PkgEvent(i, b, rev, "2026-01-01T00:00:00.000Z", kind, face, ident, value, prev, None)


def test_good_rows_pass():
    bs = [batch(), batch(12, kind="undo", target=5)]
    es = [
        ev(),
        ev(101, "move", 2, 1, "2", "1"),
        ev(102, "review", None, 2, "1", "0"),
        ev(103, "label", 1, 1, None, "correct", b=12),
    ]
    assert rules.first_problem(bs, es, SCOPE) is None


def test_each_bad_row_is_named():
    cases = [
        ([batch(rev=3)], [], "batch 11 has a reviewer name with blanks"),
        ([batch(rev=4)], [], "longer than 200"),
        ([batch(rev=7)], [], "names no reviewer"),
        ([batch(kind="evil")], [], "unknown kind"),
        ([batch(kind="undo", target=99)], [], "undo of no earlier batch"),
        ([batch(kind="do", target=5)], [], "with a target"),
        ([batch(i=10)], [], "not a batch made after the pack"),
        ([batch()], [ev(value="evil")], "event 100 (label) has an unknown label 'evil'"),
        ([batch()], [ev(face=4)], "a face that was not packed"),
        ([batch()], [ev(b=13)], "belongs to no batch"),
        ([batch()], [ev(rev=1)], "another reviewer than its batch"),
        ([batch()], [ev(kind="review", face=None, value="7")], "not 0 or 1"),
        ([batch()], [ev(kind="review", face=1, value="1")], "review event of a face"),
        ([batch()], [ev(kind="move", value="5", prev="1")], "not in the package"),
        ([batch()], [ev(kind="move", value="x", prev="1")], "not in the package"),
        ([batch()], [ev(kind="adjudicate")], "'adjudicate' event in a do batch"),
        ([batch()], [ev(ident=5)], "identity that is not in the package"),
    ]
    for bs, es, want in cases:
        got = rules.first_problem(bs, es, SCOPE)
        assert got is not None and want in got, (want, got)


def test_same_face_by_digest_bytes_or_locator():
    sha = hashlib.sha256(b"img").digest()
    base = FaceMatch(1, 7, 1, None, None, sha, sha, "fp", "fp", 0, 0, 3, 3)
    assert rules.same_face(base) is True
    assert rules.same_face(FaceMatch(*_with(base, home_id=None))) is False
    unscanned = FaceMatch(*_with(base, home_sha=None))
    assert rules.same_face(unscanned) is None
    assert rules.same_face(unscanned, b"img") is True
    assert rules.same_face(unscanned, b"other") is False
    old = FaceMatch(*_with(base, pkg_sha=None, home_sha=None))
    assert rules.same_face(old) is True
    assert rules.same_face(FaceMatch(*_with(old, home_fingerprint="fp2"))) is False


def _with(m: FaceMatch, **kw) -> list:
    return [kw.get(f, getattr(m, f)) for f in FaceMatch._fields]


def test_decisions_apply_agreed_conflict_gone():
    homes = {
        1: HomeFace(101, 1, None, None, changed=False),
        2: HomeFace(102, 1, "correct", 50, changed=True),
        3: HomeFace(103, 1, "unsure", 51, changed=True),
    }
    es = [ev(100, face=1), ev(101, face=2), ev(102, face=3), ev(103, face=4)]
    d = rules.decide_faces(es, homes, {1: 1})
    assert {f: x.state for f, x in d.items()} == {
        1: "apply",
        2: "agreed",
        3: "conflict",
        4: "gone",
    }
    # a move to an identity no longer at home: nowhere to go
    d = rules.decide_faces([ev(100, "move", 1, 1, "2", "1")], homes, {1: 1, 2: None})
    assert d[1].state == "gone"
    d = rules.decide_faces([ev(100, "move", 1, 1, "2", "1")], homes, {1: 1, 2: 8})
    assert (d[1].state, d[1].p_ident, d[1].p_label) == ("apply", 8, None)


def test_reviews_kept_when_home_changed_them():
    es = [ev(100, "review", None, 1, "1", "0"), ev(101, "review", None, 2, "1", "0")]
    r = rules.decide_reviews(es, {1: 11, 2: 12}, changed={12})
    assert (r[1].state, r[2].state) == ("apply", "kept")
    assert rules.decide_reviews(es, {1: None, 2: 12}, set())[1].state == "gone"


def test_plan_maps_ids_and_keeps_counters_right():
    homes = {1: HomeFace(101, 21, "unsure", 40, False), 2: HomeFace(102, 21, None, None, False)}
    bs = [batch(11), batch(12, kind="undo", target=5)]
    es = [ev(100, "move", 2, 1, "2", "1"), ev(101, face=1, value="correct", b=12)]
    faces = rules.decide_faces(es, homes, {1: 21, 2: 22})
    plan = rules.plan_chunk(
        "pkgid", bs, es, faces, {}, {1: 21, 2: 22}, {2: 7}, {2: "bob"}, 10, {}, (300, 900)
    )
    assert [b[0] for b in plan.batches] == [301, 302]
    assert plan.batches[1][3:5] == ("do", None)  # undo of a pre-pack batch: a plain step
    assert [e[:2] for e in plan.events] == [(901, 301), (902, 302)]
    assert plan.events[0][5:9] == (102, 21, "22", "21")  # home face and identity ids
    assert sorted(plan.faces) == [(21, "correct", 902, 101), (22, None, None, 102)]
    assert sorted(plan.counters) == [(-1, 0, 21), (1, 0, 22)]
    assert [m[1:3] for m in plan.merged] == [(11, 301), (12, 302)]
