"""`annotator info` and `annotator identities`."""

import io
import json

from click.testing import CliRunner
from PIL import Image

from annotator.cli.main import cli
from annotator.formats import msceleb


def jpeg(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (10, 10), (i, 0, 0)).save(b, "JPEG")
    return b.getvalue()


def make(tmp_path):
    with open(tmp_path / "faces.tsv", "wb") as f:
        for i in range(5):
            msceleb.write_row(f, f"m.{i % 2}", i, None, None, None, None, jpeg(i))
        f.write(b"x\n")
    (tmp_path / "names.tsv").write_text('m.0\t"Zero"@en\nm.0\t"Ноль"@ru\n', encoding="utf-8")
    db = str(tmp_path / "p.db")
    r = CliRunner()
    assert (
        r.invoke(cli, ["import", "msceleb", str(tmp_path / "faces.tsv"), "-p", db]).exit_code == 0
    )
    assert r.invoke(cli, ["import", "names", str(tmp_path / "names.tsv"), "-p", db]).exit_code == 0
    return db


def test_info(tmp_path):
    db = make(tmp_path)
    r = CliRunner().invoke(cli, ["info", "-p", db, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {
        k: out[k]
        for k in (
            "sources",
            "identities",
            "faces",
            "rejected",
            "hashed",
            "corrupt",
            "reviewed_identities",
        )
    } == {
        "sources": 2,
        "identities": 2,
        "faces": 5,
        "rejected": 1,
        "hashed": 0,
        "corrupt": 0,
        "reviewed_identities": 0,
    }
    assert out["flags"] == {} and out["labels"] == {}
    text = CliRunner().invoke(cli, ["info", "-p", db]).output
    assert "faces" in text and "5" in text and "faces.tsv" in text


def test_identities(tmp_path):
    db = make(tmp_path)
    r = CliRunner().invoke(cli, ["identities", "-p", db, "--json"])
    assert r.exit_code == 0
    assert json.loads(r.output) == {
        "identities": [
            {"key": "m.0", "names": {"en": "Zero", "ru": "Ноль"}, "faces": 3},
            {"key": "m.1", "names": {}, "faces": 2},
        ]
    }
    text = CliRunner().invoke(cli, ["identities", "-p", db]).output
    assert text.splitlines()[0].startswith("m.0\t3\t") and "Ноль" in text


def test_missing_project(tmp_path):
    r = CliRunner().invoke(cli, ["info", "-p", str(tmp_path / "none.db")])
    assert r.exit_code == 1 and r.output.startswith("error: no project file")
    assert not (tmp_path / "none.db").exists()
