"""Issue 20: `export` killed (kill -9) around its swap. The log row is written just before the
swap (a takedown's copies search must never miss an export that landed): killed after the
swap, the folder is complete and logged; killed between the row and the swap, the rerun writes
the folder and logs it once. Either way the rerun ends where an uninterrupted run ends."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys

import pytest

from annotator.core.export.run import export_dataset
from annotator.model import AnnotatorError
from tests.core.test_export import build

KILLED = """
import os, signal, sys
from annotator.core.export import outdir
from annotator.core.export.run import export_dataset
from annotator.store.db import open_project

real = outdir.swap_in
def swap_then_die(tmp, out):
    if sys.argv[3] == "after":
        real(tmp, out)
    os.kill(os.getpid(), signal.SIGKILL)
outdir.swap_in = swap_then_die
export_dataset(open_project(sys.argv[1]), sys.argv[2], "folder", force=True)
"""


def log(p) -> list[tuple[str, str]]:
    return p.conn.execute("SELECT out_path, manifest_sha256 FROM exports ORDER BY id").fetchall()


def manifest_sha(out) -> str:
    return hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()


def killed(p, out, when: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run(
        [sys.executable, "-c", KILLED, str(p.path), str(out), when],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == -signal.SIGKILL, r.stderr.decode()


@pytest.fixture
def proj(tmp_path):
    p, _ids = build(tmp_path / "proj")
    yield p
    p.close()


def test_killed_after_the_swap_the_export_is_logged(proj, tmp_path):
    out = tmp_path / "out"
    killed(proj, out, "after")
    assert (out / "manifest.json").is_file()
    assert log(proj) == [(str(out), manifest_sha(out))]  # landed and logged
    # the rerun: as after an uninterrupted export, the folder is ours and needs --force
    with pytest.raises(AnnotatorError, match="use --force"):
        export_dataset(proj, out, "folder")
    res = export_dataset(proj, out, "folder", force=True)
    assert res.manifest_sha256 == manifest_sha(out)
    assert log(proj) == [(str(out), res.manifest_sha256)]  # the same export logged once


def test_killed_before_the_swap_the_rerun_lands_it_and_logs_it_once(proj, tmp_path):
    out = tmp_path / "out"
    first = export_dataset(proj, tmp_path / "ref", "folder")  # what an uninterrupted run writes
    killed(proj, out, "before")
    assert not out.exists()
    # the row says copies may be at out (a takedown names it): over-reported, never missed
    assert log(proj)[-1] == (str(out), first.manifest_sha256)
    res = export_dataset(proj, out, "folder")
    assert res.manifest_sha256 == first.manifest_sha256 == manifest_sha(out)
    assert [r for r in log(proj) if r[0] == str(out)] == [(str(out), res.manifest_sha256)]


def test_a_swap_that_fails_takes_its_row_back(proj, tmp_path, monkeypatch):
    from annotator.core.export import outdir

    out = tmp_path / "out"
    export_dataset(proj, out, "csv")
    before = log(proj)

    def refuse(tmp, o):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(outdir, "swap_in", refuse)
    with pytest.raises(OSError):
        export_dataset(proj, out, "folder", force=True)
    assert log(proj) == before


def test_an_export_of_other_content_to_the_same_folder_is_a_new_row(proj, tmp_path):
    out = tmp_path / "out"
    a = export_dataset(proj, out, "csv")
    b = export_dataset(proj, out, "folder", force=True)
    c = export_dataset(proj, out, "csv", force=True)
    assert len({a.manifest_sha256, b.manifest_sha256}) == 2
    assert log(proj) == [(str(out), a.manifest_sha256), (str(out), b.manifest_sha256),
                         (str(out), c.manifest_sha256)]  # fmt: skip
