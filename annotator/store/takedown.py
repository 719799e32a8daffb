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


def unscanned_faces(project: Project) -> int:
    """Faces with no face_hashes row: a copy of a withdrawn person's photo among them cannot be
    found by its SHA-256 or duplicate group until a scan hashes them."""
    return int(
        project.conn.execute(
            "SELECT count(*) FROM faces f WHERE NOT EXISTS"
            " (SELECT 1 FROM face_hashes h WHERE h.face_id = f.id)"
        ).fetchone()[0]
    )


def find_copies(project: Project, ident: int) -> list[tuple[int, int, str]]:
    """Copies of identity ``ident``'s photos filed under other identities: (face id, current
    identity id, found by), by face id. ``found_by`` is ``'sha256'`` for a face byte-identical
    to one of the identity's faces (current or as imported), ``'near'`` for a face in the same
    verified duplicate group (``dup_groups``) as one of them. The search is closed: the groups
    and SHA-256 values of copies found are searched too, until nothing new turns up (with
    groups as the scan writes them one pass suffices; the loop covers groups left stale)."""
    c = project.conn
    c.execute("CREATE TEMP TABLE IF NOT EXISTS td_person (id INTEGER PRIMARY KEY)")
    c.execute(
        "CREATE TEMP TABLE IF NOT EXISTS td_copies (id INTEGER PRIMARY KEY, how TEXT NOT NULL)"
    )
    c.execute("DELETE FROM temp.td_person")
    c.execute("DELETE FROM temp.td_copies")
    c.execute(
        "INSERT INTO temp.td_person(id) SELECT id FROM faces"
        " WHERE identity_id = ?1 OR orig_identity_id = ?1",
        (ident,),
    )
    sha_of_person = (
        "INSERT OR IGNORE INTO temp.td_copies(id, how) SELECT h.face_id, ?1 FROM face_hashes h"
        " WHERE h.sha256 IN (SELECT sha256 FROM face_hashes WHERE sha256 IS NOT NULL"
        "   AND face_id IN (SELECT id FROM temp.td_person {more}))"
        " AND h.face_id NOT IN (SELECT id FROM temp.td_person)"
    )
    group_of_person = (
        "INSERT OR IGNORE INTO temp.td_copies(id, how) SELECT d.face_id, 'near' FROM dup_groups d"
        " WHERE d.group_id IN (SELECT group_id FROM dup_groups"
        "   WHERE face_id IN (SELECT id FROM temp.td_person UNION SELECT id FROM temp.td_copies))"
        " AND d.face_id NOT IN (SELECT id FROM temp.td_person)"
    )
    c.execute(sha_of_person.format(more=""), ("sha256",))
    while True:
        n = c.execute(group_of_person).rowcount
        n += c.execute(
            sha_of_person.format(more="UNION SELECT id FROM temp.td_copies"), ("near",)
        ).rowcount
        if n <= 0:
            break
    out = [
        (int(f), int(i), str(h))
        for f, i, h in c.execute(
            "SELECT t.id, f.identity_id, t.how FROM temp.td_copies t JOIN faces f ON f.id = t.id"
            " ORDER BY t.id"
        )
    ]
    c.execute("DELETE FROM temp.td_person")
    c.execute("DELETE FROM temp.td_copies")
    return out


def empty_identities(project: Project, identity_ids: Sequence[int]) -> int:
    """How many of these identities have no face left."""
    ids = list(identity_ids)
    n = 0
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        n += int(
            project.conn.execute(
                f"SELECT count(*) FROM identities i WHERE i.id IN ({','.join('?' * len(chunk))})"
                " AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.identity_id = i.id)",
                chunk,
            ).fetchone()[0]
        )
    return n


def _ids(c: sqlite3.Connection, sql: str, args: Sequence[object]) -> list[int]:
    return [int(r[0]) for r in c.execute(sql, args)]


def _in(c: sqlite3.Connection, sql: str, ids: Sequence[int], n: int = 900) -> None:
    """Run ``sql`` containing ``({ids})`` over chunks of ids."""
    for i in range(0, len(ids), n):
        chunk = list(ids[i : i + n])
        c.execute(sql.format(ids=",".join("?" * len(chunk))), chunk)


def remove_identity(
    project: Project,
    ident: int,
    key: str,
    digest: str,
    reviewer_id: int | None,
    reason: str | None,
    copies: Sequence[int] = (),
) -> Removed:
    """In one transaction: delete the identity, its faces (current or as imported), the faces
    ``copies`` (copies of its photos under other identities, :func:`find_copies`) and all that
    refers to them, and record the takedown row (``faces_removed`` counts both). Face counters
    of other identities are recounted; the identities whose flags changed are returned in
    ``affected`` (see :func:`set_identity_suspicion`). Duplicate flags that keep two or more
    faces get their kind, score and fingerprint recounted by the scan's rule (cross when they
    span identities, else exact when byte-identical, else near). Notes of other events and
    export log rows that contain the key or one of the identity's names are scrubbed.
    ``Removed.faces`` counts the identity's own faces only."""
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
        own = _ids(
            c, "SELECT id FROM faces WHERE identity_id = ?1 OR orig_identity_id = ?1", (ident,)
        )
        own_set = set(own)
        copy_ids = sorted({int(f) for f in copies} - own_set)
        faces = own + copy_ids
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
        # the identities the copies are filed under (now or as imported) lose faces
        others = sorted(
            set(others)
            | set(
                _ids(
                    c,
                    "SELECT identity_id FROM faces WHERE id IN (SELECT id FROM temp.td_faces)"
                    " UNION SELECT orig_identity_id FROM faces"
                    " WHERE id IN (SELECT id FROM temp.td_faces)",
                    (),
                )
            )
            - {ident}
        )

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
        _rekind_dup_flags(c, sorted(set(touched_flags) - set(dead_flags)))

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
        len(own),
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


_DUP_KINDS = ("exact_dup", "near_dup", "cross_identity_dup")


def _rekind_dup_flags(c: sqlite3.Connection, flag_ids: Sequence[int]) -> None:
    """Duplicate flags that lost faces but kept two or more: kind, score and fingerprint by the
    scan's rule (``annotator.core.dedup.flags._group_flags``): cross when the faces span identities
    (score 2 + similarity), else exact when all are byte-identical (1.0), else near
    (similarity). A flag whose new fingerprint another flag already has is dropped."""
    for fid in flag_ids:
        row = c.execute("SELECT kind, similarity FROM flags WHERE id = ?", (fid,)).fetchone()
        if row is None or row[0] not in _DUP_KINDS:
            continue
        sim = 1.0 if row[1] is None else float(row[1])
        n_ident, n_sha, n_nosha, members = c.execute(
            "SELECT count(DISTINCT f.identity_id), count(DISTINCT h.sha256),"
            " sum(h.sha256 IS NULL), group_concat(f.id)"
            " FROM flag_faces ff JOIN faces f ON f.id = ff.face_id"
            " LEFT JOIN face_hashes h ON h.face_id = f.id WHERE ff.flag_id = ?",
            (fid,),
        ).fetchone()
        if n_ident > 1:
            kind, score = "cross_identity_dup", 2.0 + sim
        elif n_sha == 1 and not n_nosha:
            kind, score = "exact_dup", 1.0
        else:
            kind, score = "near_dup", sim
        fp = kind + ":" + ",".join(map(str, sorted(int(x) for x in members.split(","))))
        clash = c.execute(
            "SELECT 1 FROM flags WHERE fingerprint = ? AND id != ?", (fp, fid)
        ).fetchone()
        if clash:
            c.execute("DELETE FROM flag_faces WHERE flag_id = ?", (fid,))
            c.execute("DELETE FROM flags WHERE id = ?", (fid,))
            continue
        c.execute(
            "UPDATE flags SET kind = ?, score = ?, fingerprint = ? WHERE id = ?",
            (kind, score, fp, fid),
        )


def compact(project: Project) -> bool:
    """VACUUM and truncate the WAL so deleted bytes leave the files. Returns True when the WAL
    could be truncated (False when another connection still holds it)."""
    c = project.conn
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.execute("VACUUM")
    busy = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not (busy and busy[0])
