"""The identity check kept up to date in a project (core/identity/identity_check.py): stored
centres, refreshes that recompute only what changed and end where a full recomputation ends,
labels that keep a face out of its centre, and vectors of a model the check does not know."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from annotator.core.identity import identity_check as ic
from annotator.core.importer import import_source
from annotator.core.review import ops
from annotator.core.scan import scan
from annotator.demo.dataset import generate_demo
from annotator.store import embeddings as emb
from annotator.store import identity_check as ic_store
from annotator.store.db import open_project

MODEL = "dlib_resnet_v1/crop150"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, dict[int, np.ndarray]]:
    """A scanned demo of 12 people; synthetic vectors by TRUE person (centres ~0.8 apart,
    faces ~0.3 from theirs) for every face but those of the last identity, which come later
    (returned: face id -> vector)."""
    d = tmp_path_factory.mktemp("refresh")
    r = generate_demo(d / "demo", identities=12, faces_per_identity=(8, 14), seed=3)
    truth = json.loads(Path(r.truth_json).read_text())
    db = d / "p.db"
    rng = np.random.default_rng(0)
    with open_project(db, create=True) as p:
        import_source(p, "msceleb", r.faces_tsv)
        scan(p, workers=1)
        centres = {k: rng.normal(0, 0.8 / 16, 128) for k in truth["identities"]}
        rows = p.conn.execute(
            "SELECT f.id, f.record, i.key FROM faces f JOIN identities i ON i.id = f.identity_id "
            "JOIN face_hashes h ON h.face_id = f.id WHERE h.corrupt IS NULL ORDER BY f.id"
        ).fetchall()
        last = max(k for _f, _r, k in rows)
        now, later = [], {}
        for fid, rec, key in rows:
            true = truth["true_identity"].get(str(rec), key)
            noise = rng.normal(0, 1, 128)
            v = centres[true] + 0.3 * noise / np.linalg.norm(noise) * np.exp(rng.normal(0, 0.2))
            if key == last:
                later[fid] = v
            else:
                now.append((fid, "ok", None, emb.to_blob(v)))
        emb.insert_embeddings(p, MODEL, now)
    return db, later


def _state(p) -> dict:
    flags = ic_store.kind_flag_rows(p, ic.KIND)
    looks = p.conn.execute("SELECT face_id, identity_id, margin FROM face_looks_like").fetchall()
    ids, cen, vals = ic_store.load_centres(p)
    susp = p.conn.execute("SELECT id, suspicion, flagged_count FROM identities").fetchall()
    return {
        "flags": flags,
        "looks": sorted(looks),
        "pairs": [(x.a_id, x.b_id, x.distance) for x in ic_store.same_person(p)],
        "centres": (ids.tolist(), cen.tolist(), np.round(vals, 9).tolist()),
        "suspicion": sorted((i, round(s or 0, 6), n) for i, s, n in susp),
    }


def _full_state(db: Path, tmp: Path) -> dict:
    copy = tmp / "full.db"
    shutil.copy(db, copy)
    with open_project(copy) as p:
        r = ic.refresh(p, full=True)
        assert r is not None and r.mode == "full"
        return _state(p)


def test_refresh_recomputes_only_what_changed_and_ends_like_a_full_one(base, tmp_path) -> None:
    src, later = base
    db = tmp_path / "p.db"
    shutil.copy(src, db)
    with open_project(db) as p:
        first = ic.refresh(p)
        assert first is not None and first.mode == "full" and first.suspect
        n_ids = first.recomputed
        again = ic.refresh(p)  # nothing changed: nothing recomputed
        assert again is not None and again.mode == "none" and again.suspect == first.suspect
        # one more identity embedded: it (and the identities its centre can reach) only
        emb.insert_embeddings(p, MODEL, [(f, "ok", None, emb.to_blob(v)) for f, v in later.items()])
        assert ic_store.stale_identities(p)
        inc = ic.refresh(p)
        assert inc is not None and inc.mode == "incremental" and inc.recomputed < n_ids + 1
        assert not ic_store.stale_identities(p)
        got = _state(p)
    assert got == _full_state(db, tmp_path)
    # a face moved to another identity and one labelled wrong identity: the same holds
    with open_project(db) as p:
        a, b = (i for (i,) in p.conn.execute("SELECT id FROM identities ORDER BY id LIMIT 2"))
        fa = [f for (f,) in p.conn.execute("SELECT id FROM faces WHERE identity_id = ?", (a,))]
        ops.move_faces(p, fa[:1], b, "ann")
        ops.label_faces(p, fa[1:2], "wrong_identity", "ann")
        assert set(ic_store.stale_identities(p)) == {a, b}
        inc = ic.refresh(p)
        assert inc is not None and inc.mode == "incremental"
        got = _state(p)
    assert got == _full_state(db, tmp_path)


def test_after_a_takedown_the_next_refresh_measures_everything(base, tmp_path) -> None:
    src, _later = base
    db = tmp_path / "p.db"
    shutil.copy(src, db)
    with open_project(db) as p:
        assert ic.refresh(p) is not None
        key = p.conn.execute("SELECT key FROM identities ORDER BY id LIMIT 1").fetchone()[0]
    out = CliRunner().invoke(cli, ["takedown", key, "-p", str(db), "-r", "ann", "--yes"])
    assert out.exit_code == 0, out.output
    with open_project(db) as p:
        r = ic.refresh(p)
        assert r is not None and r.mode == "full"
        assert not ic_store.stale_identities(p)


def test_a_face_labelled_correct_is_never_flagged(base, tmp_path) -> None:
    src, _later = base
    db = tmp_path / "p.db"
    shutil.copy(src, db)
    with open_project(db) as p:
        r = ic.refresh(p)
        assert r is not None and r.suspect
        ops.label_faces(p, r.suspect[:1], "correct", "ann")
        r2 = ic.refresh(p)
        assert r2 is not None and r2.mode == "incremental"
        assert r.suspect[0] not in r2.suspect and set(r2.suspect) == set(r.suspect[1:])


def test_vectors_of_an_unknown_model_are_one_line(base, tmp_path) -> None:
    src, _later = base
    db = tmp_path / "p.db"
    shutil.copy(src, db)
    with open_project(db) as p:
        face, _i, vec = emb.load_embeddings(p, MODEL)
        emb.insert_embeddings(
            p,
            "othernet/v9",
            [(int(f), "ok", None, v.tobytes()) for f, v in zip(face, vec, strict=True)],
        )
    out = CliRunner().invoke(cli, ["scan", "-p", str(db)])
    assert out.exit_code != 0
    line = out.output.strip().splitlines()[-1]
    assert "unknown model 'othernet/v9'" in line and "re-run `annotator embed`" in line
    assert "Traceback" not in out.output


def test_a_full_refresh_measured_and_judged_on_worker_processes_ends_the_same(
    base, tmp_path, monkeypatch
) -> None:
    src, _later = base
    db = tmp_path / "p.db"
    shutil.copy(src, db)
    want = _full_state(db, tmp_path)  # one range, measured here
    pools = []
    real_pool = ic.process_pool

    def counted(workers: int, *init):
        pools.append(workers)
        return real_pool(workers, *init)

    monkeypatch.setattr(ic, "CHUNK_FACES", 40)
    monkeypatch.setattr(ic, "PARALLEL_RANGES", 2)
    monkeypatch.setattr(ic, "usable_cores", lambda: 2)
    monkeypatch.setattr(ic, "process_pool", counted)
    with open_project(db) as p:
        assert len(ic_store.identity_ranges(p, ic.CHUNK_FACES)) > 2
        r = ic.refresh(p, full=True)
        assert r is not None and r.mode == "full"
        got = _state(p)
    assert pools == [2, 2]  # measuring, then judging
    assert got == want
