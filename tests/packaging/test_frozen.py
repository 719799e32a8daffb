"""The one-folder PyInstaller build: packaging/build.sh builds it, then runs the frozen
program's `demo`, `gui --screenshot` and `install-desktop` in a clean environment (env -i,
PATH=/usr/bin:/bin, a fresh HOME) and, with strace, checks it opens no file of this Python.

The build takes about 3 minutes on the 2-core test machine (under the 4-minute line past which
it would move to a separate `build` marker), so it is in the default run, marked slow.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from annotator import desktop

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        importlib.util.find_spec("PyInstaller") is None,
        reason="PyInstaller is not installed (pip install -e '.[packaging]')",
    ),
]

QT_KEPT = {"QtCore", "QtGui", "QtWidgets", "QtSvg"}


def folder_mb(path: Path) -> float:
    """Like `du`: PyInstaller links some libraries, count each file once."""
    return (
        sum(p.lstat().st_size for p in path.rglob("*") if not p.is_symlink() and p.is_file())
        / 2**20
    )


def test_build_sh_makes_a_folder_that_runs_without_python(tmp_path):
    r = subprocess.run(
        ["sh", str(ROOT / "packaging" / "build.sh"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    folder = tmp_path / "dist" / "annotator"
    check = tmp_path / "check"
    if shutil.which("strace"):
        assert "strace: no file under" in r.stdout
        assert list(check.glob("trace.log.*")), "strace left no trace"

    # the frozen demo and window
    demo = json.loads((check / "demo.json").read_text())
    assert demo["identities"] == 4 and Path(demo["project"]).is_file()
    shot = (check / "window.png").read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    # its desktop entry starts the frozen program itself
    res = json.loads((check / "install.json").read_text())
    assert res["exec"] == f"{folder / 'annotator'} gui %f"

    internal = folder / "_internal"
    icons = internal / "annotator" / "resources" / "icons"
    for n in desktop.ICON_SIZES:
        assert (icons / f"{desktop.ICON_NAME}-{n}.png").is_file()
    qt_modules = {p.name.split(".")[0] for p in (internal / "PySide6").glob("Qt*.so")}
    assert qt_modules <= QT_KEPT, qt_modules - QT_KEPT
    assert not (internal / "pytest").exists() and not (internal / "tkinter").exists()
    # the [embed] extra stays out even when installed (it made the folder 440 MB)
    assert not [n for n in ("onnxruntime", "onnx", "faiss", "dlib") if (internal / n).exists()]
    assert folder_mb(folder) < 400, folder_mb(folder)  # 330 MB when written
