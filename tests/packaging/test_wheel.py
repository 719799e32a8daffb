"""The wheel: built from a copy of the source, it holds the icons and only the `annotator`
package; installed into a fresh environment, the program finds its icon and lays the desktop
files pointing at its own `annotator` script.

The wheel is built with pip (offline: `--no-build-isolation` when setuptools>=68 and wheel are
installed, else pip's isolated build from the configured package index).
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from annotator import desktop

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _can_build_without_isolation() -> bool:
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 68


@pytest.fixture(scope="module")
def wheel_file(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    shutil.copytree(
        ROOT / "annotator", src / "annotator", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    # what `annotator demo` leaves in the folder it runs in: must not be packaged
    (src / "annotator-demo").mkdir()
    (src / "annotator-demo" / "__init__.py").write_text("")
    (src / "tests").mkdir()
    (src / "tests" / "__init__.py").write_text("")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "out")]
    if _can_build_without_isolation():
        cmd.append("--no-build-isolation")
    r = subprocess.run([*cmd, str(src)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and "No matching distribution found" in r.stderr:
        pytest.skip("no offline setuptools/wheel to build with: " + r.stderr.splitlines()[-1])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (whl,) = (work / "out").glob("annotator-*.whl")
    return whl


def test_wheel_holds_the_icons_and_only_the_package(wheel_file):
    names = zipfile.ZipFile(wheel_file).namelist()
    icons = "annotator/resources/icons/"
    for n in desktop.ICON_SIZES:
        assert f"{icons}{desktop.ICON_NAME}-{n}.png" in names
    assert f"{icons}{desktop.ICON_NAME}.svg" in names
    assert "annotator/resources/__init__.py" in names
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"annotator"}, tops
    (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert zipfile.ZipFile(wheel_file).read(top_level).decode().split() == ["annotator"]
    assert not [n for n in names if "__pycache__" in n]
    for module in ("annotator/desktop.py", "annotator/cli/install_cmd.py"):
        assert module in names


def _see_our_site_packages(venv: Path) -> None:
    """When the tests run in a virtualenv, `--system-site-packages` of a venv made from it sees
    the BASE Python's site-packages, not this venv's (where PySide6 & co are): a .pth file in
    the new venv adds this environment's site-packages after its own (plain path lines: no
    other .pth of ours runs there, so an editable install of annotator stays out of sight)."""
    if sys.prefix == sys.base_prefix:
        return
    (purelib,) = (venv / "lib").glob("python3*/site-packages")
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "_outer_env.pth").write_text("".join(p + "\n" for p in ours))


def test_installed_wheel_shows_the_icon_and_installs_desktop_files(wheel_file, tmp_path):
    """A fresh venv (seeing the shared site-packages for PySide6 & co) with the wheel in it."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    py = venv / "bin" / "python"
    _see_our_site_packages(venv)
    pip = [sys.executable, "-m", "pip", "--python", str(py)]
    if subprocess.run([*pip, "--version"], capture_output=True).returncode != 0:
        pip = [str(py), "-m", "pip"]  # an older pip: the venv's own (system site has pip)
    r = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "-q", str(wheel_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path))
    probe = (
        "import json, annotator\n"
        "from annotator.gui.app import make_app\n"
        "app = make_app()\n"
        "print(json.dumps({'file': annotator.__file__,\n"
        "  'sizes': sorted(s.width() for s in app.windowIcon().availableSizes())}))\n"
    )
    r = subprocess.run(
        [str(py), "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert Path(out["file"]).is_relative_to(venv), out["file"]  # the wheel's copy, not ours
    assert out["sizes"] == sorted(desktop.ICON_SIZES)

    program = venv / "bin" / "annotator"
    r = subprocess.run(
        [str(program), "install-desktop", "--prefix", str(tmp_path / "pfx"), "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout)
    assert res["exec"] == f"{program} gui %f"
    png = tmp_path / "pfx/share/icons/hicolor/256x256/apps" / f"{desktop.ICON_NAME}.png"
    assert png.read_bytes() == desktop.icon_png(256).read_bytes()
