"""SQL for privacy takedowns: delete an identity and everything about it, keep a salted digest."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from annotator.store.db import Project, now


@dataclass(frozen=True, slots=True)
class Removed:
    faces: int
    flags: int
    events: int
    batches: int
    qa_items: int
    names: int


def identity_id(project: Project, key: str) -> int | None:
    row = project.conn.execute("SELECT id FROM identities WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else None


def is_taken_down(project: Project, digest: str) -> bool:
    return (
        project.conn.execute("SELECT 1 FROM takedowns WHERE key_digest = ?", (digest,)).fetchone()
        is not None
    )


def _ids(c: sqlite3.Connection, sql: str, args: Sequence[object]) -> list[int]:
    return [int(r[0]) for r in c.execute(sql, args)]


def _in(c: sqlite3.Connection, sql: str, ids: Sequence[int], n: int = 900) -> None:
    """Run ``sql`` containing ``({ids})`` over chunks of ids."""
    for i in range(0, len(ids), n):
        chunk = list(ids[i : i + n])
        c.execute(sql.format(ids=",".join("?" * len(chunk))), chunk)


def remove_identity(
    project: Project, ident: int, key: str, digest: str, reviewer_id: int | None, reason: str | None
) -> Removed:
    """In one transaction: delete the identity, its faces (current or as imported) and all that
    refers to them, and record the takedown row. Counters of other identities are recounted."""
    # Freed pages are zeroed as they are freed (VACUUM afterwards rewrites the file anyway).
    project.conn.execute("PRAGMA secure_delete = ON")
    with project.tx() as c:
        faces = _ids(
            c, "SELECT id FROM faces WHERE identity_id = ?1 OR orig_identity_id = ?1", (ident,)
        )
        others = sorted(
            set(
                _ids(
                    c,
                    "SELECT DISTINCT identity_id FROM faces WHERE orig_identity_id = ?1"
                    " AND identity_id != ?1",
                    (ident,),
                )
            )
            | set(
                _ids(
                    c,
                    "SELECT DISTINCT orig_identity_id FROM faces WHERE identity_id = ?1"
                    " AND orig_identity_id != ?1",
                    (ident,),
                )
            )
        )
        c.execute("CREATE TEMP TABLE IF NOT EXISTS td_faces (id INTEGER PRIMARY KEY)")
        c.execute("DELETE FROM temp.td_faces")
        c.executemany("INSERT INTO temp.td_faces(id) VALUES (?)", [(f,) for f in faces])

        # flags: those touching the faces; afterwards drop the ones left with < 2 faces
        touched_flags = _ids(
            c,
            "SELECT DISTINCT flag_id FROM flag_faces WHERE face_id IN (SELECT id FROM temp.td_faces)",
            (),
        )
        c.execute("DELETE FROM flag_faces WHERE face_id IN (SELECT id FROM temp.td_faces)")
        dead_flags = [
            f
            for f in touched_flags
            if c.execute("SELECT count(*) FROM flag_faces WHERE flag_id = ?", (f,)).fetchone()[0]
            < 2
        ]
        _in(c, "DELETE FROM flag_faces WHERE flag_id IN ({ids})", dead_flags)
        _in(c, "DELETE FROM flags WHERE id IN ({ids})", dead_flags)

        # duplicate groups: drop the faces, then groups left with a single member
        groups = _ids(
            c,
            "SELECT DISTINCT group_id FROM dup_groups WHERE face_id IN (SELECT id FROM temp.td_faces)",
            (),
        )
        c.execute("DELETE FROM dup_groups WHERE face_id IN (SELECT id FROM temp.td_faces)")
        for g in groups:
            if (
                c.execute("SELECT count(*) FROM dup_groups WHERE group_id = ?", (g,)).fetchone()[0]
                < 2
            ):
                c.execute("DELETE FROM dup_groups WHERE group_id = ?", (g,))

        c.execute("DELETE FROM face_hashes WHERE face_id IN (SELECT id FROM temp.td_faces)")
        qa_items = c.execute(
            "DELETE FROM qa_items WHERE face_id IN (SELECT id FROM temp.td_faces)"
        ).rowcount

        # history: events of the faces and of the identity; then batches left empty
        batches = _ids(
            c,
            "SELECT DISTINCT batch_id FROM events WHERE face_id IN (SELECT id FROM temp.td_faces)"
            " OR identity_id = ?",
            (ident,),
        )
        events = c.execute(
            "DELETE FROM events WHERE face_id IN (SELECT id FROM temp.td_faces) OR identity_id = ?",
            (ident,),
        ).rowcount
        dead = {
            b
            for b in batches
            if c.execute("SELECT 1 FROM events WHERE batch_id = ? LIMIT 1", (b,)).fetchone() is None
        }
        frontier = set(dead)
        while frontier:  # empty undo/redo batches that pointed at a removed batch go too
            q = ",".join("?" * len(frontier))
            more = {
                b
                for b in _ids(c, f"SELECT id FROM batches WHERE target IN ({q})", list(frontier))
                if b not in dead
                and c.execute("SELECT 1 FROM events WHERE batch_id = ? LIMIT 1", (b,)).fetchone()
                is None
            }
            dead |= more
            frontier = more
        dead_list = sorted(dead)
        _in(c, "UPDATE batches SET target = NULL WHERE target IN ({ids})", dead_list)
        _in(c, "DELETE FROM batches WHERE id IN ({ids})", dead_list)

        c.execute("DELETE FROM faces WHERE id IN (SELECT id FROM temp.td_faces)")
        c.execute("DELETE FROM temp.td_faces")
        names = c.execute("DELETE FROM identity_names WHERE identity_id = ?", (ident,)).rowcount
        c.execute(
            "DELETE FROM rejected_rows WHERE instr(reason, ?) > 0 OR instr(origin, ?) > 0",
            (key, key),
        )
        c.execute("DELETE FROM identities WHERE id = ?", (ident,))
        c.executemany(
            "UPDATE identities SET face_count = (SELECT count(*) FROM faces WHERE identity_id = ?1),"
            " labeled_count = (SELECT count(*) FROM faces WHERE identity_id = ?1 AND label IS NOT NULL)"
            " WHERE id = ?1",
            [(o,) for o in others],
        )
        c.execute(
            "INSERT INTO takedowns(at, reviewer_id, key_digest, faces_removed, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            (now(), reviewer_id, digest, len(faces), reason),
        )
    return Removed(len(faces), len(dead_flags), events, len(dead_list), qa_items, names)


def compact(project: Project) -> bool:
    """VACUUM and truncate the WAL so deleted bytes leave the files. Returns True when the WAL
    could be truncated (False when another connection still holds it)."""
    c = project.conn
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.execute("VACUUM")
    busy = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not (busy and busy[0])


def takedown_count(project: Project) -> int:
    return int(project.conn.execute("SELECT count(*) FROM takedowns").fetchone()[0])
