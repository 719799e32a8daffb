"""QA passes: stratified seeded sample without self-review, blind items, verdict events,
kappa / Wilson figures against hand computations, report, adjudication, identity status."""

import dataclasses
import math
import shutil

import numpy as np
import pytest

from annotator.core.review import ops, qa, statistics
from annotator.model import LABELS, AnnotatorError
from annotator.store import faces as faces_store
from annotator.store.db import open_project


def build(path, n_ident=4, per=25):
    """Identities m.1..m.<n_ident> with ``per`` faces each (store API)."""
    p = open_project(path, create=True)
    src = faces_store.add_source(p, "/x/faces.tsv", "msceleb", 1, 0.0, "f")
    with p.tx():
        ids = faces_store.create_identities(p, [f"m.{i}" for i in range(1, n_ident + 1)])
        rows = [
            (ids[f"m.{i}"], src.id, (i - 1) * per + k + 1) + (None,) * 11
            for i in range(1, n_ident + 1)
            for k in range(per)
        ]
        faces_store.insert_faces(p, rows)
        faces_store.refresh_face_counts(p, ids.values())
    return p


@pytest.fixture
def project(tmp_path):
    """100 faces: alice labels 1-60 (50 correct, 6 wrong, 4 duplicate), bob 61-90 (27 correct,
    3 unusable), carol 91-95 (unsure); 96-100 unlabeled."""
    p = build(tmp_path / "p.db")
    ops.label_faces(p, range(1, 51), "correct", "alice")
    ops.label_faces(p, range(51, 57), "wrong_identity", "alice")
    ops.label_faces(p, range(57, 61), "duplicate", "alice")
    ops.label_faces(p, range(61, 88), "correct", "bob")
    ops.label_faces(p, range(88, 91), "unusable", "bob")
    ops.label_faces(p, range(91, 96), "unsure", "carol")
    yield p
    p.close()


def test_allocate_pinned():
    # proportional, floor one per stratum: raw = 5, 3, 1.5, 0.5
    assert qa.allocate(
        [50, 30, 15, 5], ["correct", "correct", "wrong_identity", "duplicate"], 10
    ) == [5, 3, 1, 1]
    # fewer items than strata: one for the largest stratum of each label kind
    assert qa.allocate(
        [50, 30, 15, 5], ["correct", "correct", "wrong_identity", "duplicate"], 3
    ) == [1, 0, 1, 1]
    # and never fewer than the number of label kinds
    assert qa.allocate(
        [50, 30, 15, 5], ["correct", "correct", "wrong_identity", "duplicate"], 1
    ) == [1, 0, 1, 1]
    # capped by stratum sizes, the rest goes where the remainders are largest
    assert qa.allocate([2, 100], ["unsure", "correct"], 60) == [1, 59]  # raw 1.18, 58.82
    assert qa.allocate([3, 3], ["a", "b"], 100) == [3, 3]
    assert sum(qa.allocate([7, 11, 13], ["correct", "unsure", "correct"], 9)) == 9


def test_sample_is_stratified_and_excludes_self_review(project):
    res = qa.start_pass(project, "carol", fraction=0.2, seed=7)
    # eligible: 90 faces of alice and bob (carol's own 5 are excluded)
    assert res.eligible == 90 and res.items == 18
    strata = {(s["reviewer"], s["label"]): (s["size"], s["sampled"]) for s in res.strata}
    assert strata == {
        ("alice", "correct"): (50, 10),
        ("alice", "wrong_identity"): (6, 1),
        ("alice", "duplicate"): (4, 1),
        ("bob", "correct"): (27, 5),
        ("bob", "unusable"): (3, 1),
    }
    rows = project.conn.execute(
        "SELECT q.face_id, q.orig_label, r.name FROM qa_items q JOIN reviewers r"
        " ON r.id = q.orig_reviewer_id WHERE pass_id = ? ORDER BY position",
        (res.pass_id,),
    ).fetchall()
    assert len(rows) == 18 and all(name != "carol" for _f, _l, name in rows)
    assert all(f <= 90 for f, _l, _n in rows)
    # shuffled: not grouped by stratum
    labels_in_order = [lab for _f, lab, _n in rows]
    assert labels_in_order != sorted(labels_in_order, key=lambda x: (x != "correct", x))
    # alice as QA reviewer: only bob's and carol's labels are eligible
    res2 = qa.start_pass(project, "alice", count=5, seed=1)
    assert res2.eligible == 35 - 6  # bob's 30 + carol's 5, minus the 6 of bob's carol just drew
    names = {
        r[0]
        for r in project.conn.execute(
            "SELECT r.name FROM qa_items q JOIN reviewers r ON r.id = q.orig_reviewer_id"
            " WHERE pass_id = ?",
            (res2.pass_id,),
        )
    }
    assert "alice" not in names
    kinds = {s["label"] for s in res2.strata if s["sampled"]}
    assert kinds == {"correct", "unusable", "unsure"}


def test_sample_excludes_faces_the_qa_reviewer_labeled_before_someone_else(project):
    # carol judged faces 1-3 first; alice then relabeled them (their current label is alice's)
    ops.label_faces(project, [1, 2, 3], "wrong_identity", "carol")
    ops.label_faces(project, [1, 2, 3], "correct", "alice")
    ops.move_faces(project, [4], 2, "carol")  # carol also moved face 4 ...
    ops.label_faces(project, [4], "duplicate", "alice")  # ... which alice labeled afterwards
    res = qa.start_pass(project, "carol", fraction=1.0, seed=3)
    drawn = {
        r[0]
        for r in project.conn.execute(
            "SELECT face_id FROM qa_items WHERE pass_id = ?", (res.pass_id,)
        )
    }
    assert res.eligible == 90 - 4 and drawn.isdisjoint({1, 2, 3, 4})
    assert len(qa.start_pass(project, "dave", fraction=1.0, seed=3).strata) > 0


def test_sample_is_reproducible_with_a_seed(project, tmp_path):
    copy = tmp_path / "copy.db"
    project.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(project.path, copy)
    p2 = open_project(copy)

    def items(p, pid):
        return p.conn.execute(
            "SELECT face_id, position FROM qa_items WHERE pass_id = ? ORDER BY position", (pid,)
        ).fetchall()

    a = qa.start_pass(project, "carol", count=12, seed=42)
    b = qa.start_pass(p2, "carol", count=12, seed=42)
    assert items(project, a.pass_id) == items(p2, b.pass_id)
    c = qa.start_pass(p2, "dave", count=12, seed=43)
    assert items(p2, c.pass_id) != items(project, a.pass_id)
    p2.close()
    # a second pass never re-checks a face already checked in the same state
    d = qa.start_pass(project, "carol", count=12, seed=42)
    assert not set(items(project, a.pass_id)) & set(items(project, d.pass_id))
    assert {f for f, _ in items(project, a.pass_id)}.isdisjoint(
        f for f, _ in items(project, d.pass_id)
    )


def test_start_pass_arguments(project, tmp_path):
    with pytest.raises(AnnotatorError):
        qa.start_pass(project, "carol", fraction=0.1, count=3)
    with pytest.raises(AnnotatorError):
        qa.start_pass(project, "carol", fraction=1.5)
    with pytest.raises(AnnotatorError):
        qa.start_pass(project, "carol", count=0)
    empty = build(tmp_path / "e.db")
    with pytest.raises(AnnotatorError, match="nothing to check"):
        qa.start_pass(empty, "carol")
    empty.close()


def test_blind_items_and_verdict_event(project):
    res = qa.start_pass(project, "carol", count=8, seed=3)
    its = qa.next_items(project, res.pass_id)
    assert len(its) == 8 and [i.position for i in its] == list(range(8))
    fields = {f.name for f in dataclasses.fields(qa.BlindItem)}
    assert not fields & {"orig_label", "label", "orig_reviewer", "orig_reviewer_id"}
    assert its[0].origin == f"faces.tsv:{its[0].face_id}"
    f = its[0].face_id
    before = project.conn.execute(
        "SELECT label, label_event_id FROM faces WHERE id = ?", (f,)
    ).fetchone()
    orig_event = project.conn.execute("SELECT * FROM events WHERE id = ?", (before[1],)).fetchone()
    other = "unsure" if before[0] != "unsure" else "correct"
    ev = qa.record_verdict(project, res.pass_id, f, other, "carol")
    # the verdict is its own event; the label and the original event are untouched
    assert (
        project.conn.execute(
            "SELECT label, label_event_id FROM faces WHERE id = ?", (f,)
        ).fetchone()
        == before
    )
    assert (
        project.conn.execute("SELECT * FROM events WHERE id = ?", (before[1],)).fetchone()
        == orig_event
    )
    kind, value, prev, who = project.conn.execute(
        "SELECT e.kind, e.value, e.prev_value, r.name FROM events e JOIN reviewers r"
        " ON r.id = e.reviewer_id WHERE e.id = ?",
        (ev,),
    ).fetchone()
    assert (kind, value, prev, who) == ("qa", other, None, "carol")
    assert project.conn.execute(
        "SELECT verdict, verdict_event_id FROM qa_items WHERE pass_id = ? AND face_id = ?",
        (res.pass_id, f),
    ).fetchone() == (other, ev)
    # not part of carol's undo stack (carol labeled 91-95 earlier; that stays the last step)
    assert ops.can_undo(project, "carol") == "label 5 faces unsure"
    # done items drop out of next_items
    assert [i.face_id for i in qa.next_items(project, res.pass_id)] == [i.face_id for i in its[1:]]
    assert len(qa.next_items(project, res.pass_id, include_done=True)) == 8
    with pytest.raises(AnnotatorError, match="belongs to"):
        qa.record_verdict(project, res.pass_id, f, "correct", "bob")
    with pytest.raises(AnnotatorError, match="not in QA pass"):
        qa.record_verdict(project, res.pass_id, 100, "correct", "carol")
    with pytest.raises(AnnotatorError):
        qa.record_verdict(project, 99, f, "correct", "carol")


def test_kappa_hand_computed():
    # rows = original, cols = QA; n = 50
    #   [[20, 5], [10, 15]] -> p = [[.4, .1], [.2, .3]], rows .5 .5, cols .6 .4
    #   po = .7, pe = .5*.6 + .5*.4 = .5, kappa = (.7 - .5) / (1 - .5) = .4
    #   A = .4 (1 - 1.1 * .6)^2 + .3 (1 - .9 * .6)^2 = .04624 + .06348 = .10972
    #   B = .6^2 (.1 (.6 + .5)^2 + .2 (.4 + .5)^2) = .36 * .283 = .10188
    #   C = (.4 - .5 * .6)^2 = .01
    #   var = (A + B - C) / (50 * .5^2) = .2016 / 12.5 = .016128, SE = .12699606
    #   CI = .4 -/+ 1.959964 * .12699606 = .4 -/+ .24890771 = (.151092, .648908)
    k = statistics.cohen_kappa(np.array([[20, 5], [10, 15]]))
    assert k.kappa == pytest.approx(0.4)
    assert k.se == pytest.approx(math.sqrt(0.016128), abs=1e-9)
    assert k.ci[0] == pytest.approx(0.151092, abs=1e-6)
    assert k.ci[1] == pytest.approx(0.648908, abs=1e-6)
    # perfect agreement on two categories: kappa 1, SE 0
    k = statistics.cohen_kappa(np.array([[3, 0], [0, 7]]))
    assert k.kappa == pytest.approx(1.0) and k.se == pytest.approx(0.0)
    # one category only: undefined
    assert statistics.cohen_kappa(np.array([[5, 0], [0, 0]])).kappa is None
    assert statistics.cohen_kappa(np.zeros((2, 2))).kappa is None


def test_wilson_hand_computed():
    # 3 / 20, z = 1.96: den = 1 + 3.8416/20 = 1.19208, centre = (.15 + .09604) / den = .206396,
    # half = 1.96 / den * sqrt(.15*.85/20 + 3.8416/1600) = .154027 -> (.05237, .36042)
    lo, hi = statistics.wilson(3, 20)
    assert lo == pytest.approx(0.05237, abs=2e-5) and hi == pytest.approx(0.36042, abs=2e-5)
    lo, hi = statistics.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.27753, abs=2e-5)
    assert statistics.wilson(0, 0) is None


def test_error_rate_is_weighted_by_stratum_size(project):
    # dave: 10 items over 6 strata -> alice correct 4 of 50, every other stratum 1 (pinned by
    # allocate); he agrees with every `correct` label and with no other one
    res = qa.start_pass(project, "dave", count=10, seed=2)
    sampled = {(s["reviewer"], s["label"]): s["sampled"] for s in res.strata}
    assert sampled == {
        ("alice", "correct"): 4,
        ("alice", "wrong_identity"): 1,
        ("alice", "duplicate"): 1,
        ("bob", "correct"): 2,
        ("bob", "unusable"): 1,
        ("carol", "unsure"): 1,
    }
    for it in qa.next_items(project, res.pass_id):
        qa.record_verdict(project, res.pass_id, it.face_id, "correct", "dave")
    ov = qa.report(project, res.pass_id)["overall"]
    # 4 of the 10 items are errors, but they stand for 6 + 4 + 3 + 5 = 18 of the 95 labels
    assert ov["error_rate"] == 0.4
    assert ov["error_rate_weighted"] == pytest.approx(18 / 95, abs=1e-6)
    # Kish: weights 12.5 (x4), 6, 4, 13.5 (x2), 3, 5 -> n_eff = 95^2 / 1075.5 = 8.3914;
    # Wilson at p = .189474: den = 1.457783, centre = .286987, half = .240281
    lo, hi = ov["error_rate_weighted_ci95"]
    assert lo == pytest.approx(0.046706, abs=2e-5) and hi == pytest.approx(0.527268, abs=2e-5)
    per = qa.report(project, res.pass_id)["per_reviewer"]
    assert per["alice"]["error_rate_weighted"] == pytest.approx(10 / 60, abs=1e-6)
    assert per["bob"]["error_rate_weighted"] == pytest.approx(3 / 30, abs=1e-6)


def test_report_small_case_and_adjudication(project):
    res = qa.start_pass(project, "carol", count=10, seed=5)
    items = project.conn.execute(
        "SELECT q.face_id, q.orig_label, r.name FROM qa_items q JOIN reviewers r"
        " ON r.id = q.orig_reviewer_id WHERE pass_id = ? ORDER BY position",
        (res.pass_id,),
    ).fetchall()
    # carol agrees on everything except the first two of alice's 'correct' faces
    flipped = [f for f, lab, who in items if who == "alice" and lab == "correct"][:2]
    for f, lab, _who in items:
        qa.record_verdict(
            project, res.pass_id, f, "wrong_identity" if f in flipped else lab, "carol"
        )
    rep = qa.report(project, res.pass_id)
    ov = rep["overall"]
    assert rep["items_checked"] == 10 and ov["items"] == 10 and ov["agree"] == 8
    assert ov["percent_agreement"] == 80.0
    assert ov["confusion"]["correct"]["wrong_identity"] == 2
    # hand computation from the confusion matrix
    t = np.array([[ov["confusion"][a][b] for b in LABELS] for a in LABELS])
    p = t / 10
    pe = float(p.sum(1) @ p.sum(0))
    assert ov["kappa"] == pytest.approx((0.8 - pe) / (1 - pe), abs=1e-6)
    assert ov["errors"] == 2 and ov["error_rate"] == 0.2
    lo, hi = statistics.wilson(2, 10)
    assert ov["error_rate_ci95"] == [pytest.approx(lo, abs=1e-6), pytest.approx(hi, abs=1e-6)]
    per = rep["per_reviewer"]
    n_alice = sum(1 for _f, _l, w in items if w == "alice")
    assert per["alice"]["items"] == n_alice and per["alice"]["agree"] == n_alice - 2
    assert per["bob"]["percent_agreement"] == 100.0 and per["bob"]["errors"] == 0
    assert rep["adjudication_pending"] == 2

    queue = qa.adjudication_queue(project)
    assert sorted(d.face_id for d in queue) == sorted(flipped)
    d = queue[0]
    assert (d.orig_reviewer, d.orig_label, d.qa_reviewer, d.verdict) == (
        "alice",
        "correct",
        "carol",
        "wrong_identity",
    )
    status = qa.identity_qa_status(project)
    bad_idents = {(f - 1) // 25 + 1 for f in flipped}
    assert all(status[i] is False for i in bad_idents)
    # adjudicator sides with QA for one (the label changes) and with alice for the other
    qa.adjudicate(project, res.pass_id, flipped[0], "wrong_identity", "dave")
    qa.adjudicate(project, res.pass_id, flipped[1], "correct", "dave")
    labs = dict(project.conn.execute("SELECT id, label FROM faces"))
    assert labs[flipped[0]] == "wrong_identity" and labs[flipped[1]] == "correct"
    evs = project.conn.execute(
        "SELECT face_id, value, prev_value FROM events WHERE kind = 'adjudicate' ORDER BY id"
    ).fetchall()
    assert evs == [(flipped[0], "wrong_identity", "correct"), (flipped[1], "correct", "correct")]
    assert qa.adjudication_queue(project) == []
    # final: the adjudicator's Ctrl+Z does not take the decision back (the export trusts it)
    assert ops.can_undo(project, "dave") is None and ops.undo(project, "dave") is None
    assert dict(project.conn.execute("SELECT id, label FROM faces"))[flipped[0]] == "wrong_identity"
    rep = qa.report(project, res.pass_id)
    assert rep["adjudication_pending"] == 0
    assert rep["overall"]["errors"] == 1  # alice was right about one of the two
    status = qa.identity_qa_status(project)
    sampled_idents = {(f - 1) // 25 + 1 for f, _l, _w in items}
    assert set(status) == sampled_idents and all(status.values())
    with pytest.raises(AnnotatorError, match="no QA verdict"):
        res2 = qa.start_pass(project, "erin", count=3, seed=1)
        f2 = qa.next_items(project, res2.pass_id)[0].face_id
        qa.adjudicate(project, res2.pass_id, f2, "correct", "dave")


def test_identity_status_requires_a_verdict(project):
    res = qa.start_pass(project, "carol", count=6, seed=9)
    its = qa.next_items(project, res.pass_id)
    status = qa.identity_qa_status(project)
    assert status and not any(status.values())  # nothing checked yet
    first = its[0]
    lab = project.conn.execute("SELECT label FROM faces WHERE id = ?", (first.face_id,)).fetchone()[
        0
    ]
    qa.record_verdict(project, res.pass_id, first.face_id, lab, "carol")
    only = [i for i in its if i.identity_id == first.identity_id]
    assert qa.identity_qa_status(project)[first.identity_id] is (len(only) == 1)


def _labeled_project(path, n):
    """n faces labeled by alice (one batch; every tenth `wrong_identity`), written with SQL."""
    p = build(path, n_ident=1, per=0)
    with p.tx() as c:
        c.execute("INSERT INTO reviewers(id, name, created_at) VALUES (1, 'alice', 'now')")
        c.execute(
            "INSERT INTO batches(id, reviewer_id, at, kind, description)"
            " VALUES (1, 1, 'now', 'do', 'x')"
        )
        c.executemany(
            "INSERT INTO faces(id, identity_id, orig_identity_id, source_id, record, label,"
            " label_event_id) VALUES (?, 1, 1, 1, ?, ?, ?)",
            [(f, f, "wrong_identity" if f % 10 == 0 else "correct", f) for f in range(1, n + 1)],
        )
        c.executemany(
            "INSERT INTO events(id, batch_id, reviewer_id, at, kind, face_id, identity_id, value)"
            " VALUES (?, 1, 1, 'now', 'label', ?, 1, 'x')",
            [(f, f) for f in range(1, n + 1)],
        )
    return p


def test_sampling_memory_per_candidate_is_small(tmp_path):
    """A clean list of 5M faces makes 5M candidates: they are arrays, not an object each."""
    import tracemalloc

    peaks = []
    for n in (15_000, 45_000):
        p = _labeled_project(tmp_path / f"m{n}.db", n)
        tracemalloc.start()
        res = qa.start_pass(p, "bob", count=50, seed=1)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert res.eligible == n and res.items == 50
        p.close()
    per_face = (peaks[1] - peaks[0]) / 30_000
    assert per_face < 80, per_face  # an object per face costs ~170 bytes
