"""Takedown finds the person's photos filed under other identities (issue 13 item 6): a
byte-identical copy and a verified near copy (a re-encoded JPEG) go with the identity, a face
whose pHash is close but whose thumbnail differs stays; ``keep_copies`` only lists them."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.core.importer import import_source
from annotator.core.review.takedown import find_copies, takedown
from annotator.core.scan import scan
from annotator.demo.drawing import draw_face, encode_jpeg, identity_params, image_params
from annotator.model import AnnotatorError
from annotator.store.db import open_project

PERSON, OTHER, THIRD, FOURTH = "m.person", "m.other", "m.third", "m.fourth"


def _stripes(jpeg: bytes) -> bytes:
    """The photo under a strong checker pattern of 6 cycles: its pHash (8x8 lowest DCT
    frequencies) barely moves, its 16x16 thumbnail is another picture."""
    a = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(np.float64)
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    pat = 40 * np.sign(np.sin(2 * np.pi * 6 * xx / w) * np.sin(2 * np.pi * 6 * yy / h))
    return encode_jpeg(Image.fromarray(np.clip(a + pat[..., None], 0, 255).astype(np.uint8)), 90)


def write_data(root: Path) -> dict[str, bytes]:
    """A folder-per-identity tree drawn by the demo's renderer: the person's 3 photos; their
    photo 0 byte for byte under OTHER; their photo 1 re-encoded at quality 60 under THIRD,
    beside a striped version of it (pHash-close, not a copy)."""
    rng = np.random.default_rng(5)
    people = [identity_params(rng) for _ in range(4)]

    def photo(p) -> bytes:
        return encode_jpeg(draw_face(p, image_params(rng)), 90)

    person = [photo(people[0]) for _ in range(3)]
    img = Image.open(io.BytesIO(person[1])).convert("RGB")
    special = {"exact": person[0], "reenc": encode_jpeg(img, 60)}
    special["stripes"] = _stripes(person[1])
    tree = {
        PERSON: person,
        OTHER: [photo(people[1]) for _ in range(3)] + [special["exact"]],  # OTHER/3.jpg
        THIRD: [photo(people[2]) for _ in range(2)] + [special["reenc"], special["stripes"]],
        FOURTH: [photo(people[3]) for _ in range(3)],
    }
    for key, photos in tree.items():
        (root / key).mkdir(parents=True)
        for i, b in enumerate(photos):
            (root / key / f"{i}.jpg").write_bytes(b)
    special["person1"] = person[1]
    return special


def build_project(base: Path) -> tuple[Path, dict[str, bytes]]:
    """Import the tree as a folder source and scan it (the store API, no raw INSERTs)."""
    special = write_data(base / "data")
    db = base / "p.db"
    with open_project(db, create=True) as p:
        import_source(p, "folder", base / "data")
        scan(p)
    return db, special


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_project(tmp_path_factory.mktemp("copies"))


@pytest.fixture
def project(built, tmp_path):
    db, _special = built
    shutil.copy(db, tmp_path / "p.db")
    p = open_project(tmp_path / "p.db")
    yield p
    p.close()


def one(p, sql, *args):
    return p.conn.execute(sql, args).fetchone()[0]


def face_of(p, relpath: str) -> int | None:
    row = p.conn.execute("SELECT id FROM faces WHERE relpath = ?", (relpath,)).fetchone()
    return row[0] if row else None


def counts(p, key: str) -> tuple[int, int, int]:
    return p.conn.execute(
        "SELECT face_count, (SELECT count(*) FROM faces f WHERE f.identity_id = i.id),"
        " flagged_count FROM identities i WHERE key = ?",
        (key,),
    ).fetchone()


def test_the_fixture_is_what_it_claims(project, built):
    """Preconditions: the scan grouped the exact and the re-encoded copy with the person's
    photos, and the striped face is a pHash candidate that failed verification."""
    p = project
    _db, special = built
    person0, person1 = face_of(p, f"{PERSON}/0.jpg"), face_of(p, f"{PERSON}/1.jpg")
    exact, reenc = face_of(p, f"{OTHER}/3.jpg"), face_of(p, f"{THIRD}/2.jpg")
    stripes = face_of(p, f"{THIRD}/3.jpg")
    group = dict(p.conn.execute("SELECT face_id, group_id FROM dup_groups"))
    assert group[person0] == group[exact] and group[person1] == group[reenc]
    assert stripes not in group
    ph = dict(p.conn.execute("SELECT face_id, phash FROM face_hashes"))
    assert ((ph[stripes] ^ ph[person1]) & (2**64 - 1)).bit_count() <= 8  # the default radius
    assert hashlib.sha256(special["exact"]).digest() == one(
        p, "SELECT sha256 FROM face_hashes WHERE face_id = ?", exact
    )
    preview = find_copies(p, PERSON)
    assert preview is not None
    assert [(f, h) for f, _i, h in preview.rows] == [(exact, "sha256"), (reenc, "near")]
    assert find_copies(p, "m.nobody") is None


def test_takedown_removes_the_copies_under_other_identities(project, built):
    p = project
    _db, special = built
    shas = [
        bytes(r[0])
        for r in p.conn.execute(
            "SELECT h.sha256 FROM face_hashes h JOIN faces f ON f.id = h.face_id"
            " JOIN identities i ON i.id = f.identity_id WHERE i.key = ?",
            (PERSON,),
        )
    ]
    stripes = face_of(p, f"{THIRD}/3.jpg")
    assert one(p, "SELECT count(*) FROM flags WHERE kind = 'cross_identity_dup'") == 2
    res = takedown(p, PERSON, "lead", reason="request 7")
    assert (res.faces_removed, res.copies_removed, res.copies_kept) == (3, 2, 0)
    assert (res.copies_by_sha256, res.copies_by_near, res.copy_identities) == (1, 1, 2)
    assert (res.identities_emptied, res.unscanned_faces, res.copies) == (0, 0, [])
    q = ",".join("?" * len(shas))
    assert one(p, f"SELECT count(*) FROM face_hashes WHERE sha256 IN ({q})", *shas) == 0
    assert hashlib.sha256(special["exact"]).digest() in shas
    assert face_of(p, f"{OTHER}/3.jpg") is None  # the byte-identical copy
    assert face_of(p, f"{THIRD}/2.jpg") is None  # the re-encoded copy
    assert face_of(p, f"{THIRD}/3.jpg") == stripes  # pHash-close, not verified: stays
    assert one(p, "SELECT count(*) FROM face_hashes WHERE face_id = ?", stripes) == 1
    # counters, flags, groups and suspicion of the identities the copies were under
    assert counts(p, OTHER) == (3, 3, 0) and counts(p, THIRD) == (3, 3, 0)
    assert one(p, "SELECT count(*) FROM flags WHERE kind LIKE '%dup'") == 0
    assert one(p, "SELECT count(*) FROM dup_groups") == 0
    assert one(p, "SELECT sum(suspicion) FROM identities WHERE key IN (?, ?)", OTHER, THIRD) == 0
    # the takedown record counts every face of the person removed; no key in clear text
    assert one(p, "SELECT faces_removed FROM takedowns") == 5
    assert one(p, "PRAGMA integrity_check") == "ok"
    assert one(p, "SELECT count(*) FROM identities WHERE key = ?", PERSON) == 0


def test_keep_copies_lists_them_and_removes_nothing_else(project):
    p = project
    exact, reenc = face_of(p, f"{OTHER}/3.jpg"), face_of(p, f"{THIRD}/2.jpg")
    n_faces = one(p, "SELECT count(*) FROM faces")
    res = takedown(p, PERSON, "lead", keep_copies=True)
    assert (res.faces_removed, res.copies_removed, res.copies_kept) == (3, 0, 2)
    assert (res.copies_by_sha256, res.copies_by_near, res.copy_identities) == (1, 1, 2)
    assert res.copies == [
        {"id": exact, "origin": f"{OTHER}/3.jpg", "found_by": "sha256"},
        {"id": reenc, "origin": f"{THIRD}/2.jpg", "found_by": "near"},
    ]
    assert one(p, "SELECT count(*) FROM faces") == n_faces - 3
    assert face_of(p, f"{OTHER}/3.jpg") == exact and face_of(p, f"{THIRD}/2.jpg") == reenc
    assert counts(p, OTHER)[:2] == (4, 4) and counts(p, THIRD)[:2] == (4, 4)
    assert one(p, "SELECT faces_removed FROM takedowns") == 3
    assert one(p, "PRAGMA integrity_check") == "ok"


def test_a_surviving_group_flag_gets_its_kind_recounted(tmp_path):
    """Two copies under one identity: after the person goes (copies kept) their flag is no
    longer a cross-identity one but an exact duplicate, as a rescan would say."""
    root = tmp_path / "data"
    write_data(root)
    shutil.copy(root / PERSON / "0.jpg", root / OTHER / "4.jpg")  # a second exact copy
    db = tmp_path / "p.db"
    with open_project(db, create=True) as p:
        import_source(p, "folder", root)
        scan(p)
        takedown(p, PERSON, "lead", keep_copies=True)
        rows = p.conn.execute(
            "SELECT fl.kind, fl.score, fl.fingerprint, group_concat(ff.face_id) FROM flags fl"
            " JOIN flag_faces ff ON ff.flag_id = fl.id GROUP BY fl.id"
        ).fetchall()
        a, b = face_of(p, f"{OTHER}/3.jpg"), face_of(p, f"{OTHER}/4.jpg")
        assert [(k, s, fp) for k, s, fp, _m in rows if k.endswith("dup")] == [
            ("exact_dup", 1.0, f"exact_dup:{a},{b}")
        ]
        # a rescan keeps the same flag (same fingerprint, nothing to rewrite)
        scan(p)
        assert p.conn.execute(
            "SELECT kind, fingerprint FROM flags WHERE kind LIKE '%dup'"
        ).fetchall() == [("exact_dup", f"exact_dup:{a},{b}")]


def test_unscanned_faces_refuse_unless_forced(project, tmp_path):
    p = project
    extra = tmp_path / "extra" / "m.late"
    extra.mkdir(parents=True)
    shutil.copy(
        Path(p.conn.execute("SELECT path FROM sources").fetchone()[0]) / PERSON / "2.jpg",
        extra / "0.jpg",
    )
    import_source(p, "folder", tmp_path / "extra")
    n_faces = one(p, "SELECT count(*) FROM faces")
    with pytest.raises(AnnotatorError, match=r"1 face\(s\) of the project are not scanned"):
        takedown(p, PERSON, "lead")
    assert one(p, "SELECT count(*) FROM faces") == n_faces  # nothing removed
    res = takedown(p, PERSON, "lead", force_unscanned=True)
    assert res.unscanned_faces == 1 and res.copies_removed == 2
    # the unscanned copy was not found: it stays (the refusal's whole point)
    assert one(p, "SELECT count(*) FROM faces WHERE relpath = 'm.late/0.jpg'") == 1


def test_refused_while_a_scan_writes_the_groups(project):
    from annotator.store import flags as flags_store

    flags_store.set_flags_state(project, "updating")
    with pytest.raises(AnnotatorError, match="a scan is writing the duplicate groups"):
        takedown(project, PERSON, "lead")
    assert one(project, "SELECT count(*) FROM identities WHERE key = ?", PERSON) == 1
