"""The inspector shows what the face embeddings say: "looks more like m.xxx" with a few of that
identity's faces, and "probably the same person as m.yyy" (core/identity/identity_check.py)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from annotator.gui.inspector import Inspector, _PartnerTile
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.store import browse
from annotator.store import identity_check as ic_store


def _texts(w: Inspector) -> str:
    return "\n".join(lb.text() for lb in w.findChildren(QLabel))


def test_suspect_face_shows_the_identity_it_looks_like(qtbot, make_project) -> None:
    p = make_project([6, 5, 4])  # faces 1-6: m.1, 7-11: m.2, 12-15: m.3
    ic_store.replace_kind_flags(p, "suspect_identity", [(2, 0.125)])
    ic_store.replace_looks_like(p, [(2, 2, 0.125)])
    ic_store.replace_same_person(p, [(3, 1, 0.05)])
    assert browse.face_tiles(p, [2, 3])[2].badges == "S"  # the tile's badge
    assert browse.face_tiles(p, [2, 3])[3].badges == ""
    loader = ThumbnailLoader(None)
    w = Inspector(loader)
    qtbot.addWidget(w)
    opened: list[tuple[int, int]] = []
    w.open_face.connect(lambda i, f: opened.append((i, f)))
    w.show_detail(browse.face_detail(p, 2))
    text = _texts(w)
    assert "looks more like m.2" in text and "margin 0.125" in text
    assert "probably the same person as m.3" in text
    tiles = w.findChildren(_PartnerTile)
    like = [t.partner.face_id for t in tiles if t.partner.identity_key == "m.2"]
    twin = [t.partner.face_id for t in tiles if t.partner.identity_key == "m.3"]
    assert like == [7, 8, 9, 10, 11] and twin == [12, 13, 14, 15]
    tiles[0].clicked.emit(tiles[0].partner.identity_id, tiles[0].partner.face_id)
    assert opened == [(2, 7)]
    # a face of m.2 itself: no looks-like line; m.2 has no same-person pair
    w.show_detail(browse.face_detail(p, 8))
    text = _texts(w)
    assert "looks more like" not in text and "same person" not in text


def test_move_dialog_preselects_the_identity_the_tool_names(qtbot, window, demo_project):
    """M on a face the embeddings say looks like another identity: that identity (key and
    name) is first in the move dialog and selected; Enter moves the face there."""
    from PySide6.QtCore import Qt

    from annotator.store.db import open_project

    face = window.grid.current_face_id()
    own = window.current_identity
    with open_project(demo_project) as p:
        other, key = p.conn.execute(
            "SELECT id, key FROM identities WHERE id != ? ORDER BY id DESC LIMIT 1", (own,)
        ).fetchone()
        name = browse.identity_rows(p, [other])[other].name
        ic_store.replace_kind_flags(p, "suspect_identity", [(face, 0.2)])
        ic_store.replace_looks_like(p, [(face, other, 0.2)])
        assert browse.suggested_target(p, [face]) == (other, "looks like")
        assert name and f"{key} — {name}" in browse.face_detail(p, face).flags[0].looks_like
    window.dialogs.move_faces()
    d = window.dialogs.current
    item = d.results.currentItem()
    assert item.data(Qt.ItemDataRole.UserRole) == other
    assert d.results.currentRow() == 0 and name in item.text() and "suggested" in item.text()
    d._accept()
    qtbot.waitUntil(lambda: window.dialogs.current is None)
    with open_project(demo_project) as p:
        assert (
            p.conn.execute("SELECT identity_id FROM faces WHERE id = ?", (face,)).fetchone()[0]
            == other
        )


def test_move_dialog_suggestion_fits_the_list(qtbot, window, demo_project):
    """The longest reason (a copy filed there that the face also looks like) is shown
    whole: no part of the suggested row lies past the list's right edge."""
    from annotator.store import flags as flags_store
    from annotator.store.db import open_project

    face = window.grid.current_face_id()
    own = window.current_identity
    with open_project(demo_project) as p:
        other, copy = p.conn.execute(
            "SELECT identity_id, min(id) FROM faces WHERE identity_id != ?"
            " GROUP BY identity_id ORDER BY identity_id DESC LIMIT 1",
            (own,),
        ).fetchone()
        flags_store.replace_flags(p, [("cross_identity_dup", [face, copy], 0, 3.0)])
        ic_store.replace_kind_flags(p, "suspect_identity", [(face, 0.2)])
        ic_store.replace_looks_like(p, [(face, other, 0.2)])
        why = browse.suggested_target(p, [face])[1]
    assert why == "a copy is filed there and looks like"
    window.dialogs.move_faces()
    d = window.dialogs.current
    qtbot.waitExposed(d)
    item = d.results.item(0)
    rect = d.results.visualItemRect(item)
    assert d.results.horizontalScrollBar().maximum() == 0
    assert rect.right() <= d.results.viewport().width()
    assert why in item.text() and why in item.toolTip()
    d.reject()


def test_a_stranger_says_it_looks_like_no_one_and_shows_its_own_identity(qtbot, make_project):
    """A suspect_identity face without a look-alike (far from its identity's faces, near no
    other identity) is told plainly from a look-alike, with a few of its own identity's faces
    beside it to compare."""
    from annotator.gui.delegates import BADGE_HELP
    from annotator.gui.inspector import STRANGER

    p = make_project([6, 5])  # faces 1-6: m.1, 7-11: m.2
    ic_store.replace_kind_flags(p, "suspect_identity", [(2, 0.07), (8, 0.2)])
    ic_store.replace_looks_like(p, [(8, 1, 0.2)])  # face 8 looks like m.1; face 2: no one
    assert browse.face_tiles(p, [2])[2].badges == "S"
    assert "like no one" in BADGE_HELP["S"] and "another identity" in BADGE_HELP["S"]
    w = Inspector(ThumbnailLoader(None))
    qtbot.addWidget(w)
    w.show_detail(browse.face_detail(p, 2))
    text = _texts(w)
    assert STRANGER in text and "0.070 beyond" in text
    assert "looks more like" not in text and "looks like another" not in text
    tiles = w.findChildren(_PartnerTile)
    assert [t.partner.face_id for t in tiles] == [1, 3, 4, 5, 6]  # its own faces, not itself
    assert all(t.partner.identity_key == "m.1" for t in tiles)
    # the look-alike says whom it looks like, never that it looks like no one
    w.show_detail(browse.face_detail(p, 8))
    text = _texts(w)
    assert "looks more like m.1" in text and STRANGER not in text


def test_the_panel_is_as_wide_as_what_it_shows_fitted_once_a_turn(qtbot, make_project) -> None:
    """The horizontal scroll bar is off, so the panel's minimum width follows its contents
    (two partner tiles a row, the hash table); the fit runs once after the details shown in one
    turn of the event loop (a label key shows the labeled face and then the next one)."""
    p = make_project([6, 5])
    ic_store.replace_kind_flags(p, "suspect_identity", [(2, 0.125)])
    ic_store.replace_looks_like(p, [(2, 2, 0.125)])
    w = Inspector(ThumbnailLoader(None))
    qtbot.addWidget(w)
    fits: list[int] = []
    real = w.fit_width
    w.fit_width = lambda: fits.append(1) or real()  # type: ignore[method-assign]
    qtbot.wait(1)  # the first detail's (none) fit, before counting
    fits.clear()
    w.show_detail(browse.face_detail(p, 1))
    w.show_detail(browse.face_detail(p, 2))  # with a row of partner tiles
    assert fits == []  # not yet: after this turn
    qtbot.waitUntil(lambda: fits == [1], timeout=2000)
    qtbot.wait(20)
    assert fits == [1]  # once for both
    need = w.widget().minimumSizeHint().width() + w.verticalScrollBar().sizeHint().width()
    assert w.minimumWidth() >= need
