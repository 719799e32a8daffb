"""Random edits (re-embedded faces, labels wrong / unusable / correct / cleared, faces moved to
another identity) on identities placed so that the look-alike test reads faces often: after
each, the incremental refresh stores what a full refresh stores and flags what the exact rule
flags (seeded; written in review of the nearest-faces test)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from annotator.core.identity import identity_check as ic
from annotator.core.identity import rule
from annotator.core.importer import import_source
from annotator.core.review import ops
from annotator.core.scan import scan
from annotator.demo.dataset import generate_demo
from annotator.store import embeddings as emb
from annotator.store import identity_check as ic_store
from annotator.store.db import open_project

MODEL = "dlib_resnet_v1/crop150"


def _unit(rng, n=1):
    u = rng.normal(0, 1, (n, 128))
    return u / np.linalg.norm(u, axis=1)[:, None]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("edits")
    r = generate_demo(d / "demo", identities=8, faces_per_identity=(8, 14), seed=4)
    db = d / "p.db"
    with open_project(db, create=True) as p:
        import_source(p, "msceleb", r.faces_tsv)
        scan(p, workers=1)
    return db


def _faces(p):
    out = {}
    for f, i in p.conn.execute(
        "SELECT f.id, f.identity_id FROM faces f JOIN face_hashes h ON h.face_id = f.id "
        "WHERE h.corrupt IS NULL ORDER BY f.identity_id, f.id"
    ):
        out.setdefault(int(i), []).append(int(f))
    return out


def _state(p):
    ids, cen, vals = ic_store.load_centres(p)
    return {
        "flags": ic_store.kind_flag_rows(p, ic.KIND),
        "looks": sorted(p.conn.execute("SELECT * FROM face_looks_like").fetchall()),
        "pairs": sorted(p.conn.execute("SELECT * FROM same_person").fetchall()),
        "centres": (ids.tolist(), np.round(vals, 9).tolist()),
    }


def _vec(rng, C, k):
    """A face of identity k: its centre, or part of the way to another's, with noise."""
    j = int(rng.integers(len(C)))
    lam = rng.choice([0.0, 0.0, 0.3, 0.45, 0.5, 0.55])
    base = C[k] + lam * (C[j] - C[k])
    return base + rng.uniform(0.1, 0.35) * _unit(rng)[0]


@pytest.mark.parametrize("seed", range(6))
def test_random_edits_refresh_exactly(base, tmp_path, seed) -> None:
    rng = np.random.default_rng(seed)
    db = tmp_path / "p.db"
    shutil.copy(base, db)
    asked = 0

    with open_project(db) as p:
        faces = _faces(p)
        ids = sorted(faces)
        C = 0.36 * _unit(rng, len(ids))
        for n, i in enumerate(ids):
            emb.insert_embeddings(
                p, MODEL, [(f, "ok", None, emb.to_blob(_vec(rng, C, n))) for f in faces[i]]
            )
        r = ic.refresh(p)
        assert r.mode == "full"
        asked += r.asked
    for step in range(8):
        with open_project(db) as p:
            op = rng.integers(5)
            k = int(rng.integers(len(ids)))
            i = ids[k]
            cur = [
                int(x) for (x,) in p.conn.execute("SELECT id FROM faces WHERE identity_id=?", (i,))
            ]
            pick = (
                [
                    int(x)
                    for x in rng.choice(cur, min(len(cur), int(rng.integers(1, 4))), replace=False)
                ]
                if cur
                else []
            )
            if op == 0:
                emb.insert_embeddings(
                    p, MODEL, [(f, "ok", None, emb.to_blob(_vec(rng, C, k))) for f in pick]
                )
            elif op == 1:
                ops.label_faces(p, pick, str(rng.choice(["wrong_identity", "unusable"])), "r")
            elif op == 2:
                ops.label_faces(p, pick, "correct", "r")
            elif op == 3:
                ops.label_faces(p, pick, None, "r")
            else:
                to = ids[int(rng.integers(len(ids)))]
                if to != i and pick:
                    ops.move_faces(p, pick, to, "r")
            r = ic.refresh(p)
            asked += r.asked

            got = _state(p)
            mode = r.mode
        copy = tmp_path / "full.db"
        shutil.copy(db, copy)
        with open_project(copy) as p:
            ic.refresh(p, full=True)
            want = _state(p)
            face, ident, vec = emb.load_embeddings(p, MODEL)
            labels = dict(p.conn.execute("SELECT id, label FROM faces").fetchall())
        copy.unlink()
        use = np.array([labels[int(x)] not in ic.NOT_IN_CENTRE for x in face])
        prot = np.array([labels[int(x)] == "correct" for x in face])
        ex = rule.check(face, ident, vec, ic.DLIB, exact=True, use=use, protect=prot)
        assert got["flags"] == want["flags"], (seed, step, mode)
        assert got["looks"] == want["looks"], (seed, step, mode)
        assert got["pairs"] == want["pairs"], (seed, step, mode)
        assert got["centres"] == want["centres"], (seed, step, mode)
        assert got["flags"] == sorted(ex.flag_rows()), (seed, step, mode)
    assert asked > 0  # the nearest-faces test ran
