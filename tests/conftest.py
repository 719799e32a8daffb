"""Test-wide setup: Qt renders offscreen, so GUI tests need no display."""

import os
import tempfile

import pytest

from annotator.store import faces as faces_store
from annotator.store.db import Project, open_project

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")
# the embedding engine's graph cache (core/identity/engine.py): a folder of this test run, not
# the user's ~/.cache (worker processes inherit it)
_CACHE = tempfile.TemporaryDirectory(prefix="annotator-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE.name


def _build_project(
    path,
    per_identity,
    source="/x/faces.tsv",
    fmt="msceleb",
    ranked=False,
    face_ref=None,
    names=None,
) -> Project:
    """A project made through the store API (as an import makes it): one source and
    identities with ``per_identity`` faces each — a list (keys ``m.1``, ``m.2``, ...) or a
    dict key -> count. Face ids run 1, 2, ... in identity order and each face's record number
    is its id (and its search rank too with ``ranked``); ``face_ref`` goes on every face,
    ``names`` (key -> English name) on the identities."""
    if not isinstance(per_identity, dict):
        per_identity = {f"m.{i}": n for i, n in enumerate(per_identity, start=1)}
    p = open_project(path, create=True)
    src = faces_store.add_source(p, source, fmt, 1, 0.0, "f")
    with p.tx():
        ids = faces_store.create_identities(p, per_identity)
        rows, rec = [], 0
        for k, n in per_identity.items():
            for _ in range(n):
                rec += 1
                rank = rec if ranked else None
                rows.append(
                    (ids[k], src.id, rec, None, None, None, rank, None, None, face_ref)
                    + (None,) * 4
                )
        faces_store.insert_faces(p, rows)
        faces_store.refresh_face_counts(p, ids.values())
        if names:
            faces_store.insert_names(p, [(ids[k], "en", n) for k, n in names.items()])
    return p


@pytest.fixture
def build_project():
    """The project builder itself (for fixtures that choose the path and close it)."""
    return _build_project


@pytest.fixture
def make_project(tmp_path):
    """``make_project([3, 2])`` -> an open project (closed after the test), see _build_project."""
    made: list[Project] = []

    def make(per_identity, name="p.db", **kw) -> Project:
        p = _build_project(tmp_path / name, per_identity, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
