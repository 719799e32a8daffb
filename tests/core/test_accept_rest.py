"""Enter's "accept the rest": corrupt -> unusable, non-keeper copies -> duplicate, faces that
look like another person are left for the reviewer; one undo step; a reviewer's label stays."""

import pytest

from annotator.core.review import ops
from annotator.store import flags as flags_store


@pytest.fixture
def project(tmp_path, build_project):
    # m.a: faces 1..8, m.b: faces 9..11
    p = build_project(tmp_path / "p.db", {"m.a": 8, "m.b": 3})
    flags_store.replace_flags(
        p,
        [
            ("corrupt", [2], None, 1.0),
            ("exact_dup", [3, 4], 0, 2.0),  # 3 keeps, 4 is its copy
            ("near_dup", [3, 5], 2, 0.7),  # 5 another copy of 3
            ("cross_identity_dup", [6, 9], 1, 1.8),  # 6 copies 9 (m.b keeps)
            ("suspect_identity", [7], None, 0.9),
        ],
    )
    # groups: {3, 4, 5} keeper 3; {6, 9} keeper 9 (filed under m.b)
    flags_store.replace_dup_groups(p, [(3, 3, 1), (4, 3, 0), (5, 3, 0), (9, 9, 1), (6, 9, 0)])
    yield p
    p.close()


def labels(p):
    return dict(p.conn.execute("SELECT id, label FROM faces"))


def test_enter_labels_by_flags_and_leaves_another_person(project):
    before = labels(project)
    ch = ops.review_identity(project, 1, "alice")
    got = labels(project)
    assert got[1] == got[3] == got[8] == "correct"
    assert got[2] == "unusable"
    assert got[4] == got[5] == "duplicate"
    assert got[6] is None and got[7] is None  # left for the reviewer
    assert ch.left == {6: ops.ALSO_ELSEWHERE, 7: ops.LOOKS_LIKE_ANOTHER}
    assert ops.accept_summary(ch) == (
        "3 correct, 1 unusable, 2 duplicate; 2 left: 1 also filed under another identity,"
        " 1 looks like another person"
    )
    # faces were left: the identity is not reviewed yet
    assert project.conn.execute("SELECT reviewed FROM identities WHERE id = 1").fetchone()[0] == 0
    # one undo step restores all of it
    ops.undo(project, "alice")
    assert labels(project) == before


def test_enter_after_the_reviewer_labels_what_was_left_marks_reviewed(project):
    ops.review_identity(project, 1, "alice")
    ops.label_faces(project, [6], "wrong_identity", "alice")
    ops.label_faces(project, [7], "correct", "alice")
    ch = ops.review_identity(project, 1, "alice")
    assert ch.reviewed == {1: True} and not ch.left
    assert labels(project)[6] == "wrong_identity"


def test_enter_never_relabels_a_reviewers_label(project):
    ops.label_faces(project, [2], "correct", "alice")  # the reviewer says the face is fine
    ops.label_faces(project, [4], "wrong_identity", "alice")
    ops.review_identity(project, 1, "alice")
    got = labels(project)
    assert got[2] == "correct" and got[4] == "wrong_identity"


def test_copy_of_a_keeper_the_reviewer_rejected_is_left(project):
    ops.label_faces(project, [3], "unusable", "alice")
    ch = ops.review_identity(project, 1, "alice")
    got = labels(project)
    assert got[4] is None and got[5] is None
    assert ch.left[4] == ops.KEEPER_NOT_KEPT


def test_both_copies_of_a_cross_identity_group_are_left(project):
    """The scan's keeper (largest image, best rank) does not say which identity a picture
    filed under two people belongs to: Enter leaves the keeper's copy too."""
    ch = ops.review_identity(project, 2, "alice")  # m.b: 9 keeps the {6, 9} group
    assert ch.labels == {10: "correct", 11: "correct"}
    assert ch.left == {9: ops.ALSO_ELSEWHERE} and not ch.reviewed
    assert ops.accept_summary(ch) == "2 correct; 1 left: also filed under another identity"
    # G resolves the group (9 kept, 6 misfiled under m.a); then Enter finishes m.b
    ops.choose_keeper(project, [6, 9], 9, "alice")
    assert labels(project)[6] == "wrong_identity"
    ch = ops.review_identity(project, 2, "alice")
    assert ch.reviewed == {2: True} and not ch.left


def test_enter_on_an_unflagged_identity_is_unchanged(tmp_path, build_project):
    p = build_project(tmp_path / "q.db", {"m.a": 3})
    ch = ops.review_identity(p, 1, "alice")
    assert ch.labels == {1: "correct", 2: "correct", 3: "correct"}
    assert ch.reviewed == {1: True}
    assert ops.accept_summary(ch) == "3 correct"
    p.close()
