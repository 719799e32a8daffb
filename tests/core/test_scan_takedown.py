"""Issue 20 finding 13 (first part): a takedown while a scan hashes no longer aborts the scan
("no face with id N"); the faces taken down are simply not hashed."""

from __future__ import annotations

from annotator.core import scan as scan_mod
from annotator.core.review.takedown import takedown
from annotator.store.db import open_project
from tests.core.test_pack import make_home


def test_a_takedown_during_the_scan(tmp_path, monkeypatch):
    db = make_home(tmp_path)
    monkeypatch.setattr(scan_mod, "CHUNK", 4)
    state = {"done": False}

    def progress(done: int, total: int) -> None:
        if done and not state["done"]:  # after the first chunk: another process takes down d
            state["done"] = True
            with open_project(db) as other:
                takedown(other, "d", "lead", force_unscanned=True)

    with open_project(db) as p:
        res = scan_mod.scan(p, workers=1, progress=progress)
        assert state["done"] and res.hashed == 9
        assert p.conn.execute("SELECT count(*) FROM face_hashes").fetchone() == (9,)
        assert p.conn.execute("PRAGMA foreign_key_check").fetchall() == []
