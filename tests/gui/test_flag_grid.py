"""The flag grid: every face of one flag kind, from all identities, in one grid sorted by
score; number keys label them, Ctrl+Z undoes the last step; Esc goes back."""

from __future__ import annotations

from PySide6.QtCore import Qt

from annotator.gui.flag_mode import FlagMode
from annotator.store import identity_check
from annotator.store.db import open_project

KEYS = [Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_4, Qt.Key.Key_5]
NAMES = {
    Qt.Key.Key_1: "correct",
    Qt.Key.Key_2: "wrong_identity",
    Qt.Key.Key_4: "unusable",
    Qt.Key.Key_5: "unsure",
}


def suspect_faces(path, n=20):
    """n faces spread over every identity flagged suspect_identity, scores 1.0 .. 0.05."""
    with open_project(path) as p:
        rows = p.conn.execute(
            "SELECT id, identity_id FROM faces ORDER BY identity_id, id"
        ).fetchall()
        by_ident: dict[int, list[int]] = {}
        for f, i in rows:
            by_ident.setdefault(i, []).append(f)
        picked = []
        while len(picked) < n:  # round-robin over identities
            for faces in by_ident.values():
                if faces and len(picked) < n:
                    picked.append(faces.pop())
        scores = [(f, 1.0 - k * 0.05) for k, f in enumerate(picked)]
        identity_check.replace_kind_flags(p, "suspect_identity", scores)
        idents = {i for f, i in rows if f in set(picked)}
    return [f for f, _s in scores], idents


def labels_of(path, ids):
    with open_project(path) as p:
        got = dict(
            p.conn.execute(
                f"SELECT id, label FROM faces WHERE id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
        )
    return [got[f] for f in ids]


def test_twenty_suspect_faces_labelled_in_one_grid_and_one_undo(qtbot, window, demo_project):
    order, idents = suspect_faces(demo_project)
    assert len(idents) > 1  # faces of several identities in one grid
    window.dialogs.flag_grid()
    d = window.dialogs.current
    assert d.list.currentItem().data(Qt.ItemDataRole.UserRole) == "suspect_identity"
    d.choose()
    qtbot.waitUntil(lambda: isinstance(window.mode, FlagMode))
    assert [t.id for t in window.grid_model.tiles] == order  # highest score first
    assert not window.identities.isVisible()
    window.grid.setFocus()
    want = []
    for k in range(20):
        key = KEYS[k % len(KEYS)]
        assert window.grid.current_face_id() == order[k]
        qtbot.keyClick(window.grid, key)
        want.append(NAMES[key])
    assert labels_of(demo_project, order) == want
    assert "0 left" in window.mode.status.text()
    qtbot.keyClick(window.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert labels_of(demo_project, order) == want[:-1] + [None]
    assert isinstance(window.mode, FlagMode)  # the grid stays: no jump to the face's identity
    assert window.grid_model.tiles[-1].label is None
    assert window.grid.current_face_id() == order[-1]
    assert "1 left" in window.mode.status.text()
    qtbot.keyClick(window.grid, Qt.Key.Key_Escape)
    assert window.mode is window.review and window.identities.isVisible()


def test_left_text_pinned():
    from annotator.gui.status_view import left_text

    assert left_text(40, 0, 0.0) == "40 identities left"
    assert left_text(1, 0, 10.0) == "1 identity left"
    assert left_text(0, 3, 60.0) == "0 identities left"
    assert left_text(40, 2, 60.0) == "40 identities left, about 20 min at your pace"
    assert left_text(1000, 4, 600.0) == "1,000 identities left, about 41 h 40 min at your pace"
    assert left_text(3, 3, 30.0) == "3 identities left, about 30 s at your pace"


def test_status_bar_says_identities_left_at_your_pace(qtbot, window, demo_project, monkeypatch):
    from annotator.gui import status_view

    clock = [1000.0]
    monkeypatch.setattr(status_view.time, "monotonic", lambda: clock[0])
    text = window.status.progress_label.text
    total = len(window.model.ids)
    assert f"{total} identities left" in text() and "pace" not in text()
    qtbot.keyClick(window.grid, Qt.Key.Key_1)  # the session starts at the first label
    clock[0] += 120
    qtbot.keyClick(window.grid, Qt.Key.Key_Return)  # one identity reviewed in 2 minutes
    assert f"{total - 1} identities left, about {2 * (total - 1)} min at your pace" in text()


def test_change_reviewer_without_restarting(qtbot, window, demo_project, monkeypatch):
    from annotator.gui.dialogs import simple

    monkeypatch.setattr(simple, "ask_reviewer_name", lambda parent, default: "zoe")
    window.dialogs.change_reviewer()
    assert window.reviewer == "zoe" and "zoe" in window.status.reviewer_label.text()
    assert window.settings.value("reviewer") == "zoe"
    qtbot.keyClick(window.grid, Qt.Key.Key_1)
    with open_project(demo_project) as p:
        (who,) = p.conn.execute(
            "SELECT r.name FROM events e JOIN reviewers r ON r.id = e.reviewer_id"
            " ORDER BY e.id DESC LIMIT 1"
        ).fetchone()
    assert who == "zoe"


def test_a_refused_write_shows_a_dialog(qtbot, window, demo_project, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from annotator.store import db

    monkeypatch.setattr(db, "writable", lambda p: False)
    window.set_project(open_project(demo_project))
    qtbot.keyClick(window.grid, Qt.Key.Key_1)
    box = window.findChild(QMessageBox, "errorDialog")
    assert box is not None and box.isVisible() and "read-only here" in box.text()
    qtbot.keyClick(window.grid, Qt.Key.Key_2)  # a second error: the same dialog, not two
    assert len([b for b in window.findChildren(QMessageBox) if b.isVisible()]) == 1
    box.close()
