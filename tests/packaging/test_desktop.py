"""install-desktop: the .desktop entry, hicolor icons and MIME type under a prefix, and the
AppStream metainfo. The freedesktop validators run when installed (Debian: desktop-file-utils,
appstream); the files' keys are checked here either way."""

from __future__ import annotations

import configparser
import json
import shlex
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from annotator import desktop
from annotator.cli.main import cli
from annotator.store.db import open_project

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"
MIME_NS = "{http://www.freedesktop.org/standards/shared-mime-info}"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def read_entry(path: Path) -> dict[str, str]:
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # keys are case-sensitive
    cp.read_string(path.read_text(encoding="utf-8"))
    assert cp.sections() == ["Desktop Entry"]
    return dict(cp["Desktop Entry"])


def validate_desktop(path: Path) -> None:
    tool = shutil.which("desktop-file-validate")
    if tool is None:
        return
    r = subprocess.run([tool, str(path)], capture_output=True, text=True)
    assert r.returncode == 0 and "error" not in r.stdout, r.stdout + r.stderr


def test_packaged_icons_are_the_sizes_they_claim():
    assert desktop.icon_svg().read_text().lstrip().startswith("<?xml")
    for n in desktop.ICON_SIZES:
        assert png_size(desktop.icon_png(n).read_bytes()) == (n, n)
    assert min(desktop.ICON_SIZES) == 16 and max(desktop.ICON_SIZES) == 256


def test_install_lays_entry_icons_and_mime_type(tmp_path):
    program = [str(tmp_path / "my apps" / "annotator")]  # a space: Exec must quote it
    res = desktop.install(tmp_path / "pfx", program, refresh=False)
    share = tmp_path / "pfx" / "share"

    entry_path = share / "applications" / "io.github.annotator.desktop"
    entry = read_entry(entry_path)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Annotator"
    assert entry["Icon"] == desktop.ICON_NAME
    assert entry["Terminal"] == "false"
    assert entry["MimeType"] == "application/x-annotator-project;"
    assert entry["Exec"] == f'"{program[0]}" gui %f'
    assert shlex.split(entry["Exec"]) == [program[0], "gui", "%f"]
    assert entry["TryExec"] == program[0]
    assert entry["Categories"].endswith(";")
    validate_desktop(entry_path)

    for n in desktop.ICON_SIZES:
        png = share / "icons" / "hicolor" / f"{n}x{n}" / "apps" / "io.github.annotator.png"
        assert png_size(png.read_bytes()) == (n, n)
    svg = share / "icons" / "hicolor" / "scalable" / "apps" / "io.github.annotator.svg"
    assert svg.read_bytes() == desktop.icon_svg().read_bytes()

    mime = ET.parse(share / "mime" / "packages" / "io.github.annotator.xml").getroot()
    (mtype,) = mime.findall(f"{MIME_NS}mime-type")
    assert mtype.get("type") == desktop.MIME_TYPE
    outer = mtype.find(f"{MIME_NS}magic/{MIME_NS}match")
    inner = outer.find(f"{MIME_NS}match")
    assert (outer.get("value"), outer.get("offset")) == ("SQLite format 3", "0")
    assert (inner.get("type"), inner.get("offset")) == ("big32", "68")
    assert len(res.files) == len(desktop.ICON_SIZES) + 3
    assert all(p.is_file() for p in res.files)


def test_the_mime_magic_matches_a_real_project_file(tmp_path):
    open_project(tmp_path / "p.db", create=True).close()
    head = (tmp_path / "p.db").read_bytes()[:72]
    assert head.startswith(b"SQLite format 3\0")
    assert struct.unpack(">I", head[68:72])[0] == desktop.PROJECT_APPLICATION_ID


@pytest.mark.parametrize(
    "word, quoted",
    [
        ("/usr/bin/annotator", "/usr/bin/annotator"),
        ("/opt/a b/annotator", '"/opt/a b/annotator"'),
        ('/opt/say "hi"/x', '"/opt/say \\"hi\\"/x"'),
        ("/opt/$HOME/x", '"/opt/\\$HOME/x"'),
        ("/opt/100%/x", "/opt/100%%/x"),
    ],
)
def test_exec_quoting_follows_the_desktop_entry_spec(word, quoted):
    assert desktop._exec_word(word) == quoted


def test_backslash_in_exec_is_escaped_twice(tmp_path):
    text = desktop.desktop_entry(["/opt/a\\b/annotator"])
    exec_line = next(v for v in text.splitlines() if v.startswith("Exec="))
    # Exec quoting makes \\, the desktop-file string escaping doubles it again
    assert exec_line == 'Exec="/opt/a\\\\\\\\b/annotator" gui %f'
    p = tmp_path / "x.desktop"
    p.write_text(text)
    validate_desktop(p)


def test_uninstall_removes_exactly_what_install_wrote(tmp_path):
    pfx = tmp_path / "pfx"
    keep = pfx / "share" / "applications" / "other.desktop"
    keep.parent.mkdir(parents=True)
    keep.write_text("[Desktop Entry]\n")
    written = desktop.install(pfx, ["/usr/bin/annotator"], refresh=False).files
    removed = desktop.uninstall(pfx, refresh=False).files
    assert sorted(removed) == sorted(written)
    assert not any(p.exists() for p in written)
    assert keep.exists()
    assert desktop.uninstall(pfx, refresh=False).files == []  # twice is fine


def test_refresh_runs_the_cache_tools_found(tmp_path, monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.setattr(desktop.shutil, "which", lambda tool: f"/fake/{tool}")
    res = desktop.install(tmp_path, ["/usr/bin/annotator"], run=calls.append)
    assert [c[0] for c in calls] == [
        "/fake/update-desktop-database",
        "/fake/update-mime-database",
        "/fake/gtk-update-icon-cache",
    ]
    assert calls[1][1] == str(tmp_path / "share" / "mime")
    assert res.refreshed == [
        "update-desktop-database",
        "update-mime-database",
        "gtk-update-icon-cache",
    ]
    monkeypatch.setattr(desktop.shutil, "which", lambda tool: None)
    assert desktop.install(tmp_path, ["/usr/bin/annotator"], run=calls.append).refreshed == []


@pytest.mark.skipif(shutil.which("update-mime-database") is None, reason="no shared-mime-info")
def test_update_mime_database_accepts_the_type(tmp_path):
    desktop.install(tmp_path, ["/usr/bin/annotator"])
    compiled = tmp_path / "share" / "mime" / "application" / "x-annotator-project.xml"
    assert compiled.is_file()
    assert "Annotator project" in compiled.read_text()
    magic = (tmp_path / "share" / "mime" / "magic").read_bytes()
    # compiled rule: a string at 0, then (nested) the 4 bytes of the application_id at 68
    assert b"[80:application/x-annotator-project]\n>0=\x00\x0fSQLite format 3\n" in magic
    assert b"1>68=\x00\x04ANNO\n" in magic


def test_cli_install_and_uninstall_json(tmp_path):
    r = CliRunner().invoke(cli, ["install-desktop", "--prefix", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["action"] == "install" and out["prefix"] == str(tmp_path)
    entry = read_entry(tmp_path / "share" / "applications" / desktop.DESKTOP_FILE)
    assert entry["Exec"] == out["exec"]
    assert shlex.split(out["exec"])[-2:] == ["gui", "%f"]
    assert Path(shlex.split(out["exec"])[0]).is_absolute()
    r = CliRunner().invoke(cli, ["install-desktop", "--prefix", str(tmp_path), "--uninstall"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"removed {len(out['files'])} file(s)")
    assert not (tmp_path / "share" / "applications" / desktop.DESKTOP_FILE).exists()


def test_cli_default_prefix_is_home_local(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    r = CliRunner().invoke(cli, ["install-desktop", "--json"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / ".local" / "share" / "applications" / desktop.DESKTOP_FILE).is_file()


# -- the files in packaging/ ---------------------------------------------------------------------


def test_shipped_desktop_file_is_the_generated_one():
    """packaging/io.github.annotator.desktop is for distributions (program on PATH)."""
    shipped = PACKAGING / desktop.DESKTOP_FILE
    assert shipped.read_text() == desktop.desktop_entry(["annotator"])
    validate_desktop(shipped)


def test_metainfo_names_the_entry_icon_and_screenshots():
    meta = PACKAGING / f"{desktop.APP_ID}.metainfo.xml"
    root = ET.parse(meta).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    assert root.findtext("id") == desktop.APP_ID
    assert root.findtext("launchable") == desktop.DESKTOP_FILE
    assert root.findtext("icon") == desktop.ICON_NAME
    assert root.findtext("provides/mediatype") == desktop.MIME_TYPE
    images = [e.text for e in root.iter("image")]
    assert len(images) >= 3
    for url in images:
        name = url.rsplit("/docs/", 1)[1]
        assert (ROOT / "docs" / name).is_file(), url
    tool = shutil.which("appstreamcli")
    if tool is not None:
        r = subprocess.run(
            [tool, "validate", "--no-net", "--pedantic", str(meta)], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "W:" not in r.stdout and "E:" not in r.stdout, r.stdout


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="no desktop-file-utils")
def test_validator_rejects_a_broken_entry(tmp_path):
    """The validator is really consulted: a bad key makes validate_desktop fail."""
    p = tmp_path / "bad.desktop"
    p.write_text(desktop.desktop_entry(["annotator"]).replace("Type=Application", "Type=Nope"))
    with pytest.raises(AssertionError):
        validate_desktop(p)


@pytest.mark.parametrize("prefix", ["", "/", "~nouser-annotator-test/x"])
def test_a_prefix_that_cannot_be_meant_is_refused_in_one_line(prefix, tmp_path, monkeypatch):
    """Issue 20 finding 15: '' installed into the current folder, '/' wrote /share, and an
    unknown user's ~ gave "unexpected RuntimeError"."""
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["install-desktop", "--prefix", prefix])
    assert r.exit_code == 1 and r.output.startswith("error: ") and r.output.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("update-mime-database") is None, reason="no shared-mime-info")
def test_uninstall_leaves_no_mime_cache_of_its_own(tmp_path):
    pfx = tmp_path / "pfx"
    desktop.install(pfx, ["/usr/bin/annotator"])
    assert (pfx / "share" / "mime" / "mime.cache").exists()
    desktop.uninstall(pfx)
    assert not (pfx / "share" / "mime").exists()
    assert not (pfx / "share" / "applications" / "mimeinfo.cache").exists()
