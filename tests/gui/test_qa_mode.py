"""QA pass mode (blind grid, verdict events), the adjudication queue, the statistics dashboard
and `annotator gui --view ... --screenshot`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from PIL import Image
from PySide6.QtCore import QSettings, Qt

from annotator.core.review import ops, qa
from annotator.core.review.stats import project_stats
from annotator.gui.qa_mode import QaMode
from annotator.model import LABELS
from annotator.store.db import open_project


def label_by_two(path) -> dict[int, str]:
    """alice labels the even identities, bob the odd ones: the first face of each is wrong
    identity, the second unusable, the rest correct. Returns face id -> label."""
    out: dict[int, str] = {}
    with open_project(path) as p:
        idents = [r[0] for r in p.conn.execute("SELECT id FROM identities ORDER BY id")]
        for n, ident in enumerate(idents):
            who = "alice" if n % 2 == 0 else "bob"
            faces = [
                r[0]
                for r in p.conn.execute(
                    "SELECT id FROM faces WHERE identity_id = ? ORDER BY id", (ident,)
                )
            ]
            ops.label_faces(p, faces[:1], "wrong_identity", who)
            ops.label_faces(p, faces[1:2], "unusable", who)
            ops.label_faces(p, faces[2:], "correct", who)
            out.update({faces[0]: "wrong_identity", faces[1]: "unusable"})
            out.update(dict.fromkeys(faces[2:], "correct"))
    return out


def db_state(path, face_id):
    with open_project(path) as p:
        label, ev = p.conn.execute(
            "SELECT label, label_event_id FROM faces WHERE id = ?", (face_id,)
        ).fetchone()
        qa_events = p.conn.execute(
            "SELECT value FROM events WHERE kind = 'qa' AND face_id = ? ORDER BY id", (face_id,)
        ).fetchall()
    return label, ev, [r[0] for r in qa_events]


def test_qa_pass_is_blind_and_keys_record_verdicts(qtbot, window, demo_project):
    truth = label_by_two(demo_project)
    # the QA reviewer labels one face in normal review first: Ctrl+Z in QA mode must not undo it
    qtbot.keyClick(window.grid, Qt.Key.Key_1)
    own_face = window.grid_model.tiles[0].id
    assert db_state(demo_project, own_face)[0] == "correct"
    truth[own_face] = "correct"

    window.dialogs.start_qa_pass()
    d = window.dialogs.current
    d.by_count.setChecked(True)
    d.count.setValue(8)
    d.seed.setText("4")
    d.start_button.click()  # drawn in a worker: the window keeps painting
    qtbot.waitUntil(lambda: isinstance(window.mode, QaMode), timeout=10_000)
    window.activateWindow()  # offscreen, no window manager re-activates it after the dialog
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    mode = window.mode
    assert mode is not None and d.started is not None and d.started.items == 8

    tiles = window.grid_model.tiles
    assert len(tiles) == 8 and own_face not in {t.id for t in tiles}  # no self-review
    # blind: no tile carries a label although every face has one in the project
    assert all(t.label is None for t in tiles)
    assert all(truth[t.id] for t in tiles)
    assert window.grid_model.blind
    tip = window.grid_model.data(window.grid_model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "none yet" in tip and truth[tiles[0].id] not in tip
    info = mode.panel.info.text()
    assert "alice" not in info and "bob" not in info
    assert truth[tiles[0].id].replace("_", " ") not in info
    assert not window.inspector.isVisible() and not window.identities.table.isVisible()
    assert mode.status.text().endswith("QA: 0/8</b>")
    assert window.grid.currentIndex().row() == 0

    first = tiles[0].id
    label_before, event_before, _ = db_state(demo_project, first)
    qtbot.keyClick(window.grid, Qt.Key.Key_2)
    label_after, event_after, verdicts = db_state(demo_project, first)
    assert (label_after, event_after) == (label_before, event_before)  # original untouched
    assert verdicts == ["wrong_identity"]
    assert window.grid_model.tiles[0].label == "wrong_identity"  # the tile shows the verdict
    assert window.grid.currentIndex().row() == 1
    assert "QA: 1/8" in mode.status.text()
    with open_project(demo_project) as p:
        item = [i for i in qa.next_items(p, mode.pass_id, include_done=True) if i.face_id == first]
        assert item[0].verdict == "wrong_identity"

    # a second key on the same face changes the verdict: a new event, still no label change
    window.grid.set_current_row(0)
    qtbot.keyClick(window.grid, Qt.Key.Key_1)
    assert db_state(demo_project, first)[2] == ["wrong_identity", "correct"]
    assert db_state(demo_project, first)[:2] == (label_before, event_before)

    # no undo for QA verdicts; the review undo is off, so the own label stays
    qtbot.keyClick(window.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert "no undo" in window.statusBar().currentMessage()
    assert db_state(demo_project, own_face)[0] == "correct"
    assert db_state(demo_project, first)[2] == ["wrong_identity", "correct"]

    # Esc leaves: the grid shows an identity with its real labels again
    qtbot.keyClick(window.grid, Qt.Key.Key_Escape)
    assert window.mode is window.review and not window.grid_model.blind
    assert window.inspector.isVisible() and window.identities.table.isVisible()
    assert window.grid_model.identity_id == window.current_identity
    assert all(t.label == truth.get(t.id, t.label) for t in window.grid_model.tiles)
    assert window.actions_by_name["undo"].isEnabled()

    # resuming the same pass shows the verdict given so far
    window.enter_qa(mode.pass_id)
    assert window.mode.progress() == (1, 8)
    assert window.grid_model.tiles[0].label == "correct"
    window.leave_qa()


def test_adjudication_queue_records_the_final_label(qtbot, window, demo_project):
    truth = label_by_two(demo_project)
    with open_project(demo_project) as p:
        pid = qa.start_pass(p, "carol", count=6, seed=1).pass_id
        items = qa.next_items(p, pid)
        disputed = items[0].face_id
        orig = truth[disputed]
        verdict = next(lab for lab in LABELS if lab != orig)
        qa.record_verdict(p, pid, disputed, verdict, "carol")
        qa.record_verdict(p, pid, items[1].face_id, truth[items[1].face_id], "carol")

    d = window.dialogs.open_adjudication()
    assert [x.face_id for x in d.queue] == [disputed]
    info = d.info.text()
    assert "carol" in info and ("alice" in info or "bob" in info)
    assert orig.replace("_", " ") in info and verdict.replace("_", " ") in info
    assert d.image.tile is not None and d.image.tile.id == disputed

    d.activateWindow()
    qtbot.waitUntil(d.isActiveWindow, timeout=5000)
    qtbot.keyClick(d.list, Qt.Key.Key_5)  # the keys work even with the list focused
    with open_project(demo_project) as p:
        label = p.conn.execute("SELECT label FROM faces WHERE id = ?", (disputed,)).fetchone()[0]
        adjudicated = p.conn.execute(
            "SELECT adjudicated FROM qa_items WHERE pass_id = ? AND face_id = ?", (pid, disputed)
        ).fetchone()[0]
        rep = qa.report(p)
        assert qa.adjudication_queue(p) == []
    assert label == adjudicated == "unsure"
    assert rep["adjudication_pending"] == 0
    assert d.queue == [] and "0 disagreements" in d.header.text()
    assert all(not b.isEnabled() for b in d.buttons.values())
    assert "every QA verdict so far agrees" in d.info.text()
    d.reject()


def test_an_empty_queue_before_any_verdict_says_so(qtbot, window, demo_project):
    label_by_two(demo_project)
    with open_project(demo_project) as p:
        qa.start_pass(p, "carol", count=6, seed=1)  # drawn, nothing answered
    d = window.dialogs.open_adjudication()
    assert d.queue == []
    assert "no QA verdict recorded yet" in d.info.text()
    assert "agrees" not in d.info.text()  # nothing was compared, nothing agrees
    d.reject()


def test_stats_dashboard_shows_core_stats(qtbot, window, demo_project):
    label_by_two(demo_project)
    with open_project(demo_project) as p:
        pid = qa.start_pass(p, "carol", count=6, seed=2).pass_id
        for it in qa.next_items(p, pid)[:4]:
            qa.record_verdict(p, pid, it.face_id, "correct", "carol")
        expected = project_stats(p)
        rep = qa.report(p)

    window.actions_by_name["statistics"].trigger()
    d = window.dialogs.stats
    # fits the screen (offscreen: 800x800), so its Close button is on it
    avail = d.screen().availableGeometry()
    assert d.width() <= avail.width() and d.height() <= avail.height()
    qtbot.waitUntil(d.is_ready, timeout=30_000)
    assert d.error == ""
    assert d.stats == expected
    faces = d.cards["faces"].text()
    for lab in LABELS:
        assert f"{expected['faces_by_label'][lab]:,}" in faces
    assert f"<b>{expected['faces']:,}</b>" in faces
    assert f">{expected['identities']['reviewed']:,}<" in d.cards["identities"].text()
    n = expected["noise"]
    noise = d.cards["noise"].text()
    # labels in review order: counts only; no random sample drawn: no estimate, no interval
    assert f"{n['noisy']:,} of {n['labeled']:,} were wrong" in noise
    assert "No estimate yet" in noise and "CI" not in noise
    o = expected["qa"]["overall"]
    qa_text = d.cards["qa"].text()
    assert o["judged"] == 4 and f"{100 * o['agreement']:.1f}%" in qa_text
    assert f"{rep['overall']['kappa_ci95'][0]:.2f}" in qa_text
    reviewers = d.cards["reviewers"].text()
    for name, t in expected["throughput"].items():
        assert name in reviewers and f"{t['labels']:,}" in reviewers
    assert set(d.plots) == {
        "labels",
        "faces_per_identity",
        "reviewers",
        "labels_per_hour",
        "qa_agreement",
    }
    for lab in d.plots.values():
        assert lab.pixmap().width() > 300 and lab.pixmap().height() > 150

    # refresh picks up new labels
    with open_project(demo_project) as p:
        fid = p.conn.execute("SELECT id FROM faces WHERE label = 'correct' LIMIT 1").fetchone()[0]
        ops.label_faces(p, [fid], "duplicate", "alice")
    d.refresh()
    qtbot.waitUntil(d.is_ready, timeout=30_000)
    assert d.stats["faces_by_label"]["duplicate"] == expected["faces_by_label"]["duplicate"] + 1
    d.close()


@pytest.fixture
def isolated_settings(monkeypatch, tmp_path):
    from annotator.gui import app

    path = str(tmp_path / "settings.ini")
    monkeypatch.setattr(app, "settings", lambda: QSettings(path, QSettings.Format.IniFormat))


def _colours(path) -> int:
    im = Image.open(path).convert("RGB").resize((200, 200))
    return len(im.getcolors(maxcolors=200 * 200) or [])


def test_view_screenshots(demo_project, tmp_path, isolated_settings):
    from annotator.cli.main import cli

    label_by_two(demo_project)
    with open_project(demo_project) as p:
        pid = qa.start_pass(p, "carol", count=6, seed=3).pass_id
        items = qa.next_items(p, pid)
        qa.record_verdict(p, pid, items[0].face_id, "unsure", "carol")  # a disagreement
    run = CliRunner().invoke
    sizes = {}
    for view in ("qa", "adjudicate", "stats"):
        out = tmp_path / f"{view}.png"
        r = run(
            cli,
            [
                "gui",
                str(demo_project),
                "--reviewer",
                "carol",
                "--view",
                view,
                "--screenshot",
                str(out),
            ],
        )
        assert r.exit_code == 0, r.output
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert _colours(out) > 500  # faces and plots painted, not an empty window
        sizes[view] = Image.open(out).size
    assert sizes["qa"] == (1400, 860)  # the main window in QA mode
    assert sizes["adjudicate"][0] < 1400  # the dialog itself
    assert sizes["stats"][1] > 900  # the whole dashboard, not a scrolled part of it

    r = run(
        cli,
        ["gui", str(demo_project), "--reviewer", "nobody", "--view", "qa", "--screenshot", "x.png"],
    )
    assert r.exit_code == 1 and "has no QA pass" in r.output
    r = run(cli, ["gui", str(demo_project), "--view", "bogus", "--screenshot", "x.png"])
    assert r.exit_code != 0 and "bogus" in r.output


def test_qa_start_dialog_reports_an_empty_sample(qtbot, window, demo_project):
    # nothing labeled yet: no label check can be drawn; the dialog says so before Start and
    # offers the random sample of all faces instead
    window.dialogs.start_qa_pass()
    d = window.dialogs.current
    assert not d.stratified.isEnabled() and "nobody but you" in d.stratified.text()
    assert d.random.isChecked()
    d.reject()
    qtbot.waitUntil(lambda: window.dialogs.current is None)
    # others labeled, but every face was labeled by the QA reviewer: Start says why, stays open
    with open_project(demo_project) as p:
        faces = [f for (f,) in p.conn.execute("SELECT id FROM faces")]
        ops.label_faces(p, faces[:1], "correct", "someone")
        ops.label_faces(p, faces[:1], "unsure", window.reviewer)
        ops.label_faces(p, faces[1:2], "correct", window.reviewer)
        ops.label_faces(p, faces[1:2], "unsure", "someone")  # someone's, but not blind to you
    window.dialogs.start_qa_pass()
    d = window.dialogs.current
    assert d.stratified.isEnabled()
    d.stratified.setChecked(True)
    d.start_button.click()
    qtbot.waitUntil(lambda: "nothing to check" in d.error.text(), timeout=10_000)
    assert d.isVisible() and d.pass_id is None and window.mode is window.review
    assert d.start_button.isEnabled()
    d.reject()
    qtbot.waitUntil(lambda: window.dialogs.current is None)
    # --view qa / Review > QA pass… never show another reviewer's pass
    label_by_two(demo_project)
    with open_project(demo_project) as p:
        pid = qa.start_pass(p, "carol", count=3, seed=1).pass_id
    with pytest.raises(Exception, match="belongs to 'carol'"):
        window.enter_qa(pid)
    assert window.mode is window.review and not window.grid_model.blind


def test_reference_faces_leave_out_corrupt_faces_and_small_ones_say_cannot_read(
    qtbot, window, demo_project
):
    """A corrupt face is no reference; a reference tile too small for the reader's message
    says "cannot read" and keeps the reason in its tooltip (no text cut mid-word)."""
    from annotator.gui.qa_widgets import FaceImage, reference_tiles

    ident = window.current_identity
    faces = [t.id for t in window.grid_model.tiles]
    with open_project(demo_project) as p:
        ops.label_faces(p, faces, "correct", "alice")
        with p.tx() as c:
            c.execute(
                "INSERT INTO flags(id, kind, distance, score, fingerprint, created_at)"
                " VALUES (1, 'corrupt', NULL, 1, 'c', 'now')"
            )
            c.execute("INSERT INTO flag_faces(flag_id, face_id) VALUES (1, ?)", (faces[1],))
    refs, caption = reference_tiles(window.project, ident, exclude=[faces[0]])
    assert "correct" in caption
    assert [t.id for t in refs] == faces[2:10]

    reason = "image file is truncated (45 bytes not processed)"
    tile = window.grid_model.tiles[1]
    window.loader._errors[tile.id] = reason
    small, big = FaceImage(window.loader, 72), FaceImage(window.loader, 256)
    for img in (small, big):
        img.set_face(tile)
        assert img.toolTip() == reason
    assert small.text() == "cannot read" and big.text() == reason
    small.set_face(None)
    assert small.toolTip() == ""


def test_qa_sample_is_drawn_off_the_gui_thread(qtbot, window, demo_project, monkeypatch):
    """Drawing a sample queries every labeled face (seconds in a big project): it runs in a
    worker, and the dialog says so until the pass opens."""
    import threading

    label_by_two(demo_project)
    real, seen = qa.start_pass, {}
    gate = threading.Event()

    def slow_start_pass(*a, **k):
        seen["thread"] = threading.current_thread()
        gate.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(qa, "start_pass", slow_start_pass)
    window.dialogs.start_qa_pass()
    d = window.dialogs.current
    d.start_button.click()
    qtbot.waitUntil(lambda: "thread" in seen, timeout=10_000)
    assert seen["thread"] is not threading.main_thread()
    assert "Drawing" in d.error.text() and not d.start_button.isEnabled()
    assert window.mode is window.review
    gate.set()
    qtbot.waitUntil(lambda: isinstance(window.mode, QaMode), timeout=10_000)
    assert window.mode.pass_id == d.pass_id


def test_random_sample_from_the_qa_dialog_gives_the_noise_estimate(qtbot, window, demo_project):
    """Review > QA pass…, Sample: all faces at random — drawn even before any label; its
    verdicts (keys in the blind grid) give the statistics' estimate with an interval."""
    window.dialogs.start_qa_pass()
    d = window.dialogs.current
    d.random.setChecked(True)
    d.by_count.setChecked(True)
    d.count.setValue(8)
    d.start_button.click()
    qtbot.waitUntil(lambda: isinstance(window.mode, QaMode), timeout=10_000)
    pid = window.mode.pass_id
    with open_project(demo_project) as p:
        items = qa.next_items(p, pid)
        assert len(items) == 8
        faces = p.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        for it in items[:5]:
            qa.record_verdict(p, pid, it.face_id, "correct", window.reviewer)
        qa.record_verdict(p, pid, items[5].face_id, "wrong_identity", window.reviewer)
        e = project_stats(p)["noise_estimate"]
    assert (e["drawn"], e["judged"], e["noisy"], e["population_faces"]) == (8, 6, 1, faces)
    window.actions_by_name["statistics"].trigger()
    s = window.dialogs.stats
    qtbot.waitUntil(s.is_ready, timeout=30_000)
    noise = s.cards["noise"].text()
    assert f"{100 * e['rate']:.1f}%" in noise and "95% CI" in noise
    assert f"{100 * e['ci95'][0]:.1f}%" in noise


def test_qa_and_adjudication_show_the_evidence(qtbot, window, demo_project):
    """A face of a duplicate group shows its other copies (QA pass and adjudication); a face
    the embeddings say looks like another identity shows that identity's key, name and faces."""
    from annotator.core.scan import scan
    from annotator.store import identity_check

    truth = label_by_two(demo_project)
    with open_project(demo_project) as p:
        scan(p, workers=1)
        groups = p.conn.execute(
            "SELECT group_id, group_concat(face_id) FROM dup_groups GROUP BY group_id"
        ).fetchall()
        assert groups, "the demo holds duplicates"
        copy_face, *others = (int(x) for x in groups[0][1].split(","))
        # the face a QA verdict disputes, said (by stand-in embeddings) to look like another
        disputed = next(f for f, lab in truth.items() if lab == "wrong_identity")
        own = p.conn.execute("SELECT identity_id FROM faces WHERE id = ?", (disputed,)).fetchone()[
            0
        ]
        other, key = p.conn.execute(
            "SELECT id, key FROM identities WHERE id != ? ORDER BY id LIMIT 1", (own,)
        ).fetchone()
        identity_check.replace_looks_like(p, [(disputed, other, 0.4)])
        name = browse_name(p, other)
        pid = qa.start_pass(p, "carol", count=len(truth), seed=1).pass_id
        qa.record_verdict(p, pid, disputed, "correct", "carol")
        est = qa.start_pass(p, window.reviewer, count=len(truth), seed=1, sample="random")

    # QA pass (blind): the copy's other copies are shown, without labels
    window.enter_qa(est.pass_id)
    row = window.grid_model.row_of(copy_face)
    window.grid.set_current_row(row)
    ev = window.mode.panel.evidence
    assert not ev.isHidden() and len(ev.sections) >= 1
    caption, tiles = ev.sections[0]
    assert caption.startswith(f"Other copies of this photo ({len(others)}")
    assert sorted(t.id for t in tiles) == sorted(others)[:4]
    assert all(t.label is None for t in tiles)
    window.leave_qa()

    d = window.dialogs.open_adjudication()
    row = [x.face_id for x in d.queue].index(disputed)
    d.list.setCurrentRow(row)
    sections = d.evidence.sections
    looks = [s for s in sections if s[0].startswith("Looks more like")]
    assert looks and key in looks[0][0] and name in looks[0][0]
    with open_project(demo_project) as p:
        want = identity_check.sample_faces(p, other, 4)
    assert [t.id for t in looks[0][1]] == want and want


def browse_name(p, identity_id):
    from annotator.store import browse

    return browse.identity_rows(p, [identity_id])[identity_id].name
