"""The window's views redraw from the Changes of each op, which the window hands to them as
``op_executed`` (a view added later connects to it and needs nothing else)."""

from __future__ import annotations

from PySide6.QtCore import Qt


def test_every_op_reaches_the_views_through_op_executed(qtbot, window):
    got: list[tuple[dict, bool]] = []
    window.op_executed.connect(lambda ch, follow: got.append((dict(ch.labels), follow)))
    fid = window.grid.current_face_id()
    ident = window.current_identity
    before = window.model.row_by_id(ident).labeled_count
    qtbot.keyClick(window.grid, Qt.Key.Key_2)
    assert got == [({fid: "wrong_identity"}, False)]
    # each view redrew itself: the tile, the list's row, the header, the session count
    assert window.grid_model.tiles[window.grid_model.row_of(fid)].label == "wrong_identity"
    assert window.model.row_by_id(ident).labeled_count == before + 1
    assert f"{before + 1}&nbsp;labeled" in window.faces.title.text()
    assert window.status.session_label.text().startswith("Labeled this session: 1")
    # an undo is an op too, with follow: the cursor goes back to the face it changed
    window.grid.set_current_row(3)
    qtbot.keyClick(window.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert got[-1] == ({fid: None}, True)
    assert window.grid.current_face_id() == fid
    assert window.model.row_by_id(ident).labeled_count == before
