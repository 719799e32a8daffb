"""The reviewer driven by the keyboard: keys change the project file as described."""

from __future__ import annotations

from PySide6.QtCore import Qt

from annotator.core.review import ops
from annotator.store.db import open_project


def labels_of(path, identity_id):
    with open_project(path) as p:
        return [
            r[0]
            for r in p.conn.execute(
                "SELECT label FROM faces WHERE identity_id = ? ORDER BY id", (identity_id,)
            )
        ]


def reviewed(path, identity_id):
    with open_project(path) as p:
        return p.conn.execute(
            "SELECT reviewed FROM identities WHERE id = ?", (identity_id,)
        ).fetchone()[0]


def key(qtbot, win, k, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(win.grid, k, mod)


def test_label_current_face_moves_cursor(qtbot, window, demo_project):
    ident = window.current_identity
    assert ident is not None
    assert window.grid.currentIndex().row() == 0
    key(qtbot, window, Qt.Key.Key_1)
    assert labels_of(demo_project, ident)[0] == "correct"
    assert window.grid.currentIndex().row() == 1
    key(qtbot, window, Qt.Key.Key_4)
    assert labels_of(demo_project, ident)[:3] == ["correct", "unusable", None]
    assert window.grid_model.tiles[1].label == "unusable"  # the view followed the Changes


def test_label_selection_with_space_and_shift(qtbot, window, demo_project):
    ident = window.current_identity
    key(qtbot, window, Qt.Key.Key_Right)  # moves without selecting
    assert window.grid.selected_face_ids() == []
    key(qtbot, window, Qt.Key.Key_Space)
    key(qtbot, window, Qt.Key.Key_Right)
    key(qtbot, window, Qt.Key.Key_Right)
    key(qtbot, window, Qt.Key.Key_Space)
    assert len(window.grid.selected_face_ids()) == 2
    key(qtbot, window, Qt.Key.Key_2)
    labs = labels_of(demo_project, ident)
    assert labs[:4] == [None, "wrong_identity", None, "wrong_identity"]
    assert window.grid.selected_face_ids() == []  # selection consumed, cursor after it
    assert window.grid.currentIndex().row() == 4
    # Shift+Right extends a selection from the current face
    key(qtbot, window, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert len(window.grid.selected_face_ids()) >= 2
    key(qtbot, window, Qt.Key.Key_5)
    assert labels_of(demo_project, ident)[4:6] == ["unsure", "unsure"]
    # Ctrl+A then 3: everything duplicate
    key(qtbot, window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, window, Qt.Key.Key_3)
    assert set(labels_of(demo_project, ident)) == {"duplicate"}


def test_enter_then_undo_restores_unlabeled(qtbot, window, demo_project):
    first = window.current_identity
    key(qtbot, window, Qt.Key.Key_2)  # one face wrong identity first
    key(qtbot, window, Qt.Key.Key_Return)
    labs = labels_of(demo_project, first)
    assert labs[0] == "wrong_identity" and labs[1:] == ["correct"] * (len(labs) - 1)
    assert reviewed(demo_project, first) == 1
    assert window.current_identity != first  # next identity needing review opened
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    labs = labels_of(demo_project, first)
    assert labs[0] == "wrong_identity" and labs[1:] == [None] * (len(labs) - 1)
    assert reviewed(demo_project, first) == 0
    assert window.current_identity == first  # undo shows where it happened
    key(qtbot, window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert reviewed(demo_project, first) == 1
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert set(labels_of(demo_project, first)) == {None}


def test_undo_redo_many_steps(qtbot, window, demo_project):
    ident = window.current_identity
    for k in (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_4, Qt.Key.Key_5):
        key(qtbot, window, k)
    want = ["correct", "wrong_identity", "duplicate", "unusable", "unsure"]
    assert labels_of(demo_project, ident)[:5] == want
    for _ in range(5):
        key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert labels_of(demo_project, ident)[:5] == [None] * 5
    assert [t.label for t in window.grid_model.tiles[:5]] == [None] * 5
    for _ in range(3):
        key(
            qtbot,
            window,
            Qt.Key.Key_Z,
            Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
        )
    assert labels_of(demo_project, ident)[:5] == want[:3] + [None, None]


def test_labels_survive_reopen(qtbot, window, demo_project, tmp_path):
    ident = window.current_identity
    key(qtbot, window, Qt.Key.Key_Return)
    second = window.current_identity
    key(qtbot, window, Qt.Key.Key_4)
    window.close()  # quit: nothing to save
    assert window.project is None
    assert reviewed(demo_project, ident) == 1
    assert labels_of(demo_project, second)[0] == "unusable"


def test_next_previous_identity(qtbot, window):
    ids = window.model.ids
    assert window.current_identity == ids[0]
    key(qtbot, window, Qt.Key.Key_N)
    assert window.current_identity == ids[1]
    key(qtbot, window, Qt.Key.Key_PageDown)
    assert window.current_identity == ids[2]
    key(qtbot, window, Qt.Key.Key_P)
    key(qtbot, window, Qt.Key.Key_PageUp)
    assert window.current_identity == ids[0]
    key(qtbot, window, Qt.Key.Key_P)  # stays at the top
    assert window.current_identity == ids[0]
    assert window.grid_model.identity_id == ids[0]


def test_typing_in_search_does_not_label(qtbot, window, demo_project):
    ident = window.current_identity
    key_of = window.model.identity_row(2).key
    window.identities.search.setFocus()
    qtbot.keyClicks(window.identities.search, key_of[-3:] + "1")
    qtbot.keyClick(window.identities.search, Qt.Key.Key_Return)
    assert window.identities.search.text() == key_of[-3:] + "1"
    assert set(labels_of(demo_project, ident)) == {None}
    assert reviewed(demo_project, ident) == 0


def test_move_face_to_other_identity(qtbot, window, demo_project):
    src = window.current_identity
    dst = window.model.ids[3]
    dst_key = window.model.identity_row(3).key
    face = window.grid.current_face_id()
    n_src = len(window.grid_model.tiles)
    key(qtbot, window, Qt.Key.Key_M)
    d = window.dialogs.current
    assert d is not None
    d.search.setText(dst_key)
    d.update_results()
    assert d.results.count() >= 1
    d._accept()
    qtbot.waitUntil(lambda: window.dialogs.current is None)
    with open_project(demo_project) as p:
        assert p.conn.execute(
            "SELECT identity_id, label FROM faces WHERE id = ?", (face,)
        ).fetchone() == (dst, None)  # unreviewed in its new identity
    assert len(window.grid_model.tiles) == n_src - 1
    window.open_identity(dst)
    assert face in [t.id for t in window.grid_model.tiles]
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    with open_project(demo_project) as p:
        assert p.conn.execute(
            "SELECT identity_id, label FROM faces WHERE id = ?", (face,)
        ).fetchone() == (src, None)


def test_duplicate_group_keeper(qtbot, window, demo_project):
    ident = window.current_identity
    faces = [t.id for t in window.grid_model.tiles[:3]]
    with open_project(demo_project) as p, p.tx() as c:
        c.executemany(
            "INSERT INTO dup_groups(face_id, group_id, is_keeper) VALUES (?, 7, 0)",
            [(f,) for f in faces],
        )
    window.grid.set_current_row(1)
    key(qtbot, window, Qt.Key.Key_G)
    d = window.dialogs.current
    assert d is not None and [p.face_id for p in d.group] == faces
    qtbot.keyClick(d, Qt.Key.Key_2)  # keep the second face
    qtbot.waitUntil(lambda: window.dialogs.current is None)
    assert labels_of(demo_project, ident)[:3] == ["duplicate", "correct", "duplicate"]
    assert [t.label for t in window.grid_model.tiles[:3]] == ["duplicate", "correct", "duplicate"]
    msg = window.statusBar().currentMessage()  # G says what it did
    origin = window.grid_model.tiles[1].origin  # where the reviewer can find it, no face id
    assert f"Kept {origin}; 2 other copies duplicate" in msg and f"face {faces[1]}" not in msg


def test_g_without_group_says_so(qtbot, window):
    key(qtbot, window, Qt.Key.Key_G)
    assert window.dialogs.current is None
    assert "no duplicate group" in window.statusBar().currentMessage()


def test_status_bar_counts(qtbot, window):
    key(qtbot, window, Qt.Key.Key_Return)
    assert "1 / 6" in window.status.progress_label.text()
    assert "Labeled this session: " in window.status.session_label.text()
    assert "faces/min" in window.status.session_label.text()
    first = window.model.ids[0]
    assert window.session_count == len(labels_of(window.project.path, first))


def test_a_slow_pace_is_not_zero_faces_per_minute():
    from annotator.gui.status_view import rate_text

    assert [rate_text(r) for r in (1 / 3, 0.04, 4.0, 9.94, 9.96, 1234.4)] == [
        "0.3",
        "<0.1",
        "4.0",
        "9.9",
        "10",
        "1,234",
    ]


def test_undo_of_a_move_shows_the_face_where_it_is_now(qtbot, window, demo_project):
    """Undo/redo of a move made in another identity open the identity the face is in after
    the step, with the face current (not the one it just left)."""
    src = window.current_identity
    face = window.grid.current_face_id()
    dst = window.model.ids[3]
    with open_project(demo_project) as p:
        ops.move_faces(p, [face], dst, "tester")
    window.show_identity(src)
    key(qtbot, window, Qt.Key.Key_N)  # the reviewer goes on to an unrelated identity
    key(qtbot, window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.current_identity == src
    assert window.grid.current_face_id() == face
    key(qtbot, window, Qt.Key.Key_N)
    key(qtbot, window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert window.current_identity == dst
    assert window.grid.current_face_id() == face


def test_title_shows_counts_and_state_at_1280x800(qtbot, window, demo_project):
    """A long name does not push the counts and review state out of the title: they go to a
    second line instead of being cut."""
    ident = window.current_identity
    with open_project(demo_project) as p, p.tx() as c:
        c.execute("UPDATE identity_names SET name = ? WHERE identity_id = ?", (LONG, ident))
    window.resize(1280, 800)
    qtbot.wait(50)
    window.model.refresh([ident])
    window.show_identity(ident)
    qtbot.wait(50)
    assert "not&nbsp;reviewed" in window.faces.title.text()
    assert text_fits(window.faces.title)


LONG = "Alexandra Konstantinopoulou-Montgomery"


def text_fits(label) -> bool:
    """Whether a rich-text QLabel shows all of its text at its current size."""
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setDefaultFont(label.font())
    doc.setDocumentMargin(0)
    doc.setHtml(label.text())
    inner = label.contentsRect()
    if label.wordWrap():
        doc.setTextWidth(inner.width())
    return doc.idealWidth() <= inner.width() + 1 and doc.size().height() <= inner.height() + 1


def test_opening_another_project_shows_and_labels_its_own_faces(
    qtbot, window, demo_project, other_project
):
    """Both projects have an identity 1: after File > Open the grid, title and keys are the
    new project's (not the previous project's faces under the same ids)."""
    assert window.current_identity == 1
    window.set_project(open_project(other_project))
    with open_project(other_project) as p:
        key1, src = p.conn.execute(
            "SELECT i.key, s.path FROM identities i, sources s WHERE i.id = 1"
        ).fetchone()
    assert window.current_identity == 1
    assert {t.source_path for t in window.grid_model.tiles} == {src}
    assert key1 in window.faces.title.text()
    shown = window.grid.current_face_id()
    key(qtbot, window, Qt.Key.Key_2)
    with open_project(other_project) as p:
        assert p.conn.execute("SELECT label FROM faces WHERE id = ?", (shown,)).fetchone()[0] == (
            "wrong_identity"
        )
    assert window.session_count == 1  # counts this project's labels only


def test_ctrl_a_from_the_identity_list_selects_the_faces(qtbot, window, demo_project):
    """After clicking an identity in the list (focus there), Ctrl+A then a label key label
    every face, as they do from the grid, not just the current face."""
    ident = window.model.ids[1]
    window.identities.table.setFocus()
    window.identities.table.selectRow(1)
    assert window.current_identity == ident and window.identities.table.hasFocus()
    qtbot.keyClick(window.identities.table, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.identities.table, Qt.Key.Key_4)
    assert set(labels_of(demo_project, ident)) == {"unusable"}
    # in the search box Ctrl+A still selects its text
    window.identities.search.setFocus()
    qtbot.keyClicks(window.identities.search, "abc")
    qtbot.keyClick(window.identities.search, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert (
        window.identities.search.selectedText() == "abc" and window.grid.selected_face_ids() == []
    )


def test_duplicate_group_shows_and_defaults_to_the_proposed_keeper(qtbot, window, demo_project):
    ident = window.current_identity
    faces = [t.id for t in window.grid_model.tiles[:3]]
    with open_project(demo_project) as p, p.tx() as c:
        # the scan proposed the third face (largest image); the first has the best rank
        c.executemany(
            "INSERT INTO dup_groups(face_id, group_id, is_keeper) VALUES (?, 7, ?)",
            [(f, int(f == faces[2])) for f in faces],
        )
        c.executemany(
            "INSERT INTO face_hashes(face_id, width, height, scanned_at) VALUES (?, ?, ?, 'now')",
            [(faces[0], 80, 80), (faces[1], 100, 90), (faces[2], 160, 150)],
        )
        c.executemany(
            "UPDATE faces SET rank = ? WHERE id = ?", [(1, faces[0]), (5, faces[1]), (9, faces[2])]
        )
    window.grid.set_current_row(0)
    key(qtbot, window, Qt.Key.Key_G)
    d = window.dialogs.current
    assert d is not None and d.proposed == faces[2]
    assert [(p.face_id, p.keeper) for p in d.group][0] == (faces[2], True)
    text = {f: d.captions[f].text() for f in faces}
    assert "proposed keeper: largest image, best rank" in text[faces[2]]
    assert not any("proposed keeper" in text[f] for f in faces[:2])
    assert "160×150, rank 9" in text[faces[2]] and "80×80, rank 1" in text[faces[0]]
    assert d.buttons[faces[2]].isDefault()
    assert not any(d.buttons[f].isDefault() or d.buttons[f].autoDefault() for f in faces[:2])
    qtbot.keyClick(d, Qt.Key.Key_Return)  # Enter accepts the proposal
    qtbot.waitUntil(lambda: window.dialogs.current is None)
    assert labels_of(demo_project, ident)[:3] == ["duplicate", "duplicate", "correct"]


def test_duplicate_group_without_scan_group_proposes_by_the_scan_rule(qtbot, demo_project):
    from annotator.core.review.keeper import with_scan_keeper
    from annotator.store import browse

    with open_project(demo_project) as p:
        a, b, c3 = [r[0] for r in p.conn.execute("SELECT id FROM faces ORDER BY id LIMIT 3")]
        with p.tx() as c:
            c.execute(
                "INSERT INTO flags(id, kind, distance, score, fingerprint, created_at)"
                " VALUES (1, 'near_dup', 2, 1.0, 'x', 'now')"
            )
            c.executemany(
                "INSERT INTO flag_faces(flag_id, face_id) VALUES (1, ?)", [(a,), (b,), (c3,)]
            )
            c.executemany("UPDATE faces SET rank = ? WHERE id = ?", [(3, a), (2, b), (2, c3)])
        assert not any(x.keeper for x in browse.dup_group(p, a))  # the store decides nothing
        g = with_scan_keeper(browse.dup_group(p, a))  # no sizes: best rank, then lowest id
        assert [x.face_id for x in g if x.keeper] == [b]
        with p.tx() as c:
            c.execute(
                "INSERT INTO face_hashes(face_id, width, height, scanned_at) VALUES (?, 50, 50, 'now')",
                (c3,),
            )
        g = with_scan_keeper(browse.dup_group(p, a))  # the largest image wins over the rank
        assert [x.face_id for x in g if x.keeper] == [c3]
        assert {x.face_id: (x.size, x.rank) for x in g}[c3] == ((50, 50), 2)


def test_enter_in_a_mostly_reviewed_list_does_not_page_through_it(
    qtbot, window, demo_project, monkeypatch
):
    """Enter finds the next identity needing review with one query, not one page query per
    PAGE rows (here PAGE is 1, so walking 4 reviewed rows would take 4 page queries)."""
    from annotator.gui import identity_model
    from annotator.store import browse

    monkeypatch.setattr(identity_model, "PAGE", 1)
    window.set_filter("all")
    window.identities.header_clicked(0)  # key order
    ids = list(window.model.ids)
    with open_project(demo_project) as p, p.tx() as c:
        c.execute("UPDATE identities SET reviewed = 1 WHERE id != ?", (ids[5],))
    window.model.reload()  # the list sees the new review states (new pages)
    window.open_identity(ids[0])
    pages = []
    real = browse.identity_rows
    monkeypatch.setattr(
        browse,
        "identity_rows",
        lambda project, wanted: (pages.append(list(wanted)), real(project, wanted))[1],
    )
    window.grid.setFocus()
    key(qtbot, window, Qt.Key.Key_Return)
    assert window.current_identity == ids[5]
    assert sum(1 for w in pages if w != [ids[0]]) <= 1  # [ids[0]]: the reviewed row's refresh
    # the last one: wraps around, then says every identity is reviewed
    key(qtbot, window, Qt.Key.Key_Return)
    assert reviewed(demo_project, ids[5]) == 1 and window.current_identity == ids[5]
    assert "Every identity in this list is reviewed" in window.statusBar().currentMessage()


# -- key auto-repeat (issue 9 item 1) ----------------------------------------------------------


def held(win, k, text="", repeats=5, mod=Qt.KeyboardModifier.NoModifier):
    """A key held down: one fresh press, then ``repeats`` auto-repeated presses, one release
    (the events an X server sends, through Qt's shortcut map as real keys go)."""
    from PySide6.QtTest import QTest

    QTest.simulateEvent(win.grid, True, k, mod, text, False)
    for _ in range(repeats):
        QTest.simulateEvent(win.grid, False, k, mod, text, True)
        QTest.simulateEvent(win.grid, True, k, mod, text, True)
    QTest.simulateEvent(win.grid, False, k, mod, text, False)


def reviewed_count(path):
    with open_project(path) as p:
        return p.conn.execute("SELECT count(*) FROM identities WHERE reviewed").fetchone()[0]


def test_held_enter_reviews_one_identity(qtbot, window, demo_project):
    held(window, Qt.Key.Key_Return, "\r", repeats=8)
    assert reviewed_count(demo_project) == 1  # a fresh press for the next one
    assert "Reviewed" in window.statusBar().currentMessage()
    held(window, Qt.Key.Key_Return, "\r", repeats=3)
    assert reviewed_count(demo_project) == 2


def test_held_label_key_walks_single_faces_but_never_relabels_a_selection(
    qtbot, window, demo_project
):
    ident = window.current_identity
    n = len(window.grid_model.tiles)
    held(window, Qt.Key.Key_2, "2", repeats=2)  # no selection: one face per press, walking
    assert labels_of(demo_project, ident)[:4] == ["wrong_identity"] * 3 + [None]
    assert window.grid.currentIndex().row() == 3
    key(qtbot, window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    held(window, Qt.Key.Key_4, "4", repeats=4)  # the fresh press labels the selection once
    assert labels_of(demo_project, ident) == ["unusable"] * n
    # a repeated press on a new selection does nothing
    from PySide6.QtTest import QTest

    key(qtbot, window, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.simulateEvent(window.grid, True, Qt.Key.Key_1, Qt.KeyboardModifier.NoModifier, "1", True)
    assert labels_of(demo_project, ident) == ["unusable"] * n


def test_held_label_key_stops_at_a_flagged_face(qtbot, window, demo_project):
    """Holding 1 once labelled an identity's look-alikes and copies correct in a second;
    the walk stops at such a face (its badge), a fresh press labels it."""
    from annotator.store import flags as flags_store

    ident = window.current_identity
    faces = [t.id for t in window.grid_model.tiles]
    with open_project(demo_project) as p:
        flags_store.replace_flags(
            p, [("suspect_identity", [faces[2]], None, 0.9), ("tiny", [faces[1]], None, 0.5)]
        )
    window.show_identity(ident)
    window.grid.set_current_row(0)
    held(window, Qt.Key.Key_1, "1", repeats=6)
    got = labels_of(demo_project, ident)
    assert got[:3] == ["correct", "correct", None]  # a quality badge (Q) does not stop it
    assert all(lab is None for lab in got[3:])
    assert window.grid.current_face_id() == faces[2]
    assert "Held key stopped at a flagged face (S)" in window.statusBar().currentMessage()
    held(window, Qt.Key.Key_1, "1", repeats=0)  # a fresh press
    assert labels_of(demo_project, ident)[2] == "correct"


def test_held_g_and_m_open_one_dialog(qtbot, window, demo_project):
    from PySide6.QtTest import QTest

    QTest.simulateEvent(window.grid, True, Qt.Key.Key_M, Qt.KeyboardModifier.NoModifier, "m", True)
    assert window.dialogs.current is None  # a repeated M alone opens nothing
    window.statusBar().clearMessage()
    QTest.simulateEvent(window.grid, True, Qt.Key.Key_G, Qt.KeyboardModifier.NoModifier, "g", True)
    assert window.dialogs.current is None and window.statusBar().currentMessage() == ""
    key(qtbot, window, Qt.Key.Key_G)  # a fresh press runs (this face is in no group)
    assert "no duplicate group" in window.statusBar().currentMessage()


def test_menus_are_narrow_and_the_sheet_lists_every_key(qtbot, window):
    """Menu items carry short titles (the Review menu was ~740 px wide with the shortcut
    descriptions); the `?` sheet lists Ctrl+I (statistics) and Esc (leave the QA pass)."""
    from annotator.gui.dialogs.simple import ShortcutsDialog

    for menu in window.menuBar().findChildren(type(window.menuBar().addMenu("x"))):
        assert menu.sizeHint().width() < 400, (menu.title(), menu.sizeHint().width())
    sheet = ShortcutsDialog(window)
    text = sheet.findChild(type(window.faces.title)).text()
    assert "<b>Ctrl+I</b>" in text and "<b>Esc</b>" in text
    sheet.deleteLater()


def test_default_layout_at_1280x800_shows_a_21_face_identity_whole(qtbot, demo_project, tmp_path):
    """The inspector is narrow and the list modest: at 1280x800 the grid has 5 columns and 5
    rows of 112 px faces (it had 3-4 columns with the inspector at 330 px)."""
    from PySide6.QtCore import QSettings

    from annotator.gui.main_window import MainWindow

    st = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(st, "tester")
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.set_project(open_project(demo_project))
    win.show()
    qtbot.waitExposed(win)
    qtbot.wait(50)
    cell = win.grid.gridSize()
    vp = win.grid.viewport().size()
    assert vp.width() // cell.width() >= 5, (vp.width(), cell.width())
    assert (vp.width() // cell.width()) * (vp.height() // cell.height()) >= 21
    assert win.inspector.width() <= 260
    win.close()
