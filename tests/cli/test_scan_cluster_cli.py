"""`annotator scan|embed --scheduler ... [--path-map OLD=NEW]` through the CLI: a real Dask
scheduler and two worker processes on 127.0.0.1, and the one-line errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from annotator.core.infra import cluster as cluster_mod
from annotator.demo.dataset import generate_demo

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler():
    lc = distributed.LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0"
    )
    try:
        yield lc.scheduler_address
    finally:
        lc.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli_cluster")
    generate_demo(d, identities=4, faces_per_identity=(8, 12), seed=2)
    r = CliRunner().invoke(cli, ["import", "msceleb", str(d / "faces.tsv"), "-p", str(d / "p.db")])
    assert r.exit_code == 0, r.output
    return d


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_error(r, text: str) -> None:
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], r.output


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def without_times(out: str) -> dict:
    d = json.loads(out)
    d.pop("hash_seconds")
    d.pop("flag_seconds")
    return d


def test_scan_with_scheduler_equals_local_and_moved_sources_are_mapped(
    scheduler, demo, tmp_path
) -> None:
    local, remote = tmp_path / "local.db", tmp_path / "remote.db"
    shutil.copy(demo / "p.db", local)
    shutil.copy(demo / "p.db", remote)
    r_local = run("scan", "-p", str(local), "--json")
    assert r_local.exit_code == 0, r_local.output
    # the sources moved: the workers read them at the mapped path
    moved = tmp_path / "moved"
    shutil.copytree(demo, moved, ignore=shutil.ignore_patterns("*.db*"))
    r = run(
        "scan", "-p", str(remote), "--scheduler", scheduler,
        "--path-map", f"{demo}={moved}", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert without_times(r.output) == without_times(r_local.output)
    # a second run finds nothing to hash (resumable / incremental) and says so in plain text
    r = run("scan", "-p", str(remote), "--scheduler", scheduler, "--path-map", f"{demo}={moved}")
    assert r.exit_code == 0, r.output
    assert "hashed 0 faces" in r.output
    assert f"Dask scheduler {scheduler}: " in r.output and "2 workers" in r.output


def test_a_source_missing_on_the_workers_is_reported_not_corrupt(scheduler, demo, tmp_path):
    db = tmp_path / "p.db"
    shutil.copy(demo / "p.db", db)
    r = run(
        "scan", "-p", str(db), "--scheduler", scheduler,
        "--path-map", f"{demo}={tmp_path / 'gone'}", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["hashed"] == 0 and out["corrupt"] == 0 and out["read_errors"] > 0
    assert out["read_error_examples"][0].startswith("faces.tsv:1: source ")
    assert out["flags"].get("corrupt", 0) == 0


def test_unreachable_scheduler_is_one_line_and_writes_nothing(demo, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster_mod, "CONNECT_TIMEOUT", 1.0)
    db = tmp_path / "p.db"
    shutil.copy(demo / "p.db", db)
    before = digest(db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for cmd in ("scan", "embed"):
        r = run(cmd, "-p", str(db), "--scheduler", f"tcp://127.0.0.1:{port}")
        one_error(r, f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert digest(db) == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["p.db"]


def test_bad_options_are_one_line(demo, tmp_path, monkeypatch):
    db = tmp_path / "p.db"
    shutil.copy(demo / "p.db", db)
    one_error(
        run("scan", "-p", str(db), "--scheduler", "tcp://x:1", "--path-map", "a"), "--path-map"
    )
    one_error(run("scan", "-p", str(db), "--path-map", "/a=/b"), "only applies with --scheduler")
    monkeypatch.setitem(sys.modules, "distributed", None)  # the extra is not installed
    for cmd in ("scan", "embed"):
        r = run(cmd, "-p", str(db), "--scheduler", "tcp://127.0.0.1:8786")
        one_error(r, "pip install -e '.[distributed]'")
