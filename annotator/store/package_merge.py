"""SQL of `annotator merge`: what a package (ATTACHed as ``pkg``) brings and what home holds,
read as plain rows, and the writes of one merge chunk. The decisions (which event comes home,
apply / agreed / conflict / gone, QA passes) are made in ``core/review/merge_rules.py``; the
functions here only read and write, each in a few statements.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from annotator.store.db import chunks

MERGE_BATCH_KINDS = "('do', 'undo', 'redo', 'adjudicate')"  # QA batches stay in the package
_EVENT_COLS = "id, batch_id, reviewer_id, at, kind, face_id, identity_id, value, prev_value, note"

# what identifies a package batch besides its id: two copies of one package both number their
# new batches from the same id on
_BATCH_KEY = (
    "pb.at || '|' || (SELECT name FROM pkg.reviewers r WHERE r.id = pb.reviewer_id)"
    " || '|' || pb.kind"
)


# -- what the package holds ----------------------------------------------------------------------


def forked_batches(c: sqlite3.Connection, package_id: str) -> int:
    """Batches of the package whose id was merged before for another batch (the package was
    copied and both copies were worked on)."""
    return int(
        c.execute(
            f"SELECT count(*) FROM main.merged_batches m JOIN pkg.batches pb"
            f" ON pb.id = m.package_batch_id WHERE m.package_id = ? AND m.batch_key != {_BATCH_KEY}",
            (package_id,),
        ).fetchone()[0]
    )


def merged_batch_ids(c: sqlite3.Connection, package_id: str) -> set[int]:
    return {
        int(r[0])
        for r in c.execute(
            "SELECT package_batch_id FROM main.merged_batches WHERE package_id = ?", (package_id,)
        )
    }


def package_scope(c: sqlite3.Connection) -> tuple[list[int], dict[int, str], dict[int, str]]:
    """The packed face ids, the package's identities (id -> key) and reviewers (id -> name)."""
    faces = [int(r[0]) for r in c.execute("SELECT id FROM pkg.faces ORDER BY id")]
    idents = {int(i): str(k) for i, k in c.execute("SELECT id, key FROM pkg.identities")}
    revs = {int(i): n for i, n in c.execute("SELECT id, name FROM pkg.reviewers")}
    return faces, idents, revs


def batch_ids(c: sqlite3.Connection) -> set[int]:
    return {int(r[0]) for r in c.execute("SELECT id FROM pkg.batches")}


def new_batch_rows(c: sqlite3.Connection, base_batch: int, package_id: str) -> list[tuple]:
    """(id, reviewer_id, at, kind, target, description) of every package batch after the pack
    that no earlier merge of this package brought."""
    return c.execute(
        "SELECT id, reviewer_id, at, kind, target, description FROM pkg.batches"
        " WHERE id > ? AND id NOT IN (SELECT package_batch_id FROM main.merged_batches"
        " WHERE package_id = ?) ORDER BY id",
        (base_batch, package_id),
    ).fetchall()


def new_event_rows(
    c: sqlite3.Connection, base_batch: int, base_event: int, package_id: str
) -> list[tuple]:
    """Every package event made after the pack (in a batch after it, or with a later id) and
    not in a batch an earlier merge of this package brought."""
    return c.execute(
        f"SELECT {_EVENT_COLS} FROM pkg.events WHERE (batch_id > ? OR id > ?)"
        " AND batch_id NOT IN (SELECT package_batch_id FROM main.merged_batches"
        " WHERE package_id = ?) ORDER BY id",
        (base_batch, base_event, package_id),
    ).fetchall()


# -- what home holds -----------------------------------------------------------------------------


def face_matches(c: sqlite3.Connection, pkg_face_ids: Sequence[int]) -> list[tuple]:
    """Per packed face: (package face id, home face id or None, home identity, home label,
    home label event, packed content sha256 or None, home sha256 or None, packed source
    fingerprint, home source fingerprint, packed offset, home offset, packed length, home
    length). Home faces are found by what they are: source path and format, line/record or
    relative path."""
    out: list[tuple] = []
    for part in chunks(list(pkg_face_ids)):
        q = ",".join("?" * len(part))
        out += c.execute(
            f"""
            SELECT m.pid, hf.id, hf.identity_id, hf.label, hf.label_event_id, m.p_sha,
                   hh.sha256, m.p_fp, m.h_fp, m.p_off, hf.offset, m.p_len, hf.length
            FROM (SELECT pf.id AS pid, coalesce(pp.sha256, ph.sha256) AS p_sha,
                         ps.fingerprint AS p_fp, hs.fingerprint AS h_fp, pf.offset AS p_off,
                         pf.length AS p_len,
                         CASE WHEN pf.relpath IS NULL
                              THEN (SELECT x.id FROM main.faces x
                                    WHERE x.source_id = hs.id AND x.record = pf.record)
                              ELSE (SELECT x.id FROM main.faces x
                                    WHERE x.source_id = hs.id AND x.relpath = pf.relpath)
                         END AS hid
                  FROM pkg.faces pf JOIN pkg.sources ps ON ps.id = pf.source_id
                  LEFT JOIN pkg.package_faces pp ON pp.face_id = pf.id
                  LEFT JOIN pkg.face_hashes ph ON ph.face_id = pf.id
                  LEFT JOIN main.sources hs ON hs.path = ps.path AND hs.format = ps.format
                  WHERE pf.id IN ({q})) m
            LEFT JOIN main.faces hf ON hf.id = m.hid
            LEFT JOIN main.face_hashes hh ON hh.face_id = hf.id
            ORDER BY m.pid
            """,
            part,
        ).fetchall()
    return out


def identities_by_key(c: sqlite3.Connection, keys: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    ks = list(dict.fromkeys(keys))
    for part in chunks(ks):
        q = ",".join("?" * len(part))
        out.update(c.execute(f"SELECT key, id FROM main.identities WHERE key IN ({q})", part))
    return out


def _changed(
    c: sqlite3.Connection,
    column: str,
    ids: Sequence[int],
    where: str,
    base_event: int,
    package_id: str,
) -> set[int]:
    """``column`` values among ``ids`` with an event matching ``where`` after ``base_event``
    that no merge of this package brought (event ids are never reused: m015)."""
    out: set[int] = set()
    for part in chunks(list(ids)):
        q = ",".join("?" * len(part))
        out.update(
            int(r[0])
            for r in c.execute(
                f"SELECT DISTINCT x.{column} FROM main.events x WHERE x.{column} IN ({q})"
                f" AND x.id > ? AND {where}"
                " AND NOT EXISTS (SELECT 1 FROM main.merged_batches m"
                "  WHERE m.home_batch_id = x.batch_id AND m.package_id = ?)",
                (*part, base_event, package_id),
            )
        )
    return out


def changed_since(
    c: sqlite3.Connection, face_ids: Sequence[int], base_event: int, package_id: str
) -> set[int]:
    """Home faces with a label/move event after the pack that no merge of this package brought."""
    return _changed(
        c,
        "face_id",
        face_ids,
        "x.kind IN ('label', 'adjudicate', 'move')",
        base_event,
        package_id,
    )


def reviews_changed_since(
    c: sqlite3.Connection, ident_ids: Sequence[int], base_event: int, package_id: str
) -> set[int]:
    """Home identities whose review mark changed after the pack (not by this package)."""
    return _changed(
        c,
        "identity_id",
        ident_ids,
        "x.face_id IS NULL AND x.kind = 'review'",
        base_event,
        package_id,
    )


def merged_home_batches(
    c: sqlite3.Connection, package_id: str, package_batch_ids: Sequence[int]
) -> dict[int, int]:
    """package batch id -> home batch id, of those of ``package_batch_ids`` that earlier
    merges of this package brought (the targets of an undo/redo)."""
    out: dict[int, int] = {}
    for part in chunks(list(package_batch_ids)):
        q = ",".join("?" * len(part))
        out.update(
            (int(p), int(h))
            for p, h in c.execute(
                "SELECT package_batch_id, home_batch_id FROM main.merged_batches"
                f" WHERE package_id = ? AND package_batch_id IN ({q})"
                " AND home_batch_id IS NOT NULL",
                (package_id, *part),
            )
        )
    return out


def event_reviewers(c: sqlite3.Connection, event_ids: Sequence[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in chunks(list(event_ids)):
        q = ",".join("?" * len(part))
        out.update(c.execute(f"SELECT id, reviewer_id FROM main.events WHERE id IN ({q})", part))
    return out


def ensure_reviewers(c: sqlite3.Connection, names: Iterable[str], at: str) -> dict[str, int]:
    """Home reviewer ids of ``names`` (checked by the caller), adding the new ones."""
    names = list(dict.fromkeys(names))
    c.executemany(
        "INSERT INTO main.reviewers(name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
        [(n, at) for n in names],
    )
    out: dict[str, int] = {}
    for part in chunks(names):
        q = ",".join("?" * len(part))
        out.update(c.execute(f"SELECT name, id FROM main.reviewers WHERE name IN ({q})", part))
    return out


def next_ids(c: sqlite3.Connection) -> tuple[int, int]:
    """The last batch and event ids ever given at home (never reused: m015's sequences)."""
    row = c.execute(
        "SELECT max(coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = 'batches'), 0),"
        " (SELECT coalesce(max(id), 0) FROM main.batches)),"
        " max(coalesce((SELECT seq FROM main.sqlite_sequence WHERE name = 'events'), 0),"
        " (SELECT coalesce(max(id), 0) FROM main.events))"
    ).fetchone()
    return int(row[0]), int(row[1])


def next_qa_position(c: sqlite3.Connection, pass_id: int) -> int:
    row = c.execute(
        "SELECT coalesce(max(position) + 1, 0) FROM main.qa_items WHERE pass_id = ?", (pass_id,)
    ).fetchone()
    return int(row[0])


# -- writes of one chunk (inside the caller's transaction) -------------------------------------


def insert_history(
    c: sqlite3.Connection, batches: Sequence[tuple], events: Sequence[tuple]
) -> None:
    """batches: (id, reviewer_id, at, kind, target, description); events: (id, batch_id,
    reviewer_id, at, kind, face_id, identity_id, value, prev_value, note)."""
    c.executemany(
        "INSERT INTO main.batches(id, reviewer_id, at, kind, target, description)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        batches,
    )
    c.executemany(
        f"INSERT INTO main.events({_EVENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", events
    )


def record_merged_batches(c: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    """(package id, package batch id, home batch id or None, batch key)."""
    c.executemany(
        "INSERT INTO main.merged_batches(package_id, package_batch_id, home_batch_id, batch_key)"
        " VALUES (?, ?, ?, ?)",
        rows,
    )


def apply_face_states(
    c: sqlite3.Connection, faces: Sequence[tuple], counters: Sequence[tuple]
) -> None:
    """faces: (identity id, label, label event id, face id); counters: (face count delta,
    labeled count delta, identity id)."""
    c.executemany(
        "UPDATE main.identities SET face_count = face_count + ?,"
        " labeled_count = labeled_count + ? WHERE id = ?",
        counters,
    )
    c.executemany(
        "UPDATE main.faces SET identity_id = ?, label = ?, label_event_id = ? WHERE id = ?", faces
    )


def apply_reviews(c: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    """(reviewed, reviewed_by, reviewed_at, identity id)."""
    c.executemany(
        "UPDATE main.identities SET reviewed = ?, reviewed_by = ?, reviewed_at = ? WHERE id = ?",
        rows,
    )


def new_merge_pass(
    c: sqlite3.Connection, reviewer_id: int, at: str, params: str, package_id: str
) -> int:
    """A QA pass holding a merge's conflicts (listed in merge_passes: not a QA sample)."""
    pid = int(
        c.execute(
            "INSERT INTO main.qa_passes(reviewer_id, created_at, seed, params) VALUES (?, ?, 0, ?)",
            (reviewer_id, at, params),
        ).lastrowid
        or 0
    )
    c.execute("INSERT INTO main.merge_passes(pass_id, package_id) VALUES (?, ?)", (pid, package_id))
    return pid


def insert_qa_items(c: sqlite3.Connection, rows: Sequence[tuple]) -> None:
    """(pass id, face id, position, orig label, orig reviewer, orig event, verdict, verdict
    event): a conflict queued for adjudication (a later merge's verdict replaces an earlier)."""
    c.executemany(
        "INSERT INTO main.qa_items(pass_id, face_id, position, orig_label, orig_reviewer_id,"
        " orig_event_id, verdict, verdict_event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(pass_id, face_id) DO UPDATE SET verdict = excluded.verdict,"
        " verdict_event_id = excluded.verdict_event_id, orig_label = excluded.orig_label,"
        " orig_reviewer_id = excluded.orig_reviewer_id, orig_event_id = excluded.orig_event_id",
        rows,
    )
