"""`annotator embed`: output, --identity, --json, and its one-line errors (run for real with
dlib, the [embed] extra; without it, in a subprocess with dlib blocked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from annotator.demo.dataset import generate_demo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """An imported, unscanned demo of 2 invented people (~20 faces)."""
    d = tmp_path_factory.mktemp("embed_cli")
    r = generate_demo(d, identities=2, faces_per_identity=(6, 6), seed=4)
    db = d / "p.db"
    res = CliRunner().invoke(cli, ["import", "msceleb", str(r.faces_tsv), "-p", str(db)])
    assert res.exit_code == 0, res.output
    return db


def _keys(db: Path) -> list[str]:
    res = CliRunner().invoke(cli, ["identities", "-p", str(db), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    items = out["identities"] if isinstance(out, dict) else out
    return sorted(i["key"] for i in items)


def _run(*args: str, block_dlib: bool = False) -> subprocess.CompletedProcess[str]:
    """`annotator ARGS` in a fresh interpreter, optionally with dlib impossible to import."""
    block = (
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('dlib', '_dlib_pybind11', 'face_recognition_models'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    code = (
        "import sys\n"
        + (block if block_dlib else "")
        + f"sys.argv = ['annotator', *{list(args)!r}]\n"
        + "from annotator.cli.main import main\nmain()\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_without_the_extra_one_line_says_how_to_install(demo) -> None:
    r = _run("embed", "-p", str(demo), block_dlib=True)
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: face embeddings need the optional extra")
    assert "pip install -e '.[embed]'" in lines[0]


def test_other_commands_work_without_the_extra(demo) -> None:
    r = _run("info", "-p", str(demo), block_dlib=True)
    assert r.returncode == 0, r.stderr
    r = _run("--help", block_dlib=True)
    assert r.returncode == 0 and "embed" in r.stdout


def test_without_a_scan_one_line(demo) -> None:
    res = CliRunner().invoke(cli, ["embed", "-p", str(demo)])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "error: no face has been scanned yet: run `annotator scan` first "
        "(embed skips corrupt faces)"
    ]


def test_embed_one_identity_then_the_rest(demo, tmp_path) -> None:
    db = tmp_path / "p.db"
    db.write_bytes(demo.read_bytes())
    res = CliRunner().invoke(cli, ["scan", "-p", str(db), "--workers", "1", "--json"])
    assert res.exit_code == 0, res.output
    corrupt = json.loads(res.output)["corrupt"]
    keys = _keys(db)

    res = CliRunner().invoke(
        cli, ["embed", "-p", str(db), "--identity", keys[0], "--workers", "1", "--json"]
    )
    assert res.exit_code == 0, res.output
    one = json.loads(res.output)
    assert one["embedded"] == one["todo"] == one["stored"] > 0 and not one["cancelled"]
    assert one["model"].startswith("dlib_resnet_v1/") and one["failed"] == 0

    res = CliRunner().invoke(cli, ["embed", "-p", str(db), "--identity", keys[0], "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["todo"] == 0  # incremental

    res = CliRunner().invoke(cli, ["embed", "-p", str(db), "--workers", "1"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("embedded ") and "faces have an embedding" in lines[0]
    if corrupt:
        assert f"{corrupt} corrupt faces skipped" in lines

    res = CliRunner().invoke(cli, ["embed", "-p", str(db), "--identity", "m.nobody"])
    assert res.exit_code == 1
    assert res.output.strip() == "error: no identity with key 'm.nobody' in the project"


def test_help_lists_the_options() -> None:
    res = CliRunner().invoke(cli, ["embed", "--help"])
    assert res.exit_code == 0
    for opt in ("--project", "--identity", "--workers", "--json", "--align"):
        assert opt in res.output


def test_ctrl_c_keeps_what_is_done_and_a_rerun_finishes(demo, tmp_path) -> None:
    import signal
    import sqlite3
    import time

    db = tmp_path / "p.db"
    db.write_bytes(demo.read_bytes())
    assert CliRunner().invoke(cli, ["scan", "-p", str(db), "--workers", "1"]).exit_code == 0
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "annotator", "embed", "-p", str(db), "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )

    def stored() -> int:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as c:
                return c.execute("SELECT count(*) FROM face_embeddings").fetchone()[0]
        except sqlite3.Error:
            return 0

    deadline = time.monotonic() + 120
    while stored() == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if alive:  # interrupted after the first batch: exit 130, what is done is kept
        assert proc.returncode == 130, (out, err)
        assert "Traceback" not in err
    assert stored() > 0
    res = CliRunner().invoke(cli, ["embed", "-p", str(db), "--workers", "1", "--json"])
    assert res.exit_code == 0, res.output
    with sqlite3.connect(db) as c:
        total, distinct = c.execute(
            "SELECT count(*), count(DISTINCT face_id) FROM face_embeddings"
        ).fetchone()
        decodable = c.execute("SELECT count(*) FROM face_hashes WHERE corrupt IS NULL").fetchone()
    assert total == distinct == decodable[0]
