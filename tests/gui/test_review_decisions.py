"""Enter, G and M decide what a reviewer would: flagged faces are not accepted blindly, a copy
filed under another identity is shown as such, a moved face is unreviewed where it lands."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from annotator.store import flags as flags_store
from annotator.store.db import open_project


def key(qtbot, win, k, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(win.grid, k, mod)


def face_rows(path, ids):
    with open_project(path) as p:
        q = ",".join("?" * len(ids))
        return {
            r[0]: (r[1], r[2])
            for r in p.conn.execute(
                f"SELECT id, identity_id, label FROM faces WHERE id IN ({q})", list(ids)
            )
        }


def test_enter_makes_corrupt_unusable_and_leaves_another_person(qtbot, window, demo_project):
    ident = window.current_identity
    faces = [t.id for t in window.grid_model.tiles]
    with open_project(demo_project) as p:
        flags_store.replace_flags(
            p, [("corrupt", [faces[1]], None, 1.0), ("suspect_identity", [faces[2]], None, 0.9)]
        )
    key(qtbot, window, Qt.Key.Key_Return)
    msg = window.statusBar().currentMessage()
    n = len(faces) - 2
    assert f"{n} correct, 1 unusable; 1 left: looks like another person" in msg
    got = face_rows(demo_project, faces)
    assert got[faces[1]][1] == "unusable" and got[faces[2]][1] is None
    assert window.current_identity == ident  # stays, with the face left current
    assert window.grid.current_face_id() == faces[2]
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # one undo step
    assert all(lab is None for _i, lab in face_rows(demo_project, faces).values())


def _cross_group(path, window, keeper_in_other: bool):
    a = window.grid_model.tiles[0].id  # filed under the current identity
    other = window.model.ids[2]
    with open_project(path) as p:
        b = p.conn.execute("SELECT min(id) FROM faces WHERE identity_id = ?", (other,)).fetchone()[
            0
        ]
        flags_store.replace_flags(p, [("cross_identity_dup", [a, b], 1, 1.8)])
        keeper = b if keeper_in_other else a
        flags_store.replace_dup_groups(p, [(a, b, int(keeper == a)), (b, b, int(keeper == b))])
    return a, b, other


def test_g_on_a_cross_identity_copy_shows_both_identities_and_labels_it_wrong_identity(
    qtbot, window, demo_project
):
    a, b, other = _cross_group(demo_project, window, keeper_in_other=True)
    here_key = window.identity_row(window.current_identity).key
    other_key = window.identity_row(other).key
    window.grid.set_current_row(0)
    key(qtbot, window, Qt.Key.Key_G)
    d = window.dialogs.current
    assert d is not None and d.cross
    assert set(d.headers) == {window.current_identity, other}
    assert here_key in d.headers[window.current_identity].text()
    assert other_key in d.headers[other].text()
    assert d.other_images  # the identities' other faces are shown
    # no face vectors: a pHash says nothing about who is in the photo, nothing is proposed
    assert d.proposed is None
    assert "No keeper is proposed" in d.findChildren(QLabel)[0].text()
    qtbot.keyClick(d, Qt.Key.Key_Return)  # Enter alone chooses nothing
    assert window.dialogs.current is d and d.keeper is None
    d.choose(b)
    qtbot.waitUntil(lambda: window.dialogs.current is None)
    got = face_rows(demo_project, [a, b])
    assert got[a][1] == "wrong_identity" and got[b][1] == "correct"
    msg = window.statusBar().currentMessage()
    assert "; 1 under another identity wrong_identity. Ctrl+Z" in msg  # no "0 other copies"
    assert "0 other" not in msg
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    got = face_rows(demo_project, [a, b])
    assert got[a][1] is None and got[b][1] is None


def test_g_dialog_captions_lie_below_their_faces(qtbot, window, demo_project):
    # the word-wrapped intro once made the dialog too short for its rows: each caption
    # (identity, origin, size, label) was drawn over the lower half of its face
    _cross_group(demo_project, window, keeper_in_other=True)
    window.grid.set_current_row(0)
    key(qtbot, window, Qt.Key.Key_G)
    d = window.dialogs.current
    qtbot.waitExposed(d)
    assert len(d.images) == 2
    for face_id, img in d.images.items():
        cap, button = d.captions[face_id], d.buttons[face_id]
        assert img.height() == d.tile_px
        assert cap.geometry().top() >= img.geometry().bottom(), (img.geometry(), cap.geometry())
        assert button.geometry().top() >= cap.geometry().bottom()
    d.reject()


def test_g_never_proposes_a_face_labeled_duplicate_nor_relabels_it(qtbot, window, demo_project):
    from annotator.core.review import ops

    a, b, _other = _cross_group(demo_project, window, keeper_in_other=False)  # scan keeps a
    with open_project(demo_project) as p:
        ops.label_faces(p, [a], "duplicate", "tester")  # the reviewer's judgement
    window.show_identity(window.current_identity)
    window.grid.set_current_row(0)
    key(qtbot, window, Qt.Key.Key_G)
    d = window.dialogs.current
    assert d.proposed == b  # not the scan's keeper: it is labeled duplicate
    qtbot.keyClick(d, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.dialogs.current is None)
    got = face_rows(demo_project, [a, b])
    assert got[a][1] == "duplicate" and got[b][1] == "correct"
    assert "kept its label" in window.statusBar().currentMessage()


def test_move_shows_the_targets_faces_and_leaves_the_face_unreviewed(qtbot, window, demo_project):
    from annotator.store import browse

    src = window.current_identity
    dst = window.model.ids[3]
    dst_key = window.identity_row(dst).key
    face = window.grid.current_face_id()
    with open_project(demo_project) as p:
        from annotator.core.review import ops

        ops.review_identity(p, dst, "tester")  # the target was reviewed
        ops.label_faces(p, [face], "wrong_identity", "tester")
        target_faces = [t.id for t in browse.faces_of_identity(p, dst)]
    window.show_identity(src)
    window.grid.select_face(face)
    key(qtbot, window, Qt.Key.Key_M)
    d = window.dialogs.current
    d.search.setText(dst_key)
    d.update_results()
    assert d.preview_ids == target_faces[: len(d.preview_ids)] and d.preview_ids
    assert dst_key in d.preview_caption.text()
    d._accept()
    qtbot.waitUntil(lambda: window.dialogs.current is None)
    assert face_rows(demo_project, [face])[face] == (dst, None)
    with open_project(demo_project) as p:
        assert (
            p.conn.execute("SELECT reviewed FROM identities WHERE id = ?", (dst,)).fetchone()[0]
            == 0
        )
    msg = window.statusBar().currentMessage()
    assert f"moved 1 face to {dst_key} (unreviewed there)" in msg
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert face_rows(demo_project, [face])[face] == (src, "wrong_identity")
    with open_project(demo_project) as p:
        assert (
            p.conn.execute("SELECT reviewed FROM identities WHERE id = ?", (dst,)).fetchone()[0]
            == 1
        )


def test_the_identity_list_says_its_order(qtbot, window):
    assert "order: most suspicious first" in window.identities.info.text()
    window.identities.header_clicked(2)  # the Faces column
    qtbot.waitUntil(lambda: "order: by faces, ascending" in window.identities.info.text())


def test_a_repeat_that_arrives_split_is_still_a_repeat(qtbot):
    """X11: when the GUI thread was busy, a held key's release+press pair can reach Qt split
    and unmarked; both carry the same server time, which no hand can do."""
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QKeyEvent

    from annotator.gui.keyrepeat import RepeatWatch

    w = RepeatWatch()

    def ev(kind, ts, key=Qt.Key.Key_Return, auto=False):
        e = QKeyEvent(kind, key, Qt.KeyboardModifier.NoModifier, "\r", auto)
        e.setTimestamp(ts)
        w.eventFilter(None, e)
        return w.repeating

    assert ev(QEvent.Type.KeyPress, 1000) is False  # a fresh press
    assert ev(QEvent.Type.KeyRelease, 1660) is False
    assert ev(QEvent.Type.KeyPress, 1660) is True  # the repeat, split from its release
    assert ev(QEvent.Type.KeyPress, 1700, auto=True) is True
    assert ev(QEvent.Type.KeyRelease, 1900) is False
    assert ev(QEvent.Type.KeyPress, 2150) is False  # a person pressing again
    assert ev(QEvent.Type.KeyRelease, 2200) is False
    assert ev(QEvent.Type.KeyPress, 2200, key=Qt.Key.Key_G) is False  # another key
