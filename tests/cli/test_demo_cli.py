"""`annotator demo` end to end: draw, import, re-run idempotently, refuse what it should."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from annotator.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_demo_help():
    r = _run("demo", "--help")
    assert r.exit_code == 0
    assert "--identities" in r.output and "--seed" in r.output and "--json" in r.output


def test_demo_imports_and_is_idempotent(tmp_path):
    d = tmp_path / "demo"
    r = _run("demo", str(d), "--identities", "4", "--seed", "5", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    truth = json.loads((d / "truth.json").read_text(encoding="utf-8"))
    filed = sum(len(v["lines"]) for v in truth["identities"].values())
    assert out["generated"] is True
    assert out["project"] == str(d / "demo.db")
    assert out["faces"]["imported"] == filed
    assert out["faces"]["identities"] == 4
    assert sorted(int(x["origin"].split(":")[1]) for x in out["faces"]["rejected"]) == sorted(
        b["line"] for b in truth["broken"]
    )
    assert all(x["origin"].startswith("faces.tsv:") for x in out["faces"]["rejected"])
    n_names = sum(len(v["names"]) for v in truth["identities"].values())
    assert out["names"]["imported"] == n_names
    assert out["injected"]["broken"] == len(truth["broken"]) >= 5

    info = json.loads(_run("info", "--project", str(d / "demo.db"), "--json").output)
    assert info["faces"] == filed and info["identities"] == 4
    assert info["rejected"] == len(truth["broken"])
    ids = json.loads(_run("identities", "--project", str(d / "demo.db"), "--json").output)
    got = {i["key"]: (i["faces"], i["names"]) for i in ids["identities"]}
    assert got == {m: (len(v["lines"]), v["names"]) for m, v in truth["identities"].items()}

    # Second run: files reused, nothing added.
    before = (d / "faces.tsv").stat().st_mtime_ns
    r2 = _run("demo", str(d), "--identities", "4", "--seed", "5", "--json")
    assert r2.exit_code == 0, r2.output
    out2 = json.loads(r2.output)
    assert out2["generated"] is False
    assert out2["faces"]["imported"] == 0 and out2["faces"]["skipped"] == filed
    assert out2["names"]["imported"] == 0
    assert (d / "faces.tsv").stat().st_mtime_ns == before
    info2 = json.loads(_run("info", "--project", str(d / "demo.db"), "--json").output)
    assert info2["faces"] == filed and info2["sources"] == 2

    # Other options on the same folder: refused with one line, nothing changed.
    r3 = CliRunner().invoke(cli, ["demo", str(d), "--identities", "4", "--seed", "6"])
    assert r3.exit_code == 1
    assert "already holds a demo" in r3.output and "--seed 5" in r3.output
    assert (d / "faces.tsv").stat().st_mtime_ns == before


def test_demo_text_output_names_next_steps(tmp_path):
    d = tmp_path / "x"
    r = _run("demo", str(d), "--identities", "3")
    assert r.exit_code == 0, r.output
    assert "annotator info --project" in r.output and "annotator scan --project" in r.output
    assert str(d / "demo.db") in r.output


def test_demo_run_again_on_a_scanned_project_does_not_suggest_scan(tmp_path):
    d = tmp_path / "x"
    assert _run("demo", str(d), "--identities", "3").exit_code == 0
    assert _run("scan", "--project", str(d / "demo.db"), "--workers", "1").exit_code == 0
    r = _run("demo", str(d), "--identities", "3")
    assert r.exit_code == 0, r.output
    assert "annotator scan" not in r.output
    assert "annotator flags --project" in r.output


def test_demo_refuses_foreign_files(tmp_path):
    (tmp_path / "faces.tsv").write_text("not ours\n")
    r = CliRunner().invoke(cli, ["demo", str(tmp_path), "--identities", "3"])
    assert r.exit_code == 1
    assert r.output.startswith("error: ") and "did not write" in r.output
    assert (tmp_path / "faces.tsv").read_text() == "not ours\n"
    f = tmp_path / "afile"
    f.write_text("")
    r = CliRunner().invoke(cli, ["demo", str(f)])
    assert r.exit_code != 0


def test_demo_subprocess_default_dir(tmp_path):
    """`python -m annotator demo` with no DIR writes ./annotator-demo (one error-free run)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    p = subprocess.run(
        [sys.executable, "-m", "annotator", "demo", "--identities", "3", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["dir"] == str(tmp_path / "annotator-demo")
    assert (tmp_path / "annotator-demo" / "demo.db").exists()
