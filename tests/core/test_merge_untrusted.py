"""Issue 20 findings 1-3: a reviewer package is untrusted input. Every event it brings is
checked as if a user typed it, faces and identities are matched by what they are (not by an
integer id a takedown or a restart may hand to someone else), and "home changed it since the
pack" does not depend on id counters."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from annotator.core.importer import import_source
from annotator.core.review import ops
from annotator.core.review.merge import merge as core_merge
from annotator.core.review.takedown import takedown
from annotator.model import AnnotatorError
from annotator.store.db import open_project
from annotator.store.packages import summary as packages_summary
from annotator.store.packages import unreviewed_identities
from tests.core.test_pack import (
    assert_consistent,
    do_merge,
    do_pack,
    dump,
    face_state,
    ident,
    ids_of,
    jpeg,
    make_home,
)


@pytest.fixture
def home(tmp_path) -> Path:
    return make_home(tmp_path)


def raw(db: Path, *sql: str) -> None:
    c = sqlite3.connect(db)
    for s in sql:
        c.execute(s)
    c.commit()
    c.close()


# -- finding 1: every event checked, or the whole package refused ------------------------------

BAD = {
    "label value": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id, identity_id,"
    " value) VALUES (999, 1, 't', 'label', {a0}, {ia}, 'evil')",
    "blank reviewer": "UPDATE reviewers SET name = '' WHERE id = 1",
    "newline reviewer": "UPDATE reviewers SET name = 'bo' || char(10) || 'b' WHERE id = 1",
    "NUL reviewer": "UPDATE reviewers SET name = 'bo' || char(0) || 'b' WHERE id = 1",
    "long reviewer": "UPDATE reviewers SET name = hex(randomblob(50000)) WHERE id = 1",
    "face not packed": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id,"
    " identity_id, value) VALUES (999, 1, 't', 'label', {c0}, {ic}, 'correct')",
    "unknown face": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id, identity_id,"
    " value) VALUES (999, 1, 't', 'label', 4242, {ia}, 'correct')",
    "review value": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id, identity_id,"
    " value) VALUES (999, 1, 't', 'review', NULL, {ia}, '7')",
    "review not packed": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id,"
    " identity_id, value) VALUES (999, 1, 't', 'review', NULL, {ic}, '1')",
    "move out of scope": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id,"
    " identity_id, value) VALUES (999, 1, 't', 'move', {a0}, {ia}, '{ic}')",
    "move to nonsense": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id,"
    " identity_id, value) VALUES (999, 1, 't', 'move', {a0}, {ia}, 'x1')",
    "unknown kind": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id, identity_id,"
    " value) VALUES (999, 1, 't', 'delete', {a0}, {ia}, 'correct')",
    "dangling reviewer": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id,"
    " identity_id, value) VALUES (999, 77, 't', 'label', {a0}, {ia}, 'correct')",
    "dangling batch target": "UPDATE batches SET kind = 'undo', target = 5000 WHERE id = 999",
    "event of no batch": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id,"
    " identity_id, value) VALUES (1000, 1, 't', 'label', {a0}, {ia}, 'correct')",
    "label on a review": "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id,"
    " identity_id, value) VALUES (999, 1, 't', 'review', {a0}, {ia}, '1')",
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_a_bad_event_refuses_the_whole_package(home, tmp_path, what):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg, keys=("a", "b"))
    with open_project(home) as p:
        names = {
            "a0": ids_of(p, "a")[0],
            "c0": ids_of(p, "c")[0],
            "ia": ident(p, "a"),
            "ic": ident(p, "c"),
        }
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "b"), "correct", "bob")  # good work beside the bad row
    raw(
        pkg,
        "INSERT INTO batches(id, reviewer_id, at, kind, target, description)"
        " VALUES (999, 1, 't', 'do', NULL, 'x')",
        BAD[what].format(**names),
    )
    before = dump(home)
    with pytest.raises(AnnotatorError, match="refused") as e:
        do_merge(home, pkg)
    assert "\n" not in str(e.value) and len(str(e.value)) < 400
    assert dump(home) == before


def test_the_issue_repro_changes_nothing_outside_the_package(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg, keys=("d",))
    raw(
        pkg,
        "INSERT INTO reviewers VALUES(99,'','t')",
        "INSERT INTO batches(id,reviewer_id,at,kind,target,description) VALUES(999,99,'t','do',NULL,'x')",
        "INSERT INTO events(batch_id,reviewer_id,at,kind,face_id,identity_id,value) VALUES"
        " (999,99,'t','label',1,1,'evil'),(999,99,'t','review',NULL,3,'7')",
    )
    before = dump(home)
    with pytest.raises(AnnotatorError, match="refused"):
        do_merge(home, pkg)
    assert dump(home) == before


# -- finding 2: faces and identities matched by what they are ----------------------------------


def test_a_reused_id_does_not_take_an_old_package_label(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg, keys=("d",))  # the highest ids: a later import reuses them
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "d"), "wrong_identity", "bob")
        ops.review_identity(k, ident(k, "d"), "bob")
    with open_project(home) as p:
        old = ids_of(p, "d"), ident(p, "d")
        takedown(p, "d", "lead", force_unscanned=True)
        other = tmp_path / "other"
        for j in range(3):
            (other / "e").mkdir(parents=True, exist_ok=True)
            (other / "e" / f"{j}.jpg").write_bytes(jpeg(50 + j))
        import_source(p, "folder", other)
        assert (ids_of(p, "e"), ident(p, "e")) == old  # the same integers, another person
    res = do_merge(home, pkg)
    assert res.gone == 3 and res.applied == 0 and res.reviews == 0
    with open_project(home) as p:
        assert all(lab is None for _i, lab in face_state(p, set(ids_of(p, "e"))).values())
        assert p.conn.execute("SELECT reviewed FROM identities WHERE key = 'e'").fetchone() == (0,)
        assert_consistent(p)


def test_restart_of_a_corrected_source_matches_unchanged_faces(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg, keys=("d",))
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "d"), "unsure", "bob")
    (tmp_path / "faces" / "d" / "0.jpg").write_bytes(jpeg(77))  # corrected photo
    with open_project(home) as p:
        import_source(p, "folder", tmp_path / "faces", restart=True)
    res = do_merge(home, pkg)
    assert (res.applied, res.gone) == (2, 1)
    with open_project(home) as p:
        got = {
            r: lab
            for r, lab in p.conn.execute(
                "SELECT relpath, label FROM faces WHERE relpath LIKE 'd/%'"
            )
        }
        assert got == {"d/0.jpg": None, "d/1.jpg": "unsure", "d/2.jpg": "unsure"}
        assert_consistent(p)


# -- finding 3: conflicts do not depend on id counters ------------------------------------------


def test_a_takedown_after_the_pack_does_not_hide_a_home_change(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    with open_project(home) as p:
        f = ids_of(p, "a")[0]
        ops.label_faces(p, ids_of(p, "a"), "correct", "alice")
        ops.label_faces(p, ids_of(p, "d"), "correct", "alice")  # the highest event ids
    do_pack(home, pkg, keys=("a",))
    with open_project(home) as p:
        takedown(p, "d", "lead", force_unscanned=True)
        ops.label_faces(p, [f], "unusable", "alice")  # home changes f after the pack
    with open_project(pkg) as k:
        ops.label_faces(k, [f], "wrong_identity", "bob")
    res = do_merge(home, pkg)
    assert [c["face_id"] for c in res.conflicts] == [f] and res.applied == 0
    with open_project(home) as p:
        assert face_state(p)[f][1] == "unusable"
        assert_consistent(p)


# -- finding 9: a merge killed after its last chunk ----------------------------------------------


def test_a_merge_killed_after_its_last_chunk_counts_as_merged(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg, keys=("a",))
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "a"), "correct", "bob")

    def killed_when_done(done: int, total: int) -> None:
        if total and done == total:
            raise KeyboardInterrupt  # the process dies after the last chunk committed

    with open_project(home) as p, pytest.raises(KeyboardInterrupt):
        core_merge(p, pkg, progress=killed_when_done)
    with open_project(home) as p:
        assert p.conn.execute("SELECT merges FROM packages").fetchone() == (1,)
        assert packages_summary(p)["out"] == 0
        assert ident(p, "a") in unreviewed_identities(p, 10)  # handed out again
    assert not do_merge(home, pkg).changed  # nothing new to merge, and nothing lost


# -- finding 10: two merges of one package at once ------------------------------------------------


def test_a_merge_that_lost_the_race_merges_nothing_twice(home, tmp_path, monkeypatch):
    from annotator.store import package_merge

    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg, keys=("a",))
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "a"), "correct", "bob")
    assert do_merge(home, pkg).applied == 3  # the other merge, finished first
    before = dump(home)
    # what this merge read before the other one committed: nothing merged yet
    real_b, real_e = package_merge.new_batch_rows, package_merge.new_event_rows
    monkeypatch.setattr(package_merge, "new_batch_rows", lambda c, b, _p: real_b(c, b, "-"))
    monkeypatch.setattr(package_merge, "new_event_rows", lambda c, b, e, _p: real_e(c, b, e, "-"))
    res = do_merge(home, pkg)
    assert (res.events, res.applied, res.conflicts) == (0, 0, [])
    assert dump(home) == before


# -- the withdrawal hook ------------------------------------------------------------------------


def test_the_refuse_hook_drops_events_before_anything_is_decided(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg, keys=("a", "b"))
    with open_project(pkg) as k:
        a, b = ids_of(k, "a"), ids_of(k, "b")
        ops.label_faces(k, a + b, "correct", "bob", notes={b[0]: "see a"})

    def refuse(rows):
        kept = [e._replace(note=None) for e in rows if e.face_id not in a]
        return kept, len(rows) - len(kept)

    with open_project(home) as p:
        res = core_merge(p, pkg, refuse=refuse)
        assert (res.applied, res.withdrawn) == (3, 3)
        assert all(lab is None for _i, lab in face_state(p, set(a)).values())
        assert p.conn.execute("SELECT count(*) FROM events WHERE note IS NOT NULL").fetchone() == (
            0,
        )
        assert_consistent(p)
