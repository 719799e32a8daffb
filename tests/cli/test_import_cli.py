"""`annotator import ...` through click's runner, plus one real subprocess."""

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from annotator.cli.main import cli
from annotator.formats import msceleb
from annotator.formats.recordio import RecordWriter

ROOT = Path(__file__).resolve().parents[2]


def jpeg(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (10, 10), (i * 30 % 256, 0, 0)).save(b, "JPEG")
    return b.getvalue()


@pytest.fixture
def data(tmp_path):
    with open(tmp_path / "faces.tsv", "wb") as f:
        for i in range(8):
            msceleb.write_row(f, f"m.{i % 2}", i, None, None, None, None, jpeg(i))
        f.write(b"only\tthree\tcolumns\n")
    (tmp_path / "names.tsv").write_text('m.0\t"Zero"@en\nm.0\t"ゼロ"@ja\n', encoding="utf-8")
    with open(tmp_path / "dev.tsv", "wb") as f:
        msceleb.write_devset_row(f, "m.5", "Five", "en", None, "F", None, jpeg(5))
    with RecordWriter(tmp_path / "train.rec") as w:
        for i in range(4):
            w.add(i % 2, jpeg(i))
    for ident in ("a", "b"):
        (tmp_path / "folder" / ident).mkdir(parents=True)
        (tmp_path / "folder" / ident / "1.jpg").write_bytes(jpeg(1))
    (tmp_path / "folder" / "a" / "x.txt").write_text("no")
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_import_every_format_json(data):
    db = data / "p.db"
    r = run("import", "msceleb", data / "faces.tsv", "--project", db, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {
        "imported": 8,
        "skipped": 0,
        "rejected": [
            {"origin": "faces.tsv:9", "reason": "expected 7 tab-separated columns, found 3"}
        ],
        "identities": 2,
        "withdrawn": 0,
    }
    r = run("import", "msceleb", data / "faces.tsv", "--project", db, "--json")
    out = json.loads(r.output)
    assert (out["imported"], out["skipped"], out["identities"]) == (0, 8, 0)
    for fmt, path, imported in [
        ("names", data / "names.tsv", 2),
        ("devset", data / "dev.tsv", 1),
        ("rec", data / "train.rec", 4),
        ("folder", data / "folder", 2),
    ]:
        r = run("import", fmt, path, "-p", db, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["imported"] == imported, (fmt, r.output)
    out = json.loads(run("import", "folder", data / "folder", "-p", db, "--json").output)
    assert out["rejected"] == [{"origin": "a/x.txt", "reason": "not an image file (extension)"}]


def test_import_text_output(data):
    r = run("import", "msceleb", data / "faces.tsv", "-p", data / "p.db")
    assert r.exit_code == 0
    assert "imported 8 faces" in r.output and "faces.tsv:9" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["import", "msceleb", "{d}/missing.tsv", "-p", "{d}/p.db"], "no such file"),
        (["import", "csv", "{d}/faces.tsv", "-p", "{d}/p.db"], "unknown format 'csv'"),
        (["import", "devset", "{d}/faces.tsv", "-p", "{d}/p.db"], "use `annotator import msceleb`"),
        (["import", "msceleb", "{d}/train.rec", "-p", "{d}/p.db"], "use `annotator import rec`"),
        (["import", "msceleb", "{d}/faces.tsv", "-p", "{d}/faces.tsv"], "not an annotator project"),
        (["import", "msceleb", "{d}/faces.tsv", "-p", "{d}/other.sqlite"], "another program"),
        (["import", "folder", "{d}/faces.tsv", "-p", "{d}/p.db"], "not a folder"),
        (["import", "msceleb", "{d}/faces.tsv", "-p", "{d}/nodir/p.db"], "does not exist"),
    ],
)
def test_errors_are_one_line(data, args, message):
    conn = sqlite3.connect(data / "other.sqlite")
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    r = CliRunner().invoke(cli, [a.format(d=data) for a in args])
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert not (data / "p.db").exists()  # nothing created on failure


def test_subprocess(data):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "annotator",
            "import",
            "msceleb",
            str(data / "faces.tsv"),
            "-p",
            str(data / "p.db"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=data,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["imported"] == 8
    assert r.stderr == ""  # no progress bar when not a terminal
    bad = subprocess.run(
        [sys.executable, "-m", "annotator", "info", "-p", str(data / "faces.tsv")],
        capture_output=True,
        text=True,
        env=env,
        cwd=data,
    )
    assert bad.returncode == 1
    assert (
        bad.stderr.count("\n") == 1
        and bad.stderr.startswith("error: ")
        and "Traceback" not in bad.stderr
    )


def test_restart_and_follow_links_options(data, tmp_path):
    import os

    db = data / "p.db"
    assert run("import", "msceleb", data / "faces.tsv", "-p", db).exit_code == 0
    with open(data / "faces.tsv", "ab") as f:  # the file changes: refused, --restart named
        msceleb.write_row(f, "m.9", 1, None, None, None, None, jpeg(9))
    r = run("import", "msceleb", data / "faces.tsv", "-p", db)
    assert r.exit_code == 1 and "--restart" in r.output
    r = run("import", "msceleb", data / "faces.tsv", "-p", db, "--restart", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["imported"], out["identities"]) == (9, 3)  # emptied identities went too
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "o.jpg").write_bytes(jpeg(3))
    os.symlink(outside / "o.jpg", data / "folder" / "a" / "o.jpg")
    r = run("import", "folder", data / "folder", "-p", db, "--json")
    assert any("outside the root" in x["reason"] for x in json.loads(r.output)["rejected"])
    r = run("import", "folder", data / "folder", "-p", db, "--json", "--follow-links", "--restart")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["imported"] == 3


def test_a_fifo_given_as_the_source_file_is_refused_not_waited_on(tmp_path):
    import os

    fifo = tmp_path / "faces.tsv"
    os.mkfifo(fifo)
    r = run("import", "msceleb", fifo, "-p", tmp_path / "p.db")
    assert r.exit_code == 1 and "not a regular file" in r.output
    assert not (tmp_path / "p.db").exists()
