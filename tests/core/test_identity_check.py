"""suspect_identity flags and same-person pairs (core/identity/identity_check.py): the rule on synthetic
vectors, and its place in a project (scan flag step, end of embed, flags --json, takedown)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from annotator.core.dedup import flagset
from annotator.core.identity import identity_check as ic
from annotator.core.identity import rule
from annotator.core.importer import import_source
from annotator.core.scan import scan, update_flags
from annotator.demo.dataset import generate_demo
from annotator.store import embeddings as emb
from annotator.store import identity_check as ic_store
from annotator.store.db import open_project


def _clusters(rng, n_ids: int, per: int, spread: float = 0.05, sep: float = 0.5):
    centres = rng.normal(0, sep / np.sqrt(128), (n_ids, 128)) * np.sqrt(128)
    centres /= np.linalg.norm(centres, axis=1)[:, None] / sep
    ident = np.repeat(np.arange(1, n_ids + 1), per)
    vec = centres[ident - 1] + rng.normal(0, spread / np.sqrt(128), (len(ident), 128))
    return ident, vec, centres


MODEL = "dlib_resnet_v1/crop150"  # a model id the check knows (dlib's metric)


def _at(res, face_id: int) -> int:
    return int(np.flatnonzero(res.face == face_id)[0])


def test_a_face_of_another_identity_is_flagged_with_that_identity() -> None:
    rng = np.random.default_rng(1)
    ident, vec, centres = _clusters(rng, 6, 12)
    vec[3] = centres[4] + rng.normal(0, 0.01, 128)  # filed under 1, looks like 5
    face = np.arange(100, 100 + len(ident))
    res = ic.check(face, ident, vec.astype(np.float16))
    i = _at(res, 103)
    assert res.suspects() == [(103, 5, pytest.approx(res.margin[i], abs=1e-6))]
    assert [f for f, _s in res.flag_rows()] == [103]
    assert res.margin[i] > 0.3 and res.faces.z[i] > 0
    assert res.same_person == []  # six well-separated people


def test_the_faces_a_tiny_identitys_centre_left_out_are_all_flagged() -> None:
    """2 photos of a person and 2 of two strangers: the robust centre keeps the pair, and both
    strangers are flagged (45 % of 4 faces would allow one); 3 photos and 1 stranger: one."""
    rng = np.random.default_rng(4)
    u = rng.normal(0, 1, (8, 128))
    u /= np.linalg.norm(u, axis=1)[:, None]
    pair = np.vstack([0.2 * u[0], -0.2 * u[0]])
    strangers = 0.9 * u[1:3]
    vec = np.vstack([pair, strangers, 0.2 * u[3], 0.2 * u[4], -0.2 * u[4], 0.9 * u[5]])
    vec = (vec + np.r_[np.zeros((4, 128)), np.full((4, 128), 0.1)]).astype(np.float32)
    face, ident = np.arange(100, 108), np.repeat([1, 2], 4)
    res = ic.check(face, ident, vec)
    assert res.centres.kept.tolist() == [2, 3]
    assert [f for f, _s in res.flag_rows()] == [102, 103, 107]
    assert res.flag_rows() == ic.check(face, ident, vec, exact=True).flag_rows()


def test_a_look_alike_the_centres_tell_fills_a_tiny_identity_up_to_half() -> None:
    """2 photos of a person, a look-alike of B (by B's centre, well within the margin) and a
    stranger: the stranger scores higher, and the look-alike is flagged beside it (45 % of 4
    faces would allow one)."""
    rng = np.random.default_rng(5)
    u = rng.normal(0, 1, (16, 128))
    u /= np.linalg.norm(u, axis=1)[:, None]
    cb = 0.45 * u[0]
    pair = np.vstack([0.2 * u[1], -0.2 * u[1]])
    vec = np.vstack([pair, [cb + 0.05 * u[2]], [1.0 * u[3]], cb + 0.3 * u[4:14]])
    face, ident = np.arange(100, 114), np.repeat([1, 2], [4, 10])
    res = ic.check(face, ident, vec.astype(np.float32))
    got = dict(res.flag_rows())
    assert sorted(got) == [102, 103] and got[103] > got[102]
    assert res.suspects()[0][:2] == (102, 2) and res.faces.far[_at(res, 103)]
    assert res.flag_rows() == ic.check(face, ident, vec.astype(np.float32), exact=True).flag_rows()


def test_a_foreign_face_of_a_tiny_identity_is_flagged_whatever_its_z() -> None:
    """An identity of 3 photos of its person far apart and 1 of another's: the foreign face
    pulls the centre, so it is nearer it than the identity's median face (z < 0) — yet 0.49
    out and by B's centre (seen on real faces: identities of 4-6 photos, one a look-alike's)."""
    rng = np.random.default_rng(3)
    u = rng.normal(0, 1, (15, 128))
    u /= np.linalg.norm(u, axis=1)[:, None]
    cb = 0.4 * u[0]
    vec = np.vstack([0.45 * u[1:4], [cb + 0.1 * u[4]], cb + 0.3 * u[5:]]).astype(np.float32)
    face, ident = np.arange(100, 114), np.repeat([1, 1, 2], [3, 1, 10])
    res = ic.check(face, ident, vec)
    i = _at(res, 103)
    assert res.faces.z[i] < 0 and res.faces.d_own[i] > 0.4 and not res.faces.far[i]
    assert res.flag_rows() == ic.check(face, ident, vec, exact=True).flag_rows()
    assert [f for f, _s in res.flag_rows()] == [103] and res.suspects()[0][:2] == (103, 2)


def test_a_stranger_is_flagged_without_looking_like_anyone() -> None:
    """A face far from its own centre (beyond the model's metric) that is near no other
    identity's centre is flagged all the same, with no looks-like identity."""
    rng = np.random.default_rng(1)
    ident, vec, centres = _clusters(rng, 6, 12)
    u = rng.normal(0, 1, 128)
    q, _ = np.linalg.qr(centres.T)
    u -= q @ (q.T @ u)  # orthogonal to every centre: far from its own, farther from the rest
    vec[3] = centres[0] + 0.7 * u / np.linalg.norm(u)
    res = ic.check(np.arange(len(ident)), ident, vec)
    i = _at(res, 3)
    assert res.margin[i] < 0 or not np.isfinite(res.margin[i])
    assert [f for f, _s in res.flag_rows()] == [3] and res.suspects() == []
    # the same face at 0.4 from its centre is within what one person allows: not flagged
    vec[3] = centres[0] + 0.4 * u / np.linalg.norm(u)
    assert ic.check(np.arange(len(ident)), ident, vec).flag_rows() == []


def test_small_identities_are_not_judged_and_order_does_not_matter() -> None:
    rng = np.random.default_rng(2)
    ident, vec, centres = _clusters(rng, 3, rule.MIN_FACES - 1)
    vec[0] = centres[1]
    res = ic.check(np.arange(len(ident)), ident, vec)
    assert len(res.suspect) == 0 and np.isnan(res.faces.z).all()
    ident, vec, centres = _clusters(rng, 4, 8)
    vec[9] = centres[3]  # filed under 2
    perm = rng.permutation(len(ident))
    a = ic.check(np.arange(len(ident)), ident, vec)
    b = ic.check(np.arange(len(ident))[perm], ident[perm], vec[perm])
    assert a.suspects() == b.suspects() == [(9, 4, pytest.approx(a.margin[_at(a, 9)]))]


def test_one_person_under_two_keys_is_a_same_person_pair() -> None:
    rng = np.random.default_rng(3)
    ident, vec, _ = _clusters(rng, 5, 12)
    ident = ident.copy()
    ident[ident == 3] = np.where(np.arange(12) % 2 == 0, 3, 9)  # person 3 under keys 3 and 9
    res = ic.check(np.arange(len(ident)), ident, vec)
    assert [(a, b) for a, b, _d in res.same_person] == [(3, 9)]
    assert len(res.suspect) == 0


@pytest.fixture
def demo_project(tmp_path) -> tuple[Path, dict]:
    """A scanned demo of 5 people with synthetic embeddings: each face gets its TRUE person's
    centre plus noise, so the demo's wrong-identity faces and cross-identity copies are the
    faces that look like someone else."""
    r = generate_demo(tmp_path / "d", identities=5, faces_per_identity=(8, 10), seed=4)
    truth = json.loads(Path(r.truth_json).read_text())
    db = tmp_path / "p.db"
    with open_project(db, create=True) as p:
        import_source(p, "msceleb", r.faces_tsv)
        scan(p, workers=1)
        rng = np.random.default_rng(0)
        keys = list(truth["identities"])
        centres = {k: rng.normal(0, 1, 128) for k in keys}
        for k in keys:
            centres[k] *= 0.5 / np.linalg.norm(centres[k])
        rows = []
        for fid, rec, key in p.conn.execute(
            "SELECT f.id, f.record, i.key FROM faces f JOIN identities i ON i.id = f.identity_id "
            "JOIN face_hashes h ON h.face_id = f.id WHERE h.corrupt IS NULL"
        ):
            true = truth["true_identity"].get(str(rec), key)
            v = centres[true] + rng.normal(0, 0.05 / np.sqrt(128), 128)
            rows.append((fid, "ok", None, emb.to_blob(v)))
        emb.insert_embeddings(p, MODEL, rows)
    return db, truth


def _suspect_lines(p) -> dict[int, str]:
    return {
        rec: key
        for rec, key in p.conn.execute(
            "SELECT f.record, i.key FROM flags fl JOIN flag_faces ff ON ff.flag_id = fl.id "
            "JOIN faces f ON f.id = ff.face_id JOIN face_looks_like l ON l.face_id = f.id "
            "JOIN identities i ON i.id = l.identity_id WHERE fl.kind = 'suspect_identity'"
        )
    }


def test_refresh_and_scan_flag_the_faces_of_other_people(demo_project) -> None:
    db, truth = demo_project
    other = {int(k): v for k, v in truth["true_identity"].items()}
    assert truth["wrong_identity"]
    with open_project(db) as p:
        res = ic.refresh(p)
        assert res is not None
        assert _suspect_lines(p) == other  # each says whom it looks like
        by_kind = dict(p.conn.execute("SELECT kind, count(*) FROM flags GROUP BY kind").fetchall())
        assert by_kind["suspect_identity"] == len(other)
        ids = p.conn.execute("SELECT id FROM flags WHERE kind = 'suspect_identity'").fetchall()
        ic.refresh(p)  # again: the same flags keep their ids
        assert (
            p.conn.execute("SELECT id FROM flags WHERE kind = 'suspect_identity'").fetchall() == ids
        )
        # the scan's flag step keeps them (and their looks-like identities)
        update_flags(p)
        assert _suspect_lines(p) == other
        assert flagset.KINDS.index("suspect_identity") == len(flagset.KINDS) - 1
        # identities holding someone else's face rank above the others
        susp = dict(p.conn.execute("SELECT key, suspicion FROM identities"))
        holders = {k for k, v in truth["identities"].items() if set(v["lines"]) & set(other)}
        clean = set(susp) - holders
        assert holders and min(susp[k] for k in holders) > max(
            [susp[k] for k in clean], default=0.0
        )


def test_flags_json_names_the_other_identity(demo_project) -> None:
    db, truth = demo_project
    with open_project(db) as p:
        ic.refresh(p)
    out = CliRunner().invoke(cli, ["flags", "-p", str(db), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    sus = [f for f in doc["flags"] if f["kind"] == "suspect_identity"]
    other = {int(k): v for k, v in truth["true_identity"].items()}
    assert len(sus) == len(other)
    for f in sus:
        line = int(f["faces"][0]["origin"].rsplit(":", 1)[1])
        assert f["looks_like"] == other[line] and f["margin"] > 0 and f["score"] == f["margin"]
    assert doc["same_person"] == []
    text = CliRunner().invoke(cli, ["flags", "-p", str(db), "--kind", "suspect_identity"])
    assert text.exit_code == 0 and "looks more like m." in text.output


def test_same_person_pairs_are_listed_and_go_with_a_takedown(demo_project) -> None:
    db, _truth = demo_project
    with open_project(db) as p:
        keys = [k for (k,) in p.conn.execute("SELECT key FROM identities ORDER BY id")]
        a, b = keys[0], keys[1]
        # make identity b the same person as a: b's vectors become a's
        ia, ib = (
            p.conn.execute("SELECT id FROM identities WHERE key = ?", (k,)).fetchone()[0]
            for k in (a, b)
        )
        va = np.median(emb.load_embeddings(p, MODEL, [ia])[2].astype(np.float32), 0)
        fb, _i, vb = emb.load_embeddings(p, MODEL, [ib])
        rng = np.random.default_rng(5)
        with p.tx():
            emb.insert_embeddings(
                p,
                MODEL,
                [
                    (int(f), "ok", None, emb.to_blob(va + rng.normal(0, 0.005, 128)))
                    for f in fb.tolist()
                ],
            )
        res = ic.refresh(p)
        assert res is not None and len(res.same_person) >= 1
        pairs = ic_store.same_person(p)
        assert {tuple(sorted((x.a, x.b))) for x in pairs} >= {tuple(sorted((a, b)))}
    out = CliRunner().invoke(cli, ["flags", "-p", str(db), "--json"])
    doc = json.loads(out.output)
    assert {tuple(sorted((d["a"], d["b"]))) for d in doc["same_person"]} >= {tuple(sorted((a, b)))}
    out = CliRunner().invoke(cli, ["takedown", b, "-p", str(db), "-r", "ann", "--yes"])
    assert out.exit_code == 0, out.output
    with open_project(db) as p:
        assert not [x for x in ic_store.same_person(p) if b in (x.a, x.b)]
        assert not p.conn.execute(
            "SELECT 1 FROM face_looks_like l JOIN identities i ON i.id = l.identity_id "
            "WHERE i.key = ?",
            (b,),
        ).fetchall()


def test_a_contaminated_identity_keeps_its_majority_and_flags_the_rest() -> None:
    """40 % of an identity's faces are three other people: its centre stays its own person
    and every foreign face is flagged (no cap of a few per identity hides them)."""
    rng = np.random.default_rng(6)
    ident, vec, centres = _clusters(rng, 6, 30)
    foreign = np.arange(12)  # 12 of identity 1's 30 faces: four each of people 2, 3 and 4
    for k in foreign:
        vec[k] = centres[1 + k % 3] + rng.normal(0, 0.05 / np.sqrt(128), 128)
    res = ic.check(np.arange(len(ident)), ident, vec)
    assert sorted(f for f, _s in res.flag_rows()) == foreign.tolist()
    assert {f: o for f, o, _m in res.suspects()} == {int(k): int(2 + k % 3) for k in foreign}
    c1 = res.centres.centre[res.centres.pos(np.array([1]))[0]]
    assert np.linalg.norm(c1 - centres[0]) < 0.05  # the majority person's centre
    # 16 foreign of 30 (three people, each nearer its own centre than this one): the
    # look-alikes fill the identity's flags up to half (LEFT_OUT_SHARE), every one foreign
    for k in range(12, 16):
        vec[k] = centres[1] + rng.normal(0, 0.05 / np.sqrt(128), 128)
    res = ic.check(np.arange(len(ident)), ident, vec)
    got = [f for f, _s in res.flag_rows()]
    assert len(got) == int(rule.LEFT_OUT_SHARE * 30) and set(got) <= set(range(16))


def _random_world(seed: int, n_ids: int, dense: bool):
    """Identities of varied size around random centres, with strangers, mislabels and
    near-duplicate people: a test set where the bounds have to hold."""
    rng = np.random.default_rng(seed)
    scale = 0.06 if dense else 0.08
    centres = rng.normal(0, scale, (n_ids, 128))
    if dense:  # pairs of look-alike people
        centres[1::2] = centres[::2][: len(centres[1::2])] + rng.normal(0, 0.02, (n_ids // 2, 128))
    size = rng.integers(1, 25, n_ids)
    ident = np.repeat(np.arange(1, n_ids + 1), size)
    r = 0.3 * np.exp(rng.normal(0, 0.25, len(ident)))
    noise = rng.normal(0, 1, (len(ident), 128))
    vec = centres[ident - 1] + noise / np.linalg.norm(noise, axis=1)[:, None] * r[:, None]
    k = rng.random(len(ident))
    stranger = k < 0.04
    vec[stranger] = rng.normal(0, scale, (stranger.sum(), 128))
    mis = (k >= 0.04) & (k < 0.08)
    other = rng.integers(0, n_ids, mis.sum())
    vec[mis] = centres[other] + rng.normal(0, 0.3 / np.sqrt(128), (mis.sum(), 128))
    return ident, vec.astype(np.float16)


@pytest.mark.parametrize(
    "seed,dense,k,numpy_only", [(0, False, 32, False), (1, True, 32, False), (2, True, 3, True)]
)
def test_the_index_and_its_bounds_lose_no_flag_of_the_exact_rule(
    monkeypatch, seed, dense, k, numpy_only
):
    monkeypatch.setattr(ic.nearest, "K", k)
    if numpy_only:  # the blocked NumPy search, as without faiss
        monkeypatch.setattr(ic.nearest, "faiss", None)
    ident, vec = _random_world(seed, 300, dense)
    face = np.arange(len(ident)) * 3 + 1
    a = ic.check(face, ident, vec)
    b = ic.check(face, ident, vec, exact=True)
    assert a.flag_rows() == b.flag_rows() and a.suspects() == b.suspects()
    assert a.same_person == b.same_person
    assert len(a.flag_rows()) > 20 and len(a.suspects()) > 5  # the test set has flags to lose
    assert 0 < a.global_faces < np.isfinite(a.d_other).sum()  # both paths of the bound taken
    assert a.same_person or not dense


def test_the_project_settings_drive_the_check_and_the_refresh_records_them(demo_project) -> None:
    from annotator import settings

    db, truth = demo_project
    with open_project(db) as p:
        assert ic.refresh(p) is not None
        flagged = p.conn.execute("SELECT count(*) FROM flags WHERE kind = 'suspect_identity'")
        assert flagged.fetchone()[0] == len(truth["true_identity"])
        assert p.conn.execute("SELECT count(*) FROM face_looks_like").fetchone()[0] > 0
        assert settings.used(p)["embed"]["values"]["suspect_margin"] == ic.SUSPECT_REL_MARGIN
        settings.set_value(p, "suspect_margin", "100")  # no look-alike is that much nearer
        assert settings.stale(p) == {"suspect_margin": ic.SUSPECT_REL_MARGIN}
        r = ic.refresh(p)
        assert r is not None and r.mode == "full"  # another setting: everything measured again
        # the other people's faces here are far from their identity's centre: still strangers
        flagged = p.conn.execute("SELECT count(*) FROM flags WHERE kind = 'suspect_identity'")
        assert flagged.fetchone()[0] == len(truth["true_identity"])
        assert p.conn.execute("SELECT count(*) FROM face_looks_like").fetchone()[0] == 0
        assert settings.used(p)["embed"]["values"]["suspect_margin"] == 100.0
        assert settings.stale(p) == {}
    text = CliRunner().invoke(cli, ["flags", "-p", str(db), "--kind", "suspect_identity"])
    assert "looks like no one in the set" in text.output and "looks more like" not in text.output


def test_min_dist_is_the_nearest_centre_in_blocks(monkeypatch) -> None:
    from annotator.core.identity import nearest

    monkeypatch.setattr(nearest, "BLOCK", 4)  # 8 centres a block, several blocks each way
    rng = np.random.default_rng(5)
    Q = rng.normal(0, 0.05, (300, 128)).astype(np.float16)
    C = rng.normal(0, 0.05, (37, 128)).astype(np.float32)
    want = np.sqrt(((Q.astype(np.float64)[:, None] - C[None]) ** 2).sum(2)).min(1)
    assert np.abs(nearest.min_dist(Q, C) - want).max() < 1e-5
    assert np.isinf(nearest.min_dist(Q, C[:0])).all() and nearest.min_dist(Q[:0], C).shape == (0,)
