"""Read-only projects (a shared folder, a read-only mount): opened for everything that only
reads; a write is one clear line. The tests run as root (who may write any file), so "not
writable" is the project's own answer (``db.writable``) made False; the fallback to an
immutable connection is reached by refusing read-only mode as a read-only folder does."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from annotator.core.review import ops
from annotator.model import AnnotatorError
from annotator.store import db
from annotator.store.db import ReadOnlyProject, open_project


@pytest.fixture
def ro_project(tmp_path, build_project, monkeypatch):
    p = build_project(tmp_path / "p.db", [3, 2])
    ops.label_faces(p, [1, 2], "correct", "alice")
    p.close()
    monkeypatch.setattr(db, "writable", lambda path: False)
    return tmp_path / "p.db"


def test_read_only_project_reads_and_refuses_writes(ro_project):
    before = ro_project.read_bytes()
    with open_project(ro_project) as p:
        assert p.read_only
        assert p.conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 5
        with pytest.raises(ReadOnlyProject, match="read-only here"):
            ops.label_faces(p, [3], "correct", "alice")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            p.conn.execute("DELETE FROM faces")  # SQLite itself refuses, not only tx()
    assert ro_project.read_bytes() == before


def test_read_only_commands_work_and_writes_are_one_line(ro_project, tmp_path):
    r = CliRunner()
    for args in (["info", "-p", str(ro_project)], ["stats", "-p", str(ro_project)]):
        res = r.invoke(cli, args)
        assert res.exit_code == 0, res.output
    res = r.invoke(cli, ["flags", "-p", str(ro_project)])
    assert res.exit_code == 0, res.output
    labels = tmp_path / "l.tsv"
    labels.write_text("3\tcorrect\n")
    res = r.invoke(cli, ["labels", "import", str(labels), "-p", str(ro_project), "--reviewer", "b"])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and "read-only here" in res.output


def test_immutable_when_read_only_mode_cannot_open(ro_project, monkeypatch):
    real = db._connect
    modes = []

    def connect(path, mode=None):
        modes.append(mode)
        if mode == "ro":  # what a WAL file in a folder SQLite cannot create -shm in does
            raise sqlite3.OperationalError("unable to open database file")
        return real(path, mode)

    monkeypatch.setattr(db, "_connect", connect)
    with open_project(ro_project) as p:
        assert p.read_only and modes == ["ro", "immutable"]
        assert (
            p.conn.execute("SELECT count(*) FROM faces WHERE label = 'correct'").fetchone()[0] == 2
        )


def test_read_only_file_of_an_older_version_is_refused_in_one_line(ro_project):
    with sqlite3.connect(ro_project) as c:  # as if made before the last step
        c.execute("DELETE FROM _sqlite_migrations WHERE name = 'm014_provenance'")
    with pytest.raises(AnnotatorError, match="made by an older annotator"):
        open_project(ro_project)
