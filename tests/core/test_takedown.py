"""Takedown: everything about an identity leaves the project file (bytes checked), the
re-import skips it, and the rest of the project is intact."""

import shutil
import sqlite3
import struct

import pytest

from annotator.core.importer import import_source
from annotator.core.infra.access import FaceBytes
from annotator.core.review import ops, qa
from annotator.core.review.privacy import key_digest
from annotator.core.review.takedown import takedown
from annotator.core.scan import scan, update_flags
from annotator.demo.dataset import generate_demo
from annotator.model import AnnotatorError
from annotator.store import flags as flags_store
from annotator.store import hashes as hashes_store
from annotator.store.db import open_project
from annotator.store.thumbcache import DiskCache


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
    with project.tx():
        hashes_store.insert_hashes(
            project, [(f, f.to_bytes(32, "big"), f) + (None,) * 6 for f in vfaces + ofaces]
        )
        flags_store.replace_flags(
            project,
            [
                ("cross_identity_dup", (vfaces[0], ofaces[0]), None, 1.0, 1.0),  # flag 1
                ("outlier", (vfaces[1],), None, 1.0, None),  # flag 2
                ("near_dup", (ofaces[0], ofaces[1]), None, 1.0, 0.99),  # flag 3
            ],
        )
        flags_store.replace_dup_groups(
            project, [(vfaces[0], 1, 1), (ofaces[0], 1, 0), (ofaces[1], 2, 1), (tface, 2, 0)]
        )
    project.cache_dir.mkdir()
    (project.cache_dir / "thumbs.sqlite").write_bytes(b"cached")

    # ofaces[0] shares group 1 with a victim face: a copy, kept here (test_takedown_copies.py)
    res = takedown(
        project,
        victim,
        "admin",
        reason="privacy request #12",
        keep_copies=True,
        force_unscanned=True,
    )
    assert (res.copies_kept, res.copies_by_near) == (1, 1)
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


@pytest.fixture(scope="module")
def scanned_demo(tmp_path_factory):
    """6 identities, scanned: identity 1 shares cross_identity_dup flags with 4 and 6."""
    d = tmp_path_factory.mktemp("scanned")
    demo = generate_demo(d, identities=6, faces_per_identity=(3, 5), seed=11)
    p = open_project(d / "base.db", create=True)
    import_source(p, "msceleb", demo.faces_tsv)
    import_source(p, "names", demo.names_tsv)
    scan(p, workers=1)
    p.close()
    return d / "base.db"


def _copy_project(src, dst):
    shutil.copy(src, dst)
    return open_project(dst)


def _suspicion(p):
    return {
        k: (n, round(s, 6))
        for k, n, s in p.conn.execute("SELECT key, flagged_count, suspicion FROM identities")
    }


def _groups(p):
    out = {}
    for _g, members, keeper in p.conn.execute(
        "SELECT group_id, group_concat(face_id), max(is_keeper * face_id) FROM dup_groups"
        " GROUP BY group_id"
    ):
        out[frozenset(int(x) for x in members.split(","))] = keeper
    return out


def test_takedown_recounts_other_identities_and_scrubs_everything(scanned_demo, tmp_path):
    p = _copy_project(scanned_demo, tmp_path / "p.db")
    c = p.conn
    cross = c.execute(
        "SELECT ff.flag_id, group_concat(f.identity_id) FROM flags fl"
        " JOIN flag_faces ff ON ff.flag_id = fl.id JOIN faces f ON f.id = ff.face_id"
        " WHERE fl.kind = 'cross_identity_dup' GROUP BY fl.id ORDER BY fl.id"
    ).fetchall()
    vid = int(cross[0][1].split(",")[0])
    partners = sorted(
        {int(i) for _f, ids in cross for i in ids.split(",") if str(vid) in ids.split(",")} - {vid}
    )
    assert partners, "the demo seed gives identity 1 cross-identity duplicates"
    victim = count(p, "SELECT key FROM identities WHERE id = ?", vid)
    names = [
        r[0] for r in c.execute("SELECT name FROM identity_names WHERE identity_id = ?", (vid,))
    ]
    vfaces = [r[0] for r in c.execute("SELECT id FROM faces WHERE identity_id = ?", (vid,))]
    hashes = c.execute(
        f"SELECT sha256, phash, dhash FROM face_hashes WHERE face_id IN ({','.join(map(str, vfaces))})"
        " AND sha256 IS NOT NULL"
    ).fetchall()
    urls = [
        r[0] for r in c.execute("SELECT image_url FROM faces WHERE identity_id = ?", (vid,)) if r[0]
    ]
    # a cross-identity duplicate with identical bytes has the same hashes: those stay
    kept = {
        v
        for r in c.execute(
            f"SELECT sha256, phash, dhash FROM face_hashes WHERE face_id NOT IN"
            f" ({','.join(map(str, vfaces))})"
        )
        for v in r
    }
    hashes = [tuple(v if v not in kept else None for v in h) for h in hashes]
    assert hashes and urls and sum(v is not None for h in hashes for v in h) > 10
    before = _suspicion(p)
    pkeys = [count(p, "SELECT key FROM identities WHERE id = ?", i) for i in partners]
    # a note on another face naming the person, an export whose path names the key
    other_face = count(p, "SELECT min(id) FROM faces WHERE identity_id = ?", partners[0])
    ops.label_faces(p, [other_face], "correct", "alice", notes={other_face: f"not {names[0]}"})
    with p.tx() as t:
        t.execute(
            "INSERT INTO exports(at, format, out_path, params, faces, identities, manifest_sha256)"
            " VALUES ('x', 'folder', ?, '{}', 1, 1, 'd'), ('y', 'csv', '/exports/all', '{}', 2, 2, 'e')",
            (f"/exports/{victim}",),
        )
    # thumbnails beside the project
    with FaceBytes(p) as fb:
        vbytes = fb.read(vfaces[0])
        obytes = fb.read(other_face)
    cache = DiskCache(p.cache_dir / "thumbs.sqlite")
    cache.put(vfaces[0], 96, "k", vbytes)
    cache.put(other_face, 96, "k", obytes)
    cache._conn().close()  # noqa: SLF001 - release the file like a closed GUI would

    res = takedown(p, victim, "admin")
    assert res.identities_recounted >= len(partners)
    assert res.notes_scrubbed == 1 and res.exports_redacted == 1 and res.earlier_exports == 2
    assert res.cache_removed and not p.cache_dir.exists()

    # recounted: equal to what a full re-computation of the flags gives
    after = _suspicion(p)
    groups = _groups(p)
    for k in pkeys:
        assert after[k][0] < before[k][0], k  # the cross-identity flag with the victim vanished
    update_flags(p)
    assert _suspicion(p) == after
    assert _groups(p) == groups

    # the key, names, hashes and URLs are gone from the file and its WAL
    blobs = [p.path.read_bytes()]
    wal = p.path.with_name(p.path.name + "-wal")
    if wal.exists():
        blobs.append(wal.read_bytes())
    needles = [victim.encode(), *(n.encode() for n in names), *(u.encode() for u in urls)]
    for sha, ph, dh in hashes:
        needles += [bytes(sha)] if sha is not None else []
        needles += [struct.pack(">q", v) for v in (ph, dh) if v is not None]
    for blob in blobs:
        for needle in needles:
            assert needle not in blob, needle
    assert pkeys[0].encode() in blobs[0]  # the check can fail
    assert count(p, "SELECT note FROM events WHERE face_id = ?", other_face) is None
    assert [r[0] for r in c.execute("SELECT out_path FROM exports ORDER BY id")] == [
        "(redacted: named a withdrawn identity)",
        "/exports/all",
    ]
    p.close()


def test_takedown_purges_the_thumbnail_cache_when_it_cannot_be_deleted(
    scanned_demo, tmp_path, monkeypatch
):
    p = _copy_project(scanned_demo, tmp_path / "p.db")
    victim, vid = p.conn.execute("SELECT key, id FROM identities ORDER BY id").fetchone()
    vfaces = [r[0] for r in p.conn.execute("SELECT id FROM faces WHERE identity_id = ?", (vid,))]
    keep = count(p, "SELECT min(id) FROM faces WHERE identity_id != ?", vid)
    with FaceBytes(p) as fb:
        data = {f: fb.read(f) for f in [*vfaces, keep]}
    cache = DiskCache(p.cache_dir / "thumbs.sqlite")
    for f, b in data.items():
        cache.put(f, 96, "k", b)
    # a GUI still holds the cache open, and the folder cannot be deleted
    monkeypatch.setattr("annotator.core.review.takedown.shutil.rmtree", lambda *a, **k: None)
    res = takedown(p, victim, "admin")
    assert res.cache_removed and p.cache_dir.exists()
    cache._conn().close()  # noqa: SLF001
    path = p.cache_dir / "thumbs.sqlite"
    with sqlite3.connect(path) as cc:
        assert [r[0] for r in cc.execute("SELECT face_id FROM thumbs")] == [keep]
    files = [path.read_bytes()]
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        files.append(wal.read_bytes())
    for f in vfaces:
        for blob in files:
            assert data[f][-80:-2] not in blob
    assert data[keep][-80:-2] in files[0]
    p.close()
