"""Withdrawal that reaches everywhere: the ledger holds digests only, a merge of an old package
brings nothing back, a purged package holds no byte of the person, a re-import refuses the
person's rows (by key and by photo) and counts them, pack leaves matches out."""

import base64
import shutil

import pytest

from annotator.core.importer import import_source
from annotator.core.infra.access import FaceBytes
from annotator.core.review import merge as merge_core
from annotator.core.review import ops
from annotator.core.review import pack as pack_core
from annotator.core.review.package_purge import purge_package
from annotator.core.review.takedown import takedown
from annotator.core.review.withdrawal import Ledger, name_form, person_digests
from annotator.core.scan import scan
from annotator.demo.dataset import generate_demo
from annotator.formats.msceleb import write_row
from annotator.model import AnnotatorError
from annotator.store import withdrawal as ledger_store
from annotator.store.db import open_project
from annotator.store.thumbcache import DiskCache


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    d = tmp_path_factory.mktemp("withdraw")
    demo = generate_demo(d, identities=6, faces_per_identity=(3, 5), seed=11)
    p = open_project(d / "base.db", create=True)
    import_source(p, "msceleb", demo.faces_tsv)
    import_source(p, "names", demo.names_tsv)
    scan(p, workers=1)
    p.close()
    return d / "base.db", demo


def one(p, sql, *args):
    return p.conn.execute(sql, args).fetchone()[0]


def victim_with_copy(p):
    """An identity with a verified near copy of one of its photos under another identity."""
    return p.conn.execute(
        "SELECT f1.identity_id, f2.identity_id FROM dup_groups g1 JOIN dup_groups g2"
        " ON g1.group_id = g2.group_id AND g1.face_id < g2.face_id"
        " JOIN faces f1 ON f1.id = g1.face_id JOIN faces f2 ON f2.id = g2.face_id"
        " WHERE f1.identity_id != f2.identity_id ORDER BY f1.id LIMIT 1"
    ).fetchone()


def test_ledger_digests_match_and_hold_no_plain_value():
    d = person_digests("salt", "m.1", ["Ána  Lopez"], ["AB12"])
    kinds = sorted(k for _d, k in d)
    assert kinds == ["key", "name", "photo"]
    led = Ledger(
        "salt",
        {x for x, k in d if k == "key"},
        {x for x, k in d if k == "name"},
        {x for x, k in d if k == "photo"},
    )
    assert led.key("m.1") and not led.key("m.2")
    assert led.photo("ab12") and not led.photo("ab13")
    assert name_form("ÁNA lopez!") == "ana lopez"
    assert led.note("this is ana LÓPEZ, filed wrong")
    assert led.note("same person as (m.1).")
    assert not led.note("ana is someone else") and not led.note("m.10")
    assert not any("m.1" in x or "ana" in x for x, _k in d)


def test_withdrawal_reaches_packages_merges_reimports_and_bytes(scanned, tmp_path):
    base, demo = scanned
    shutil.copy(base, tmp_path / "p.db")
    p = open_project(tmp_path / "p.db")
    vid, partner = victim_with_copy(p)
    key = one(p, "SELECT key FROM identities WHERE id = ?", vid)
    names = [
        r[0]
        for r in p.conn.execute("SELECT name FROM identity_names WHERE identity_id = ?", (vid,))
    ]
    assert names
    own = [r[0] for r in p.conn.execute("SELECT id FROM faces WHERE identity_id = ?", (vid,))]
    pface = one(p, "SELECT min(id) FROM faces WHERE identity_id = ?", partner)
    with FaceBytes(p) as fb:
        photos = [fb.read(f) for f in own]
        not_theirs = fb.read(pface)
    # a package out with the person and the partner, with images; in it, a note naming them
    pkg_path = tmp_path / "out.pkg.db"
    pack_core.pack(p, [vid, partner], pkg_path, with_images=True)
    with open_project(pkg_path) as pkg:
        ops.label_faces(
            pkg, [pface], "correct", "bob", notes={pface: f"looks like {names[0]} ({key})"}
        )
    old_pkg = tmp_path / "old.pkg.db"
    shutil.copy(pkg_path, old_pkg)
    # a thumbnail of the person in the cache beside the project
    cache = DiskCache(p.cache_dir / "thumbs.sqlite")
    cache.put(own[0], 96, "k", photos[0])
    cache._conn().close()  # noqa: SLF001

    res = takedown(p, key, "admin", "request 17")
    assert res.copies_removed >= 1
    assert [x["file"] for x in res.packages] == [str(pkg_path)]
    ledger = ledger_store.ledger(p)
    assert ledger[-1]["digests"]["key"] == 1 and ledger[-1]["digests"]["photo"] >= len(own)
    assert ledger[-1]["copies_out"]["packages"][0]["id"] == res.packages[0]["id"]

    # an old package merged after the takedown brings nothing of the person home
    m = merge_core.merge(p, pkg_path)
    assert m.withdrawn == 1 and m.batches == 1
    assert one(p, "SELECT count(*) FROM events WHERE instr(coalesce(note, ''), ?) > 0", key) == 0

    # the package file is purged; home learns its new digest, so it still merges
    pr = purge_package(p, old_pkg, key)
    assert pr.faces_removed == len(own) and pr.home_updated
    with pytest.raises(AnnotatorError, match="take the person down at home first"):
        purge_package(p, old_pkg, "not-withdrawn-key")

    # a re-import of the source (a copy of the file: a new source) refuses the person's rows
    # and counts them; a file with the person's photo under another key refuses that row
    again = tmp_path / "again.tsv"
    shutil.copy(demo.faces_tsv, again)
    r = import_source(p, "msceleb", again)
    assert r.withdrawn == len(own) + res.copies_by_sha256 + res.copies_by_near, res
    assert one(p, "SELECT count(*) FROM identities WHERE key = ?", key) == 0
    other = tmp_path / "other.tsv"
    with open(other, "wb") as fh:
        write_row(fh, "m.someone", 1, None, None, None, None, photos[1])
        write_row(fh, "m.someone", 2, None, None, None, None, not_theirs)
    r = import_source(p, "msceleb", other)
    assert (r.withdrawn, r.imported) == (1, 1)
    p.close()

    # no byte of the person in the project, its WAL, the cache, the purged package
    files = [tmp_path / "p.db", tmp_path / "p.db-wal", old_pkg]
    files += [f for f in (tmp_path / "p.db.cache").rglob("*") if f.is_file()]
    needles = [key.encode()] + [n.encode() for n in names]
    needles += [ph[-60:-2] for ph in photos]  # raw bytes (embedded images, thumbnails)
    needles += [base64.b64encode(ph)[-80:-4] for ph in photos]
    for f in files:
        if not f.exists():
            continue
        blob = f.read_bytes()
        for n in needles:
            assert n not in blob, (f.name, n[:20])

    # the purged package still merges (its new digest is home's record)
    p = open_project(tmp_path / "p.db")
    merge_core.check_package(p, old_pkg)
    p.close()


def test_pack_leaves_out_what_the_ledger_matches(scanned, tmp_path):
    base, _demo = scanned
    shutil.copy(base, tmp_path / "p.db")
    p = open_project(tmp_path / "p.db")
    vid, partner = victim_with_copy(p)
    key = one(p, "SELECT key FROM identities WHERE id = ?", vid)
    takedown(p, key, "admin", keep_copies=True)  # the copy under the partner stays at home
    pface = one(p, "SELECT min(id) FROM faces WHERE identity_id = ?", partner)
    ops.label_faces(p, [pface], "correct", "bob", notes={pface: f"same as {key}"})
    # a face whose photo the ledger holds (as if imported unscanned before the takedown)
    last = one(p, "SELECT max(id) FROM faces WHERE identity_id = ?", partner)
    sha = one(p, "SELECT hex(sha256) FROM face_hashes WHERE face_id = ?", last)
    tid = one(p, "SELECT max(id) FROM takedowns")
    ledger_store.add_digests(p, tid, person_digests(p.meta("salt"), "x", [], [sha])[1:])
    r = pack_core.pack(p, [partner], tmp_path / "x.pkg.db")
    assert r.withdrawn == 2  # the note and the photo
    with open_project(tmp_path / "x.pkg.db") as pkg:
        assert one(pkg, "SELECT count(*) FROM events WHERE note IS NOT NULL") == 0
        assert one(pkg, "SELECT count(*) FROM faces WHERE id = ?", last) == 0
        assert one(pkg, "SELECT count(*) FROM faces WHERE id = ?", pface) == 1
    p.close()
