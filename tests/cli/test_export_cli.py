"""`annotator export`, `annotator evaluate` and `annotator stats` end to end through the CLI."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner
from PIL import Image, ImageDraw

from annotator.cli.main import cli
from annotator.core.review import ops
from annotator.formats import msceleb
from annotator.store.db import open_project


def jpeg(i: int) -> bytes:
    im = Image.new("RGB", (64, 64), ((i * 41) % 256, (i * 17) % 256, 90))
    ImageDraw.Draw(im).rectangle((5 + i % 9, 5, 50, 40 + i % 11), fill=(200, (i * 7) % 256, 30))
    b = io.BytesIO()
    im.save(b, "JPEG", quality=85)
    return b.getvalue()


def make(tmp_path):
    """4 identities x 3 faces imported with the CLI; all labeled correct except one face."""
    with open(tmp_path / "faces.tsv", "wb") as f:
        n = 0
        for k in range(4):
            for j in range(3):
                n += 1
                msceleb.write_row(
                    f, f"m.{k}", j + 1, f"http://img/{n}", "http://page", str(j), None, jpeg(n)
                )
    db = str(tmp_path / "p.db")
    r = CliRunner().invoke(cli, ["import", "msceleb", str(tmp_path / "faces.tsv"), "-p", db])
    assert r.exit_code == 0, r.output
    with open_project(db) as p:
        for (ident,) in p.conn.execute("SELECT id FROM identities").fetchall():
            ops.review_identity(p, ident, "alice")
        ops.label_faces(p, [1], "wrong_identity", "alice")
    return db


def test_export_evaluate_stats(tmp_path):
    db = make(tmp_path)
    run = CliRunner().invoke
    out = tmp_path / "set"
    r = run(
        cli,
        ["export", "-p", db, "--out", str(out), "--format", "msceleb", "--pairs", "3", "--json"],
    )
    assert r.exit_code == 0, r.output
    obj = json.loads(r.output)
    assert (obj["faces"], obj["identities"], obj["pairs"]) == (11, 4, 3)
    assert obj["excluded"] == {"label wrong_identity": 1}
    assert (out / "faces.tsv").exists() and (out / "pairs.bin").exists()

    # a second export into the same, now non-empty folder fails with one line
    r = run(cli, ["export", "-p", db, "--out", str(out), "--format", "msceleb"])
    assert r.exit_code == 1
    assert r.output.strip().startswith("error:") and "--force" in r.output
    assert len(r.output.strip().splitlines()) == 1

    # predictions in the challenge format: 8 right, 2 wrong (tied at 0.5), one face unanswered
    rows = list(csv.DictReader(open(out / "manifest.csv", encoding="utf-8")))
    truth = {}
    with open(out / "faces.tsv", "rb") as fh:
        for line in fh:
            c = line.decode().split("\t")
            truth[(c[2], c[4])] = c[0]
    assert len(truth) == len(rows) == 11
    keys = sorted(truth)
    lines = []
    for i, (url, fid) in enumerate(keys[:10]):
        mid = truth[(url, fid)] if i < 8 else "m.wrong"
        conf = 0.9 - i * 0.01 if i < 8 else 0.5
        lines.append(f"{url}\t{fid}\t{mid}\t{conf}")
    lines.append("garbage line")
    (tmp_path / "pred.tsv").write_text("\n".join(lines) + "\n")
    plot = tmp_path / "curve.png"
    r = run(
        cli,
        [
            "evaluate",
            "--truth",
            str(out),
            "--predictions",
            str(tmp_path / "pred.tsv"),
            "--plot",
            str(plot),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)
    assert (ev["test_faces"], ev["answered"], ev["correct"], ev["bad_lines"]) == (11, 10, 8, 1)
    assert abs(ev["top1_accuracy"] - 8 / 11) < 1e-9
    assert abs(ev["coverage_at_precision"]["0.99"]["coverage"] - 8 / 11) < 1e-9
    assert plot.read_bytes()[:4] == b"\x89PNG"
    r = run(
        cli, ["evaluate", "--truth", str(tmp_path), "--predictions", str(tmp_path / "pred.tsv")]
    )
    assert r.exit_code == 1 and "not an annotator export" in r.output

    r = run(cli, ["stats", "-p", db, "--json", "--plots", str(tmp_path / "plots")])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["faces_by_label"]["correct"] == 11 and s["noise"]["noisy"] == 1
    assert len(s["plots"]) == 4
    r = run(cli, ["stats", "-p", db])
    assert r.exit_code == 0
    # counts among reviewed identities, no rate or interval (no random sample was drawn)
    assert "among labeled faces: 1 of 12" in r.output
    assert "raw-data noise estimate: none yet" in r.output and "8.3%" not in r.output
    assert "labelled with an annotator command" in r.output
    # the faces-per-identity histogram says what its two columns are
    lines = r.output.splitlines()
    h = next(i for i, line in enumerate(lines) if line.startswith("faces per identity:"))
    assert lines[h + 1].split() == ["faces", "identities"]
    assert len(lines[h + 2].split()) == 2


def test_export_force_and_text_output(tmp_path):
    db = make(tmp_path)
    out = tmp_path / "f"
    r = CliRunner().invoke(cli, ["export", "-p", db, "--out", str(out), "--format", "csv"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        cli,
        [
            "export",
            "-p",
            db,
            "--out",
            str(out),
            "--format",
            "folder",
            "--force",
            "--min-faces",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "exported 9 faces of 3 identities" in r.output
    assert (out / "m.1").is_dir() and not (out / "m.0").exists()
    r = CliRunner().invoke(
        cli, ["export", "-p", db, "--out", str(tmp_path / "g"), "--format", "rec", "--pairs", "100"]
    )
    assert r.exit_code == 1 and "genuine pairs are possible" in r.output
    assert not (tmp_path / "g").exists()


def test_force_refuses_home_and_folders_that_are_not_exports(tmp_path, monkeypatch):
    db = make(tmp_path)
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / "Documents" / "cv.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(home))
    other = tmp_path / "other"
    other.mkdir()
    (other / "old").write_text("x")
    for out, why in (
        ("~", "is your home folder"),
        (str(home / "Documents"), "is not an earlier export"),
        (str(other), "is not an earlier export"),
        ("/", "root of the file system"),
        (str(tmp_path), "above your home folder"),
    ):
        r = CliRunner().invoke(
            cli, ["export", "-p", db, "--out", out, "--format", "folder", "--force"]
        )
        assert r.exit_code == 1, (out, r.output)
        assert r.output.startswith("error: ") and why in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
    assert (home / "Documents" / "cv.txt").read_text() == "mine"
    assert (other / "old").read_text() == "x"
