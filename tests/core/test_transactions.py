"""One user action = one transaction: a failure injected between the steps of a combined
operation leaves nothing half-done (the project is exactly as before the action)."""

from __future__ import annotations

import pytest

from annotator.core import scan
from annotator.core.review import ops, qa
from annotator.core.review import takedown as takedown_op
from annotator.store import flags as flags_store
from annotator.store import hashes as hashes_store
from annotator.store import labels as labels_store
from annotator.store import qa as qa_store


class Boom(Exception):
    pass


def boom(*_a, **_k):
    raise Boom


def snapshot(p):
    """Every row of every table (the whole observable state)."""
    tables = [
        r[0]
        for r in p.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    return {t: sorted(map(tuple, p.conn.execute(f"SELECT * FROM {t}"))) for t in tables}


@pytest.fixture
def labeled(make_project):
    """40 faces in 4 identities; alice labeled 1-30 (faces 21-30 wrong_identity); a QA pass for
    bob with verdicts that disagree."""
    p = make_project([10, 10, 10, 10])
    ops.label_faces(p, range(1, 21), "correct", "alice")
    ops.label_faces(p, range(21, 31), "wrong_identity", "alice")
    res = qa.start_pass(p, "bob", count=10, seed=3)
    for it in qa.next_items(p, res.pass_id):
        orig = p.conn.execute("SELECT label FROM faces WHERE id = ?", (it.face_id,)).fetchone()[0]
        other = "unsure" if orig == "correct" else "correct"
        qa.record_verdict(p, res.pass_id, it.face_id, other, "bob")
    p.pass_id = res.pass_id  # type: ignore[attr-defined]
    return p


@pytest.mark.parametrize("confirming", [False, True])
def test_adjudicate_is_one_transaction(labeled, monkeypatch, confirming):
    p = labeled
    face = qa.adjudication_queue(p, p.pass_id)[0].face_id
    cur = p.conn.execute("SELECT label FROM faces WHERE id = ?", (face,)).fetchone()[0]
    # confirming: the decision keeps the label (a separate confirming record is written);
    # otherwise the label changes (an adjudicate event) — either way the mark comes last
    label = cur if confirming else "unusable"
    before = snapshot(p)
    monkeypatch.setattr(qa_store, "set_adjudicated", boom)
    with pytest.raises(Boom):
        qa.adjudicate(p, p.pass_id, face, label, "carol")  # carol: a new reviewer row too
    assert snapshot(p) == before
    monkeypatch.undo()
    qa.adjudicate(p, p.pass_id, face, label, "carol")
    after = snapshot(p)
    assert after != before
    assert p.conn.execute(
        "SELECT adjudicated FROM qa_items WHERE face_id = ?", (face,)
    ).fetchone() == (label,)


def test_label_step_is_one_transaction(labeled, monkeypatch):
    p = labeled
    before = snapshot(p)
    calls = []
    real = labels_store.apply_labels

    def second_fails(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise Boom
        return real(*a, **k)

    monkeypatch.setattr(labels_store, "apply_labels", second_fails)
    with pytest.raises(Boom):
        ops.label_faces(p, [31, 32, 33], "duplicate", "dave")
    assert snapshot(p) == before


def test_undo_is_one_transaction(labeled, monkeypatch):
    p = labeled
    ops.label_faces(p, [31, 32], "duplicate", "alice")
    # bob relabels both: alice's undo finds nothing to revert but must still move her stack
    ops.label_faces(p, [31, 32], "unsure", "bob")
    before = snapshot(p)
    monkeypatch.setattr(labels_store, "new_batch", boom)
    with pytest.raises(Boom):
        ops.undo(p, "alice")
    assert snapshot(p) == before
    monkeypatch.undo()
    assert ops.undo(p, "alice") is not None
    assert ops.can_redo(p, "alice") == "label 2 faces duplicate"


def test_verdict_file_is_one_transaction(make_project, monkeypatch, tmp_path):
    p = make_project([10, 10])
    ops.label_faces(p, range(1, 21), "correct", "alice")
    res = qa.start_pass(p, "bob", count=4, seed=3)
    faces = [it.face_id for it in qa.next_items(p, res.pass_id)]
    f = tmp_path / "verdicts.tsv"
    f.write_text("".join(f"{fid}\tunsure\n" for fid in faces))
    before = snapshot(p)
    real = qa_store.record_verdict
    calls = []

    def third_fails(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise Boom
        return real(*a, **k)

    monkeypatch.setattr(qa_store, "record_verdict", third_fails)
    with pytest.raises(Boom):
        qa.verdicts_from_file(p, res.pass_id, f, "bob")
    assert snapshot(p) == before
    monkeypatch.undo()
    assert qa.verdicts_from_file(p, res.pass_id, f, "bob").recorded == 4


def test_start_pass_is_one_transaction(labeled, monkeypatch):
    p = labeled
    before = snapshot(p)
    monkeypatch.setattr(qa_store, "create_pass", boom)
    with pytest.raises(Boom):
        qa.start_pass(p, "erin", count=5, seed=1)  # erin's reviewer row is not left behind
    assert snapshot(p) == before


def test_takedown_is_one_transaction(labeled, monkeypatch):
    p = labeled
    before = snapshot(p)
    monkeypatch.setattr(takedown_op, "recount_suspicion", boom)  # the step after the removal
    with pytest.raises(Boom):
        takedown_op.takedown(p, "m.4", "alice", "request", force_unscanned=True)
    assert snapshot(p) == before
    monkeypatch.undo()
    takedown_op.takedown(p, "m.4", "alice", "request", force_unscanned=True)
    assert p.conn.execute("SELECT count(*) FROM identities WHERE key = 'm.4'").fetchone() == (0,)


def test_flag_step_writes_in_short_batches_and_a_failure_is_finished_by_the_next_scan(
    make_project, monkeypatch
):
    """The flag step computes outside any transaction and writes in short batches (a
    reviewer's label never waits for the whole phase). A failure between batches leaves the
    flags marked 'updating' (an export waits); the next scan brings them to 'ready' and to
    exactly what a clean computation gives."""
    p = make_project([3, 3])
    # faces 1 and 4: byte-identical copies in two identities
    phash = {1: 1, 2: 0xF0F0, 3: 0xF0F1, 4: 1, 5: 1 << 40, 6: 1 << 50}
    sha = {f: bytes([1 if f in (1, 4) else f]) * 32 for f in phash}
    hashes_store.insert_hashes(
        p, [(f, sha[f], h, 0, 112, 112, 0, 100.0, None) for f, h in phash.items()]
    )
    scan.update_flags(p)
    assert flags_store.counts_by_kind(p)["cross_identity_dup"] == 1
    assert flags_store.flags_state(p) == "ready"
    # the project loses face 4's hash: a recompute drops the cross-identity group
    with p.tx() as c:
        c.execute("DELETE FROM face_hashes WHERE face_id = 4")
    monkeypatch.setattr(flags_store, "set_suspicion", boom)
    with pytest.raises(Boom):
        scan.update_flags(p)
    assert flags_store.flags_state(p) == "updating"
    monkeypatch.undo()
    scan.update_flags(p)
    assert flags_store.flags_state(p) == "ready"
    after = snapshot(p)
    with p.tx() as c:  # a clean computation from scratch gives the same tables
        c.execute("DELETE FROM flags")
        c.execute("DELETE FROM dup_groups")
    scan.update_flags(p)
    clean = snapshot(p)
    for table in ("dup_groups", "flag_faces"):
        assert after[table] == clean[table]
    assert [r[1:4] for r in after["flags"]] == [r[1:4] for r in clean["flags"]]
    assert after["identities"] == clean["identities"]
