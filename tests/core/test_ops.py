"""Label operations: events are appended, state is materialised, undo/redo compensate."""

import pytest

from annotator.core.review import ops
from annotator.model import AnnotatorError
from annotator.store.db import open_project


@pytest.fixture
def project(tmp_path, build_project):
    p = build_project(tmp_path / "p.db", {"m.a": 3, "m.b": 3})
    yield p
    p.close()


def state(p):
    faces = dict(p.conn.execute("SELECT id, label FROM faces"))
    idents = {
        r[0]: r[1:]
        for r in p.conn.execute("SELECT id, face_count, labeled_count, reviewed FROM identities")
    }
    where = dict(p.conn.execute("SELECT id, identity_id FROM faces"))
    return faces, idents, where


def test_label_writes_event_with_reviewer_and_time(project):
    ch = ops.label_faces(project, [1, 2], "wrong_identity", "alice")
    assert ch.labels == {1: "wrong_identity", 2: "wrong_identity"}
    assert ch.identities == {1}
    rows = project.conn.execute(
        "SELECT e.face_id, e.kind, e.value, e.prev_value, r.name, e.at FROM events e"
        " JOIN reviewers r ON r.id = e.reviewer_id ORDER BY e.id"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (1, "label", "wrong_identity", None, "alice"),
        (2, "label", "wrong_identity", None, "alice"),
    ]
    assert rows[0][5].endswith("Z")
    faces, idents, _ = state(project)
    assert faces[1] == "wrong_identity" and faces[3] is None
    assert idents[1] == (3, 2, 0)


def test_unknown_label_is_an_error(project):
    with pytest.raises(AnnotatorError):
        ops.label_faces(project, [1], "great", "alice")


def test_review_identity_then_undo_restores_unlabeled(project):
    ops.label_faces(project, [2], "duplicate", "alice")
    before = state(project)
    ch = ops.review_identity(project, 1, "alice")
    assert ch.labels == {1: "correct", 3: "correct"} and ch.reviewed == {1: True}
    faces, idents, _ = state(project)
    assert faces[1] == faces[3] == "correct" and faces[2] == "duplicate"
    assert idents[1] == (3, 3, 1)
    ch = ops.undo(project, "alice")
    assert ch.labels == {1: None, 3: None} and ch.reviewed == {1: False}
    assert state(project) == before
    # history is append-only: the undo added events, deleted none
    n = project.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert n == 1 + 3 + 3


def test_undo_redo_many_steps_and_across_reopen(project, tmp_path):
    s0 = state(project)
    ops.label_faces(project, [1], "correct", "alice")
    s1 = state(project)
    ops.label_faces(project, [1, 4], "unsure", "alice")
    s2 = state(project)
    ops.undo(project, "alice")
    assert state(project) == s1
    ops.undo(project, "alice")
    assert state(project) == s0
    assert ops.undo(project, "alice") is None
    ops.redo(project, "alice")
    assert state(project) == s1
    path = project.path
    project.close()
    p2 = open_project(path)
    assert ops.can_redo(p2, "alice") == "label 2 faces unsure"
    ops.redo(p2, "alice")
    assert state(p2) == s2
    assert ops.redo(p2, "alice") is None
    # a new action clears the redo stack
    ops.undo(p2, "alice")
    ops.label_faces(p2, [5], "unusable", "alice")
    assert ops.redo(p2, "alice") is None
    p2.close()


def test_undo_is_per_reviewer(project):
    ops.label_faces(project, [1], "correct", "alice")
    ops.label_faces(project, [2], "correct", "bob")
    ops.undo(project, "alice")
    faces, _, _ = state(project)
    assert faces[1] is None and faces[2] == "correct"


def test_move_face_updates_counts_and_undoes(project):
    before = state(project)
    ch = ops.move_faces(project, [1], 2, "alice")
    assert ch.moved == {1: (1, 2)} and ch.labels == {}  # unreviewed where it lands
    faces, idents, where = state(project)
    assert where[1] == 2 and faces[1] is None
    assert idents[1] == (2, 0, 0) and idents[2] == (4, 0, 0)
    assert (
        project.conn.execute("SELECT orig_identity_id FROM faces WHERE id = 1").fetchone()[0] == 1
    )
    ops.undo(project, "alice")
    assert state(project) == before
    ops.redo(project, "alice")
    assert state(project)[2][1] == 2


def test_move_labeled_face_counts(project):
    ops.label_faces(project, [1], "wrong_identity", "alice")
    ch = ops.move_faces(project, [1], 2, "alice")
    assert ch.labels == {1: None}  # its old identity's label does not travel with it
    assert ops.move_summary(ch, "m.b") == "moved 1 face to m.b (unreviewed there)"
    faces, idents, _ = state(project)
    assert faces[1] is None and idents[1] == (2, 0, 0) and idents[2] == (4, 0, 0)
    ops.undo(project, "alice")
    faces, idents, _ = state(project)
    assert faces[1] == "wrong_identity"
    assert idents[1] == (3, 1, 0) and idents[2] == (3, 0, 0)


def test_a_label_file_move_can_say_the_face_is_correct_there(project):
    ch = ops.move_faces(project, [1], 2, "alice", label=ops.MOVED_LABEL)
    assert ch.labels == {1: "correct"}
    assert state(project)[1][2] == (4, 1, 0)


def test_move_marks_target_identity_unreviewed(project):
    ops.review_identity(project, 2, "alice")
    ops.move_faces(project, [1], 2, "alice")
    assert state(project)[1][2][2] == 0


def test_undo_of_a_move_restores_both_identities_review_state(project):
    ops.review_identity(project, 1, "alice")
    ops.review_identity(project, 2, "alice")
    before = state(project)
    ch = ops.move_faces(project, [1], 2, "alice")
    assert ch.reviewed == {2: False}
    assert state(project)[1][1][2] == 1 and state(project)[1][2][2] == 0
    ch = ops.undo(project, "alice")
    assert ch.reviewed == {2: True}
    assert state(project) == before  # the source stays reviewed, the target is reviewed again
    ops.redo(project, "alice")
    _, idents, where = state(project)
    assert where[1] == 2 and idents[1][2] == 1 and idents[2][2] == 0


def test_undo_leaves_another_reviewers_later_work_alone(project):
    ops.label_faces(project, [1, 2], "unsure", "alice")
    ops.label_faces(project, [1], "wrong_identity", "bob")  # bob re-judges face 1
    ch = ops.undo(project, "alice")
    assert ch.labels == {2: None}
    faces, _, _ = state(project)
    assert faces[1] == "wrong_identity" and faces[2] is None
    assert ops.can_redo(project, "alice") is not None
    ops.redo(project, "alice")  # face 1 is bob's, face 2 gets alice's label back
    faces, _, _ = state(project)
    assert faces[1] == "wrong_identity" and faces[2] == "unsure"
    # moves too: bob moved the face on, alice's undo of her move does not pull it back
    ops.move_faces(project, [4], 1, "alice")
    ops.move_faces(project, [4], 2, "bob")
    ops.undo(project, "alice")
    assert state(project)[2][4] == 2
    _, idents, _ = state(project)
    assert idents[1][0] == 3 and idents[2][0] == 3


def test_review_identity_keeps_a_label_given_meanwhile_by_another_reviewer(project, monkeypatch):
    from annotator.store import labels as labels_store

    read = labels_store.accept_facts

    def racing(p, ident):
        ids = read(p, ident)  # alice's view: faces 1-3 unlabeled ...
        ops.label_faces(project, [2], "wrong_identity", "bob")  # ... bob labels face 2 now
        return ids

    monkeypatch.setattr(labels_store, "accept_facts", racing)
    ch = ops.review_identity(project, 1, "alice")
    faces, idents, _ = state(project)
    assert faces[2] == "wrong_identity" and faces[1] == faces[3] == "correct"
    assert ch.labels == {1: "correct", 3: "correct"} and idents[1] == (3, 3, 1)


def test_choose_keeper(project):
    ch = ops.choose_keeper(project, [1, 2, 3], 2, "alice")
    assert ch.labels == {1: "duplicate", 2: "correct", 3: "duplicate"}
    with pytest.raises(AnnotatorError):
        ops.choose_keeper(project, [1, 2], 5, "alice")


def test_noop_leaves_no_undo_step(project):
    ops.label_faces(project, [1], "correct", "alice")
    ch = ops.label_faces(project, [1], "correct", "alice")
    assert not ch and ch.batch_id is None
    assert ops.can_undo(project, "alice") == "label 1 face correct"


def test_failed_operation_writes_nothing(project):
    with pytest.raises(AnnotatorError):
        ops.label_faces(project, [1, 99], "correct", "alice")
    assert project.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    assert project.conn.execute("SELECT count(*) FROM batches").fetchone()[0] == 0
    assert state(project)[0][1] is None


def test_notes_are_stored_on_the_faces_events(project):
    ops.label_faces(project, [1, 2], "wrong_identity", "alice", notes={2: "looks older"})
    ops.move_faces(project, [4], 1, "alice", notes={4: "same person as m.a"}, label=ops.MOVED_LABEL)
    rows = project.conn.execute("SELECT kind, face_id, note FROM events ORDER BY id").fetchall()
    assert rows == [
        ("label", 1, None),
        ("label", 2, "looks older"),
        ("move", 4, "same person as m.a"),
        ("label", 4, "same person as m.a"),
    ]
    # a face whose label does not change gets no event, so no note either
    ch = ops.label_faces(project, [2], "wrong_identity", "alice", notes={2: "again"})
    assert ch.batch_id is None
    # compensating events do not copy notes
    ops.undo(project, "alice")
    assert [r[0] for r in project.conn.execute("SELECT note FROM events WHERE id > 4")] == [
        None,
        None,
    ]


def test_moving_a_flagged_face_moves_its_flag_count(project):
    from annotator.store import identity_check

    a, b = (i for (i,) in project.conn.execute("SELECT id FROM identities ORDER BY id LIMIT 2"))
    f = project.conn.execute("SELECT id FROM faces WHERE identity_id = ? LIMIT 1", (a,)).fetchone()[
        0
    ]
    identity_check.replace_kind_flags(project, "suspect_identity", [(f, 0.5)])
    with project.tx() as c:  # what a scan's flag step sets
        c.execute("UPDATE identities SET flagged_count = 1 WHERE id = ?", (a,))
        c.execute("UPDATE identities SET flagged_count = 0 WHERE id = ?", (b,))
    count = lambda i: project.conn.execute(  # noqa: E731
        "SELECT flagged_count FROM identities WHERE id = ?", (i,)
    ).fetchone()[0]
    ops.move_faces(project, [f], b, "alice")
    assert (count(a), count(b)) == (0, 1)
    ops.undo(project, "alice")
    assert (count(a), count(b)) == (1, 0)
