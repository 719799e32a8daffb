"""CLI: labels import/export, qa start/items/label/report/queue/adjudicate, takedown."""

import csv
import io
import json
import re

import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from annotator.store.db import open_project


@pytest.fixture
def db(tmp_path, build_project):
    path = tmp_path / "p.db"
    p = build_project(
        path,
        {"m.a": 10, "m.b": 10},
        ranked=True,
        face_ref="FaceId-0",
        names={"m.a": "Zyxwv Qpon"},
    )
    p.close()
    return str(path)


def run(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    return r


def test_labels_import_export_qa_flow(db, tmp_path):
    lab = tmp_path / "labels.tsv"
    lab.write_text(
        "".join(f"faces.tsv:{i}\tcorrect\n" for i in range(1, 17))
        + "faces.tsv:17\twrong_identity\nfaces.tsv:18\tduplicate\n"
        + "faces.tsv:99\tcorrect\nfaces.tsv:19\tbogus\n"
    )
    r = run("labels", "import", lab, "--project", db, "--reviewer", "alice", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["applied"] == 18 and out["unchanged"] == 0
    assert [e["line"] for e in out["errors"]] == [19, 20]

    r = run(
        "qa", "start", "--project", db, "--reviewer", "bob", "--count", "6", "--seed", "3", "--json"
    )
    assert r.exit_code == 0, r.output
    start = json.loads(r.stdout)
    pid = start["pass_id"]
    assert start["items"] == 6 and start["seed"] == 3
    r = run("qa", "items", "--project", db, "--pass", pid, "--json")
    items = json.loads(r.stdout)["items"]
    assert len(items) == 6 and set(items[0]) == {
        "face_id",
        "position",
        "origin",
        "identity",
        "verdict",
    }
    assert "correct" not in r.stdout and "wrong_identity" not in r.stdout  # blind

    # bob disagrees on the first item, agrees on the rest
    orig = dict(open_project(db).conn.execute("SELECT id, label FROM faces"))
    verdicts = tmp_path / "verdicts.csv"
    lines = ["origin,label"]
    for k, it in enumerate(items):
        o = orig[it["face_id"]]
        lines.append(f"{it['origin']},{'unsure' if k == 0 else o}")
    lines.append("faces.tsv:20,correct")  # not in the pass
    verdicts.write_text("\n".join(lines) + "\n")
    r = run("qa", "label", "--project", db, "--reviewer", "bob", "--pass", pid, verdicts, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["recorded"] == 6 and [e["line"] for e in res["errors"]] == [8]

    r = run("qa", "report", "--project", db, "--json")
    rep = json.loads(r.stdout)
    assert rep["overall"]["items"] == 6 and rep["overall"]["agree"] == 5
    assert rep["per_reviewer"]["alice"]["percent_agreement"] == pytest.approx(100 * 5 / 6, abs=1e-3)
    r = run("qa", "report", "--project", db)
    assert r.exit_code == 0 and "kappa" in r.output and "Fleiss" in r.output
    # the confusion matrix names its columns in full, each count right under its name
    lines = r.output.splitlines()
    h = next(i for i, line in enumerate(lines) if "original \\ QA" in line)
    assert lines[h].split()[3:] == ["correct", "wrong_identity", "duplicate", "unsure"]
    ends = [m.end() for m in re.finditer(r"\S+", lines[h])][3:]
    for row in lines[h + 1 : h + 5]:
        assert [m.end() for m in re.finditer(r"\S+", row)][1:] == ends, (lines[h], row)

    r = run("qa", "queue", "--project", db, "--json")
    q = json.loads(r.stdout)["queue"]
    assert len(q) == 1 and q[0]["verdict"] == "unsure" and q[0]["orig_reviewer"] == "alice"
    r = run(
        "qa",
        "adjudicate",
        "--project",
        db,
        "--pass",
        pid,
        q[0]["origin"],
        "unsure",
        "--reviewer",
        "carol",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["changed"] is True
    assert json.loads(run("qa", "queue", "--project", db, "--json").stdout)["queue"] == []

    r = run("labels", "export", "--project", db)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 20
    adj = next(x for x in rows if x["origin"] == q[0]["origin"])
    assert adj["label"] == "unsure" and adj["reviewer"] == "carol" and adj["qa_verdict"] == "unsure"
    assert adj["qa_reviewer"] == "bob" and adj["adjudicated"] == "unsure"
    out = tmp_path / "labels.jsonl"
    r = run("labels", "export", "--project", db, "--out", out, "--json")
    assert json.loads(r.stdout)["faces"] == 20
    assert len(out.read_text().splitlines()) == 20
    r = run("labels", "export", "--project", db, "--json")
    assert len(json.loads(r.stdout)["faces"]) == 20


def test_cli_errors_are_one_line(db, tmp_path):
    r = run("qa", "items", "--project", db, "--pass", 7)
    assert r.exit_code == 1 and r.output.strip() == "error: no QA pass 7"
    r = run("labels", "import", tmp_path / "missing.tsv", "--project", db, "--reviewer", "a")
    assert r.exit_code == 1 and "no such file" in r.output
    r = run("qa", "start", "--project", db, "--reviewer", "bob")
    assert r.exit_code == 1 and r.output.startswith("error: nothing to check")
    r = run("takedown", "m.zzz", "--project", db, "--reviewer", "a", "--yes")
    assert r.exit_code == 1 and "no identity" in r.output


def test_takedown_cli(db):
    r = run(
        "takedown",
        "m.a",
        "--project",
        db,
        "--reviewer",
        "admin",
        "--json",
        "--yes",
        "--force-unscanned",
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["faces_removed"] == 10 and res["names_removed"] == 1
    data = open(db, "rb").read()
    assert b"m.a" not in data and b"Zyxwv" not in data and b"m.b" in data


def test_labels_import_text_says_how_the_file_was_read(db, tmp_path):
    lab = tmp_path / "labels.tsv"
    lab.write_text("faces.tsv:1\tcorrect\nfaces.tsv:2\n")
    r = run("labels", "import", lab, "--project", db, "--reviewer", "alice")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("read as a label file (origin or face id, label): 1 face(s)")
    clean = tmp_path / "clean.tsv"
    clean.write_text("m.b/11-FaceId-0.jpg\tm.b\n")
    r = run("labels", "import", clean, "--project", db, "--reviewer", "alice")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("read as a clean list (listed faces are correct): 1 face(s)")


@pytest.mark.parametrize(
    "extra, why", [(["--json"], "with --json"), ([], "with no terminal to ask on")]
)
def test_takedown_without_yes_and_without_a_person_removes_nothing(db, extra, why):
    """Irreversible: with no terminal (CliRunner's stdin is not a tty) or with --json, no
    --yes means one error line, exit 1, nothing deleted."""
    before = open(db, "rb").read()
    r = run("takedown", "m.a", "--project", db, "--reviewer", "admin", *extra)
    assert r.exit_code == 1
    assert r.output.splitlines() == [
        f"error: takedown is irreversible: {why}, pass --yes to remove m.a; nothing was removed"
    ]
    with open_project(db) as p:
        assert p.conn.execute("SELECT count(*) FROM identities WHERE key = 'm.a'").fetchone()[0]
    assert b"m.a" in before


def test_empty_queue_says_so_and_adjudicate_help_keeps_labels_whole(db):
    r = run("qa", "queue", "--project", db)
    assert r.exit_code == 0
    assert r.output.startswith("nothing to adjudicate")
    r = run("qa", "queue", "--project", db, "--json")
    assert json.loads(r.stdout) == {"queue": []}
    for width in (60, 80, 100):
        r = CliRunner().invoke(cli, ["qa", "adjudicate", "--help"], terminal_width=width)
        words = set(re.findall(r"[a-z_]+", r.output))
        assert {"correct", "wrong_identity", "duplicate", "unusable", "unsure"} <= words, width
