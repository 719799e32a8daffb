"""A reviewer package made --with-images, opened in the reviewer with its sources gone."""

from __future__ import annotations

import io
import shutil

from PIL import Image

from annotator.core.importer import import_source
from annotator.core.infra import access
from annotator.core.review import pack as core
from annotator.store.db import open_project


def _jpeg(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (40, 40), (i * 50 % 256, 90, 200)).save(b, "JPEG")
    return b.getvalue()


def test_package_with_images_shows_thumbnails_without_sources(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from annotator.gui.app import make_app
    from annotator.gui.main_window import MainWindow

    for n in range(6):
        d = tmp_path / "faces" / "ab"[n // 3]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{n}.jpg").write_bytes(_jpeg(n))
    with open_project(tmp_path / "home.db", create=True) as p:
        import_source(p, "folder", tmp_path / "faces")
        core.pack(p, core.select_identities(p, ["a"]), tmp_path / "pkg.db", with_images=True)
    shutil.move(tmp_path / "faces", tmp_path / "gone")

    make_app()
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), "bob")
    qtbot.addWidget(win)
    try:
        win.set_project(open_project(tmp_path / "pkg.db"))
        win.show()
        qtbot.waitExposed(win)
        win.set_filter("all")
        win.open_identity(win.model.ids[0])
        tiles = win.grid_model.tiles
        assert len(tiles) == 3
        for t in tiles:
            win.loader.request(t.locator(), 128)
        qtbot.waitUntil(lambda: not win.loader.busy, timeout=20_000)
        assert all(win.loader.error(t.id) is None for t in tiles)
        assert all(win.loader.pixmap(t.id, 128) is not None for t in tiles)
    finally:
        win.close()
        access.use_embedded(None)
