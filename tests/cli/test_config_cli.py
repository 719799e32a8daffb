"""`annotator config`: the project's thresholds shown and set (one line for a bad value), used
by the next scan, recorded by it and by an export's manifest, and a change says what to re-run."""

from __future__ import annotations

import json

from click.testing import CliRunner

from annotator import settings
from annotator.cli.main import cli
from annotator.core.review import ops
from annotator.store.db import open_project
from tests.cli.test_scan_cli import make


def run(*args: object) -> dict:
    r = CliRunner().invoke(cli, [str(a) for a in args] + ["--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def fails(*args: object) -> str:
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == 1 and r.stdout == "" and "Traceback" not in r.output, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_defaults_without_a_project():
    rows = run("config")["settings"]
    assert [r["key"] for r in rows] == [s.key for s in settings.SETTINGS]
    tiny = next(r for r in rows if r["key"] == "tiny_px")
    assert tiny["value"] == tiny["default"] == 48 and "tiny" in tiny["meaning"]


def test_the_listing_is_a_table():
    r = CliRunner().invoke(cli, ["config"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == len(settings.SETTINGS)
    # every value ends in the same column and every step starts in the next one
    assert len({line.index("  [") for line in lines}) == 1, r.stdout


def test_a_set_value_drives_the_next_scan_which_records_it(tmp_path):
    db = make(tmp_path)  # 64 px faces, one of 30 px
    first = run("scan", "-p", db, "--workers", "1")
    assert first["flags"]["tiny"] == 1 and first["settings"]["tiny_px"] == 48
    changed = run("config", "-p", db, "tiny_px", "100")
    assert (changed["old"], changed["new"], changed["flags_made_with"]) == (48, 100, 48)
    assert changed["rerun"].startswith(f"annotator scan -p {db}")
    shown = run("config", "-p", db, "tiny_px")["settings"]
    assert shown[0]["value"] == 100 and shown[0]["flags_made_with"] == 48
    second = run("scan", "-p", db, "--workers", "1")
    assert second["hashed"] == 0  # only the flags were made again
    assert second["flags"]["tiny"] == 5 and second["settings"]["tiny_px"] == 100
    assert run("config", "-p", db, "tiny_px")["settings"][0]["flags_made_with"] is None
    # --radius is this run's radius, recorded as such; the project's setting stays
    assert run("scan", "-p", db, "--workers", "1", "--radius", "4")["settings"]["radius"] == 4
    assert run("config", "-p", db, "radius")["settings"][0]["value"] == 8
    # back to the default
    back = run("config", "-p", db, "tiny_px", "--reset")
    assert (back["old"], back["new"]) == (100, 48)


def test_an_export_manifest_records_the_values(tmp_path):
    db = make(tmp_path)
    run("config", "-p", db, "ssim_min", "0.9")
    run("scan", "-p", db, "--workers", "1")
    with open_project(db) as p:
        ids = [i for (i,) in p.conn.execute("SELECT id FROM faces")]
        ops.label_faces(p, ids, "correct", "alice")
    run("export", "-p", db, "--out", tmp_path / "out", "--format", "csv")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["settings"]["scan"]["ssim_min"] == 0.9
    assert manifest["settings"]["project"]["ssim_min"] == 0.9
    assert manifest["settings"]["embed"] is None  # no embed has run


def test_bad_values_are_one_line_and_change_nothing(tmp_path):
    db = make(tmp_path)
    assert "not an integer" in fails("config", "-p", db, "tiny_px", "big")
    assert "outside 0..32" in fails("config", "-p", db, "radius", "33")
    assert "not a finite number" in fails("config", "-p", db, "ssim_min", "nan")
    assert "unknown setting 'tiny'" in fails("config", "-p", db, "tiny", "3")
    assert "unknown setting" in fails("config", "nope")
    assert "needs --project" in fails("config", "tiny_px", "3")
    assert "not both" in fails("config", "-p", db, "tiny_px", "3", "--reset")
    assert all(r["value"] == r["default"] for r in run("config", "-p", db)["settings"])


def test_identity_check_values_count_as_used_by_the_later_run(tmp_path):
    db = make(tmp_path)
    with open_project(db) as p:
        settings.record(p, settings.SCAN, settings.DEFAULTS)
        settings.set_value(p, "suspect_margin", "0.5")
        assert settings.stale(p) == {"suspect_margin": settings.DEFAULTS.suspect_margin}
        settings.record(p, settings.EMBED, settings.load(p).of(settings.EMBED))
        assert settings.stale(p) == {}  # the embed after the scan used 0.5
        settings.set_value(p, "tiny_px", "20")
        assert settings.stale(p) == {"tiny_px": 48}  # an embed never makes the scan's flags
