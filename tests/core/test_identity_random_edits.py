"""Random edits (re-embedded faces, labels wrong / unusable / correct / cleared, faces moved to
another identity) on identities placed so that the look-alike test reads faces often: after
each, the incremental refresh stores what a full refresh stores and flags what the exact rule
flags (seeded; written in review of the nearest-faces test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from annotator.core.identity import identity_check as ic
from annotator.core.review import ops
from annotator.store.db import open_project
from tests.core.identity_project import embed, exact_check, faces_by_identity, scanned_demo, state


def _unit(rng, n=1):
    u = rng.normal(0, 1, (n, 128))
    return u / np.linalg.norm(u, axis=1)[:, None]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return scanned_demo(tmp_path_factory.mktemp("edits"), 8, (8, 14), 4)


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
        faces = faces_by_identity(p)
        ids = sorted(faces)
        C = 0.36 * _unit(rng, len(ids))
        for n, i in enumerate(ids):
            embed(p, faces[i], [_vec(rng, C, n) for _f in faces[i]])
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
                embed(p, pick, [_vec(rng, C, k) for _f in pick])
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
            got = state(p)
            mode = r.mode
        copy = tmp_path / "full.db"
        shutil.copy(db, copy)
        with open_project(copy) as p:
            ic.refresh(p, full=True)
            want = state(p)
            ex = exact_check(p)
        copy.unlink()
        assert got["flags"] == want["flags"], (seed, step, mode)
        assert got["looks"] == want["looks"], (seed, step, mode)
        assert got["pairs"] == want["pairs"], (seed, step, mode)
        assert got["centres"] == want["centres"], (seed, step, mode)
        assert got["flags"] == sorted(ex.flag_rows()), (seed, step, mode)
    assert asked > 0  # the nearest-faces test ran
