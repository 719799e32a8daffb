"""Test-wide setup: Qt renders offscreen, so GUI tests need no display."""

import os

import pytest

from annotator.store import faces as faces_store
from annotator.store.db import Project, open_project

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.qpa.*=false")


def build_project(path, per_identity, source="/x/faces.tsv", fmt="msceleb") -> Project:
    """A project made through the store API (as an import makes it): one source, identities
    ``m.1``, ``m.2``, ... with ``per_identity[i]`` faces each; face ids run 1, 2, ... in
    identity order and each face's record number is its id."""
    p = open_project(path, create=True)
    src = faces_store.add_source(p, source, fmt, 1, 0.0, "f")
    with p.tx():
        keys = [f"m.{i}" for i in range(1, len(per_identity) + 1)]
        ids = faces_store.create_identities(p, keys)
        rows, rec = [], 0
        for k, n in zip(keys, per_identity, strict=True):
            for _ in range(n):
                rec += 1
                rows.append((ids[k], src.id, rec) + (None,) * 11)
        faces_store.insert_faces(p, rows)
        faces_store.refresh_face_counts(p, ids.values())
    return p


@pytest.fixture
def make_project(tmp_path):
    """``make_project([3, 2])`` -> an open project (closed after the test), see build_project."""
    made: list[Project] = []

    def make(per_identity, name="p.db", **kw) -> Project:
        p = build_project(tmp_path / name, per_identity, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
