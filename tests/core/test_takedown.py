"""Takedown: everything about an identity leaves the project file (bytes checked), the
re-import skips it, and the rest of the project is intact."""

import shutil

import pytest

from annotator.core import ops, qa
from annotator.core.demo import generate_demo
from annotator.core.importer import import_source
from annotator.core.models import AnnotatorError
from annotator.core.privacy import key_digest
from annotator.core.takedown import takedown
from annotator.store.db import open_project


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    return generate_demo(d, identities=4, faces_per_identity=(3, 4), seed=11)


@pytest.fixture
def project(tmp_path, demo):
    p = open_project(tmp_path / "p.db", create=True)
    import_source(p, "msceleb", demo.faces_tsv)
    import_source(p, "names", demo.names_tsv)
    yield p
    p.close()


def count(p, sql, *args):
    return p.conn.execute(sql, args).fetchone()[0]


def test_takedown_removes_everything_and_the_bytes(project, tmp_path, demo):
    c = project.conn
    keys = [r[0] for r in c.execute("SELECT key FROM identities ORDER BY id")]
    victim, other = keys[0], keys[1]
    vid = count(project, "SELECT id FROM identities WHERE key = ?", victim)
    oid = count(project, "SELECT id FROM identities WHERE key = ?", other)
    names = [
        r[0] for r in c.execute("SELECT name FROM identity_names WHERE identity_id = ?", (vid,))
    ]
    assert names, "the demo names list gives every identity names"
    vfaces = [
        r[0] for r in c.execute("SELECT id FROM faces WHERE identity_id = ? ORDER BY id", (vid,))
    ]
    ofaces = [
        r[0] for r in c.execute("SELECT id FROM faces WHERE identity_id = ? ORDER BY id", (oid,))
    ]
    n_faces = count(project, "SELECT count(*) FROM faces")
    tface = count(
        project,
        "SELECT min(id) FROM faces WHERE identity_id = (SELECT id FROM identities WHERE key = ?)",
        keys[2],
    )
    # history, QA, flags, dup groups, hashes touching the victim
    ops.label_faces(project, vfaces[:2], "correct", "alice")
    ops.label_faces(project, ofaces[:2], "correct", "alice")
    ops.move_faces(project, [ofaces[2]], vid, "alice")  # moved into the victim
    ops.move_faces(project, [vfaces[2]], oid, "alice")  # imported under the victim, moved out
    ops.review_identity(project, vid, "alice")
    qa.start_pass(project, "bob", fraction=1.0, seed=1)
    with project.tx() as t:
        for f in vfaces + ofaces:
            t.execute(
                "INSERT INTO face_hashes(face_id, sha256, phash, scanned_at) VALUES (?, ?, ?, 'x')",
                (f, bytes(32), f),
            )
        t.execute(
            "INSERT INTO flags(id, kind, score, fingerprint, created_at) VALUES"
            " (1, 'cross_identity_dup', 1, 'x1', 'x'), (2, 'outlier', 1, 'x2', 'x'),"
            " (3, 'near_dup', 1, 'x3', 'x')"
        )
        t.executemany(
            "INSERT INTO flag_faces(flag_id, face_id) VALUES (?, ?)",
            [(1, vfaces[0]), (1, ofaces[0]), (2, vfaces[1]), (3, ofaces[0]), (3, ofaces[1])],
        )
        t.executemany(
            "INSERT INTO dup_groups(face_id, group_id, is_keeper) VALUES (?, ?, ?)",
            [(vfaces[0], 1, 1), (ofaces[0], 1, 0), (ofaces[1], 2, 1), (tface, 2, 0)],
        )
    project.cache_dir.mkdir()
    (project.cache_dir / "thumbs.sqlite").write_bytes(b"cached")

    res = takedown(project, victim, "admin", reason="privacy request #12")
    assert res.faces_removed == len(vfaces) + 1
    assert res.key_digest == key_digest(project.meta("salt"), victim)
    assert res.cache_removed and not project.cache_dir.exists() and res.wal_truncated

    assert count(project, "SELECT count(*) FROM identities WHERE key = ?", victim) == 0
    assert count(project, "SELECT count(*) FROM faces") == n_faces - len(vfaces) - 1
    assert (
        count(
            project,
            "SELECT count(*) FROM faces WHERE identity_id = ?1 OR orig_identity_id = ?1",
            vid,
        )
        == 0
    )
    assert count(project, "SELECT count(*) FROM identity_names WHERE identity_id = ?", vid) == 0
    gone = set(vfaces) | {ofaces[2]}
    q = ",".join(map(str, gone))
    for table, col in [
        ("face_hashes", "face_id"),
        ("flag_faces", "face_id"),
        ("dup_groups", "face_id"),
        ("qa_items", "face_id"),
        ("events", "face_id"),
    ]:
        assert count(project, f"SELECT count(*) FROM {table} WHERE {col} IN ({q})") == 0, table
    assert count(project, "SELECT count(*) FROM events WHERE identity_id = ?", vid) == 0
    # flag 1 (pair with a victim face) and 2 (victim only) are gone, flag 3 is untouched
    assert [r[0] for r in c.execute("SELECT id FROM flags")] == [3]
    # group 1 would be a group of one: gone; group 2 kept
    assert sorted(r[0] for r in c.execute("SELECT DISTINCT group_id FROM dup_groups")) == [2]
    # the other identity's counters follow (it lost the face moved out, and the one moved in
    # from the victim is gone too)
    fc, lc = c.execute(
        "SELECT face_count, labeled_count FROM identities WHERE id = ?", (oid,)
    ).fetchone()
    assert (
        fc
        == count(project, "SELECT count(*) FROM faces WHERE identity_id = ?", oid)
        == len(ofaces) - 1
    )
    assert lc == 2
    # no orphan batches; the project still works (undo of alice's remaining steps)
    assert (
        count(
            project,
            "SELECT count(*) FROM batches b WHERE NOT EXISTS"
            " (SELECT 1 FROM events e WHERE e.batch_id = b.id)",
        )
        == 0
    )
    assert c.execute("PRAGMA foreign_key_check").fetchall() == []
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert ops.can_undo(project, "alice") == "label 2 faces correct"
    tk = c.execute("SELECT key_digest, faces_removed, reason FROM takedowns").fetchall()
    assert tk == [(res.key_digest, len(vfaces) + 1, "privacy request #12")]

    # bytes: neither the key nor any name is anywhere in the file or its WAL
    path = project.path
    blobs = [path.read_bytes()]
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        blobs.append(wal.read_bytes())
    for needle in [victim, *names]:
        for blob in blobs:
            assert needle.encode("utf-8") not in blob, needle
    # sanity: the check can fail — the other identity's key is in there
    assert other.encode() in blobs[0]

    # already taken down / unknown
    with pytest.raises(AnnotatorError, match="already taken down"):
        takedown(project, victim, "admin")
    with pytest.raises(AnnotatorError, match="no identity"):
        takedown(project, "m.nobody", "admin")

    # re-import (a copy of the same file under another name): the victim is skipped
    copy = tmp_path / "faces_copy.tsv"
    shutil.copy(demo.faces_tsv, copy)
    r = import_source(project, "msceleb", copy)
    assert r.skipped >= len(vfaces)
    assert count(project, "SELECT count(*) FROM identities WHERE key = ?", victim) == 0
    import_source(project, "names", demo.names_tsv)  # already imported: no-op, still no names
    project.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert victim.encode() not in path.read_bytes()
