"""A drawn project whose face vectors a test places itself, and what a refresh of it stores:
the helpers the identity-check tests share (incremental refresh == full refresh == exact
rule)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from annotator.core.identity import identity_check as ic
from annotator.core.identity import rule
from annotator.core.importer import import_source
from annotator.core.scan import scan
from annotator.demo.dataset import generate_demo
from annotator.store import embeddings as emb
from annotator.store import identity_check as ic_store
from annotator.store.db import open_project

MODEL = "dlib_resnet_v1/crop150"  # a model id the check knows (dlib's metric)


def scanned_demo(d: Path, identities: int, faces_per_identity: tuple[int, int], seed: int) -> Path:
    """A drawn demo imported and scanned into ``d/p.db`` (nothing embedded yet)."""
    r = generate_demo(
        d / "demo", identities=identities, faces_per_identity=faces_per_identity, seed=seed
    )
    db = d / "p.db"
    with open_project(db, create=True) as p:
        import_source(p, "msceleb", r.faces_tsv)
        scan(p, workers=1)
    return db


def copy_of(scanned: Path, tmp: Path) -> Path:
    """A copy of the project ``scanned`` in ``tmp`` (each test changes its own)."""
    db = tmp / "p.db"
    shutil.copy(scanned, db)
    return db


def faces_by_identity(p) -> dict[int, list[int]]:
    """identity id -> its decodable faces, ascending."""
    out: dict[int, list[int]] = {}
    for f, i in p.conn.execute(
        "SELECT f.id, f.identity_id FROM faces f JOIN face_hashes h ON h.face_id = f.id "
        "WHERE h.corrupt IS NULL ORDER BY f.identity_id, f.id"
    ):
        out.setdefault(int(i), []).append(int(f))
    return out


def embed(p, faces: list[int], vecs: np.ndarray) -> None:
    emb.insert_embeddings(
        p, MODEL, [(f, "ok", None, emb.to_blob(v)) for f, v in zip(faces, vecs, strict=True)]
    )


def state(p) -> dict:
    """Everything a refresh stores."""
    ids, cen, vals = ic_store.load_centres(p)
    return {
        "flags": ic_store.kind_flag_rows(p, ic.KIND),
        "looks": sorted(p.conn.execute("SELECT * FROM face_looks_like").fetchall()),
        "pairs": [(x.a_id, x.b_id, x.distance) for x in ic_store.same_person(p)],
        "centres": (ids.tolist(), cen.tolist(), np.round(vals, 9).tolist()),
        "reach": p.conn.execute("SELECT * FROM candidate_reach ORDER BY 1").fetchall(),
        "suspicion": p.conn.execute("SELECT id, suspicion FROM identities ORDER BY 1").fetchall(),
    }


def exact_check(p) -> rule.IdentityCheck:
    """The exact rule (every face against every centre) on the project's vectors and labels."""
    face, ident, vec = emb.load_embeddings(p, MODEL)
    labels = dict(p.conn.execute("SELECT id, label FROM faces").fetchall())
    use = np.array([labels[int(x)] not in ic.NOT_IN_CENTRE for x in face])
    protect = np.array([labels[int(x)] == "correct" for x in face])
    return rule.check(face, ident, vec, ic.DLIB, exact=True, use=use, protect=protect)


def refreshed(db: Path, tmp: Path):
    """An incremental refresh of ``db`` and a full one of a copy: (the incremental's state,
    the full's, the exact rule's check, (the two Refresh results))."""
    with open_project(db) as p:
        r = ic.refresh(p)
        assert r is not None and r.mode == "incremental"
        got = state(p)
    copy = tmp / "full.db"
    shutil.copy(db, copy)
    with open_project(copy) as p:
        full = ic.refresh(p, full=True)
        assert full is not None and full.mode == "full"
        want = state(p)
        check = exact_check(p)
    copy.unlink()
    return got, want, check, (r, full)


def unit(rng, n: int = 1) -> np.ndarray:
    """``n`` random unit vectors (rows) of the model's 128 dimensions."""
    u = rng.normal(0, 1, (n, 128))
    return u / np.linalg.norm(u, axis=1)[:, None]


def orthonormal(rng, k: int) -> list[np.ndarray]:
    """``k`` random unit vectors at right angles to each other (Gram-Schmidt, in order)."""
    e = list(unit(rng, k))
    for i in range(1, k):
        x = e[i] - sum((e[i] @ e[j]) * e[j] for j in range(i))
        e[i] = x / np.linalg.norm(x)
    return e


def around(rng, centre: np.ndarray, n: int, r=0.3) -> np.ndarray:
    """``n`` faces ``r`` (a radius, or one per pair) from ``centre`` in pairs opposite each
    other (one at the centre when ``n`` is odd): their mean, and any trimmed mean of them, is
    the centre."""
    u = unit(rng, n // 2) * np.reshape(r, (-1, 1))
    return np.vstack([centre + u, centre - u, np.tile(centre, (n % 2, 1))])
