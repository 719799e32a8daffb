"""SQL to discard what one source imported (``annotator import ... --restart``).

Faces are deleted a chunk at a time, each chunk one short transaction, so a reviewer's write
never waits long. Their hashes, duplicate-group rows and flag memberships go by ON DELETE
CASCADE; a flag that named a deleted face is deleted whole (the next scan finds it again among
the faces that remain). Faces that carry review work are never deleted here: the caller checks
:func:`reviewed_faces` first.
"""

from __future__ import annotations

from annotator.store.db import Project


def reviewed_faces(project: Project, source_id: int) -> int:
    """Faces of the source that carry review work (a label, an event, a QA item)."""
    row = project.conn.execute(
        "SELECT count(*) FROM faces f WHERE f.source_id = ?1 AND (f.label IS NOT NULL"
        " OR EXISTS (SELECT 1 FROM events e WHERE e.face_id = f.id)"
        " OR EXISTS (SELECT 1 FROM qa_items q WHERE q.face_id = f.id))",
        (source_id,),
    ).fetchone()
    return int(row[0])


def _key(source_id: int) -> str:
    return f"discarding.{source_id}"


def mark_discarding(project: Project, source_id: int) -> None:
    """Before the first face goes: a kill from here on leaves the source marked, so a plain
    rerun of its import refuses instead of calling a source with missing faces complete (the
    mark goes with the source row, in the last transaction of the discard)."""
    project.set_meta(_key(source_id), "1")


def is_discarding(project: Project, source_id: int) -> bool:
    return project.meta(_key(source_id)) is not None


def discard_faces_chunk(project: Project, source_id: int, chunk: int) -> tuple[int, set[int]]:
    """Delete up to ``chunk`` faces of the source in one transaction; returns (faces deleted,
    identities they belonged to)."""
    with project.tx() as c:
        rows = c.execute(
            "SELECT id, identity_id, orig_identity_id FROM faces WHERE source_id = ? LIMIT ?",
            (source_id, chunk),
        ).fetchall()
        if not rows:
            return 0, set()
        ids = [(r[0],) for r in rows]
        touched = {int(r[1]) for r in rows} | {int(r[2]) for r in rows if r[2] is not None}
        c.executemany(
            "DELETE FROM flags WHERE id IN (SELECT flag_id FROM flag_faces WHERE face_id = ?)", ids
        )
        c.executemany("DELETE FROM faces WHERE id = ?", ids)
        c.executemany(
            "UPDATE identities SET face_count = (SELECT count(*) FROM faces WHERE identity_id = ?1)"
            " WHERE id = ?1",
            [(i,) for i in touched],
        )
        return len(rows), touched


def discard_source(project: Project, source_id: int, identities: set[int]) -> int:
    """Delete the source row (its import runs and rejected rows cascade) and the given
    identities that are left with nothing: no face, no name, no event. Returns how many
    identities were deleted."""
    gone = 0
    with project.tx() as c:
        for i in sorted(identities):
            gone += c.execute(
                "DELETE FROM identities WHERE id = ?1"
                " AND NOT EXISTS (SELECT 1 FROM faces WHERE identity_id = ?1 OR orig_identity_id = ?1)"
                " AND NOT EXISTS (SELECT 1 FROM identity_names WHERE identity_id = ?1)"
                " AND NOT EXISTS (SELECT 1 FROM events WHERE identity_id = ?1)",
                (i,),
            ).rowcount
        c.execute("DELETE FROM sources WHERE id = ?", (source_id,))
        c.execute("DELETE FROM meta WHERE key = ?", (_key(source_id),))
    return gone
