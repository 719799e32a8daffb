"""CLI: `annotator takedown` removes or lists the copies of the person's photos under other
identities and says how many; it refuses while faces are unscanned unless --force-unscanned."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from tests.core.test_takedown_copies import OTHER, PERSON, THIRD, write_data


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_copies")
    write_data(base / "data")
    db = base / "p.db"
    r = run("import", "folder", base / "data", "--project", db)
    assert r.exit_code == 0, r.output
    r = run("scan", "--project", db)
    assert r.exit_code == 0, r.output
    return db


@pytest.fixture
def db(scanned, tmp_path):
    shutil.copy(scanned, tmp_path / "p.db")
    return tmp_path / "p.db"


def test_takedown_removes_copies_and_says_how_many(db):
    r = run("takedown", PERSON, "-p", db, "-r", "lead", "--yes")
    assert r.exit_code == 0, r.output
    assert (
        "removed 2 copy(ies) of the person's photos filed under 2 other identity(ies) "
        "(1 byte-identical, 1 verified near copy(ies))" in r.output
    )
    assert PERSON not in r.output  # the key is not echoed back


def test_takedown_json_counts(db):
    r = run("takedown", PERSON, "-p", db, "-r", "lead", "--json", "--yes")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert (d["copies_removed"], d["copies_by_sha256"], d["copies_by_near"]) == (2, 1, 1)
    assert (d["copy_identities"], d["copies_kept"], d["copies"]) == (2, 0, [])


def test_keep_copies_lists_them_and_says_they_remain(db):
    r = run("takedown", PERSON, "-p", db, "-r", "lead", "--yes", "--keep-copies")
    assert r.exit_code == 0, r.output
    assert "kept 2 copy(ies)" in r.output and "REMAIN" in r.output
    assert f"{OTHER}/3.jpg  (sha256)" in r.output and f"{THIRD}/2.jpg  (near)" in r.output
    r = run("takedown", OTHER, "-p", db, "-r", "lead", "--json", "--yes", "--keep-copies")
    assert r.exit_code == 0, r.output  # the copies are still there, under their identity
    assert json.loads(r.output)["faces_removed"] == 4


def test_unscanned_faces_refuse_in_one_line(db, scanned, tmp_path):
    late = tmp_path / "late" / "m.late"
    late.mkdir(parents=True)
    shutil.copy(scanned.parent / "data" / PERSON / "2.jpg", late / "0.jpg")
    r = run("import", "folder", tmp_path / "late", "--project", db)
    assert r.exit_code == 0, r.output
    r = run("takedown", PERSON, "-p", db, "-r", "lead", "--yes")
    assert r.exit_code == 1
    assert r.output.startswith("error: 1 face(s) of the project are not scanned")
    assert r.output.count("\n") == 1
    r = run("takedown", PERSON, "-p", db, "-r", "lead", "--yes", "--force-unscanned")
    assert r.exit_code == 0, r.output
    assert "1 face(s) were not scanned" in r.output


def test_the_confirmation_shows_the_copy_count(db):
    from annotator.cli.takedown_cmd import _copies_note

    assert _copies_note(str(db), PERSON, False) == (
        " (2 copy(ies) of its photos under 2 other identity(ies) will be removed too)"
    )
    assert _copies_note(str(db), PERSON, True).endswith("will be kept and listed)")
    assert _copies_note(str(db), "m.nobody", False) == ""
