"""CLI: the withdrawal ledger (--list), bulk requests (--from: one summary, unknown names
reported, a rerun after a kill finishes the rest and does nothing twice), look-alikes listed
or removed, a package purged by the command takedown prints."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from annotator.demo.dataset import generate_demo


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli_withdraw")
    demo = generate_demo(base / "demo", identities=6, faces_per_identity=(3, 4), seed=5)
    db = base / "p.db"
    for fmt, src in (("msceleb", demo.faces_tsv), ("names", demo.names_tsv)):
        r = run("import", fmt, src, "--project", db)
        assert r.exit_code == 0, r.output
    r = run("scan", "--project", db)
    assert r.exit_code == 0, r.output
    return db


@pytest.fixture
def db(scanned, tmp_path):
    shutil.copy(scanned, tmp_path / "p.db")
    return tmp_path / "p.db"


def keys_and_names(db):
    c = sqlite3.connect(db)
    rows = c.execute(
        "SELECT i.key, min(n.name) FROM identities i JOIN identity_names n"
        " ON n.identity_id = i.id WHERE i.face_count > 0 GROUP BY i.id ORDER BY i.id"
    ).fetchall()
    c.close()
    return rows


def test_list_shows_the_ledger_without_plain_values(db):
    (key, name), *_ = keys_and_names(db)
    assert run("takedown", "--list", "-p", db).output.strip() == "no takedowns"
    r = run("takedown", key, "-p", db, "-r", "lead", "--yes")
    assert r.exit_code == 0, r.output
    r = run("takedown", "--list", "-p", db)
    assert r.exit_code == 0, r.output
    assert "#1 " in r.output and "by lead" in r.output and "1 key, " in r.output
    assert key not in r.output and name not in r.output
    d = json.loads(run("takedown", "--list", "-p", db, "--json").output)
    assert d["takedowns"][0]["digests"]["photo"] >= 1


def test_bulk_requests_one_summary_unknown_reported_rerun_does_nothing_twice(db, tmp_path):
    rows = keys_and_names(db)
    req = tmp_path / "requests.txt"
    req.write_text(
        f"# request of 7 December\n{rows[0][0]}\n{rows[1][1]}\n\nNobody Atall\n{rows[0][0]}\n",
        encoding="utf-8",
    )
    r = run("takedown", "--from", req, "-p", db, "-r", "lead", "--yes")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("2 people to withdraw: ")
    assert "unknown: Nobody Atall" in r.output and "withdrew 2 people" in r.output
    r = run("takedown", "--from", req, "-p", db, "-r", "lead", "--yes")
    assert r.exit_code == 0, r.output
    assert "3 request(s) already carried out" in r.output and "withdrew" not in r.output
    c = sqlite3.connect(db)
    assert c.execute("SELECT count(*) FROM takedowns").fetchone()[0] == 2
    c.close()


def test_bulk_requests_with_a_line_that_is_not_utf8_refuse_naming_it(db, tmp_path):
    """Issue 20: a damaged line used to be read with U+FFFD in it (an unknown request, and the
    rest withdrawn); now the file is refused before anything is removed, naming the line."""
    rows = keys_and_names(db)
    req = tmp_path / "requests.txt"
    req.write_bytes(b"\xef\xbb\xbf" + rows[0][0].encode() + b"\r\n" + rows[1][1].encode()[:-1]
                    + b"\xc3\n")  # fmt: skip
    before = db.read_bytes()
    r = run("takedown", "--from", req, "-p", db, "-r", "lead", "--yes")
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {req}:2: not UTF-8"), r.output
    assert db.read_bytes() == before


KILL_AFTER_FIRST = """
import os, sys
from annotator.core.review import requests, takedown as td
real = td.takedown
def once(*a, **k):
    res = real(*a, **k)
    os._exit(9)  # killed right after the first person's transaction committed
td.takedown = once
from annotator.cli.main import cli
cli(sys.argv[1:])
"""


def test_bulk_killed_midway_then_rerun_finishes_the_rest(db, tmp_path):
    rows = keys_and_names(db)
    req = tmp_path / "requests.txt"
    req.write_text("\n".join(k for k, _n in rows[:3]) + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = ["takedown", "--from", str(req), "-p", str(db), "-r", "lead", "--yes"]
    p = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST, *args], env=env, timeout=120)
    assert p.returncode == 9
    c = sqlite3.connect(db)
    assert c.execute("SELECT count(*) FROM takedowns").fetchone()[0] == 1
    c.close()
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "1 request(s) already carried out" in r.output and "withdrew 2 people" in r.output
    c = sqlite3.connect(db)
    assert c.execute("SELECT count(*) FROM takedowns").fetchone()[0] == 3
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    c.close()


def test_lookalikes_are_listed_then_removed_with_the_flag(db, tmp_path):
    (key, _n), (other, _m), *_ = keys_and_names(db)
    c = sqlite3.connect(db)
    ident = c.execute("SELECT id FROM identities WHERE key = ?", (key,)).fetchone()[0]
    face = c.execute(
        "SELECT min(f.id) FROM faces f JOIN identities i ON i.id = f.identity_id WHERE i.key = ?",
        (other,),
    ).fetchone()[0]
    with c:  # what the identity check writes: this face looks more like `key`
        c.execute(
            "INSERT INTO face_looks_like(face_id, identity_id, margin) VALUES (?, ?, 0.3)",
            (face, ident),
        )
    c.close()
    shutil.copy(db, tmp_path / "q.db")
    r = run("takedown", key, "-p", db, "-r", "lead", "--yes")
    assert r.exit_code == 0, r.output
    assert "probably the same person, filed elsewhere" in r.output and "NOT removed" in r.output
    assert f"face {face} " in r.output
    assert f"still in the project: face {face} " in run("takedown", "--list", "-p", db).output
    r = run(
        "takedown",
        key,
        "-p",
        tmp_path / "q.db",
        "-r",
        "lead",
        "--yes",
        "--include-lookalikes",
        "--json",
    )
    assert json.loads(r.output)["lookalikes_removed"] == 1
    c = sqlite3.connect(tmp_path / "q.db")
    assert c.execute("SELECT count(*) FROM faces WHERE id = ?", (face,)).fetchone()[0] == 0
    c.close()


def test_takedown_names_the_packages_out_and_the_purge_command_works(db, tmp_path):
    (key, _n), (other, _m), *_ = keys_and_names(db)
    pkg = tmp_path / "out.pkg.db"
    r = run("pack", "-p", db, "--identities", f"{key},{other}", "--out", pkg, "--with-images")
    assert r.exit_code == 0, r.output
    r = run("takedown", key, "-p", db, "-r", "lead", "--yes")
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if "--package" in x)
    assert "(with images)" in line and key not in line
    cmd = line.split("purge it: annotator ")[1].replace("KEY", key).split()
    r = run(*cmd)
    assert r.exit_code == 0, r.output
    assert key.encode() not in pkg.read_bytes()
    r = run("merge", pkg, "-p", db)
    assert r.exit_code == 0, r.output


KILL_IN_PACK = """
import os, sys
from annotator.core.review import pack
pack._digest_faces = lambda *a, **k: os._exit(9)  # killed while the faces' bytes go in
from annotator.cli.main import cli
cli(sys.argv[1:])
"""


def test_a_killed_pack_leaves_a_file_the_takedown_names(db, tmp_path):
    (key, _n), *_ = keys_and_names(db)
    out = tmp_path / "half.pkg.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = ["pack", "-p", str(db), "--identities", key, "--out", str(out), "--with-images"]
    p = subprocess.run([sys.executable, "-c", KILL_IN_PACK, *args], env=env, timeout=120)
    assert p.returncode == 9 and not out.exists()
    partial = out.with_name(out.name + ".partial")
    assert partial.exists()
    r = run("takedown", key, "-p", db, "-r", "lead", "--yes", "--json")
    assert json.loads(r.output)["unfinished_packages"] == [{"file": str(partial)}]
    r = run("takedown", "--list", "-p", db)
    assert f"unfinished package file {partial}" in r.output
