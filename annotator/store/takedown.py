"""SQL for privacy takedowns: delete an identity and everything about it, keep a salted digest."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from annotator.store.db import Project

REDACTED = "(redacted: named a withdrawn identity)"


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


# -- the cascade, in steps: each step a query or a write; core/review/takedown_rules decides ----


def person_facts(project: Project, ident: int) -> tuple[list[str], list[int]]:
    """The identity's distinct non-empty names and its faces (current or as imported)."""
    c = project.conn
    names = [
        str(r[0])
        for r in c.execute(
            "SELECT DISTINCT name FROM identity_names WHERE identity_id = ? AND name != ''",
            (ident,),
        )
    ]
    own = _ids(c, "SELECT id FROM faces WHERE identity_id = ?1 OR orig_identity_id = ?1", (ident,))
    return names, own


def mark_faces(project: Project, ident: int, faces: Sequence[int]) -> list[int]:
    """Put the faces to delete in ``temp.td_faces``; return the other identities that lose a
    face or exchanged one with ``ident`` (their counters are recounted)."""
    c = project.conn
    c.execute("CREATE TEMP TABLE IF NOT EXISTS td_faces (id INTEGER PRIMARY KEY)")
    c.execute("DELETE FROM temp.td_faces")
    c.executemany("INSERT OR IGNORE INTO temp.td_faces(id) VALUES (?)", [(f,) for f in faces])
    others = _ids(
        c,
        "SELECT identity_id FROM faces WHERE orig_identity_id = ?1"
        " UNION SELECT orig_identity_id FROM faces WHERE identity_id = ?1"
        " UNION SELECT identity_id FROM faces WHERE id IN (SELECT id FROM temp.td_faces)"
        " UNION SELECT orig_identity_id FROM faces WHERE id IN (SELECT id FROM temp.td_faces)",
        (ident,),
    )
    return sorted(set(others) - {ident})


def flag_facts(project: Project) -> tuple[dict[int, int], list[int]]:
    """For the flags touching the marked faces: flag id -> faces it keeps without them; and the
    identities of the faces that share such a flag and stay (their suspicion changes)."""
    c = project.conn
    left = {
        int(f): int(n)
        for f, n in c.execute(
            "SELECT ff.flag_id, sum(ff.face_id NOT IN (SELECT id FROM temp.td_faces))"
            " FROM flag_faces ff WHERE ff.flag_id IN (SELECT flag_id FROM flag_faces"
            "   WHERE face_id IN (SELECT id FROM temp.td_faces)) GROUP BY ff.flag_id"
        )
    }
    others = _ids(
        c,
        "SELECT DISTINCT f.identity_id FROM flag_faces ff JOIN faces f ON f.id = ff.face_id"
        " WHERE ff.flag_id IN (SELECT flag_id FROM flag_faces"
        "   WHERE face_id IN (SELECT id FROM temp.td_faces))"
        " AND ff.face_id NOT IN (SELECT id FROM temp.td_faces)",
        (),
    )
    return left, others


def delete_flags(project: Project, dead: Sequence[int]) -> None:
    """The marked faces leave every flag; the ``dead`` flags go."""
    c = project.conn
    c.execute("DELETE FROM flag_faces WHERE face_id IN (SELECT id FROM temp.td_faces)")
    _in(c, "DELETE FROM flag_faces WHERE flag_id IN ({ids})", dead)
    _in(c, "DELETE FROM flags WHERE id IN ({ids})", dead)


def dup_flag_rows(
    project: Project, flag_ids: Sequence[int]
) -> list[tuple[int, str, float | None, int, int, int, list[int]]]:
    """(flag id, kind, similarity, identities, distinct SHA-256 values, unhashed faces,
    faces) of some flags, as they are now."""
    out = []
    for fid in flag_ids:
        row = project.conn.execute(
            "SELECT fl.kind, fl.similarity, count(DISTINCT f.identity_id),"
            " count(DISTINCT h.sha256), sum(h.sha256 IS NULL), group_concat(f.id)"
            " FROM flags fl JOIN flag_faces ff ON ff.flag_id = fl.id JOIN faces f ON f.id = ff.face_id"
            " LEFT JOIN face_hashes h ON h.face_id = f.id WHERE fl.id = ?",
            (fid,),
        ).fetchone()
        if row is None or row[0] is None:
            continue
        members = [int(x) for x in str(row[5]).split(",")]
        out.append((fid, str(row[0]), row[1], int(row[2]), int(row[3]), int(row[4] or 0), members))
    return out


def set_flag_kind(project: Project, fid: int, kind: str, score: float, fp: str) -> bool:
    """Give a flag its kind, score and fingerprint; a flag whose new fingerprint another flag
    already has is dropped instead (False)."""
    c = project.conn
    if c.execute("SELECT 1 FROM flags WHERE fingerprint = ? AND id != ?", (fp, fid)).fetchone():
        c.execute("DELETE FROM flag_faces WHERE flag_id = ?", (fid,))
        c.execute("DELETE FROM flags WHERE id = ?", (fid,))
        return False
    c.execute(
        "UPDATE flags SET kind = ?, score = ?, fingerprint = ? WHERE id = ?",
        (kind, score, fp, fid),
    )
    return True


def group_facts(project: Project) -> dict[int, tuple[int, bool]]:
    """Duplicate groups holding a marked face: group id -> (members left without the marked
    faces, whether its keeper is among them)."""
    return {
        int(g): (int(n), bool(k))
        for g, n, k in project.conn.execute(
            "SELECT group_id, sum(face_id NOT IN (SELECT id FROM temp.td_faces)),"
            " max(is_keeper = 1 AND face_id NOT IN (SELECT id FROM temp.td_faces))"
            " FROM dup_groups WHERE group_id IN (SELECT group_id FROM dup_groups"
            "   WHERE face_id IN (SELECT id FROM temp.td_faces)) GROUP BY group_id"
        )
    }


def delete_group_rows(project: Project, dissolved: Sequence[int]) -> None:
    c = project.conn
    c.execute("DELETE FROM dup_groups WHERE face_id IN (SELECT id FROM temp.td_faces)")
    _in(c, "DELETE FROM dup_groups WHERE group_id IN ({ids})", dissolved)


def delete_hashes_and_qa(project: Project) -> int:
    """The marked faces' hashes and QA items; returns the QA items deleted."""
    c = project.conn
    c.execute("DELETE FROM face_hashes WHERE face_id IN (SELECT id FROM temp.td_faces)")
    return c.execute(
        "DELETE FROM qa_items WHERE face_id IN (SELECT id FROM temp.td_faces)"
    ).rowcount


def delete_history(project: Project, ident: int) -> tuple[list[int], int]:
    """Events of the marked faces, of the identity, and moves into or out of it (they name its
    id); returns the batches they were in and the events deleted."""
    c = project.conn
    where = (
        "face_id IN (SELECT id FROM temp.td_faces) OR identity_id = ?1"
        " OR (kind = 'move' AND (value = ?2 OR prev_value = ?2))"
    )
    batches = _ids(c, f"SELECT DISTINCT batch_id FROM events WHERE {where}", (ident, str(ident)))
    n = c.execute(f"DELETE FROM events WHERE {where}", (ident, str(ident))).rowcount
    return batches, n


def batch_links(project: Project, touched: Sequence[int]) -> tuple[dict[int, list[int]], set[int]]:
    """Undo/redo links (target -> batches that target it) and which of the touched batches and
    linked batches still have an event."""
    c = project.conn
    targets: dict[int, list[int]] = {}
    for b, t in c.execute("SELECT id, target FROM batches WHERE target IS NOT NULL"):
        targets.setdefault(int(t), []).append(int(b))
    cand = sorted(set(touched) | {b for bs in targets.values() for b in bs})
    alive: set[int] = set()
    for i in range(0, len(cand), 900):
        chunk = cand[i : i + 900]
        alive.update(
            _ids(
                c,
                f"SELECT DISTINCT batch_id FROM events WHERE batch_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
        )
    return targets, alive


def delete_batches(project: Project, dead: Sequence[int]) -> None:
    c = project.conn
    _in(c, "UPDATE batches SET target = NULL WHERE target IN ({ids})", dead)
    _in(c, "DELETE FROM batches WHERE id IN ({ids})", dead)


def scrub(project: Project, needles: Sequence[str]) -> tuple[int, int]:
    """Notes of events, export log rows and rejected rows that contain a needle: notes cleared,
    export rows redacted, rejected rows deleted. Returns (notes, exports)."""
    c = project.conn
    notes = exports = 0
    for needle in needles:
        notes += c.execute(
            "UPDATE events SET note = NULL WHERE instr(note, ?) > 0", (needle,)
        ).rowcount
        exports += c.execute(
            "UPDATE exports SET out_path = ?2, params = '{}'"
            " WHERE instr(out_path, ?1) > 0 OR instr(params, ?1) > 0",
            (needle, REDACTED),
        ).rowcount
        c.execute(
            "DELETE FROM rejected_rows WHERE instr(reason, ?1) > 0 OR instr(origin, ?1) > 0",
            (needle,),
        )
    return notes, exports


def delete_person(project: Project, ident: int, others: Sequence[int]) -> int:
    """The marked faces, the identity's names and the identity; the others' face counters
    recounted. Returns the names deleted."""
    c = project.conn
    c.execute("DELETE FROM faces WHERE id IN (SELECT id FROM temp.td_faces)")
    c.execute("DELETE FROM temp.td_faces")
    names = c.execute("DELETE FROM identity_names WHERE identity_id = ?", (ident,)).rowcount
    c.execute("DELETE FROM identities WHERE id = ?", (ident,))
    c.executemany(
        "UPDATE identities SET face_count = (SELECT count(*) FROM faces WHERE identity_id = ?1),"
        " labeled_count = (SELECT count(*) FROM faces WHERE identity_id = ?1 AND label IS NOT NULL)"
        " WHERE id = ?1",
        [(o,) for o in others],
    )
    return names


def secure_delete(project: Project) -> None:
    project.conn.execute("PRAGMA secure_delete = ON")


def compact(project: Project) -> bool:
    """VACUUM and truncate the WAL so deleted bytes leave the files. Returns True when the WAL
    could be truncated (False when another connection still holds it)."""
    c = project.conn
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.execute("VACUUM")
    busy = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not (busy and busy[0])
