"""A seeded package fuzzer (issue 20): random edits of a real package's rows and bytes. Every
case must end in one of two ways -- the merge refuses with one line and home is unchanged, or
the merge applies exactly the packed faces' valid history (the state an independent replay of
the package's new events gives, nothing outside the package touched, counters consistent,
integrity and foreign keys ok). Never anything else.

FUZZ_PACKAGE_CASES sets the number of cases (default 500; the bench runs more).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from annotator.core.review import merge as merge_core
from annotator.core.review import ops
from annotator.core.review import pack as core
from annotator.model import LABELS, AnnotatorError, check_reviewer
from annotator.store.db import open_project
from tests.core.test_pack import assert_consistent, ident, ids_of, make_home

SEED = 20
CASES = int(os.environ.get("FUZZ_PACKAGE_CASES", "500"))
MERGED_KINDS = ("do", "undo", "redo", "adjudicate")

VALUES: list[object] = [
    None, 0, 1, 2, 3, 4, 5, 7, 12, 13, -1, 2**63 - 1, 99999, "1", "0", "2", "7", "x1", "",
    "\x00", "bob\n", "correct", "unsure", "wrong_identity", "evil", "x" * 300, 1.5, b"\x01",
    "do", "undo", "redo", "qa", "adjudicate", "label", "move", "review", "delete",
]  # fmt: skip
EVENT_COLS = ["batch_id", "reviewer_id", "at", "kind", "face_id", "identity_id", "value",
              "prev_value", "note"]  # fmt: skip
BATCH_COLS = ["reviewer_id", "at", "kind", "target", "description"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A home project and one package of it with several kinds of work in it."""
    root = tmp_path_factory.mktemp("pkgfuzz")
    home = make_home(root)
    with open_project(home) as p:
        ops.label_faces(p, ids_of(p, "a")[:1], "unsure", "alice")
        core.pack(p, core.select_identities(p, ["a", "b"]), root / "pkg.db")
    with open_project(root / "pkg.db") as k:
        a, b = ids_of(k, "a"), ids_of(k, "b")
        ops.label_faces(k, a[:2], "correct", "bob")
        ops.move_faces(k, [a[2]], ident(k, "b"), "bob")
        ops.label_faces(k, b[:1], "duplicate", "bob")
        ops.undo(k, "bob")
        ops.review_identity(k, ident(k, "b"), "carol")
        ops.label_faces(k, [b[2]], "unusable", "carol")
    with open_project(home) as p:
        packed = set(ids_of(p, "a") + ids_of(p, "b"))
    return home, root / "pkg.db", {"packed": packed}


def _edit(rng: random.Random, pkg: Path) -> str:
    """One random edit of the package's rows or bytes; returns what it did."""
    what = rng.choice(
        ["event", "event", "event", "batch", "batch", "insert_event", "insert_batch",
         "delete_event", "reviewer", "covered", "bytes"]
    )  # fmt: skip
    if what == "bytes":
        data = bytearray(pkg.read_bytes())
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        pkg.write_bytes(bytes(data))
        return what
    c = sqlite3.connect(pkg)
    c.execute("PRAGMA synchronous = OFF")  # a scratch copy: no fsync per case
    try:
        what = _edit_rows(rng, c, what)
        c.commit()
    except sqlite3.IntegrityError:  # a constraint of the package file itself refused the edit
        what += " (not stored: constraint)"
    c.close()
    return what


def _edit_rows(rng: random.Random, c: sqlite3.Connection, what: str) -> str:
    base = c.execute("SELECT base_batch, base_event FROM package_info").fetchone()
    val = rng.choice(VALUES)
    if what == "event":
        ids = [r[0] for r in c.execute("SELECT id FROM events WHERE batch_id > ?", base[:1])]
        col = rng.choice(EVENT_COLS)
        c.execute(f"UPDATE events SET {col} = ? WHERE id = ?", (val, rng.choice(ids)))
        what += f".{col}={val!r:.20}"
    elif what == "batch":
        ids = [r[0] for r in c.execute("SELECT id FROM batches WHERE id > ?", base[:1])]
        col = rng.choice(BATCH_COLS)
        c.execute(f"UPDATE batches SET {col} = ? WHERE id = ?", (val, rng.choice(ids)))
        what += f".{col}={val!r:.20}"
    elif what == "insert_event":
        ids = [
            r[0] for r in c.execute("SELECT id, reviewer_id FROM batches WHERE id > ?", base[:1])
        ]
        row = [rng.choice(ids), rng.choice([1, 2, 3, 9]), "t", rng.choice(
            ["label", "move", "review", "adjudicate", "qa"]), rng.choice([None, *range(1, 14)]),
            rng.choice([None, 1, 2, 3, 4]), rng.choice(VALUES), rng.choice(VALUES), None]  # fmt: skip
        c.execute(f"INSERT INTO events({', '.join(EVENT_COLS)}) VALUES (?,?,?,?,?,?,?,?,?)", row)
        what += f"{row[3:7]!r:.60}"
    elif what == "insert_batch":
        c.execute(
            "INSERT INTO batches(reviewer_id, at, kind, target, description) VALUES (?,?,?,?,?)",
            (rng.choice([1, 2, 3, 9]), "t", rng.choice(["do", "undo", "qa", "x"]),
             rng.choice([None, 1, 3, 99]), "d"),
        )  # fmt: skip
    elif what == "delete_event":
        ids = [r[0] for r in c.execute("SELECT id FROM events WHERE batch_id > ?", base[:1])]
        c.execute("DELETE FROM events WHERE id = ?", (rng.choice(ids),))
    elif what == "reviewer":
        c.execute("UPDATE reviewers SET name = ? WHERE id = ?", (val, rng.choice([1, 2, 3])))
        what += f"={val!r:.20}"
    else:  # a row the digest covers
        table, col = rng.choice([("faces", "relpath"), ("identities", "key"), ("sources", "path"),
                                 ("face_hashes", "phash"), ("package_faces", "sha256")])  # fmt: skip
        c.execute(f"UPDATE {table} SET {col} = ? WHERE rowid = (SELECT min(rowid) FROM {table})",
                  (val,))  # fmt: skip
        what += f".{table}"
    return what


def _expected(pkg: Path, packed: set[int]) -> dict[str, dict]:
    """An independent replay of the package's new events in merged batches: per face its last
    label and identity (by key), per identity its last review value."""
    c = sqlite3.connect(pkg)
    base = c.execute("SELECT base_batch FROM package_info").fetchone()[0]
    keys = dict(c.execute("SELECT id, key FROM identities"))
    rows = c.execute(
        "SELECT e.kind, e.face_id, e.identity_id, e.value FROM events e JOIN batches b"
        f" ON b.id = e.batch_id WHERE b.id > ? AND b.kind IN {MERGED_KINDS} ORDER BY e.id",
        (base,),
    ).fetchall()
    c.close()
    labels: dict[int, object] = {}
    where: dict[int, str] = {}
    reviewed: dict[str, int] = {}
    for kind, face, ident_id, value in rows:
        if kind in ("label", "adjudicate"):
            labels[face] = value
        elif kind == "move":
            where[face] = keys[int(value)]
        elif kind == "review":
            reviewed[keys[ident_id]] = int(value)
    return {"labels": labels, "where": where, "reviewed": reviewed}


def _state(db: Path) -> dict[str, list]:
    c = sqlite3.connect(db)
    out = {
        "faces": c.execute(
            "SELECT f.id, i.key, f.label FROM faces f JOIN identities i ON i.id = f.identity_id"
            " ORDER BY f.id"
        ).fetchall(),
        "identities": c.execute(
            "SELECT key, face_count, labeled_count, reviewed FROM identities ORDER BY key"
        ).fetchall(),
        "events": c.execute("SELECT count(*) FROM events").fetchall(),
        "reviewers": c.execute("SELECT name FROM reviewers ORDER BY id").fetchall(),
    }
    c.close()
    return out


def test_random_edits_of_a_package_merge_exactly_or_refuse(corpus, tmp_path):
    home0, pkg0, meta = corpus
    packed = meta["packed"]
    rng = random.Random(SEED)
    outcomes: dict[str, int] = {"refused": 0, "merged": 0}
    for case in range(CASES):
        home, pkg = tmp_path / "home.db", tmp_path / "pkg.db"
        shutil.copy(home0, home)
        shutil.copy(pkg0, pkg)
        what = _edit(rng, pkg)
        before = _state(home)
        try:
            with open_project(home) as p:
                res = merge_core.merge(p, pkg)
        except AnnotatorError as e:
            msg = str(e)
            assert "\n" not in msg and len(msg) < 500, (case, what, msg)
            assert _state(home) == before, (case, what)
            outcomes["refused"] += 1
            continue
        outcomes["merged"] += 1
        want = _expected(pkg, packed)
        after = _state(home)
        for (fid, key, label), (fid0, key0, label0) in zip(
            after["faces"], before["faces"], strict=True
        ):
            assert fid == fid0
            if fid not in packed:
                assert (key, label) == (key0, label0), (case, what, fid)
                continue
            assert label == want["labels"].get(fid, label0), (case, what, fid)
            assert key == want["where"].get(fid, key0), (case, what, fid)
            assert label is None or label in LABELS
        for key, _fc, _lc, rv in after["identities"]:
            if key in want["reviewed"]:
                assert rv == want["reviewed"][key], (case, what, key)
        for key in ("c", "d"):
            assert [r for r in after["identities"] if r[0] == key] == [
                r for r in before["identities"] if r[0] == key
            ]
        for (name,) in after["reviewers"]:
            assert check_reviewer(name) == name, (case, what)
        assert res.conflicts == [] and res.gone == 0, (case, what)
        with open_project(home) as p:
            assert_consistent(p)
            assert p.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert p.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    # the fuzzer reaches both outcomes (a corpus that only refuses proves little)
    assert outcomes["refused"] > CASES // 5 and outcomes["merged"] > CASES // 10, outcomes
