"""The README's walkthrough, end to end through the CLI.

``test_readme_walkthrough_runs_as_written`` runs the exact lines of the README's
`sh walkthrough` blocks, in order, in an empty folder (the README and the test cannot drift).
``test_walkthrough`` goes further on a small demo project: demo -> scan -> labels import ->
qa start/label/report/adjudicate -> export (folder, rec) -> evaluate -> stats -> takedown ->
export again. Each step checks what a user would look at.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from annotator.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


def run(*args: object) -> dict:
    r = CliRunner().invoke(cli, [str(a) for a in args] + ["--json"])
    assert r.exit_code == 0, (args, r.output, r.stderr if r.stderr_bytes else "")
    assert "Traceback" not in r.output
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("walk")
    run("demo", d, "--identities", 12, "--seed", 3)
    return d


def truth_labels(d: Path) -> dict[int, str]:
    """The label a careful reviewer would give each imported line of the demo."""
    t = json.loads((d / "truth.json").read_text())
    broken = {b["line"] for b in t["broken"]}
    wrong = set(t["wrong_identity"])
    trunc = set(t["truncated"])
    dup = {b for _, b in t["exact_dup"] + t["near_dup"]}
    out = {}
    for ident in t["identities"].values():
        for line in ident["lines"]:
            if line in broken:
                continue
            out[line] = (
                "wrong_identity"
                if line in wrong
                else "unusable"
                if line in trunc
                else "duplicate"
                if line in dup
                else "correct"
            )
    return out


def test_walkthrough(demo, tmp_path):
    db = demo / "demo.db"
    scan = run("scan", "-p", db, "--workers", 1)
    info = run("info", "-p", db)
    assert info["hashed"] == info["faces"] > 0
    truth = json.loads((demo / "truth.json").read_text())
    assert info["corrupt"] == len(truth["truncated"])
    assert scan  # the scan reported something

    # flags: every injected cross-identity duplicate is found
    flags = run("flags", "-p", db, "--kind", "cross_identity_dup")["flags"]
    found = {tuple(sorted(int(f["origin"].rsplit(":", 1)[1]) for f in fl["faces"])) for fl in flags}
    for a, b in truth["cross_identity_dup"]:
        assert tuple(sorted((a, b))) in found

    # review by file: alice labels everything
    labels = truth_labels(demo)
    lf = tmp_path / "labels.csv"
    lf.write_text("origin,label\n" + "".join(f"faces.tsv:{n},{lab}\n" for n, lab in labels.items()))
    run("labels", "import", lf, "-p", db, "-r", "alice")
    info = run("info", "-p", db)
    assert info["labels"]["correct"] == sum(v == "correct" for v in labels.values())

    # QA: bob checks a blind sample and disagrees on exactly one face
    start = run("qa", "start", "-p", db, "-r", "bob", "--count", 20, "--seed", 1)
    pass_id = start["pass"] if "pass" in start else start["pass_id"]
    items = run("qa", "items", "-p", db, "--pass", pass_id)["items"]
    assert len(items) == 20
    assert all("label" not in it for it in items)  # blind
    verdicts = []
    disputed = None
    for it in items:
        lab = labels[int(it["origin"].rsplit(":", 1)[1])]
        if disputed is None and lab == "correct":
            disputed, lab = it["origin"], "unsure"
        verdicts.append(f"{it['origin']},{lab}\n")
    qf = tmp_path / "qa.csv"
    qf.write_text("origin,label\n" + "".join(verdicts))
    run("qa", "label", qf, "-p", db, "-r", "bob", "--pass", pass_id)
    rep = run("qa", "report", "-p", db)
    assert rep["overall"]["items"] == 20
    assert rep["overall"]["agree"] == 19
    assert rep["adjudication_pending"] == 1
    queue = run("qa", "queue", "-p", db)
    assert [q["origin"] for q in queue["queue"]] == [disputed]
    run("qa", "adjudicate", disputed, "correct", "-p", db, "-r", "carol", "--pass", pass_id)
    assert run("qa", "report", "-p", db)["adjudication_pending"] == 0

    # export: folder with pairs, and rec that our own reader imports back
    out = tmp_path / "clean"
    ex = run("export", "-p", db, "--out", out, "--format", "folder", "--pairs", 20, "--seed", 1)
    n_keepers = ex["faces"]
    assert 0 < n_keepers <= sum(v == "correct" for v in labels.values())
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["faces"] == n_keepers
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    jpgs = sorted(out.glob("*/*.jpg"))
    assert len(jpgs) == n_keepers
    assert (out / "pairs.txt").exists() and (out / "pairs.bin").exists()

    rec = tmp_path / "rec"
    run("export", "-p", db, "--out", rec, "--format", "rec")
    back = run("import", "rec", rec / "train.rec", "--project", tmp_path / "back.db")
    assert back["imported"] == n_keepers and back["rejected"] == []

    # evaluate: a perfect recogniser covers everything at precision 1
    preds = tmp_path / "pred.tsv"
    preds.write_text("".join(f"{p.parent.name}/{p.name}\t{p.parent.name}\t0.9\n" for p in jpgs))
    ev = run("evaluate", "--truth", out, "--predictions", preds)
    assert ev["top1_accuracy"] == 1.0
    assert ev["coverage_at_precision"]["0.95"]["coverage"] == 1.0

    st = run("stats", "-p", db)
    assert st["faces"] == info["faces"]
    assert st["qa"]

    # takedown: the identity disappears from the project and from the next export
    victim = jpgs[0].parent.name
    r = CliRunner().invoke(cli, ["takedown", victim, "-p", str(db), "-r", "lead", "--yes"])
    assert r.exit_code == 0, r.output
    assert "earlier export(s)" in r.stderr  # the folders written above may still hold the person
    ids = run("identities", "-p", db)
    keys = {i["key"] for i in (ids["identities"] if isinstance(ids, dict) else ids)}
    assert victim not in keys
    out2 = tmp_path / "clean2"
    run("export", "-p", db, "--out", out2, "--format", "folder")
    assert not (out2 / victim).exists()
    assert victim.encode() not in db.read_bytes()


def walkthrough_lines() -> list[str]:
    """The command lines of the README's `sh walkthrough` blocks, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh walkthrough\n(.*?)^```", readme, re.S | re.M)
    return [ln for b in blocks for ln in b.splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_walkthrough_runs_as_written(tmp_path, monkeypatch):
    """Every walkthrough line, as written: `annotator ...` lines through the CLI in this
    process, other lines (a shell one-liner) through bash; the only thing chosen here is the
    working directory (an empty folder)."""
    lines = walkthrough_lines()
    assert [ln.split()[:2] for ln in lines if ln.startswith("annotator ")][:3] == [
        ["annotator", "demo"],
        ["annotator", "scan"],
        ["annotator", "flags"],
    ]
    assert any("evaluate" in ln for ln in lines) and any("export" in ln for ln in lines)
    monkeypatch.chdir(tmp_path)
    outputs: dict[str, str] = {}
    for line in lines:
        if line.startswith("annotator ") and not re.search(r"[|<>;&$`]", line):
            r = CliRunner().invoke(cli, shlex.split(line)[1:])
            out = r.output
            assert r.exit_code == 0, (line, out)
        else:
            env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
            p = subprocess.run(
                ["bash", "-e", "-c", line], cwd=tmp_path, capture_output=True, text=True, env=env
            )
            out = p.stdout + p.stderr
            assert p.returncode == 0, (line, out)
        assert "Traceback" not in out and "error:" not in out, (line, out)
        outputs[line] = out
    ev = next(o for ln, o in outputs.items() if ln.startswith("annotator evaluate"))
    assert "top-1 accuracy 1.0000" in ev
    assert (tmp_path / "clean-set" / "pairs.txt").exists()
    assert (tmp_path / "plots" / "labels.png").exists() and (tmp_path / "curve.png").exists()
    queue = next(o for ln, o in outputs.items() if ln.startswith("annotator qa queue"))
    assert queue.startswith("nothing to adjudicate")


def test_readme_walkthrough_outputs_are_git_ignored():
    ignored = {ln.strip("/") for ln in (ROOT / ".gitignore").read_text(encoding="utf-8").split()}
    for name in ("annotator-demo/", "clean-set/", "plots/", "predictions.tsv", "curve.png"):
        assert name.strip("/") in ignored, name


def test_readme_lists_the_shortcut_table():
    from annotator.gui import shortcuts

    readme = (ROOT / "README.md").read_text()
    assert shortcuts.markdown_table().strip() in readme


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    cmds = re.findall(
        r"^python3 -m pip install -e '\.\[test[a-z,]*\]' && python3 -m pytest -q$", readme, re.M
    )
    assert cmds, "README lost its test command"
    assert cmds[0] in ci
    # every extra whose code the tests cover is installed by it (a skipped test proves nothing)
    extras = set(re.search(r"\[([a-z,]+)\]", cmds[0]).group(1).split(","))
    pyproject = (ROOT / "pyproject.toml").read_text()
    declared = set(
        re.findall(
            r"^([a-z]+) = \[",
            pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0],
            re.M,
        )
    )
    assert extras == declared, (extras, declared)
