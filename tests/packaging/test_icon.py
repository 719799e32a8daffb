"""The application and its windows carry the packaged icon (not Qt's default)."""

from __future__ import annotations

from annotator import desktop
from annotator.gui.app import app_icon, make_app


def test_app_icon_has_every_packaged_size(qapp):
    icon = app_icon()
    assert not icon.isNull()
    sizes = sorted(s.width() for s in icon.availableSizes())
    assert sizes == sorted(desktop.ICON_SIZES)


def test_make_app_sets_the_window_icon(qapp, qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from annotator.gui.main_window import MainWindow

    app = make_app()
    assert sorted(s.width() for s in app.windowIcon().availableSizes()) == sorted(
        desktop.ICON_SIZES
    )
    assert app.desktopFileName() == desktop.APP_ID
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), "tester")
    qtbot.addWidget(win)
    shown = win.windowIcon().pixmap(48, 48).toImage()
    packaged = app_icon().pixmap(48, 48).toImage()
    assert shown == packaged
