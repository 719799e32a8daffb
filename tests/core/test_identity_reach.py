"""The stored reach of look-alike candidates (m019_candidate_reach): an incremental refresh
compares with the changed centres only the candidates the triangle bound lets them reach, and
still ends exactly where a full refresh and the exact rule end — when a changed centre comes
near a candidate of an unchanged identity, when it leaves it, and in a project refreshed
before the reaches were stored."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from annotator.core.identity import identity_check as ic
from annotator.store import identity_check as ic_store
from annotator.store.db import open_project
from tests.core.identity_project import copy_of, embed, faces_by_identity, refreshed, scanned_demo


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    return scanned_demo(tmp_path_factory.mktemp("reach"), 10, (10, 14), 5)


def _around(rng, centre: np.ndarray, n: int) -> np.ndarray:
    u = rng.normal(0, 1, (n, 128))
    r = 0.3 * np.exp(rng.normal(0, 0.2, n))
    return centre + u / np.linalg.norm(u, axis=1)[:, None] * r[:, None]


def _refresh(db: Path, tmp: Path) -> tuple[dict, dict, list]:
    """An (incremental) refresh of ``db``; its state, the full refresh's, the exact flags."""
    got, want, check, _runs = refreshed(db, tmp)
    return got, want, sorted(check.flag_rows())


def test_a_moving_centre_gains_and_loses_a_candidate_of_an_unchanged_identity(
    scanned, tmp_path
) -> None:
    db = copy_of(scanned, tmp_path)
    rng = np.random.default_rng(11)
    with open_project(db) as p:
        faces = faces_by_identity(p)
        ids = sorted(faces)
        a, b, new = ids[0], ids[1], ids[-1]
        centre = {i: rng.normal(0, 0.8 / 16, 128) for i in ids}
        u = rng.normal(0, 1, 128)
        u /= np.linalg.norm(u)
        f = faces[a][0]  # A's candidate: 0.46 out along u, nothing near it yet
        for i in ids[:-1]:
            v = _around(rng, centre[i], len(faces[i]))
            if i == a:
                v[0] = centre[a] + 0.46 * u
            embed(p, faces[i], v)
        r = ic.refresh(p)
        assert r is not None and r.mode == "full" and f not in r.suspect
        t = {int(x): float(y) for x, y in zip(*next(ic_store.candidates(p, [a]))[1:3], strict=True)}
        assert f in t  # a candidate: a centre nearer than t would flag it
        # a new identity whose centre lands 0.3 from f (far from A's centre and from f's
        # own neighbours): f gains a flag, the identity it looks like is the new one
        q = centre[a] + 0.76 * u
        embed(p, faces[new], _around(rng, q, len(faces[new])))
    got, want, exact = _refresh(db, tmp_path)
    assert got == want and got["flags"] == exact
    assert f in {x for x, _s in got["flags"]}
    assert (f, new) in {(x, i) for x, i, _m in got["looks"]}
    # the new identity's faces move away again: f loses its flag
    with open_project(db) as p:
        embed(p, faces[new], _around(rng, rng.normal(0, 0.8 / 16, 128), len(faces[new])))
    got, want, exact = _refresh(db, tmp_path)
    assert got == want and got["flags"] == exact
    assert f not in {x for x, _s in got["flags"]}
    # an existing identity's centre moves near f: f gains a flag of that identity
    with open_project(db) as p:
        embed(p, faces[b], _around(rng, q, len(faces[b])))
    got, want, exact = _refresh(db, tmp_path)
    assert got == want and got["flags"] == exact
    assert (f, b) in {(x, i) for x, i, _m in got["looks"]}


def test_a_centre_out_of_every_reach_reads_no_candidate(scanned, tmp_path, monkeypatch) -> None:
    db = copy_of(scanned, tmp_path)
    rng = np.random.default_rng(12)
    with open_project(db) as p:
        faces = faces_by_identity(p)
        ids = sorted(faces)
        for i in ids[:-1]:
            embed(p, faces[i], _around(rng, rng.normal(0, 0.8 / 16, 128), len(faces[i])))
        assert ic.refresh(p) is not None
        top = ic_store.candidate_reaches(p).top
        far = np.zeros(128)
        far[0] = 3.0  # 3 from every centre: beyond every stored reach (each < 1.5)
        assert len(top) == len(ids) - 1 and top.max() < 1.5
        embed(p, faces[ids[-1]], _around(rng, far, len(faces[ids[-1]])))
    read: list[tuple] = []
    for name in ("candidates", "candidate_vectors"):
        real = getattr(ic_store, name)
        monkeypatch.setattr(
            ic_store,
            name,
            lambda *a, _real=real, _n=name, **k: read.append((_n, a[1:])) or _real(*a, **k),
        )
    got, want, exact = _refresh(db, tmp_path)
    assert read == []  # the incremental refresh read no identity's candidates
    assert got == want and got["flags"] == exact


def test_a_project_refreshed_before_the_reaches_were_stored_refreshes_right(
    scanned, tmp_path
) -> None:
    db = copy_of(scanned, tmp_path)
    rng = np.random.default_rng(13)
    with open_project(db) as p:
        faces = faces_by_identity(p)
        ids = sorted(faces)
        a, b, new = ids[0], ids[1], ids[-1]
        centre = {i: rng.normal(0, 0.8 / 16, 128) for i in ids}
        u = rng.normal(0, 1, (2, 128))
        u /= np.linalg.norm(u, axis=1)[:, None]
        fa, fb = faces[a][0], faces[b][0]  # a candidate of A and one of B, 0.46 out
        for i in ids[:-1]:
            v = _around(rng, centre[i], len(faces[i]))
            if i in (a, b):
                v[0] = centre[i] + 0.46 * u[int(i == b)]
            embed(p, faces[i], v)
        assert ic.refresh(p) is not None
    # as before m019: no reach table, the step not run; opening the file runs it (empty)
    con = sqlite3.connect(db)
    with con:
        con.execute("DROP TABLE candidate_reach")
        con.execute("DELETE FROM _sqlite_migrations WHERE name = 'm019_candidate_reach'")
    con.close()
    with open_project(db) as p:
        assert p.conn.execute("SELECT count(*) FROM candidate_reach").fetchone()[0] == 0
        # the new identity lands 0.3 from A's candidate (no reach of A is stored)
        embed(p, faces[new], _around(rng, centre[a] + 0.76 * u[0], len(faces[new])))
    got, want, exact = _refresh(db, tmp_path)
    assert got["flags"] == want["flags"] == exact
    assert (fa, new) in {(x, i) for x, i, _m in got["looks"]}
    assert {k: v for k, v in got.items() if k != "reach"} == {
        k: v for k, v in want.items() if k != "reach"
    }
    # only the identities recomputed have reaches until the next full refresh stores all
    assert 0 < len(got["reach"]) < len(want["reach"])
    # A's reaches are stored now, B's not: the new identity moves from A's candidate to B's
    stored = {r[0] for r in got["reach"]}
    assert a in stored and b not in stored
    with open_project(db) as p:
        embed(p, faces[new], _around(rng, centre[b] + 0.76 * u[1], len(faces[new])))
    got, want, exact = _refresh(db, tmp_path)
    assert got["flags"] == want["flags"] == exact
    looks = {(x, i) for x, i, _m in got["looks"]}
    assert (fb, new) in looks and (fa, new) not in looks


def test_reaches_that_do_not_match_their_candidates_are_not_trusted(scanned, tmp_path) -> None:
    db = copy_of(scanned, tmp_path)
    rng = np.random.default_rng(14)
    with open_project(db) as p:
        faces = faces_by_identity(p)
        ids = sorted(faces)
        a, new = ids[0], ids[-1]
        centre = {i: rng.normal(0, 0.8 / 16, 128) for i in ids}
        u = rng.normal(0, 1, 128)
        u /= np.linalg.norm(u)
        for i in ids[:-1]:
            v = _around(rng, centre[i], len(faces[i]))
            if i == a:
                v[0] = centre[a] + 0.46 * u
            embed(p, faces[i], v)
        assert ic.refresh(p) is not None
        # A's reaches claim one candidate more than its row holds (as if written apart)
        with p.tx() as c:
            r, t = c.execute(
                "SELECT cand_reach, cand_t FROM candidate_reach WHERE identity_id = ?", (a,)
            ).fetchone()
            c.execute(
                "UPDATE candidate_reach SET cand_reach = ?, cand_t = ?, reach = 9 "
                "WHERE identity_id = ?",
                (r + r, t + t, a),
            )
        embed(p, faces[new], _around(rng, centre[a] + 0.76 * u, len(faces[new])))
    got, want, exact = _refresh(db, tmp_path)
    assert got == want and got["flags"] == exact
    assert (faces[a][0], new) in {(x, i) for x, i, _m in got["looks"]}
