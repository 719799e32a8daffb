"""Issue 20 finding 5: a kill during `import --restart`'s discard phase must not leave a
source that a plain rerun calls complete while faces are missing."""

from __future__ import annotations

import pytest

from annotator.core import importer
from annotator.model import AnnotatorError
from annotator.store import discard as discard_store
from annotator.store.db import open_project
from tests.core.test_pack import make_home


def test_a_restart_killed_while_discarding_is_never_called_complete(tmp_path, monkeypatch):
    db = make_home(tmp_path)
    folder = tmp_path / "faces"
    monkeypatch.setattr(importer, "DISCARD_CHUNK", 5)
    real = discard_store.discard_faces_chunk
    calls = {"n": 0}

    def killed_after_one_chunk(*a, **kw):
        if calls["n"] == 1:
            raise KeyboardInterrupt  # the process dies here (nothing after runs)
        calls["n"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(discard_store, "discard_faces_chunk", killed_after_one_chunk)
    with open_project(db) as p, pytest.raises(KeyboardInterrupt):
        importer.import_source(p, "folder", folder, restart=True)
    monkeypatch.setattr(discard_store, "discard_faces_chunk", real)
    with open_project(db) as p:
        assert p.conn.execute("SELECT count(*) FROM faces").fetchone() == (7,)
        with pytest.raises(AnnotatorError, match="--restart") as e:
            importer.import_source(p, "folder", folder)  # the plain rerun
        assert "interrupted" in str(e.value)
        res = importer.import_source(p, "folder", folder, restart=True)
        assert (res.imported, res.complete) == (12, True)
        assert p.conn.execute("SELECT count(*) FROM faces").fetchone() == (12,)
        assert p.meta("discarding.1") is None
