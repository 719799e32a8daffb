"""An odd photo of its own person is no look-alike (core/identity/rule.py, ODD_*): a face the
centres call another identity's look-alike by a small margin, with none of that identity's
photos near it and a third identity's centre about as near, lies among many people rather than
with one. Flagged as soon as one of those three fails; the exact rule, the indexed one and an
incremental refresh agree, also when only the third identity's centre moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotator.core.identity import identity_check as ic
from annotator.core.identity import rule
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

N_A, N_B, N_C = 16, 30, 16


def _scene(rng, at: tuple[float, float], third: float, b_near: bool = False, n=(N_A, N_B, N_C)):
    """A around 0, its face f at ``at`` in the plane of u and w; B around
    0.5 u (faces 0.35 out, none near f unless ``b_near``: one 0.3 from f); C's centre
    ``third`` beyond f's distance to B's centre, across the plane. Returns (vectors of A, B,
    C; f's distance to B's centre)."""
    u, w, v = orthonormal(rng, 3)
    cb = 0.5 * u
    f = at[0] * u + at[1] * w
    # A's faces 0.26-0.40 out: f, 0.53 out, is no stranger
    va = np.vstack(
        [[f], around(rng, np.zeros(128), n[0] - 1, np.linspace(0.26, 0.4, (n[0] - 1) // 2))]
    )
    vb = around(rng, cb, n[1], 0.35)
    if b_near:  # one of B's photos near f, and its mirror keeps B's centre
        e = f + 0.3 * unit(rng)[0]
        vb[0], vb[n[1] // 2] = e, 2 * cb - e
    d_b = float(np.linalg.norm(f - cb))
    vc = around(rng, f + (d_b + third) * v, n[2], 0.3)
    return va, vb, vc, d_b


def _check(va, vb, vc, exact: bool = False) -> rule.IdentityCheck:
    vec = np.vstack([va, vb, vc]).astype(np.float32)
    ident = np.repeat([1, 2, 3], [len(va), len(vb), len(vc)])
    return ic.check(np.arange(100, 100 + len(vec)), ident, vec, exact=exact)


@pytest.mark.parametrize(
    ("third", "b_near", "flagged"),
    [(0.03, False, False), (rule.ODD_GAP + 0.03, False, True), (0.03, True, True)],
)
def test_an_odd_photo_among_many_people_is_no_look_alike(third, b_near, flagged) -> None:
    va, vb, vc, d_b = _scene(np.random.default_rng(7), (0.31, 0.43), third, b_near)
    res = _check(va, vb, vc)
    i = int(np.flatnonzero(res.face == 100)[0])
    g = res.centres.pos(np.array([1]))[0]
    # the centres call f B's look-alike, by less than ODD_MARGIN; C's centre is farther
    assert res.near[i] == 2 and res.d_other[i] == pytest.approx(d_b, abs=1e-4)
    assert rule.SUSPECT_REL_MARGIN * res.centres.spread[g] < res.margin[i] < rule.ODD_MARGIN
    assert res.centres.kept[g] < rule.OUTLIER_FACES and not res.faces.far[i]
    nearest_b = np.linalg.norm(vb - va[0], axis=1).min()
    assert bool(nearest_b < rule.ODD_FACES) is b_near
    got = {fc for fc, _s in res.flag_rows()}
    assert (100 in got) is flagged
    if flagged:
        assert (100, 2) in {(x, b) for x, b, _m in res.suspects()}
    assert res.flag_rows() == _check(va, vb, vc, exact=True).flag_rows()


def _partners(rng, va, vb, d_b: float, beyond: list[float]) -> list[np.ndarray]:
    """More keys of B's person: centres 0.1 from B's (same-person pairs), each ``beyond``
    farther from f than B's centre."""
    g_b = vb.mean(0)
    e = (va[0] - g_b) / d_b
    out = []
    for extra in beyond:
        side = unit(rng)[0]
        side -= (side @ e) * e
        side /= np.linalg.norm(side)
        x = (d_b**2 + 0.01 - (d_b + extra) ** 2) / (2 * d_b)
        out.append(around(rng, g_b + x * e + np.sqrt(0.01 - x * x) * side, N_B, 0.35))
    return out


def _check_many(groups: list[np.ndarray], exact: bool = False) -> rule.IdentityCheck:
    vec = np.vstack(groups).astype(np.float32)
    ident = np.repeat(np.arange(1, len(groups) + 1), [len(v) for v in groups])
    return ic.check(np.arange(100, 100 + len(vec)), ident, vec, exact=exact)


@pytest.mark.parametrize(("third", "flagged"), [(None, True), (0.03, False)])
def test_the_look_alikes_same_person_is_no_third_identity(third, flagged) -> None:
    """Three more keys of B's person (their centres as near B's as one person's), nearer f
    than any other: no third identity, f stays B's look-alike — unless another person's
    centre C lies beyond them, still within ODD_GAP."""
    rng = np.random.default_rng(7)
    va, vb, vc, d_b = _scene(rng, (0.31, 0.43), 0.03 if third is None else third)
    twins = _partners(rng, va, vb, d_b, [0.01, 0.015, 0.02])
    groups = [va, vb, *twins] + ([] if third is None else [vc])
    res = _check_many(groups)
    assert {(2, k) for k in (3, 4, 5)} <= {(a, b) for a, b, _d in res.same_person}
    assert (100 in {fc for fc, _s in res.flag_rows()}) is flagged
    assert res.flag_rows() == _check_many(groups, exact=True).flag_rows()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    return scanned_demo(tmp_path_factory.mktemp("odd"), 5, (16, 18), 9)


def test_a_third_centre_beyond_t_moves_near_and_the_refresh_follows(scanned, tmp_path) -> None:
    """f (0.53 from A's centre, 0.47 from B's: t = like_max = 0.5) is flagged while C is far;
    C's faces move so that its centre is 0.51 from f — beyond f's t, within ODD_GAP of B's —
    and an incremental refresh clears f as the full one and the exact rule do (only C's faces
    changed). Then one of B's photos comes near f (only B's faces change): flagged again; B
    as before and C gone: flagged."""
    db = copy_of(scanned, tmp_path)
    rng = np.random.default_rng(5)
    with open_project(db) as p:
        faces = faces_by_identity(p)
        a, b, c, *rest = sorted(faces)
        n = (len(faces[a]), len(faces[b]), len(faces[c]))
        va, vb, vc, d_b = _scene(rng, (0.31, 0.43), 0.04, n=n)
        assert np.linalg.norm(va[0]) + rule.ASK_BEYOND > ic.DLIB.like_max  # t = like_max
        assert ic.DLIB.like_max < d_b + 0.04 < d_b + rule.ODD_GAP
        embed(p, faces[a], va)
        embed(p, faces[b], vb)
        far = 3.0 * unit(rng)[0]
        embed(p, faces[c], around(rng, far, len(faces[c]), 0.3))
        for i in rest:
            embed(p, faces[i], around(rng, 3.0 * unit(rng)[0], len(faces[i]), 0.3))
        assert ic.refresh(p).mode == "full"
        f = faces[a][0]
        assert f in ic.refresh(p, full=True).suspect
        embed(p, faces[c], vc)
    got, want, exact = refreshed(db, tmp_path)[:3]
    assert got == want and got["flags"] == sorted(exact.flag_rows())
    assert f not in {x for x, _s in got["flags"]}
    with open_project(db) as p:  # one of B's photos comes 0.3 from f: no odd photo
        _va, vb_near, _vc, _d = _scene(np.random.default_rng(5), (0.31, 0.43), 0.04, True, n)
        embed(p, faces[b], vb_near)
    got, want, exact = refreshed(db, tmp_path)[:3]
    assert got == want and got["flags"] == sorted(exact.flag_rows())
    assert f in {x for x, _s in got["flags"]}
    with open_project(db) as p:  # B's photos as before, C leaves: f is still flagged
        embed(p, faces[b], vb)
        embed(p, faces[c], around(rng, far, len(faces[c]), 0.3))
    got, want, exact = refreshed(db, tmp_path)[:3]
    assert got == want and got["flags"] == sorted(exact.flag_rows())
    assert f in {x for x, _s in got["flags"]}
