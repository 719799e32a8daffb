"""suspect_identity flags and same-person pairs (core/identity/identity_check.py): the rule on synthetic
vectors, and its place in a project (scan flag step, end of embed, flags --json, takedown)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from annotator.core.dedup import flags as flag_rules
from annotator.core.identity import identity_check as ic
from annotator.core.importer import import_source
from annotator.core.scan import scan, update_flags
from annotator.demo import generate_demo
from annotator.store import embeddings as emb
from annotator.store import identity_check as ic_store
from annotator.store.db import open_project


def _clusters(rng, n_ids: int, per: int, spread: float = 0.05, sep: float = 0.5):
    centres = rng.normal(0, sep / np.sqrt(128), (n_ids, 128)) * np.sqrt(128)
    centres /= np.linalg.norm(centres, axis=1)[:, None] / sep
    ident = np.repeat(np.arange(1, n_ids + 1), per)
    vec = centres[ident - 1] + rng.normal(0, spread / np.sqrt(128), (len(ident), 128))
    return ident, vec, centres


def test_a_face_of_another_identity_is_flagged_with_that_identity() -> None:
    rng = np.random.default_rng(1)
    ident, vec, centres = _clusters(rng, 6, 12)
    vec[3] = centres[4] + rng.normal(0, 0.01, 128)  # filed under 1, looks like 5
    face = np.arange(100, 100 + len(ident))
    res = ic.check(face, ident, vec.astype(np.float16))
    assert res.suspects() == [(103, 5, pytest.approx(res.margin[3], abs=1e-6))]
    assert res.margin[3] > 0.3 and res.z[3] > ic.SUSPECT_Z
    assert res.same_person == []  # six well-separated people
    # a far face that looks like nobody (no closer centre) is not flagged
    u = rng.normal(0, 1, 128)
    q, _ = np.linalg.qr(centres.T)
    u -= q @ (q.T @ u)  # orthogonal to every centre: far from its own, farther from the rest
    vec[3] = centres[0] + u / np.linalg.norm(u)
    res = ic.check(face, ident, vec)
    assert res.z[3] > ic.SUSPECT_Z and res.margin[3] < 0 and len(res.suspect) == 0


def test_small_identities_are_not_judged_and_order_does_not_matter() -> None:
    rng = np.random.default_rng(2)
    ident, vec, centres = _clusters(rng, 3, ic.MIN_FACES - 1)
    vec[0] = centres[1]
    res = ic.check(np.arange(len(ident)), ident, vec)
    assert len(res.suspect) == 0 and np.isnan(res.z).all()
    ident, vec, centres = _clusters(rng, 4, 8)
    vec[9] = centres[3]  # filed under 2
    perm = rng.permutation(len(ident))
    a = ic.check(np.arange(len(ident)), ident, vec)
    b = ic.check(np.arange(len(ident))[perm], ident[perm], vec[perm])
    assert a.suspects() == sorted(b.suspects()) == [(9, 4, pytest.approx(a.margin[9]))]


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
        emb.insert_embeddings(p, "test/model", rows)
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
        assert flag_rules.KINDS.index("suspect_identity") == len(flag_rules.KINDS) - 1
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
        va = np.median(emb.load_embeddings(p, "test/model", [ia])[2].astype(np.float32), 0)
        fb, _i, vb = emb.load_embeddings(p, "test/model", [ib])
        rng = np.random.default_rng(5)
        with p.tx():
            emb.insert_embeddings(
                p,
                "test/model",
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


def test_at_most_three_flags_per_identity_the_largest_margins() -> None:
    rng = np.random.default_rng(6)
    ident, vec, centres = _clusters(rng, 4, 30)
    # five faces of person 2 filed under 1, ever closer to 2
    for k, t in enumerate((0.5, 0.6, 0.7, 0.8, 0.9)):
        vec[k] = (1 - t) * centres[0] + t * centres[1]
    res = ic.check(np.arange(len(ident)), ident, vec)
    assert [f for f, _o, _m in res.suspects()] == [2, 3, 4]  # 3 = max(3, 10 % of 30)
    assert {o for _f, o, _m in res.suspects()} == {2}


def test_the_project_settings_drive_the_check_and_the_refresh_records_them(demo_project) -> None:
    from annotator import settings

    db, truth = demo_project
    with open_project(db) as p:
        assert ic.refresh(p) is not None
        flagged = p.conn.execute("SELECT count(*) FROM flags WHERE kind = 'suspect_identity'")
        assert flagged.fetchone()[0] == len(truth["true_identity"])
        assert settings.used(p)["embed"]["values"]["suspect_margin"] == 0.32
        settings.set_value(p, "suspect_margin", "100")  # nothing is that far from its own
        assert settings.stale(p) == {"suspect_margin": 0.32}
        ic.refresh(p)
        flagged = p.conn.execute("SELECT count(*) FROM flags WHERE kind = 'suspect_identity'")
        assert flagged.fetchone()[0] == 0
        assert settings.used(p)["embed"]["values"]["suspect_margin"] == 100.0
        assert settings.stale(p) == {}
