"""`annotator scan` and `annotator flags`."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner
from PIL import Image, ImageDraw

from annotator.cli.main import cli
from annotator.formats import msceleb


def photo(seed: int, size: int = 64) -> bytes:
    im = Image.new("RGB", (size, size), (seed * 40 % 256, 90, 160))
    d = ImageDraw.Draw(im)
    d.ellipse([seed * 3, 8, 40 + seed * 2, 60], fill=(230, 190 - seed * 20, 150))
    d.rectangle([5, 40 - seed * 4, 25, 50], fill=(20, 20 * seed, 20))
    b = io.BytesIO()
    im.save(b, "JPEG", quality=90)
    return b.getvalue()


def make(tmp_path) -> str:
    rows = [
        ("m.a", photo(0)),  # line 1
        ("m.a", photo(0)),  # line 2: exact copy of line 1
        ("m.b", photo(0)),  # line 3: same bytes under another identity
        ("m.b", photo(3)),  # line 4
        ("m.b", photo(4)[:300]),  # line 5: truncated JPEG -> corrupt
        ("m.c", photo(5, size=30)),  # line 6: tiny
    ]
    with open(tmp_path / "faces.tsv", "wb") as f:
        for i, (mid, data) in enumerate(rows):
            msceleb.write_row(f, mid, i, None, None, None, None, data)
    db = str(tmp_path / "p.db")
    r = CliRunner().invoke(cli, ["import", "msceleb", str(tmp_path / "faces.tsv"), "-p", db])
    assert r.exit_code == 0, r.output
    return db


def test_scan_and_flags_json(tmp_path) -> None:
    db = make(tmp_path)
    r = CliRunner().invoke(cli, ["scan", "-p", db, "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["hashed"] == 6 and out["corrupt"] == 1 and out["radius"] == 8
    # lines 1-3 are one photo filed under m.a twice and m.b once: ONE group, a label conflict
    assert out["flags"]["cross_identity_dup"] == 1 and "exact_dup" not in out["flags"]
    assert out["flags"]["corrupt"] == 1 and out["flags"]["tiny"] == 1
    assert out["dup_groups"] == 1

    r = CliRunner().invoke(cli, ["flags", "-p", db, "--json", "--kind", "cross_identity_dup"])
    assert r.exit_code == 0, r.output
    (flag,) = json.loads(r.output)["flags"]
    assert flag["distance"] == 0 and flag["similarity"] == 1.0
    assert [f["origin"] for f in flag["faces"]] == ["faces.tsv:1", "faces.tsv:2", "faces.tsv:3"]
    assert [f["identity"] for f in flag["faces"]] == ["m.a", "m.a", "m.b"]
    # copies under two identities and no face vectors: no keeper is proposed, and why
    assert sum(f["keeper"] for f in flag["faces"]) == 0
    assert "no face vectors" in flag["keeper_why"]

    # second scan: nothing new, same flags
    r = CliRunner().invoke(cli, ["scan", "-p", db, "--workers", "1", "--json"])
    assert json.loads(r.output)["hashed"] == 0
    r2 = CliRunner().invoke(cli, ["flags", "-p", db, "--json"])
    assert len(json.loads(r2.output)["flags"]) == sum(out["flags"].values())

    r = CliRunner().invoke(cli, ["info", "-p", db, "--json"])
    info = json.loads(r.output)
    assert info["hashed"] == 6 and info["corrupt"] == 1


def test_flags_text_and_errors(tmp_path) -> None:
    db = make(tmp_path)
    assert CliRunner().invoke(cli, ["scan", "-p", db, "--workers", "1"]).exit_code == 0
    r = CliRunner().invoke(cli, ["flags", "-p", db, "--limit", "2"])
    assert r.exit_code == 0 and "phash=" in r.output
    r = CliRunner().invoke(cli, ["scan", "-p", str(tmp_path / "missing.db")])
    assert r.exit_code == 1 and "error:" in r.output
    r = CliRunner().invoke(cli, ["scan", "-p", db, "--radius", "99"])
    assert r.exit_code != 0
