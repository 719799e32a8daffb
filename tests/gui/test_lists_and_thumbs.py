"""Identity list (filter, search, sort), inspector partners, thumbnails off the GUI thread,
and the --screenshot command."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

from PIL import Image, ImageDraw
from PySide6.QtCore import Qt, QTimer

from annotator.core.review import ops
from annotator.gui.identity_model import IdentityModel
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.store import browse
from annotator.store.db import open_project


def test_identity_model_filters_searches_sorts(qtbot, demo_project):
    with open_project(demo_project) as p:
        m = IdentityModel(p)
        m.reload()
        assert m.rowCount() == 6
        first = m.ids[0]
        ops.review_identity(p, first, "tester")
        m.refresh([first])
        assert m.identity_row(0).reviewed  # row refreshed in place, list does not jump
        assert m.data(m.index(0, 4)) == "✓"
        m.set_filter("unreviewed")
        m.reload()
        assert first not in m.ids and len(m.ids) == 5
        m.set_filter("reviewed")
        assert m.ids == [first]
        m.set_filter("all")
        # sort by face count, both ways
        m.sort(2, Qt.SortOrder.AscendingOrder)
        counts = [m.identity_row(r).face_count for r in range(m.rowCount())]
        assert counts == sorted(counts)
        m.sort(2, Qt.SortOrder.DescendingOrder)
        counts = [m.identity_row(r).face_count for r in range(m.rowCount())]
        assert counts == sorted(counts, reverse=True)
        m.sort(0, Qt.SortOrder.AscendingOrder)
        keys = [m.identity_row(r).key for r in range(m.rowCount())]
        assert keys == sorted(keys)
        # default order: unreviewed first
        m.sort(-1)
        assert m.ids[-1] == first
        # search by the start of a name's words (any case, any order) and by key prefix
        row = m.identity_row(2)
        first_word, last_word = row.name.split()[0], row.name.split()[-1]
        m.set_search(last_word[:3].upper())
        assert row.id in m.ids and len(m.ids) < 6
        m.set_search(f"{last_word[:2]} {first_word[:2]}".lower())
        assert row.id in m.ids
        m.set_search(row.name[1:4])  # not the start of a word
        assert row.id not in m.ids
        m.set_search(row.key)
        assert m.ids == [row.id]
        m.set_search(row.key[:-1])
        assert row.id in m.ids
        m.set_search("no such thing")
        assert m.ids == []


def test_suspicion_order_and_flagged_filter(qtbot, demo_project):
    with open_project(demo_project) as p:
        ids = browse.identity_ids(p, "all")
        with p.tx() as c:
            c.execute(
                "UPDATE identities SET suspicion = 0.9, flagged_count = 2 WHERE id = ?", (ids[4],)
            )
            c.execute(
                "UPDATE identities SET suspicion = 0.5, flagged_count = 1 WHERE id = ?", (ids[2],)
            )
        assert browse.identity_ids(p, "unreviewed")[:2] == [ids[4], ids[2]]
        assert browse.identity_ids(p, "flagged") == [ids[4], ids[2]]
        found = browse.search_identities(p, browse.identity_rows(p, [ids[4]])[ids[4]].key)
        assert found[0].id == ids[4]


def test_inspector_partner_opens_other_identity(qtbot, window, demo_project):
    a = window.model.ids[0]
    b = window.model.ids[1]
    fa = window.grid_model.tiles[0].id
    with open_project(demo_project) as p:
        fb = browse.faces_of_identity(p, b)[2].id
        with p.tx() as c:
            c.execute(
                "INSERT INTO flags(id, kind, distance, score, fingerprint, created_at)"
                " VALUES (1, 'cross_identity_dup', 2, 0.9, 'x', 'now')"
            )
            c.executemany("INSERT INTO flag_faces(flag_id, face_id) VALUES (1, ?)", [(fa,), (fb,)])
    window.show_identity(a)
    assert window.grid_model.tiles[0].badges == "X"
    d = window.inspector.detail
    assert d is not None and d.flags[0].kind == "cross_identity_dup"
    assert d.flags[0].partners[0].face_id == fb
    tile = window.inspector._partners[0]
    qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
    assert window.current_identity == b
    assert window.grid.current_face_id() == fb
    assert window.grid.selected_face_ids() == [fb]


def _jpeg(i: int, size: int = 640) -> bytes:
    im = Image.new("RGB", (size, size), (i * 37 % 256, i * 91 % 256, 120))
    d = ImageDraw.Draw(im)
    for k in range(30):
        d.ellipse(
            (k * 17 % size, k * 29 % size, k * 17 % size + 90, k * 29 % size + 60),
            fill=((i + k) * 13 % 256, k * 7 % 256, 200 - k * 5),
        )
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_thumbnails_load_without_blocking(qtbot, tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    locs = []
    for i in range(200):
        (root / f"{i}.jpg").write_bytes(_jpeg(i % 20))
        locs.append((i + 1, str(root), "folder", None, None, f"{i}.jpg", f"{i}.jpg"))
    (root / "bad.jpg").write_bytes(b"not an image")
    locs.append((999, str(root), "folder", None, None, "bad.jpg", "bad.jpg"))
    loader = ThumbnailLoader(tmp_path / "cache" / "thumbs.sqlite", threads=2)
    ticks = []
    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    t0 = time.monotonic()
    assert all(loader.request(loc, 128) is None for loc in locs)  # placeholders first
    t_req = time.monotonic() - t0
    qtbot.waitUntil(lambda: not loader.busy, timeout=60_000)
    timer.stop()
    assert t_req < 0.5  # requesting does not decode
    assert all(loader.pixmap(i + 1, 128) is not None for i in range(200))
    assert loader.pixmap(1, 128).width() == 128
    assert loader.error(999) is not None
    assert len(ticks) >= 10  # the event loop kept turning while they decoded
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 0.5
    # the disk cache serves a second loader without reading the sources
    for i in range(200):
        (root / f"{i}.jpg").unlink()
    loader2 = ThumbnailLoader(tmp_path / "cache" / "thumbs.sqlite", threads=2)
    loader2.request(locs[5], 128)
    qtbot.waitUntil(lambda: not loader2.busy, timeout=10_000)
    assert loader2.pixmap(6, 128) is not None and loader2.error(6) is None
    loader.shutdown()
    loader2.shutdown()


def test_memory_cache_is_bounded(qtbot, tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    locs = []
    for i in range(30):
        (root / f"{i}.jpg").write_bytes(_jpeg(i, 300))
        locs.append((i + 1, str(root), "folder", None, None, f"{i}.jpg", f"{i}.jpg"))
    loader = ThumbnailLoader(None, max_bytes=10 * 128 * 128 * 4)
    for loc in locs:
        loader.request(loc, 128)
    qtbot.waitUntil(lambda: not loader.busy, timeout=30_000)
    assert loader.memory_bytes <= 10 * 128 * 128 * 4
    assert sum(loader.pixmap(i + 1, 128) is not None for i in range(30)) == 10
    loader.shutdown()


def test_screenshot_command(demo_project, tmp_path):
    out = tmp_path / "shot.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "cfg"), HOME=str(tmp_path))
    env.pop("QT_QPA_PLATFORM", None)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "annotator",
            "gui",
            str(demo_project),
            "--reviewer",
            "shot",
            "--screenshot",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "This plugin does not support" not in r.stderr  # no offscreen-platform noise
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(out)
    assert im.size[0] >= 1000 and len(data) > 50_000  # thumbnails were painted, not blank
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "annotator",
            "gui",
            str(tmp_path / "missing.db"),
            "--screenshot",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error: no project file") and "Traceback" not in r.stderr
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "annotator",
            "gui",
            str(demo_project),
            "--screenshot",
            str(out),
            "--identity",
            "m.nope",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 1 and "no identity with key" in r.stderr


def test_search_in_a_big_project_runs_off_the_gui_thread(qtbot, demo_project):
    with open_project(demo_project) as p:
        m = IdentityModel(p)
        m.async_above = 0  # treat the demo as big
        m.reload()
        everyone = list(m.ids)
        row = m.identity_row(3)
        with qtbot.waitSignal(m.searched, timeout=10_000):
            m.set_search(row.key)
            assert m.searching and m.ids == everyone  # the old rows stay until the ids arrive
        assert not m.searching and m.ids == [row.id]
        # a newer search wins over an older one still running; a reload discards both
        with qtbot.waitSignal(m.searched, timeout=10_000):
            m.set_search("no such")
            m.set_search(row.key[:-1])
        qtbot.wait(100)
        assert row.id in m.ids and m.search == row.key[:-1]
        m.set_search("zzz")
        m.set_filter("reviewed")  # synchronous: uses the newest text
        assert m.ids == [] and not m.searching
        qtbot.wait(200)  # the interrupted search's late answer is ignored
        assert m.ids == [] and m.search == "zzz"
        m.close()


def test_typing_a_search_marks_the_first_match_and_enter_opens_it(qtbot, window):
    first = window.current_identity
    row = window.model.identity_row(4)
    window.model.async_above = 0
    window.identities.search.setFocus()
    qtbot.keyClicks(window.identities.search, row.key)
    qtbot.waitUntil(
        lambda: window.model.search == row.key and not window.model.searching, timeout=10_000
    )
    qtbot.waitUntil(lambda: window.model.ids == [row.id], timeout=10_000)
    assert window.identities.table.currentIndex().row() == 0
    assert window.current_identity == first  # the faces did not change while typing
    qtbot.keyClick(window.identities.search, Qt.Key.Key_Return)
    assert window.current_identity == row.id and window.grid.hasFocus()


def test_grid_columns_fill_the_width(qtbot, window):
    """The tiles spread over the whole grid: no empty strip a column wide at the right
    (QListView lays out in the width minus a scroll bar, not in the viewport's width)."""
    window.open_identity(max(window.model.ids, key=lambda i: window.model.row_by_id(i).face_count))
    for w, h, size in ((1400, 860, 112), (1280, 800, 112), (1280, 800, 96), (1100, 700, 128)):
        window.resize(w, h)
        window.grid.set_thumb_size(size)
        qtbot.wait(20)
        g = window.grid
        rects = [g.visualRect(g.grid_model.index(r)) for r in range(g.grid_model.rowCount())]
        cols = len({r.x() for r in rects})
        assert cols < len(rects), "needs more faces than one row"
        empty = g.viewport().width() - max(r.right() for r in rects)
        assert empty < g.gridSize().width() // 2, (w, size, cols, empty, g.gridSize())


def test_another_project_never_shows_the_previous_ones_thumbnails(qtbot, window, other_project):
    """Face ids start at 1 in every project: opening another project drops the memory cache,
    and a thumbnail still decoding for the old project is not shown in the new one."""
    qtbot.waitUntil(lambda: not window.loader.busy, timeout=20_000)
    fid = window.grid_model.tiles[0].id
    old = window.loader.pixmap(fid, window.grid.thumb_size).toImage()
    ld = window.loader
    ld.request(window.grid_model.tiles[1].locator(), 256)  # still decoding when we switch
    window.set_project(open_project(other_project))
    window.set_filter("all")
    assert ld.pixmap(fid, window.grid.thumb_size) is None  # nothing from the old project
    qtbot.waitUntil(lambda: not ld.busy, timeout=20_000)
    qtbot.wait(50)
    assert ld.pixmap(window.grid_model.tiles[1].id, 256) is None  # the late old result
    window.open_identity(window.model.ids[0])
    assert fid in [t.id for t in window.grid_model.tiles]
    assert window.wait_painted()
    new = ld.pixmap(fid, window.grid.thumb_size)
    assert new is not None and new.toImage() != old


def test_sorting_a_big_project_runs_off_the_gui_thread(qtbot, window):
    m = window.model
    m.async_above = 0  # treat the demo as big
    before = list(m.ids)
    current = window.current_identity
    window.identities.header_clicked(0)  # Key, ascending
    assert m.searching and m.ids == before  # the old order stays until the ids arrive
    assert window.identities.info.text() == "Sorting…"
    with qtbot.waitSignal(m.searched, timeout=10_000):
        pass
    keys = [m.identity_row(r).key for r in range(len(m.ids))]
    assert not m.searching and keys == sorted(keys) and sorted(m.ids) == sorted(before)
    assert window.current_identity == current  # the same identity, found in the new order
    assert window.identities.table.currentIndex().row() == m.row_of(current)
    assert "Sorting" not in window.identities.info.text()
    # a newer click wins over an older sort still running
    with qtbot.waitSignal(m.searched, timeout=10_000):
        window.identities.header_clicked(2)  # Faces, ascending
        window.identities.header_clicked(2)  # Faces, descending
    qtbot.wait(100)
    faces = [m.identity_row(r).face_count for r in range(len(m.ids))]
    assert (m.sort_key, m.descending) == ("faces", True) and faces == sorted(faces, reverse=True)


def test_inspector_says_a_corrupt_reason_once(qtbot, window, demo_project, monkeypatch):
    """A corrupt face: the big image says "cannot read", the reason appears once in the
    inspector (it was shown as the image, as "Read error" and as "Corrupt")."""
    import dataclasses

    from annotator.store.browse import face_detail

    reason = "image file is truncated (26 bytes not processed)"
    fid = window.grid_model.tiles[0].id
    detail = dataclasses.replace(face_detail(window.project, fid), corrupt=reason)  # the scan's
    window.loader._errors[fid] = reason  # the thumbnail reader failed the same way
    monkeypatch.setattr(window.loader, "request", lambda *_a, **_k: None)  # no pixmap
    window.inspector.show_detail(detail)
    shown = window.inspector.info.text() + window.inspector.image.text()
    assert shown.count("truncated") == 1
    assert "cannot read" in window.inspector.image.text()
    assert window.inspector.image.toolTip() == reason


def test_a_job_finishing_after_its_loader_is_gone_says_nothing(qtbot, capfd) -> None:
    """A thumbnail job still running when the program exits without closing its window finds
    the loader's signal source deleted by Qt: it drops its result quietly (it printed
    "Signal source has been deleted" tracebacks)."""
    import shiboken6

    from annotator.gui import thumbnails

    ld = thumbnails.ThumbnailLoader(None)
    shiboken6.delete(ld.signals)
    thumbnails._emit(ld, 0, 1, 96, None, "")  # no exception
    assert "Traceback" not in capfd.readouterr().err
