"""Fixtures for the reviewer's GUI tests: a small demo project and an isolated window."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from annotator.core.importer import import_source
from annotator.demo.dataset import generate_demo
from annotator.store.db import open_project

_CACHE: dict[str, Path] = {}


def _template(tmp_path_factory) -> Path:
    if "demo" not in _CACHE:
        d = tmp_path_factory.mktemp("demo_template")
        generate_demo(d, identities=6, faces_per_identity=(5, 9), seed=3)
        p = open_project(d / "demo.db", create=True)
        import_source(p, "msceleb", d / "faces.tsv")
        import_source(p, "names", d / "names.tsv")
        p.close()
        _CACHE["demo"] = d
    return _CACHE["demo"]


@pytest.fixture
def demo_project(tmp_path_factory, tmp_path) -> Path:
    """A copy of a small imported demo project (6 identities, ~45 faces); the source files
    stay in the template folder, so locators keep working."""
    src = _template(tmp_path_factory)
    dst = tmp_path / "demo.db"
    shutil.copy(src / "demo.db", dst)
    return dst


@pytest.fixture
def other_project(tmp_path_factory, tmp_path) -> Path:
    """A second, different project (4 identities, other faces), with the same ids."""
    if "other" not in _CACHE:
        d = tmp_path_factory.mktemp("other_template")
        generate_demo(d, identities=4, faces_per_identity=(5, 6), seed=11)
        with open_project(d / "demo.db", create=True) as p:
            import_source(p, "msceleb", d / "faces.tsv")
        _CACHE["other"] = d
    dst = tmp_path / "other.db"
    shutil.copy(_CACHE["other"] / "demo.db", dst)
    return dst


@pytest.fixture
def window(qtbot, demo_project, tmp_path):
    from PySide6.QtCore import QSettings

    from annotator.gui.app import make_app
    from annotator.gui.main_window import MainWindow

    make_app()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings, "tester")
    qtbot.addWidget(win)
    win.set_project(open_project(demo_project))
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    win.grid.setFocus()
    yield win
    win.close()
