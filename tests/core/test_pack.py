"""Reviewer packages: pack -> label in the package (through core.ops) -> merge -> home."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from annotator.core.dedup.hashing import hash_planned
from annotator.core.importer import import_source
from annotator.core.infra import access
from annotator.core.infra.access import FaceBytes, ReadItem, read_planned
from annotator.core.review import merge as merge_core
from annotator.core.review import ops, qa
from annotator.core.review import pack as core
from annotator.core.review.labels_io import export_rows
from annotator.model import AnnotatorError
from annotator.store import browse
from annotator.store.db import open_project

KEYS = ["a", "b", "c", "d"]


def jpeg(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (24, 24), (i * 37 % 256, (i * 91) % 256, 160)).save(b, "JPEG")
    return b.getvalue()


def make_home(root: Path, name: str = "home.db") -> Path:
    folder = root / "faces"
    if not folder.exists():
        n = 0
        for key in KEYS:
            (folder / key).mkdir(parents=True)
            for j in range(3):
                (folder / key / f"{j}.jpg").write_bytes(jpeg(n))
                n += 1
    db = root / name
    with open_project(db, create=True) as p:
        import_source(p, "folder", folder)
    return db


@pytest.fixture
def home(tmp_path) -> Path:
    return make_home(tmp_path)


def ids_of(p, key: str) -> list[int]:
    return [
        f
        for (f,) in p.conn.execute(
            "SELECT f.id FROM faces f JOIN identities i ON i.id = f.identity_id WHERE i.key = ?"
            " ORDER BY f.id",
            (key,),
        )
    ]


def ident(p, key: str) -> int:
    return p.conn.execute("SELECT id FROM identities WHERE key = ?", (key,)).fetchone()[0]


def do_pack(home: Path, out: Path, keys=("a", "b"), **kw) -> core.PackResult:
    with open_project(home) as p:
        return core.pack(p, core.select_identities(p, list(keys)), out, **kw)


def do_merge(home: Path, pkg: Path) -> merge_core.MergeResult:
    with open_project(home) as p:
        return merge_core.merge(p, pkg)


def face_state(p, face_ids=None) -> dict[int, tuple[int, str | None]]:
    rows = p.conn.execute("SELECT id, identity_id, label FROM faces ORDER BY id")
    return {f: (i, lab) for f, i, lab in rows if face_ids is None or f in face_ids}


def assert_consistent(p) -> None:
    """Counters and faces.label agree with the faces and the event log."""
    bad = p.conn.execute(
        "SELECT i.id FROM identities i WHERE i.face_count !="
        " (SELECT count(*) FROM faces f WHERE f.identity_id = i.id) OR i.labeled_count !="
        " (SELECT count(*) FROM faces f WHERE f.identity_id = i.id AND f.label IS NOT NULL)"
    ).fetchall()
    assert bad == []
    # the current label is the value of the last label event of each face
    rows = p.conn.execute(
        "SELECT f.id, f.label, (SELECT e.value FROM events e WHERE e.face_id = f.id"
        " AND e.kind IN ('label', 'adjudicate') ORDER BY e.id DESC LIMIT 1),"
        " (SELECT e.value FROM events e WHERE e.id = f.label_event_id) FROM faces f"
    ).fetchall()
    for fid, label, last, pointed in rows:
        assert label == last, fid
        assert label == pointed, fid


def dump(db: Path) -> dict[str, list]:
    conn = sqlite3.connect(db)
    out = {
        t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
        for t in (
            "faces",
            "identities",
            "events",
            "batches",
            "reviewers",
            "qa_passes",
            "qa_items",
            "packages",
            "merged_batches",
        )
    }
    conn.close()
    return out


# -- pack ----------------------------------------------------------------------------------------


def test_pack_is_a_project_with_the_identities_and_their_history(home, tmp_path):
    with open_project(home) as p:
        ops.label_faces(p, ids_of(p, "a")[:2], "correct", "alice")
        ops.label_faces(p, ids_of(p, "c")[:1], "unsure", "alice")
    before = dump(home)
    res = do_pack(home, tmp_path / "pkg.db")
    assert (res.identities, res.faces, res.events) == (2, 6, 2)
    after = dump(home)
    assert {k: v for k, v in after.items() if k != "packages"} == {
        k: v for k, v in before.items() if k != "packages"
    }
    assert len(after["packages"]) == 1 and after["packages"][0][0] == res.package_id
    with open_project(tmp_path / "pkg.db") as k, open_project(home) as p:
        assert sorted(r[0] for r in k.conn.execute("SELECT key FROM identities")) == ["a", "b"]
        assert face_state(k) == face_state(p, set(face_state(k)))  # same ids, same state
        assert len(list(export_rows(k))) == 6  # `labels export` works on it
        assert k.meta("project_id") != p.meta("project_id")
        info = core.store.package_info(k)
        assert info is not None and info.home_project_id == p.meta("project_id")
    assert not (tmp_path / "pkg.db-wal").exists()  # travels as one file


def test_pack_refusals(home, tmp_path):
    do_pack(home, tmp_path / "pkg.db")
    with pytest.raises(AnnotatorError, match="exists"):
        do_pack(home, tmp_path / "pkg.db")
    with open_project(home) as p, pytest.raises(AnnotatorError, match="unknown identity"):
        core.select_identities(p, ["a", "zz"])
    with open_project(tmp_path / "pkg.db") as k, pytest.raises(AnnotatorError, match="package"):
        core.pack(k, [1], tmp_path / "again.db")
    assert not (tmp_path / "again.db").exists()


def test_unreviewed_skips_identities_out_in_a_package(home, tmp_path):
    with open_project(home) as p:
        first = core.select_identities(p, unreviewed=2)
        core.pack(p, first, tmp_path / "one.db")
        second = core.select_identities(p, unreviewed=2)
        assert not set(first) & set(second) and len(second) == 2
        core.pack(p, second, tmp_path / "two.db")
        with pytest.raises(AnnotatorError, match="nothing to pack"):
            core.select_identities(p, unreviewed=1)


# -- merge ---------------------------------------------------------------------------------------


def test_pack_label_merge_gives_home_the_package_state(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    with open_project(home) as p:
        ops.label_faces(p, ids_of(p, "a")[:1], "correct", "alice")
    do_pack(home, pkg)
    with open_project(pkg) as k:
        a, b = ids_of(k, "a"), ids_of(k, "b")
        ops.label_faces(k, a[:2], "wrong_identity", "bob")
        ops.move_faces(k, [a[2]], ident(k, "b"), "bob")
        ops.label_faces(k, [b[0]], "duplicate", "bob")
        ops.undo(k, "bob")  # the duplicate label is undone: a compensating batch
        ops.review_identity(k, ident(k, "b"), "bob")
        ops.label_faces(k, [a[0]], "unsure", "carol")
        want = face_state(k)
        events = k.conn.execute(
            "SELECT r.name, e.at, e.kind, e.face_id, e.value FROM events e"
            " JOIN reviewers r ON r.id = e.reviewer_id WHERE e.id > 1 ORDER BY e.id"
        ).fetchall()
    res = do_merge(home, pkg)
    assert res.conflicts == [] and res.applied == 6 and res.reviews == 1
    with open_project(home) as p:
        assert face_state(p, set(want)) == want
        assert p.conn.execute("SELECT reviewed FROM identities WHERE key = 'b'").fetchone()[0]
        assert p.conn.execute(
            "SELECT r.name FROM identities i JOIN reviewers r ON r.id = i.reviewed_by"
            " WHERE i.key = 'b'"
        ).fetchone() == ("bob",)
        got = p.conn.execute(
            "SELECT r.name, e.at, e.kind, e.face_id, e.value FROM events e"
            " JOIN reviewers r ON r.id = e.reviewer_id WHERE e.id > 1 ORDER BY e.id"
        ).fetchall()
        assert got == events  # every event home, with its reviewer and time
        assert_consistent(p)
        # bob's undo stack came home too: his last step is the review of b
        assert ops.can_undo(p, "bob") == "accept identity (4 correct)"
        # the faces of c and d were not in the package and are untouched
        assert all(lab is None for _i, lab in face_state(p, set(ids_of(p, "c"))).values())


def test_second_merge_changes_nothing_and_later_work_merges(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg)
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "a"), "correct", "bob")
    assert do_merge(home, pkg).applied == 3
    before = dump(home)
    again = do_merge(home, pkg)
    assert not again.changed and again.events == 0 and again.conflicts == []
    assert dump(home) == before
    # the reviewer goes on working: only the new work comes home, no conflict with itself
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "a")[:1], "unusable", "bob")
    res = do_merge(home, pkg)
    assert (res.applied, res.conflicts) == (1, [])
    with open_project(home) as p:
        assert p.conn.execute("SELECT merges FROM packages").fetchone()[0] == 2
        assert face_state(p)[ids_of(p, "a")[0]][1] == "unusable"
        assert_consistent(p)


def test_conflict_at_home_is_queued_not_overwritten(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg)
    with open_project(home) as p:
        f, g, h = ids_of(p, "a")
        ops.label_faces(p, [f], "wrong_identity", "alice")  # home, after the pack
        ops.label_faces(p, [g], "correct", "alice")  # same decision as the package's
    with open_project(pkg) as k:
        ops.label_faces(k, [f, g, h], "correct", "bob")
    res = do_merge(home, pkg)
    assert (res.applied, res.agreed, len(res.conflicts)) == (1, 1, 1)
    c = res.conflicts[0]
    assert (c["face_id"], c["home_label"], c["package_label"]) == (f, "wrong_identity", "correct")
    assert (c["home_reviewer"], c["package_reviewer"]) == ("alice", "bob")
    with open_project(home) as p:
        assert face_state(p)[f][1] == "wrong_identity"  # not overwritten
        queue = qa.adjudication_queue(p)
        assert [(d.face_id, d.orig_label, d.verdict, d.qa_reviewer) for d in queue] == [
            (f, "wrong_identity", "correct", "bob")
        ]
        assert qa.report(p)["items_total"] == 0  # not a QA sample: agreement figures untouched
        assert qa.passes(p) == []
        assert qa.identity_qa_states(p) == {}  # nor the identities' QA state (export --require-qa)
        assert_consistent(p)
        qa.adjudicate(p, queue[0].pass_id, f, "correct", "lead")
        assert face_state(p)[f][1] == "correct" and qa.adjudication_queue(p) == []
        assert_consistent(p)
    assert do_merge(home, pkg).conflicts == []  # merged once: not queued again


def test_two_packages_labelling_a_face_differently_go_to_the_queue(home, tmp_path):
    do_pack(home, tmp_path / "one.db", keys=("a",))
    do_pack(home, tmp_path / "two.db", keys=("a", "b"))
    with open_project(tmp_path / "one.db") as k:
        ops.label_faces(k, ids_of(k, "a"), "correct", "bob")
    with open_project(tmp_path / "two.db") as k:
        a = ids_of(k, "a")
        ops.label_faces(k, a[:1], "wrong_identity", "carol")
        ops.label_faces(k, a[1:], "correct", "carol")
        ops.label_faces(k, ids_of(k, "b"), "unsure", "carol")
    assert do_merge(home, tmp_path / "one.db").conflicts == []
    res = do_merge(home, tmp_path / "two.db")
    assert [c["face_id"] for c in res.conflicts] == a[:1]
    assert (res.agreed, res.applied) == (2, 3)
    with open_project(home) as p:
        assert face_state(p)[a[0]][1] == "correct"  # the first package's label stays
        assert [d.face_id for d in qa.adjudication_queue(p)] == a[:1]
        assert_consistent(p)


def test_moves_inside_a_package_are_merged(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg)
    with open_project(pkg) as k:
        f = ids_of(k, "a")[0]
        ops.move_faces(k, [f], ident(k, "b"), "bob")
    res = do_merge(home, pkg)
    assert res.applied == 1 and res.conflicts == []
    with open_project(home) as p:
        assert face_state(p)[f] == (ident(p, "b"), None)  # unreviewed where it landed
        assert p.conn.execute("SELECT face_count FROM identities WHERE key = 'b'").fetchone() == (
            4,
        )
        assert_consistent(p)
        ops.undo(p, "bob")  # the merged move is bob's step at home too, and undoable
        assert face_state(p)[f] == (ident(p, "a"), None)
        assert_consistent(p)


def test_a_face_moved_at_home_and_in_the_package_conflicts(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg)
    with open_project(home) as p:
        f = ids_of(p, "a")[0]
        ops.move_faces(p, [f], ident(p, "c"), "alice")
    with open_project(pkg) as k:
        ops.move_faces(k, [f], ident(k, "b"), "bob")
    res = do_merge(home, pkg)
    assert [c["face_id"] for c in res.conflicts] == [f]
    with open_project(home) as p:
        assert face_state(p)[f] == (ident(p, "c"), None)
        assert_consistent(p)


def test_undo_in_the_package_of_work_done_before_the_pack(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    with open_project(home) as p:
        f = ids_of(p, "a")[0]
        ops.label_faces(p, [f, ids_of(p, "c")[0]], "duplicate", "bob")
    do_pack(home, pkg)
    with open_project(pkg) as k:
        ops.undo(k, "bob")
    do_merge(home, pkg)
    with open_project(home) as p:
        assert face_state(p)[f][1] is None
        assert face_state(p)[ids_of(p, "c")[0]][1] == "duplicate"  # not in the package
        # the home batch held more than the package's part: the undo comes home as a step of
        # its own, so bob's home undo stack does not pretend the whole batch was undone
        assert p.conn.execute("SELECT kind FROM batches ORDER BY id DESC LIMIT 1").fetchone() == (
            "do",
        )
        assert_consistent(p)


# -- refusals ------------------------------------------------------------------------------------


def test_wrong_project_and_not_a_package_are_refused(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    shutil.copy(home, tmp_path / "copy.db")  # same project id, no record of the package
    do_pack(home, pkg)
    other = tmp_path / "other"
    other.mkdir()
    other_db = make_home(other, "other.db")
    with open_project(other_db) as p, pytest.raises(AnnotatorError, match="another project"):
        merge_core.merge(p, pkg)
    with (
        open_project(tmp_path / "copy.db") as p,
        pytest.raises(AnnotatorError, match="not recorded"),
    ):
        merge_core.merge(p, pkg)
    with open_project(home) as p:
        with pytest.raises(AnnotatorError, match="not a reviewer package"):
            merge_core.merge(p, other_db)
        (tmp_path / "t.txt").write_text("hello\n")
        with pytest.raises(AnnotatorError, match="not a reviewer package"):
            merge_core.merge(p, tmp_path / "t.txt")
        with pytest.raises(AnnotatorError, match="the project itself"):
            merge_core.merge(p, home)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE faces SET relpath = 'x/9.jpg' WHERE id = 1",
        "UPDATE events SET value = 'correct' WHERE id = 1",
        "UPDATE package_info SET base_batch = 0",
        "UPDATE identities SET key = 'zz' WHERE key = 'a'",
        "DELETE FROM face_hashes",
    ],
)
def test_tampered_package_is_refused(home, tmp_path, sql):
    with open_project(home) as p:
        from annotator.core.scan import scan

        scan(p, workers=1)
        ops.label_faces(p, [1], "unsure", "alice")
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg)
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "a"), "correct", "bob")  # the reviewer's work is fine
    conn = sqlite3.connect(pkg)
    conn.execute(sql)
    conn.commit()
    conn.close()
    before = dump(home)
    with pytest.raises(AnnotatorError, match="changed since it was packed"):
        do_merge(home, pkg)
    assert dump(home) == before


# -- embedded bytes ------------------------------------------------------------------------------


def test_with_images_package_reads_without_its_sources(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    with open_project(home) as p:
        ids = ids_of(p, "a") + ids_of(p, "b")
        with FaceBytes(p) as fb:
            want = dict(zip(ids, fb.read_many(ids), strict=True))
    res = do_pack(home, pkg, with_images=True)
    assert res.with_images
    shutil.move(tmp_path / "faces", tmp_path / "elsewhere")  # the sources are gone
    with open_project(pkg) as k:
        with FaceBytes(k) as fb:
            assert dict(zip(ids, fb.read_many(ids), strict=True)) == want
            # the scan's path: planned items read in a worker
            results, errors = hash_planned(fb.plan(ids))
            assert errors == [] and len(results) == len(ids)
        # the GUI's thumbnail path: plain locators of the face grid
        tiles = browse.faces_of_identity(k, ident(k, "a"))
        assert isinstance(read_planned([ReadItem(*tiles[0].locator())], "return")[0], Exception)
        access.use_embedded(k)
        try:
            got = read_planned([ReadItem(*t.locator()) for t in tiles])
            assert got == [want[t.id] for t in tiles]
        finally:
            access.use_embedded(None)
    with open_project(home) as p:  # home itself reads its sources as before
        with pytest.raises(access.FaceReadError):
            FaceBytes(p).read(ids[0])


def test_faces_taken_down_at_home_since_the_pack_are_skipped(home, tmp_path):
    from annotator.core.review.takedown import takedown

    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg)
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "a") + ids_of(k, "b"), "correct", "bob")
        ops.review_identity(k, ident(k, "a"), "bob")
    with open_project(home) as p:
        takedown(p, "a", "lead", force_unscanned=True)
    res = do_merge(home, pkg)
    assert (res.gone, res.applied, res.conflicts) == (3, 3, [])
    with open_project(home) as p:
        assert p.conn.execute("SELECT count(*) FROM faces WHERE label = 'correct'").fetchone() == (
            3,
        )
        assert_consistent(p)


def test_two_copies_of_one_package_are_not_silently_mixed(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg)
    shutil.copy(pkg, tmp_path / "copy.db")
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "a")[:1], "correct", "bob")
    with open_project(tmp_path / "copy.db") as k:
        ops.label_faces(k, ids_of(k, "b")[:1], "unsure", "carol")  # the same batch id as bob's
    assert do_merge(home, pkg).applied == 1
    before = dump(home)
    with pytest.raises(AnnotatorError, match="two copies"):
        do_merge(home, tmp_path / "copy.db")
    assert dump(home) == before


def test_a_changed_embedded_image_is_tampering(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    do_pack(home, pkg, keys=("a",), with_images=True)
    conn = sqlite3.connect(pkg)
    conn.execute("UPDATE face_blobs SET data = ? WHERE face_id = 1", (jpeg(99),))
    conn.commit()
    conn.close()
    with pytest.raises(AnnotatorError, match="tampered"):
        do_merge(home, pkg)
