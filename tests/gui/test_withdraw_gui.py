"""GUI: a takedown by another process is noticed through the project's data version (the
window drops the person from the list, the grid and memory) and the thumbnail cache cannot be
rebuilt for a removed face meanwhile; Identity > Withdraw… previews and withdraws."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from annotator.core.review.takedown import takedown
from annotator.core.scan import scan
from annotator.gui.dialogs.withdraw_dialog import WithdrawDialog
from annotator.store.db import open_project


def test_a_takedown_elsewhere_drops_the_person_and_nothing_rebuilds_them(
    qtbot, window, demo_project
):
    ld = window.loader
    ident = window.model.ids[0]
    window.open_identity(ident)
    assert window.wait_painted()
    tiles = list(window.grid_model.tiles)
    fids = [t.id for t in tiles]
    assert fids and ld.pixmap(fids[0], window.grid.thumb_size) is not None
    key = window.identity_row(ident).key

    other = open_project(demo_project)  # another process withdraws the person
    takedown(other, key, "admin", force_unscanned=True)
    other.close()

    # before the window notices: evicted from memory (its bound), asked again; not rebuilt
    ld._mem.clear()  # noqa: SLF001 - what the bounded memory cache does on a zoom
    zoom = 256
    assert ld.request(tiles[0].locator(), zoom) is None
    qtbot.waitUntil(lambda: not ld.busy, timeout=20_000)
    assert ld.pixmap(fids[0], zoom) is None and "takedown" in (ld.error(fids[0]) or "")
    cache_file = demo_project.with_name(demo_project.name + ".cache") / "thumbs.sqlite"
    assert not cache_file.exists()
    stale = ld.disk
    stale.put(fids[0], zoom, "x", b"jpeg")  # a late worker's write is refused
    assert not cache_file.exists()
    assert stale.disabled

    assert window.withdraw_watch.check()  # the watch sees the data version change
    assert ident not in window.model.ids
    assert window.current_identity != ident
    assert all(ld.pixmap(f, window.grid.thumb_size) is None for f in fids)
    assert not set(fids) & {t.id for t in window.grid_model.tiles}
    assert not window.withdraw_watch.check()  # once


def test_withdraw_dialog_previews_then_withdraws(qtbot, window, monkeypatch):
    scan(window.project, workers=1)  # a takedown needs the faces hashed (copies are found)
    ids = window.model.ids[:2]
    keys = [window.identity_row(i).key for i in ids]
    d = WithdrawDialog(window, window, f"{keys[1]}\n# a comment\nNobody Atall\n")
    qtbot.addWidget(d)
    d.preview()
    assert d.report.text().startswith("1 people to withdraw: ")
    assert "unknown: Nobody Atall" in d.report.text()
    assert d.withdraw_button.isEnabled()
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(str(a[2])))
    d.withdraw()
    qtbot.waitUntil(lambda: d.report.text().startswith(("withdrew", "not done")), timeout=30_000)
    assert d.report.text() == "withdrew 1 people; file compacted" and not warned
    window.withdraw_watch.check()
    assert ids[1] not in window.model.ids and ids[0] in window.model.ids


def test_identity_menu_opens_withdraw_with_the_current_key(qtbot, window):
    from PySide6.QtGui import QAction

    ident = window.model.ids[0]
    window.open_identity(ident)
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus.index("&Identity") == menus.index("&Help") - 1
    action = window.findChild(QAction, "withdraw")
    action.trigger()
    d = window.dialogs.current
    assert isinstance(d, WithdrawDialog)
    assert d.requests.toPlainText() == window.identity_row(ident).key
    # a first-time user is told what it does and what to type (the text box once stood alone)
    qtbot.waitExposed(d)
    assert d.intro.isVisible() and d.intro.geometry().bottom() < d.requests.geometry().top()
    said = d.intro.text()
    assert "cannot be undone" in said and "one identity key or name a line" in said
    d.reject()
