"""Crafted project files (issue 13 item 13): a schema the migrations did not make is refused
before anything runs; bad locators give a per-face error, never MemoryError/TypeError."""

import io
import sqlite3

import pytest
from click.testing import CliRunner
from PIL import Image

from annotator.cli.main import cli
from annotator.core.importer import import_source
from annotator.core.infra.access import FaceBytes, FaceReadError
from annotator.formats import msceleb
from annotator.model import AnnotatorError
from annotator.store.db import expected_schema, open_project


def jpeg(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (12, 12), (i * 40 % 256, 9, 9)).save(b, "JPEG")
    return b.getvalue()


@pytest.fixture
def project_file(tmp_path):
    src = tmp_path / "f.tsv"
    with open(src, "wb") as f:
        for i in range(6):
            msceleb.write_row(f, f"m.{i % 2}", i, None, None, None, None, jpeg(i))
    db = tmp_path / "p.db"
    with open_project(db, create=True) as p:
        import_source(p, "msceleb", src)
    return db


def _raw(db, *sql):
    c = sqlite3.connect(db)
    for s in sql:
        c.execute(s)
    c.commit()
    c.close()


@pytest.mark.parametrize(
    "sql, what",
    [
        (
            "CREATE TRIGGER forge AFTER INSERT ON events BEGIN"
            " UPDATE batches SET reviewer_id = 1; END",
            "trigger 'forge'",
        ),
        (
            "CREATE TRIGGER wipe AFTER UPDATE ON meta BEGIN DELETE FROM face_hashes; END",
            "trigger 'wipe'",
        ),
        (
            "CREATE TRIGGER on_migrate AFTER INSERT ON _sqlite_migrations BEGIN"
            " DELETE FROM faces; END",
            "trigger 'on_migrate'",
        ),
        ("CREATE VIEW v AS SELECT * FROM faces", "view 'v'"),
        ("CREATE TABLE extra (x)", "table 'extra'"),
        ("CREATE INDEX sneaky ON faces (label, rank)", "index 'sneaky'"),
        ("DROP INDEX faces_label", "index 'faces_label' is missing"),
    ],
)
def test_a_schema_the_migrations_did_not_make_is_refused(project_file, sql, what):
    _raw(project_file, sql)
    faces_before = sqlite3.connect(project_file).execute("SELECT count(*) FROM faces").fetchone()
    with pytest.raises(AnnotatorError, match="schema") as e:
        open_project(project_file)
    assert what in str(e.value)
    r = CliRunner().invoke(cli, ["info", "-p", str(project_file)])
    assert r.exit_code == 1 and r.output.count("\n") == 1 and r.output.startswith("error: ")
    c = sqlite3.connect(project_file)
    assert c.execute("SELECT count(*) FROM faces").fetchone() == faces_before
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_table_defined_differently_is_refused(project_file):
    _raw(
        project_file,
        "PRAGMA writable_schema = ON",
        "UPDATE sqlite_master SET sql = replace(sql, 'note        TEXT', 'note TEXT DEFAULT 1')"
        " WHERE name = 'events'",
    )
    with pytest.raises(AnnotatorError, match="'events' is defined differently"):
        open_project(project_file)


def test_expected_schema_is_what_a_new_project_has(tmp_path):
    want = expected_schema()
    assert ("table", "faces") in want and not any(t == "view" for t, _ in want)
    # the only triggers are the identity check's (m018): they mark identities to refresh
    assert {n for t, n in want if t == "trigger"} == {
        "centres_stale_embedding_in",
        "centres_stale_embedding_up",
        "centres_stale_embedding_out",
        "centres_stale_face_up",
        "centres_stale_face_out",
    }
    with open_project(tmp_path / "new.db", create=True):
        pass
    with open_project(tmp_path / "new.db"):  # and it opens again
        pass


@pytest.mark.parametrize(
    "sql, reason",
    [
        ("UPDATE faces SET length = 1000000000000000 WHERE id = 2", "past the end"),
        ("UPDATE faces SET length = -5 WHERE id = 2", "bad locator"),
        ("UPDATE faces SET offset = 'abc' WHERE id = 2", "bad locator"),
        ("UPDATE faces SET length = 1.5 WHERE id = 2", "bad locator"),
        ("UPDATE faces SET offset = 9223372036854775807 WHERE id = 2", "past the end"),
    ],
)
def test_bad_locators_give_a_per_face_error(project_file, sql, reason):
    _raw(project_file, sql)
    with open_project(project_file) as p, FaceBytes(p) as fb:
        got = fb.read_many([1, 2, 3], errors="return")
        assert isinstance(got[0], bytes) and isinstance(got[2], bytes)
        assert isinstance(got[1], FaceReadError) and reason in str(got[1])
        assert str(got[1]).startswith("f.tsv:2: ")


def test_folder_relpath_that_leaves_the_root_is_refused(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.jpg").write_bytes(jpeg(1))
    (tmp_path / "secret.jpg").write_bytes(jpeg(2))
    db = tmp_path / "p.db"
    with open_project(db, create=True) as p:
        import_source(p, "folder", root)
    _raw(db, "UPDATE faces SET relpath = '../secret.jpg', length = NULL, offset = NULL")
    with open_project(db) as p, FaceBytes(p) as fb:
        (e,) = fb.read_many([1], errors="return")
        assert isinstance(e, FaceReadError) and "leaves the source folder" in str(e)


def test_wrong_types_in_hash_columns_are_rehashed_not_a_crash(project_file):
    from annotator.core.scan import scan

    with open_project(project_file) as p:
        scan(p, workers=1)
        good = dict(p.conn.execute("SELECT face_id, phash FROM face_hashes"))
    _raw(
        project_file,
        "UPDATE face_hashes SET phash = 'zz' WHERE face_id = 1",
        "UPDATE face_hashes SET dhash = X'0102', sha256 = 'text' WHERE face_id = 2",
        "UPDATE face_hashes SET width = 99999999999 WHERE face_id = 3",
        "UPDATE faces SET rank = 'r' WHERE id = 4",
        "UPDATE face_hashes SET height = 'h', width = 'w'",
        "UPDATE faces SET label = 'correct'",
    )
    out = project_file.parent / "out"  # an export before the rescan: sizes not trusted
    r = CliRunner().invoke(
        cli, ["export", "-p", str(project_file), "--out", str(out), "--format", "rec", "--json"]
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["scan", "-p", str(project_file), "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    with open_project(project_file) as p:
        assert dict(p.conn.execute("SELECT face_id, phash FROM face_hashes")) == good
        assert (
            p.conn.execute("SELECT typeof(sha256) FROM face_hashes WHERE face_id = 2").fetchone()[0]
            == "blob"
        )
