"""Issue 20 finding 4: a crafted schema row named like SQLite's own objects (``sqlite_x``) is
refused by exact name, in a project and in a reviewer package, before anything runs."""

import sqlite3

import pytest

from annotator.core.importer import import_source
from annotator.core.review import merge as merge_core
from annotator.core.review import ops
from annotator.core.review import pack as core
from annotator.model import AnnotatorError
from annotator.store.db import open_project
from tests.core.test_pack import make_home

CRAFTED = [
    (
        "trigger",
        "sqlite_x",
        "events",
        "CREATE TRIGGER sqlite_x AFTER INSERT ON events BEGIN DELETE FROM face_hashes;"
        " UPDATE reviewers SET name='forged'||id; END",
    ),
    ("view", "sqlite_v", "sqlite_v", "CREATE VIEW sqlite_v AS SELECT * FROM faces"),
    (
        "trigger",
        "sqlite_stat9",
        "meta",
        "CREATE TRIGGER sqlite_stat9 AFTER UPDATE ON meta BEGIN DELETE FROM faces; END",
    ),
]


def _craft(db, row) -> None:
    c = sqlite3.connect(db)
    c.execute("PRAGMA writable_schema = ON")
    c.execute(
        "INSERT INTO sqlite_schema(type, name, tbl_name, rootpage, sql) VALUES (?,?,?,0,?)", row
    )
    c.commit()
    c.close()


@pytest.mark.parametrize("row", CRAFTED, ids=[r[1] for r in CRAFTED])
def test_crafted_sqlite_named_object_is_refused(tmp_path, row):
    db = make_home(tmp_path)
    with open_project(db) as p:
        ops.label_faces(p, [1], "correct", "alice")
    _craft(db, row)
    with pytest.raises(AnnotatorError, match="schema"):
        open_project(db)
    c = sqlite3.connect(db)
    assert c.execute("SELECT name FROM reviewers").fetchall() == [("alice",)]


def test_crafted_trigger_in_a_package_is_refused(tmp_path):
    db = make_home(tmp_path)
    with open_project(db) as p:
        core.pack(p, core.select_identities(p, ["a"]), tmp_path / "pk.db")
    _craft(tmp_path / "pk.db", CRAFTED[0])
    with open_project(db) as p, pytest.raises(AnnotatorError, match="schema"):
        merge_core.merge(p, tmp_path / "pk.db")


def test_sqlite_own_objects_are_accepted(tmp_path):
    db = make_home(tmp_path)
    c = sqlite3.connect(db)
    c.execute("ANALYZE")  # sqlite_stat1 (and sqlite_stat4 where compiled in)
    c.commit()
    c.close()
    with open_project(db) as p:
        assert p.conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 12
        import_source(p, "folder", tmp_path / "faces")  # writes work after ANALYZE
