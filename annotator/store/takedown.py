"""SQL for privacy takedowns: delete an identity and everything about it, keep a salted digest."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from annotator.store.db import Project, now

REDACTED = "(redacted: named a withdrawn identity)"


@dataclass(frozen=True, slots=True)
class Removed:
    faces: int
    flags: int
    events: int
    batches: int
    qa_items: int
    names: int
    notes_scrubbed: int = 0
    exports_redacted: int = 0
    face_ids: list[int] = field(default_factory=list)  # the deleted faces (for caches)
    affected: list[int] = field(default_factory=list)  # other identities to recount
    keeperless: list[int] = field(default_factory=list)  # duplicate groups that lost their keeper


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
    refers to them, and record the takedown row. Face counters of other identities are recounted;
    the identities whose flags changed are returned in ``affected`` (see
    :func:`set_identity_suspicion`). Notes of other events and export log rows that contain the
    key or one of the identity's names are scrubbed."""
    # Freed pages are zeroed as they are freed (VACUUM afterwards rewrites the file anyway).
    project.conn.execute("PRAGMA secure_delete = ON")
    with project.tx() as c:
        needles = [key] + [
            r[0]
            for r in c.execute(
                "SELECT DISTINCT name FROM identity_names WHERE identity_id = ? AND name != ''",
                (ident,),
            )
        ]
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
        # identities sharing a flag with a removed face: their flagged_count/suspicion change
        flagged_others = _ids(
            c,
            "SELECT DISTINCT f.identity_id FROM flag_faces ff JOIN faces f ON f.id = ff.face_id"
            " WHERE ff.flag_id IN (SELECT flag_id FROM flag_faces"
            "   WHERE face_id IN (SELECT id FROM temp.td_faces))"
            " AND ff.face_id NOT IN (SELECT id FROM temp.td_faces)",
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
        keeperless: list[int] = []
        for g in groups:
            if (
                c.execute("SELECT count(*) FROM dup_groups WHERE group_id = ?", (g,)).fetchone()[0]
                < 2
            ):
                c.execute("DELETE FROM dup_groups WHERE group_id = ?", (g,))
            elif not c.execute(
                "SELECT 1 FROM dup_groups WHERE group_id = ? AND is_keeper = 1", (g,)
            ).fetchone():
                keeperless.append(g)  # the keeper was removed: core picks the next one

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
        # ... and moves of other faces into or out of the identity (they name its id)
        batches += _ids(
            c,
            "SELECT DISTINCT batch_id FROM events WHERE kind = 'move' AND (value = ?1 OR prev_value = ?1)",
            (str(ident),),
        )
        events = c.execute(
            "DELETE FROM events WHERE face_id IN (SELECT id FROM temp.td_faces) OR identity_id = ?",
            (ident,),
        ).rowcount
        events += c.execute(
            "DELETE FROM events WHERE kind = 'move' AND (value = ?1 OR prev_value = ?1)",
            (str(ident),),
        ).rowcount
        notes_scrubbed = 0
        exports_redacted = 0
        for needle in needles:
            notes_scrubbed += c.execute(
                "UPDATE events SET note = NULL WHERE instr(note, ?) > 0", (needle,)
            ).rowcount
            exports_redacted += c.execute(
                "UPDATE exports SET out_path = ?2, params = '{}'"
                " WHERE instr(out_path, ?1) > 0 OR instr(params, ?1) > 0",
                (needle, REDACTED),
            ).rowcount
        dead = {
            b
            for b in set(batches)
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
        for needle in needles:
            c.execute(
                "DELETE FROM rejected_rows WHERE instr(reason, ?1) > 0 OR instr(origin, ?1) > 0",
                (needle,),
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
    affected = sorted((set(others) | set(flagged_others)) - {ident})
    return Removed(
        len(faces),
        len(dead_flags),
        events,
        len(dead_list),
        qa_items,
        names,
        notes_scrubbed,
        exports_redacted,
        faces,
        affected,
        keeperless,
    )


def compact(project: Project) -> bool:
    """VACUUM and truncate the WAL so deleted bytes leave the files. Returns True when the WAL
    could be truncated (False when another connection still holds it)."""
    c = project.conn
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.execute("VACUUM")
    busy = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not (busy and busy[0])
