"""The CLI contract for every command: bad input gives one `error: ...` line on stderr, a
non-zero exit code and no traceback, and leaves the files it was given untouched; and every
command runs end to end on a tiny demo project.

One demo project is made per session (``annotator demo``, 3 identities) and copied per test.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from PIL import Image

from annotator.cli.main import COMMANDS, cli
from annotator.core import importer
from annotator.core.review import ops
from annotator.formats import msceleb
from annotator.formats.recordio import RecordWriter
from annotator.store.db import open_project

ROOT = Path(__file__).resolve().parents[2]


def jpeg(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (16, 16), (i * 40 % 256, 80, 160)).save(b, "JPEG")
    return b.getvalue()


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """A demo project plus one small source of every format and a few input files."""
    w = tmp_path_factory.mktemp("cli-world")
    r = CliRunner().invoke(cli, ["demo", str(w / "demo"), "--identities", "3", "--json"])
    assert r.exit_code == 0, r.output
    with open(w / "dev.tsv", "wb") as f:
        for i in range(3):
            msceleb.write_devset_row(f, f"m.d{i}", f"Dev {i}", "en", None, f"F{i}", None, jpeg(i))
    with RecordWriter(w / "train.rec") as rw:
        for i in range(4):
            rw.add(i % 2, jpeg(i))
    for ident in ("a", "b"):
        (w / "folder" / ident).mkdir(parents=True)
        (w / "folder" / ident / "1.jpg").write_bytes(jpeg(7))
    (w / "labels.csv").write_text("origin,label\nfaces.tsv:1,correct\nfaces.tsv:2,unsure\n")
    (w / "verdicts.csv").write_text("faces.tsv:1,correct\n")
    (w / "text.txt").write_text("just some text\n")
    conn = sqlite3.connect(w / "other.sqlite")
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    # a reviewer package (of a copy of the demo: the demo itself does not record it)
    shutil.copy(w / "demo" / "demo.db", w / "packhome.db")
    r = CliRunner().invoke(
        cli, ["pack", "-p", str(w / "packhome.db"), "--unreviewed", "1", "--out", str(w / "pkg.db")]
    )
    assert r.exit_code == 0, r.output
    # a valid export, for `evaluate` with bad predictions
    shutil.copy(w / "demo" / "demo.db", w / "labeled.db")
    with open_project(w / "labeled.db") as p:
        ids = [i for (i,) in p.conn.execute("SELECT id FROM faces ORDER BY id")]
        ops.label_faces(p, ids, "correct", "alice")
    r = CliRunner().invoke(
        cli, ["export", "-p", str(w / "labeled.db"), "--out", str(w / "set"), "--format", "folder"]
    )
    assert r.exit_code == 0, r.output
    return w


@pytest.fixture
def proj(world, tmp_path) -> Path:
    """A private copy of the demo project."""
    p = tmp_path / "p.db"
    shutil.copy(world / "demo" / "demo.db", p)
    return p


# Every command that works on a project, with otherwise valid arguments. {w}: the world folder,
# {p}: the project, {t}: the test's tmp folder.
PROJECT_COMMANDS: dict[str, list[str]] = {
    "import msceleb": ["import", "msceleb", "{w}/demo/faces.tsv", "-p", "{p}"],
    "import devset": ["import", "devset", "{w}/dev.tsv", "-p", "{p}"],
    "import names": ["import", "names", "{w}/demo/names.tsv", "-p", "{p}"],
    "import rec": ["import", "rec", "{w}/train.rec", "-p", "{p}"],
    "import folder": ["import", "folder", "{w}/folder", "-p", "{p}"],
    "info": ["info", "-p", "{p}"],
    "identities": ["identities", "-p", "{p}"],
    "scan": ["scan", "-p", "{p}", "--workers", "1"],
    "flags": ["flags", "-p", "{p}"],
    "embed": ["embed", "-p", "{p}", "--workers", "1"],
    "labels import": ["labels", "import", "{w}/labels.csv", "-p", "{p}", "-r", "bob"],
    "labels export": ["labels", "export", "-p", "{p}"],
    "qa start": ["qa", "start", "-p", "{p}", "-r", "carol"],
    "qa items": ["qa", "items", "-p", "{p}", "--pass", "1"],
    "qa label": ["qa", "label", "-p", "{p}", "-r", "carol", "--pass", "1", "{w}/verdicts.csv"],
    "qa report": ["qa", "report", "-p", "{p}"],
    "qa queue": ["qa", "queue", "-p", "{p}"],
    "qa adjudicate": [
        "qa",
        "adjudicate",
        "-p",
        "{p}",
        "-r",
        "lead",
        "--pass",
        "1",
        "faces.tsv:1",
        "correct",
    ],
    "export": ["export", "-p", "{p}", "--out", "{t}/out", "--format", "folder"],
    "stats": ["stats", "-p", "{p}"],
    "takedown": ["takedown", "m.x", "-p", "{p}", "-r", "bob", "-y"],
    "pack": ["pack", "-p", "{p}", "--unreviewed", "1", "--out", "{t}/pkg.db"],
    "merge": ["merge", "{w}/pkg.db", "-p", "{p}"],
    "config": ["config", "-p", "{p}", "tiny_px", "40"],
}
# Commands without a --project, tested on their own below.
OTHER_COMMANDS = {"demo", "evaluate", "gui", "install-desktop"}


def leaf_commands() -> list[tuple[list[str], click.Command]]:
    out = []
    ctx = click.Context(cli)

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])
        else:
            out.append((path, cmd))

    for name in sorted(COMMANDS):
        walk(cli.get_command(ctx, name), [name])  # type: ignore[arg-type]
    return out


def fill(args: list[str], **kw: object) -> list[str]:
    return [a.format(**kw) for a in args]


def invoke(args: list[str], **env: str):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env or None)


def assert_one_line_error(r, contains: str = "") -> str:
    """One `error: ...` line on stderr, nothing on stdout, exit 1, no traceback."""
    assert r.exit_code == 1, (r.exit_code, r.output)
    assert isinstance(r.exception, SystemExit), r.exc_info
    assert "Traceback" not in r.output
    assert r.stdout == "", r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert contains in lines[0], (contains, lines[0])
    return lines[0]


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_every_command_is_in_the_contract_tests():
    names = {" ".join(path) for path, _ in leaf_commands()}
    assert names == set(PROJECT_COMMANDS) | OTHER_COMMANDS


# -- bad project files ------------------------------------------------------------------------

BAD_PROJECTS = {
    "missing": "no project file at",
    "text": "is not an annotator project",
    "other_sqlite": "an SQLite file of another program",
    "directory": "is a directory",
    "damaged": "is damaged",
    "empty": "is empty, not an annotator project",
}


def make_bad_project(kind: str, world: Path, tmp: Path) -> Path:
    if kind == "missing":
        return tmp / "none.db"
    if kind == "directory":
        (tmp / "adir").mkdir()
        return tmp / "adir"
    if kind == "empty":
        (tmp / "empty.db").write_bytes(b"")
        return tmp / "empty.db"
    if kind == "damaged":
        p = tmp / "damaged.db"
        data = (world / "demo" / "demo.db").read_bytes()
        p.write_bytes(data[: len(data) // 3])
        return p
    src = {"text": "text.txt", "other_sqlite": "other.sqlite"}[kind]
    shutil.copy(world / src, tmp / src)
    return tmp / src


@pytest.mark.parametrize(
    "name, kind",
    [
        (n, k)
        for n in sorted(PROJECT_COMMANDS)
        for k in BAD_PROJECTS
        # import creates the project, in a new or an empty file
        if not (k in ("missing", "empty") and n.startswith("import"))
    ],
)
def test_bad_project_is_one_line(world, tmp_path, name, kind):
    bad = make_bad_project(kind, world, tmp_path)
    before = digest(bad) if bad.is_file() else None
    r = invoke(fill(PROJECT_COMMANDS[name], w=world, p=bad, t=tmp_path))
    assert_one_line_error(r, BAD_PROJECTS[kind])
    if before is not None:
        assert digest(bad) == before, "a file that is not our project was modified"
    assert not (tmp_path / "none.db").exists()
    assert not (tmp_path / "out").exists()


def test_other_sqlite_file_keeps_its_data(world, tmp_path):
    bad = make_bad_project("other_sqlite", world, tmp_path)
    assert_one_line_error(invoke(["import", "folder", world / "folder", "-p", bad]))
    conn = sqlite3.connect(bad)
    assert conn.execute("SELECT x FROM notes").fetchall() == [("keep me",)]
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["notes"]
    conn.close()


# -- bad options and usage -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [" ".join(p) for p, _ in leaf_commands()])
def test_unknown_option_is_one_line(path):
    r = invoke([*path.split(), "--no-such-option"])
    assert_one_line_error(r, "no such option '--no-such-option'")
    assert f"`cli {path} --help`" in r.stderr  # points at the command's help


@pytest.mark.parametrize(
    "path",
    [" ".join(p) for p, c in leaf_commands() if any(x.required for x in c.params)],
)
def test_missing_required_parameter_is_one_line(path):
    assert_one_line_error(invoke(path.split()), "missing")


@pytest.mark.parametrize(
    "args, message",
    [
        (["import", "csv", "{w}/demo/faces.tsv", "-p", "{p}"], "unknown format 'csv'"),
        (["import", "folder", "{w}/demo/faces.tsv", "-p", "{p}"], "is not a folder"),
        (["import", "msceleb", "{w}/folder", "-p", "{p}"], "is a folder"),
        (["import", "devset", "{w}/demo/faces.tsv", "-p", "{p}"], "import msceleb"),
        (["import", "names", "{w}/dev.tsv", "-p", "{p}"], "import devset"),
        (["import", "msceleb", "{w}/demo/names.tsv", "-p", "{p}"], "import names"),
        (["import", "rec", "{w}/demo/faces.tsv", "-p", "{p}"], "does not start with a RecordIO"),
        (["import", "msceleb", "{w}/train.rec", "-p", "{p}"], "import rec"),
        (["import", "msceleb", "{p}", "-p", "{p}"], "binary file"),
        (["import", "folder", "{w}/demo", "-p", "{p}"], "no identity folder"),
        (["identities", "-p", "{p}", "--limit", "abc"], "'abc' is not a valid integer"),
        (["identities", "-p", "{p}", "--limit", "-3"], "-3 is not in the range"),
        (["flags", "-p", "{p}", "--kind", "nope"], "'nope' is not one of"),
        (["flags", "-p", "{p}", "--limit", "-1"], "not in the range"),
        (["scan", "-p", "{p}", "--radius", "99"], "not in the range"),
        (["scan", "-p", "{p}", "--workers", "0"], "not in the range"),
        (["qa", "start", "-p", "{p}", "-r", "x", "--fraction", "5"], "fraction"),
        (["qa", "start", "-p", "{p}", "-r", "x", "--count", "0"], "count"),
        (["qa", "items", "-p", "{p}", "--pass", "one"], "not a valid integer"),
        (["qa", "items", "-p", "{p}", "--pass", "7"], "no QA pass 7"),
        (["qa", "items", "-p", "{p}", "--pass", "1", "--limit", "-1"], "not in the range"),
        (["qa", "adjudicate", "-p", "{p}", "-r", "x", "--pass", "1", "f:1", "nice"], "nice"),
        (["export", "-p", "{p}", "--out", "{t}/o", "--format", "zip"], "'zip' is not one of"),
        (["export", "-p", "{p}", "--out", "{t}/o", "--format", "csv", "--min-faces", "0"], "1"),
        (["export", "-p", "{p}", "--out", "{w}/set", "--format", "csv"], "--force"),
        (["stats", "-p", "{p}", "--plots", "{w}/text.txt"], "is a file"),
        (["labels", "import", "{w}/folder", "-p", "{p}", "-r", "x"], "is a directory"),
        (["labels", "import", "{w}/labels.csv", "-p", "{p}", "-r", "x", "--others", "y"], "y"),
        (["labels", "export", "-p", "{p}", "--out", "{t}/no/dir/x.csv"], "does not exist"),
        (["takedown", "m.nobody", "-p", "{p}", "-r", "x", "-y"], "no identity with key"),
        (["config", "-p", "{p}", "tiny_px", "abc"], "tiny_px: 'abc' is not an integer"),
        (["config", "-p", "{p}", "nope", "1"], "unknown setting 'nope'"),
        (["demo", "{w}/text.txt"], "is a file"),
        (["demo", "{w}/demo", "--identities", "5"], "already holds a demo"),
        (["demo", "{w}", "--identities", "1"], "not in the range"),
        (["evaluate", "--truth", "{t}/nowhere", "--predictions", "{w}/text.txt"], "manifest"),
        (["evaluate", "--truth", "{w}/folder", "--predictions", "{w}/text.txt"], "export"),
        (["evaluate", "--truth", "{w}/set", "--predictions", "{t}/none.tsv"], "none.tsv"),
        (["evaluate", "--truth", "{w}/set", "--predictions", "{w}/folder"], "directory"),
        (["labels", "import", "{p}", "-p", "{p}", "-r", "x"], "is a binary file"),
        (["qa", "label", "-p", "{p}", "-r", "x", "--pass", "1", "{p}"], "is a binary file"),
        (["evaluate", "--truth", "{w}/set", "--predictions", "{p}"], "is a binary file"),
        (
            ["evaluate", "--truth", "{w}/set", "--predictions", "{w}/text.txt"]
            + ["--plot", "{t}/no/dir/c.png"],
            "folder {t}/no/dir does not exist",
        ),
        (["install-desktop", "--prefix", "{w}/text.txt"], "the prefix is not a folder"),
        (["pack", "-p", "{p}", "--out", "{t}/x.db"], "give exactly one of"),
        (["pack", "-p", "{p}", "--identities", "m.nobody", "--out", "{t}/x.db"], "m.nobody"),
        (["merge", "{w}/pkg.db", "-p", "{p}"], "is not recorded in"),
        (["merge", "{w}/text.txt", "-p", "{p}"], "not a reviewer package"),
        (["--no-such-flag"], "no such option"),
        (["frobnicate"], "no such command 'frobnicate'"),
    ],
)
def test_bad_arguments_are_one_line(world, proj, tmp_path, args, message):
    before = digest(proj)
    r = invoke(fill(args, w=world, p=proj, t=tmp_path))
    assert_one_line_error(r, message.format(t=tmp_path))
    assert digest(proj) == before  # nothing written on failure


@pytest.mark.parametrize("fmt", ["msceleb", "devset", "names", "rec", "folder"])
def test_missing_input_file_creates_nothing(tmp_path, fmt):
    r = invoke(["import", fmt, tmp_path / "gone", "-p", tmp_path / "new.db"])
    assert_one_line_error(r, f"no such file or folder: {tmp_path / 'gone'}")
    assert not (tmp_path / "new.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["labels", "import", "{t}/gone.csv", "-p", "{p}", "-r", "x"],
        ["qa", "label", "-p", "{p}", "-r", "x", "--pass", "1", "{t}/gone.csv"],
    ],
)
def test_missing_label_file(world, proj, tmp_path, args):
    assert_one_line_error(invoke(fill(args, w=world, p=proj, t=tmp_path)), "no such file")


def test_failed_first_import_leaves_no_project(world, tmp_path, monkeypatch):
    """An import that fails before storing anything in a new project leaves no project file;
    one interrupted after storing faces keeps it (running it again finishes the import)."""
    bad = tmp_path / "bad.rec"
    bad.write_bytes((world / "train.rec").read_bytes()[:64])  # starts like a .rec, no .idx
    r = invoke(["import", "rec", bad, "-p", tmp_path / "new.db"])
    assert_one_line_error(r, "index file bad.idx is not beside it")
    assert sorted(os.listdir(tmp_path)) == ["bad.rec"]

    from annotator.formats import recordio

    def failing_reader(*a, **kw):
        raise OSError(5, "Input/output error", str(world / "train.rec"))
        yield

    monkeypatch.setitem(importer.READERS, "rec", failing_reader)
    r = invoke(["import", "rec", world / "train.rec", "-p", tmp_path / "new.db"])
    assert_one_line_error(r, "input/output error")
    assert sorted(os.listdir(tmp_path)) == ["bad.rec"]

    def interrupted_reader(*a, **kw):
        yield from itertools.islice(recordio.read_rec(*a, **kw), 2)
        raise KeyboardInterrupt

    import annotator.cli.import_cmd as import_cmd

    monkeypatch.setitem(importer.READERS, "rec", interrupted_reader)
    monkeypatch.setattr(importer, "CANCEL_CHECK_ROWS", 1)
    monkeypatch.setattr(
        import_cmd, "import_source", lambda *a, **kw: importer.import_source(*a, batch_rows=1, **kw)
    )
    r = invoke(["import", "rec", world / "train.rec", "-p", tmp_path / "new.db"])
    assert r.exit_code == 130
    with open_project(tmp_path / "new.db") as pr:
        assert pr.conn.execute("SELECT count(*) FROM faces").fetchone()[0] >= 1


# -- interruptions, unexpected errors, closed pipes ------------------------------------------


def test_keyboard_interrupt_is_one_line(proj, monkeypatch):
    import annotator.store.faces as faces_store

    def interrupted(project):
        raise KeyboardInterrupt

    monkeypatch.setattr(faces_store, "summary", interrupted)
    r = invoke(["info", "-p", proj])
    assert r.exit_code == 130
    assert r.stderr.splitlines() == [
        "interrupted; the project file is consistent, run the command again to finish"
    ]
    assert "Traceback" not in r.output


def test_unexpected_error_is_one_line_unless_debugging(proj, monkeypatch):
    import annotator.store.faces as faces_store

    def broken(project):
        raise ValueError("something\nunforeseen")

    monkeypatch.setattr(faces_store, "summary", broken)
    line = assert_one_line_error(invoke(["info", "-p", proj]), "unexpected ValueError")
    assert "something unforeseen" in line and "ANNOTATOR_DEBUG=1" in line
    r = invoke(["info", "-p", proj], ANNOTATOR_DEBUG="1")
    assert isinstance(r.exception, ValueError)  # the traceback is there for a developer


def test_interrupted_import_through_the_cli_resumes(world, tmp_path, monkeypatch):
    """Ctrl-C during `annotator import`: one line, exit 130, and the same command finishes."""
    import annotator.cli.import_cmd as import_cmd
    from annotator.core import importer

    monkeypatch.setattr(importer, "CANCEL_CHECK_ROWS", 5)
    real = importer.import_source
    calls = {"n": 0}

    def ctrl_c():
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return False

    def interrupted_import(*a, **kw):
        return real(*a, cancelled=ctrl_c, batch_rows=5, **kw)

    db = tmp_path / "p.db"
    args = ["import", "msceleb", world / "demo" / "faces.tsv", "-p", db, "--json"]
    monkeypatch.setattr(import_cmd, "import_source", interrupted_import)
    r = invoke(args)
    assert r.exit_code == 130 and "Traceback" not in r.output
    assert r.stderr.startswith("interrupted;") and r.stdout == ""
    with open_project(db) as p:
        partial = p.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
    assert 0 < partial < 68
    monkeypatch.setattr(import_cmd, "import_source", real)
    r = invoke(args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["imported"] == 68 - partial and out["skipped"] == 0
    with open_project(db) as p:
        assert p.conn.execute("SELECT count(*) FROM faces").fetchone()[0] == 68


def _env() -> dict[str, str]:
    return {
        "PYTHONPATH": str(ROOT),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "QT_QPA_PLATFORM": "offscreen",
    }


def test_closed_stdout_is_quiet(proj):
    """`annotator labels export ... | head -0`: no traceback, no message, SIGPIPE-like exit."""
    cmd = [sys.executable, "-m", "annotator", "labels", "export", "-p", str(proj)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    p.stdout.close()  # the reader goes away before the command writes anything
    err = p.stderr.read()
    p.stderr.close()
    assert p.wait(timeout=60) == 141
    assert err == b""


def test_python_dash_m_and_version():
    r = subprocess.run(
        [sys.executable, "-m", "annotator", "--version"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.startswith("annotator, version ")
    r = subprocess.run(
        [sys.executable, "-m", "annotator", "import", "csv", "x", "-p", "y.db"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (
        "error: unknown format 'csv' (expected one of: msceleb, devset, names, rec, folder) "
        "(see `annotator import --help`)\n"
    )


# Runs the real `annotator` entry point in a child process whose import sends the process a
# real SIGINT (as Ctrl-C does) after a few batches.
SIGINT_DRIVER = """
import os, signal, sys
# Ctrl-C as in a terminal: a test run started in the background of a non-interactive shell
# inherits SIGINT ignored, and Python then keeps it ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
from annotator.cli.main import main
from annotator.core import importer
importer.CANCEL_CHECK_ROWS = 5
real = importer.import_source
calls = [0]
def ctrl_c():
    calls[0] += 1
    if calls[0] == 4:
        os.kill(os.getpid(), signal.SIGINT)
    return False
def import_source(*a, **kw):
    return real(*a, cancelled=ctrl_c, batch_rows=5, **kw)
import annotator.cli.import_cmd as cmd
cmd.import_source = import_source
sys.argv = ["annotator", *sys.argv[1:]]
main()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_real_sigint_during_import(world, tmp_path):
    db = tmp_path / "p.db"
    src = str(world / "demo" / "faces.tsv")
    r = subprocess.run(
        [sys.executable, "-c", SIGINT_DRIVER, "import", "msceleb", src, "-p", str(db)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert r.returncode == 130, (r.stdout, r.stderr)
    assert r.stderr.splitlines() == [
        "interrupted; the project file is consistent, run the command again to finish"
    ]
    with open_project(db) as pr:
        partial = pr.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        assert 0 < partial < 68
    r = invoke(["import", "msceleb", src, "-p", db, "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["imported"] == 68 - partial


# -- gui: only --help and bad projects (the window itself is tested in tests/gui) -------------


def test_gui_help_does_not_import_qt():
    r = invoke(["gui", "--help"])
    assert r.exit_code == 0 and "reviewer" in r.output


@pytest.mark.parametrize("kind", ["missing", "text", "other_sqlite"])
def test_gui_bad_project(world, tmp_path, kind):
    bad = make_bad_project(kind, world, tmp_path)
    env = {**_env(), "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "annotator", "gui", str(bad), "--screenshot", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and BAD_PROJECTS[kind] in lines[0], r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not (tmp_path / "s").exists()


# -- every command end to end on the demo project --------------------------------------------


def test_every_command_end_to_end(world, proj, tmp_path):
    def ok(*args: object) -> dict:
        r = invoke([*args, "--json"])
        assert r.exit_code == 0, (args, r.output)
        assert r.stderr == "", (args, r.stderr)
        return json.loads(r.stdout)

    p = proj
    for fmt, src, n in [
        ("devset", world / "dev.tsv", 3),
        ("rec", world / "train.rec", 4),
        ("folder", world / "folder", 2),
    ]:
        assert ok("import", fmt, src, "-p", p)["imported"] == n
        again = ok("import", fmt, src, "-p", p)
        assert (again["imported"], again["skipped"], again["identities"]) == (0, n, 0)
    assert ok("import", "msceleb", world / "demo" / "faces.tsv", "-p", p)["imported"] == 0
    assert ok("import", "names", world / "demo" / "names.tsv", "-p", p)["imported"] == 0

    info = ok("info", "-p", p)
    assert (info["sources"], info["faces"], info["hashed"]) == (5, 68 + 9, 0)
    keys = {i["key"] for i in ok("identities", "-p", p)["identities"]}
    assert {"m.d0", "0", "1", "a", "b"} <= keys and len(keys) == info["identities"]

    scan = ok("scan", "-p", p, "--workers", "1")
    assert scan["hashed"] == 77 and scan["corrupt"] == 3  # the demo's truncated JPEGs
    flags = ok("flags", "-p", p)["flags"]
    assert flags and {f["kind"] for f in flags} >= {"exact_dup", "corrupt"}

    # labels: alice labels the demo faces, an identity is marked reviewed
    tsv_faces = [
        f["origin"] for f in ok("labels", "export", "-p", p)["faces"] if "faces.tsv" in f["origin"]
    ]
    (tmp_path / "l.csv").write_text("".join(f"{o},correct\n" for o in tsv_faces[:30]))
    lab = ok("labels", "import", tmp_path / "l.csv", "-p", p, "-r", "alice")
    assert lab["applied"] == 30
    with open_project(p) as pr:
        ops.set_reviewed(pr, 1, True, "alice")
    info = ok("info", "-p", p)
    assert info["labels"] == {"correct": 30}
    assert info["reviewed_identities"] == 1
    assert info["hashed"] == 77 and info["corrupt"] == 3
    assert info["flags"] == {k: v for k, v in scan["flags"].items() if v}
    assert sum(info["flags"].values()) == len(flags)

    # QA: bob checks a sample, disagrees once, the lead adjudicates
    start = ok("qa", "start", "-p", p, "-r", "bob", "--count", "4", "--seed", "1")
    pid = start["pass"] if "pass" in start else start["pass_id"]
    items = ok("qa", "items", "-p", p, "--pass", pid)["items"]
    assert len(items) == 4
    verdicts = [f"{it['origin']},{'unsure' if k == 0 else 'correct'}" for k, it in enumerate(items)]
    (tmp_path / "v.csv").write_text("\n".join(verdicts) + "\n")
    assert (
        ok("qa", "label", "-p", p, "-r", "bob", "--pass", pid, tmp_path / "v.csv")["recorded"] == 4
    )
    rep = ok("qa", "report", "-p", p)
    assert rep["items_checked"] == 4
    queue = ok("qa", "queue", "-p", p)["queue"]
    assert len(queue) == 1
    adj = ok(
        "qa", "adjudicate", "-p", p, "-r", "lead", "--pass", pid, items[0]["origin"], "correct"
    )
    assert adj["label"] == "correct"

    pk = ok("pack", "-p", p, "--unreviewed", "1", "--out", tmp_path / "pkg.db")
    assert pk["identities"] == 1
    assert ok("merge", tmp_path / "pkg.db", "-p", p)["batches"] == 0
    assert ok("info", "-p", p)["packages"]["out"] == 1

    exp = ok("export", "-p", p, "--out", tmp_path / "set", "--format", "folder")
    assert exp["faces"] > 0
    names = sorted((tmp_path / "set").rglob("*.jpg"))
    (tmp_path / "pred.tsv").write_text(
        "".join(f"{n.relative_to(tmp_path / 'set')}\t{n.parent.name}\t0.9\n" for n in names)
    )
    ev = ok("evaluate", "--truth", tmp_path / "set", "--predictions", tmp_path / "pred.tsv")
    assert ev["test_faces"] == exp["faces"]
    st = ok("stats", "-p", p)
    assert st["faces_by_label"]["correct"] == 30

    key = ok("identities", "-p", p)["identities"][-1]["key"]
    td = ok("takedown", key, "-p", p, "-r", "alice", "--yes")
    assert td["faces_removed"] >= 1
    assert key not in {i["key"] for i in ok("identities", "-p", p)["identities"]}
