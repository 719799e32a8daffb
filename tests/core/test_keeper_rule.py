"""core/review/keeper.py: the one keeper rule, each branch (labeled correct; one identity;
cross-identity with a clear vector margin; no vectors; no clear margin; looks like none)."""

from __future__ import annotations

import numpy as np

from annotator.core.review import keeper as K
from annotator.settings import DEFAULTS, Values

M = K.Member


def _vectors(rng, centre, n, spread=0.05):
    return centre + rng.normal(0, spread / np.sqrt(128), (n, 128))


def test_labeled_correct_wins_and_rejected_copies_are_never_proposed():
    members = [M(1, 10, None, True), M(2, 20, "correct", False)]
    assert K.propose(members) == K.Proposal(2, "labeled correct")
    both = [M(1, 10, "correct", True), M(2, 20, "correct", False)]
    assert K.propose(both).face is None and "different identities" in K.propose(both).why
    gone = [M(1, 10, "duplicate", True), M(2, 10, "unusable", False)]
    assert K.propose(gone).face is None


def test_one_identity_keeps_the_scans_keeper():
    members = [M(3, 10, None, False), M(4, 10, None, True)]
    assert K.propose(members) == K.Proposal(4, "largest image, best rank")
    # a cross group whose other copies are labeled: the remaining identity's copy
    mixed = [M(3, 10, "wrong_identity", True), M(4, 20, None, False)]
    assert K.propose(mixed).face == 4


def test_cross_identity_without_vectors_proposes_nothing_and_says_why():
    p = K.propose([M(1, 10, None, True), M(2, 20, None, False)])
    assert p.face is None and "no face vectors" in p.why


def test_cross_identity_with_vectors_proposes_the_nearest_identity_by_a_clear_margin():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 128), rng.normal(0, 1, 128)
    a *= 0.5 / np.linalg.norm(a)
    b = a + (b / np.linalg.norm(b)) * 0.5  # identities 0.5 apart
    photo = a + rng.normal(0, 0.2 / np.sqrt(128), 128)  # a photo of A's person
    faces = np.arange(1, 13)
    idents = np.array([10] * 5 + [20] * 5 + [10, 20])  # faces 11, 12: the two copies
    vecs = np.vstack([_vectors(rng, a, 5), _vectors(rng, b, 5), photo, photo])
    # the scan's keeper is the copy under B (largest): the rule still proposes A's copy
    members = [M(12, 20, None, True), M(11, 10, None, False)]
    dist = K.photo_distances(members, faces, idents, vecs)
    assert dist[10] < 0.3 < dist[20]
    got = K.propose(members, dist)
    assert got.face == 11 and "looks like its identity" in got.why
    # the same photo halfway between the two centres: not sure, nothing proposed
    mid = (a + b) / 2
    vecs[10] = vecs[11] = mid
    got = K.propose(members, K.photo_distances(members, faces, idents, vecs))
    assert got.face is None and "look alike" in got.why
    # a photo of someone else entirely: not sure either
    vecs[10] = vecs[11] = a + 3 * (b - a)
    got = K.propose(members, K.photo_distances(members, faces, idents, vecs))
    assert got.face is None and "none of its identities" in got.why


def test_an_identity_with_too_few_faces_has_no_centre():
    # identity 20's only face is the copy itself: no centre; identity 10's one other photo is
    # one by default (keeper_min_faces 1: at 858 LFW people, 2 left a fifth of the copies
    # undecided), none when 2 are asked for
    faces = np.array([1, 2, 3])
    idents = np.array([10, 10, 20])
    vecs = np.zeros((3, 128))
    members = [M(3, 20, None, True), M(1, 10, None, False)]
    assert K.photo_distances(members, faces, idents, vecs) == {10: 0.0}
    assert K.photo_distances(members, faces, idents, vecs, min_faces=2) == {}
    assert K.propose(members, {}).face is None


def test_two_other_faces_make_a_centre():
    # a person with three photos, one of them also filed under a large identity: the two
    # other photos are enough to tell whose photo it is
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 128), rng.normal(0, 1, 128)
    a, b = 0.4 * a / np.linalg.norm(a), 0.4 * b / np.linalg.norm(b)  # centres 0.4-0.6 apart
    faces = np.arange(1, 10)
    idents = np.array([10, 10, 10, 20, 20, 20, 20, 20, 20])
    vecs = np.vstack([_vectors(rng, a, 3), _vectors(rng, b, 6)])
    vecs[3] = vecs[0]  # face 4 (under 20) is a copy of face 1 (a photo of 10's person)
    members = [M(1, 10, None, False), M(4, 20, None, True)]
    dist = K.photo_distances(members, faces, idents, vecs)
    assert set(dist) == {10, 20} and dist[10] < dist[20]
    assert K.propose(members, dist).face == 1
    # one other face is enough by default (its photo compared with the copy) ...
    members = [M(1, 10, None, False), M(2, 10, None, False), M(4, 20, None, True)]
    dist = K.photo_distances(members, faces, idents, vecs)
    assert set(dist) == {10, 20} and K.propose(members, dist).face in (1, 2)
    # ... not when the project asks for 2: nothing is proposed, and why
    v2 = Values({"keeper_min_faces": 2})
    dist = K.photo_distances(members, faces, idents, vecs, min_faces=2)
    got = K.propose(members, dist, v2)
    assert (
        10 not in dist
        and got.face is None
        and "needs 2 embedded faces other than the copies" in got.why
    )


def test_the_thresholds_are_settings_with_the_rules_defaults():
    assert (K.MARGIN, K.SAME_PERSON, K.MIN_CENTRE_FACES) == (
        DEFAULTS.keeper_margin, DEFAULTS.keeper_same_person, DEFAULTS.keeper_min_faces
    )  # fmt: skip
    members = [M(1, 10, None, True), M(2, 20, None, False)]
    dist = {10: 0.35, 20: 0.5}
    assert K.propose(members, dist).face == 1
    assert K.propose(members, dist, Values({"keeper_margin": 0.2})).face is None
    got = K.propose(members, dist, Values({"keeper_same_person": 0.3}))
    assert got.face is None and "none of its identities" in got.why
    faces, idents = np.arange(1, 6), np.array([10, 10, 10, 20, 20])
    vecs = np.zeros((5, 128))
    members = [M(1, 10, None, True), M(4, 20, None, False)]
    assert set(K.photo_distances(members, faces, idents, vecs)) == {10, 20}  # 20: one other
    assert set(K.photo_distances(members, faces, idents, vecs, min_faces=2)) == {10}
