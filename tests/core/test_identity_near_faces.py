"""Look-alikes told by their nearest faces (core/identity/rule.py): a face a little nearer
another identity's centre than its own — too little for the centres alone to tell — is that
identity's person when its nearest faces are that identity's; not when they are its own
identity's, and not when neither has faces near it. An incremental refresh, the full refresh
and the exact rule agree when only the other identity's faces change."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotator.core.identity import identity_check as ic
from annotator.core.identity import rule
from annotator.core.review import ops
from annotator.store import browse
from annotator.store import identity_check as ic_store
from annotator.store.db import open_project
from tests.core.identity_project import (
    around,
    copy_of,
    embed,
    faces_by_identity,
    orthonormal,
    refreshed,
    scanned_demo,
    unit,
)

# A's faces: fewer than rule.OUTLIER_FACES (in these scenes every face of A but f is exactly
# as far from its centre: f is an outlier of any z, which in a larger identity flags it)
N_A = 16


def _scene(rng, n_a: int, n_b: int, near: str, r: float = 0.2, at=(0.27, 0.41)):
    """Identity A around 0, B around 0.5 u; A's face 0 (``f``, at ``at`` in the plane of u and
    a w across it) 0.491 from A's centre (out of its mean) and 0.470 from B's by default;
    ``near``: "b" (three of B's faces ``r`` from f, as photos of one event), "a" (three of
    A's), "" (none); three faces opposite them keep each centre."""
    u, w = orthonormal(rng, 2)
    ca, cb = np.zeros(128), 0.5 * u
    f = at[0] * u + at[1] * w
    va = np.vstack([[f], around(rng, ca, n_a - 1)])
    vb = around(rng, cb, n_b, 0.35)  # B's faces spread wider: A's are not the farther
    if near:
        v, c, s = (va, ca, 1) if near == "a" else (vb, cb, 0)
        v[s : s + 6] = _near(rng, f, c, r)
    return va, vb


def _near(rng, f: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    """Three faces ``r`` from ``f``, partly toward the centre ``c`` (well inside its mean),
    and three opposite them about ``c``."""
    d = (c - f) / np.linalg.norm(c - f)
    side = unit(rng, 3)
    side -= (side @ d)[:, None] * d
    side /= np.linalg.norm(side, axis=1)[:, None]
    e = f + r * (0.6 * d + 0.8 * side)
    return np.vstack([e, 2 * c - e])


@pytest.mark.parametrize(("near", "flagged"), [("b", True), ("a", False), ("", False)])
def test_a_face_nearer_another_identitys_faces_is_its_look_alike(near, flagged) -> None:
    rng = np.random.default_rng(3)
    va, vb = _scene(rng, N_A, 30, near)
    vec = np.vstack([va, vb]).astype(np.float32)
    ident = np.repeat([1, 2], [N_A, 30])
    face = np.arange(100, 130 + N_A)
    res = ic.check(face, ident, vec)
    i = int(np.flatnonzero(res.face == 100)[0])
    # the centres alone cannot tell: B's centre is nearer, by less than the margin
    g = res.centres.pos(np.array([1]))[0]
    assert 0 < res.margin[i] < ic.SUSPECT_REL_MARGIN * res.centres.spread[g]
    assert res.cand[i] and not res.faces.far[i]
    got = {fc for fc, _s in res.flag_rows()}
    assert (100 in got) is flagged
    if flagged:
        assert res.suspects() == [(100, 2, pytest.approx(res.margin[i], abs=1e-6))]
        assert res.by_faces == 1
    assert got == {fc for fc, _s in ic.check(face, ident, vec, exact=True).flag_rows()}
    # the same faces in another order: the same flags
    perm = rng.permutation(len(face))
    assert ic.check(face[perm], ident[perm], vec[perm]).flag_rows() == res.flag_rows()


@pytest.mark.parametrize(("at", "flagged"), [((0.23, 0.35), True), ((0.20, 0.35), False)])
def test_centres_about_tied_its_nearest_faces_decide(at, flagged) -> None:
    """B's centre a little farther than A's (0.023, within ASK_BEYOND) with three of B's
    photos near the face: B's look-alike, stored with the centres' (negative) margin and
    scored by its faces' one; 0.058 farther: the faces are not asked."""
    va, vb = _scene(np.random.default_rng(3), N_A, 30, "b", at=at)
    vec = np.vstack([va, vb]).astype(np.float32)
    face, ident = np.arange(100, 130 + N_A), np.repeat([1, 2], [N_A, 30])
    res = ic.check(face, ident, vec)
    i = int(np.flatnonzero(res.face == 100)[0])
    assert res.cand[i] and not res.faces.far[i] and res.near[i] == 2
    beyond = -res.margin[i]
    assert (0 < beyond < rule.ASK_BEYOND) if flagged else (rule.ASK_BEYOND < beyond < 0.1)
    got = dict(res.flag_rows())
    assert (100 in got) is flagged
    if flagged:
        assert res.suspects() == [(100, 2, pytest.approx(res.margin[i], abs=1e-6))]
        assert got[100] > rule.NEAR_FACES_MARGIN and res.by_faces == 1
    assert ic.check(face, ident, vec, exact=True).flag_rows() == res.flag_rows()


def test_copies_of_the_face_are_no_evidence() -> None:
    """Three copies of the face itself in B (nearer than COPY_DIST: one photo scraped again),
    where three photos of its event made it B's look-alike, do not."""
    for r, flagged in ((0.2, True), (0.5 * rule.COPY_DIST, False)):
        va, vb = _scene(np.random.default_rng(3), N_A, 30, "b", r)
        vec = np.vstack([va, vb]).astype(np.float32)
        res = ic.check(np.arange(100, 130 + N_A), np.repeat([1, 2], [N_A, 30]), vec)
        assert (100 in {fc for fc, _s in res.flag_rows()}) is flagged


@pytest.mark.parametrize("n_b", [1, 2, 3, 30])
def test_too_few_faces_of_the_other_identity_are_no_evidence(n_b) -> None:
    """An identity of 1 or 2 faces has no 3 nearest faces to compare (its one face is its
    centre: a look-alike of it is told by the centres alone), so a face with no photo of it
    near is not flagged whatever its size (found in review: a 1-face identity was)."""
    va, vb = _scene(np.random.default_rng(3), N_A, n_b, "")
    vec = np.vstack([va, vb]).astype(np.float32)
    res = ic.check(np.arange(100, 100 + N_A + n_b), np.repeat([1, 2], [N_A, n_b]), vec)
    assert 100 not in {fc for fc, _s in res.flag_rows()} and res.by_faces == 0


def test_near_faces_leaves_the_face_and_its_copies_out() -> None:
    x = np.zeros(128)
    e = np.eye(128)
    Y = np.vstack([x, 0.05 * e[0], 0.3 * e[1], 0.4 * e[2], 0.5 * e[3], 0.2 * e[4]])
    faces = np.array([7, 8, 9, 10, 11, 12])
    assert rule.near_faces(x, 7, faces, Y) == pytest.approx((0.2 + 0.3 + 0.4) / 3)
    assert rule.near_faces(x, 7, faces[:2], Y[:2]) == float("inf")
    assert rule.near_faces(x, 7, faces[:4], Y[:4]) == float("inf")  # two beyond its copy: too few


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    return scanned_demo(tmp_path_factory.mktemp("nearfaces"), 6, (12, 14), 8)


def _refresh(db: Path, tmp: Path) -> tuple[dict, dict, rule.IdentityCheck]:
    got, want, check, (r, full) = refreshed(db, tmp)
    assert full.asked >= full.by_faces
    return got | {"by_faces": r.by_faces}, want | {"by_faces": full.by_faces}, check


def test_only_the_other_identitys_faces_change_and_the_refresh_follows(scanned, tmp_path) -> None:
    """f's flag comes and goes with B's faces alone (A and the other identities untouched):
    B's three photos near f arrive, are labelled wrong identity, leave."""
    db = copy_of(scanned, tmp_path)
    rng = np.random.default_rng(5)
    with open_project(db) as p:
        faces = faces_by_identity(p)
        ids = sorted(faces)
        a, b = ids[0], ids[1]
        fb = faces[b][::-1]  # B's faces of f's event: its last ones by id and rank
        va, vb = _scene(rng, len(faces[a]), len(faces[b]), "")
        embed(p, faces[a], va)
        embed(p, fb, vb)
        for i in ids[2:]:
            embed(p, faces[i], around(rng, 3.0 * unit(rng)[0], len(faces[i])))
        assert ic.refresh(p).mode == "full"
        f = faces[a][0]
        assert f not in {x for x, _s in ic_store.kind_flag_rows(p, ic.KIND)}
        _, vb_near = _scene(np.random.default_rng(5), len(faces[a]), len(faces[b]), "b")
        embed(p, fb, vb_near)  # B's photos of f's event arrive
    got, want, exact = _refresh(db, tmp_path)
    assert got == want and got["flags"] == sorted(exact.flag_rows())
    assert (f, b) in {(x, i) for x, i, _m in got["looks"]} and exact.by_faces == 1
    with open_project(db) as p:  # the inspector shows B's faces nearest to f first: the evidence
        assert set(ic_store.sample_faces(p, b, 3, near=f)) == set(fb[:3])
        assert set(ic_store.sample_faces(p, b, 3)) != set(fb[:3])
        sus = [fl for fl in browse.face_detail(p, f).flags if fl.kind == ic.KIND]
        partners = sus[0].partners
        assert {x.face_id for x in partners[:3]} == set(fb[:3])
    with open_project(db) as p:  # a reviewer says those three are not B
        ops.label_faces(p, fb[:3], "wrong_identity", "r")
    got, want, exact = _refresh(db, tmp_path)
    assert got == want and got["flags"] == sorted(exact.flag_rows())
    assert f not in {x for x, _s in got["flags"]}
    with open_project(db) as p:  # faces the check no longer weighs are no evidence shown first
        assert not set(ic_store.sample_faces(p, b, 3, near=f)) & set(fb[:3])


@pytest.mark.parametrize(("n_a", "flagged"), [(rule.OUTLIER_FACES - 1, False), (30, True)])
def test_an_outlier_of_a_large_identity_nearer_another_centre_is_flagged(n_a, flagged) -> None:
    """Three of A's photos near f clear it while A is small; in an identity of OUTLIER_FACES
    or more, f — robust z >= OUTLIER_Z and nearer B's centre — is B's look-alike whatever its
    nearest faces say (among many faces a few are near any face by chance)."""
    rng = np.random.default_rng(3)
    va, vb = _scene(rng, n_a, 30, "a")
    vec = np.vstack([va, vb]).astype(np.float32)
    face, ident = np.arange(100, 130 + n_a), np.repeat([1, 2], [n_a, 30])
    res = ic.check(face, ident, vec)
    i = int(np.flatnonzero(res.face == 100)[0])
    assert res.faces.z[i] >= rule.OUTLIER_Z and 0 < res.margin[i] and not res.faces.far[i]
    assert (100 in dict(res.flag_rows())) is flagged
    if flagged:
        assert res.suspects() == [(100, 2, pytest.approx(res.margin[i], abs=1e-6))]
    assert ic.check(face, ident, vec, exact=True).flag_rows() == res.flag_rows()


@pytest.mark.parametrize(("near", "flagged"), [("a", False), ("", True)])
def test_its_own_photos_near_clear_a_face_the_centres_call_a_look_alike(near, flagged) -> None:
    """B's centre nearer f than A's by more than the margin (the centres alone tell a
    look-alike), but three of A's photos are near f, nearer than any of B's: f is A's."""
    rng = np.random.default_rng(3)
    va, vb = _scene(rng, N_A, 30, near, at=(0.35, 0.35))
    vec = np.vstack([va, vb]).astype(np.float32)
    face, ident = np.arange(100, 130 + N_A), np.repeat([1, 2], [N_A, 30])
    res = ic.check(face, ident, vec)
    i = int(np.flatnonzero(res.face == 100)[0])
    g = res.centres.pos(np.array([1]))[0]
    assert res.margin[i] > ic.SUSPECT_REL_MARGIN * res.centres.spread[g]
    assert (100 in dict(res.flag_rows())) is flagged
    assert ic.check(face, ident, vec, exact=True).flag_rows() == res.flag_rows()


def test_strangers_filed_with_the_face_are_no_evidence_of_its_identity() -> None:
    """Three strangers of A (beyond its stranger limit) sit nearer f than B's photos of f's
    event: they are no photos of A's person, so B's photos make f B's look-alike. The same
    three labelled correct by a reviewer (the same centres: a label `correct` only protects)
    are A's person's photos, and clear f."""
    rng = np.random.default_rng(3)
    va, vb = _scene(rng, N_A, 30, "b")
    f = va[0]
    out = f / np.linalg.norm(f)  # away from A's centre (0)
    side = unit(rng, 3)
    side -= (side @ out)[:, None] * out
    side /= np.linalg.norm(side, axis=1)[:, None]
    va[-3:] = f + 0.1 * out + 0.12 * side  # 0.6 from A's centre, 0.16 from f; B's photos 0.2
    vec = np.vstack([va, vb]).astype(np.float32)
    face, ident = np.arange(100, 130 + N_A), np.repeat([1, 2], [N_A, 30])
    three = face[N_A - 3 : N_A]
    got = []
    for reviewed in (False, True):
        protect = np.isin(face, three) & reviewed
        res = rule.check(face, ident, vec, ic.DLIB, protect=protect)
        i = int(np.flatnonzero(res.face == 100)[0])
        assert res.faces.far[np.isin(res.face, three)].all() and not res.faces.far[i]
        assert res.near[i] == 2 and 0 < res.margin[i] < 0.03  # the centres about tied: asked
        flags = dict(res.flag_rows())
        got.append(100 in flags)
        if reviewed:  # labelled correct: never flagged
            assert not set(three) & set(flags)
        else:
            assert set(three) <= set(flags)
        exact = rule.check(face, ident, vec, ic.DLIB, protect=protect, exact=True)
        assert exact.flag_rows() == res.flag_rows()
    assert got == [True, False]


@pytest.mark.parametrize(("r", "flagged"), [(0.2, True), (0.45, False)])
def test_two_photos_a_side_when_its_identity_has_only_two(r, flagged) -> None:
    """A: f and two photos of a person (f 0.48 from their mean, 0.5 from each); B's centre
    0.49 from f (the centres about tied). Two of B's photos ``r`` from f: 0.3 nearer than A's
    two, f is B's look-alike; 0.05 nearer (more than NEAR_FACES_MARGIN, less than
    FEW_FACES_MARGIN: a mean of two scatters), not."""
    rng = np.random.default_rng(4)
    u, v, w = orthonormal(rng, 3)
    f = 0.48 * u
    va = np.vstack([f, 0.15 * v, -0.15 * v])
    cb = f + 0.49 * w
    near = _near(rng, f, cb, r)[[0, 1, 3, 4]]  # two toward B's centre, their opposites about it
    vb = np.vstack([near, around(rng, cb, 4, 0.35)])
    vec = np.vstack([va, vb]).astype(np.float32)
    X = vec.astype(np.float64)
    own2 = np.linalg.norm(X[1:3] - X[0], axis=1).mean()
    other2 = np.sort(np.linalg.norm(X[3:] - X[0], axis=1))[:2].mean()
    if flagged:
        assert own2 - other2 > rule.FEW_FACES_MARGIN
    else:
        assert rule.NEAR_FACES_MARGIN < own2 - other2 < rule.FEW_FACES_MARGIN
    face, ident = np.arange(100, 111), np.repeat([1, 2], [3, 8])
    res = ic.check(face, ident, vec)
    i = int(np.flatnonzero(res.face == 100)[0])
    assert res.cand[i] and not res.faces.far[i] and res.near[i] == 2
    assert -rule.ASK_BEYOND < res.margin[i] < 0  # B's centre a little farther
    assert (100 in dict(res.flag_rows())) is flagged
    assert ic.check(face, ident, vec, exact=True).flag_rows() == res.flag_rows()
