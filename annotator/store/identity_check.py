"""SQL for what the face embeddings say about identities (annotator/core/identity/identity_check.py):
``suspect_identity`` flags, the identity each such face looks more like (``face_looks_like``)
and "probably the same person" pairs of identities (``same_person``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from annotator.store.db import Project, now
from annotator.store.flags import WRITE_BATCH, fingerprint


def model_in_use(project: Project) -> str | None:
    """The embedding model with the most stored vectors (None: no embeddings)."""
    row = project.conn.execute(
        "SELECT model FROM face_embeddings WHERE status = 'ok' GROUP BY model "
        "ORDER BY count(*) DESC, model LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def scanned_faces(project: Project) -> list[tuple[int, int]]:
    """(face id, identity id) of every scanned face (the denominator of suspicion)."""
    return [
        (int(f), int(i))
        for f, i in project.conn.execute(
            "SELECT f.id, f.identity_id FROM face_hashes h JOIN faces f ON f.id = h.face_id"
        )
    ]


def replace_kind_flags(
    project: Project, kind: str, rows: Sequence[tuple[int, float]]
) -> tuple[int, int, int]:
    """Make the one-face flags of ``kind`` equal ``rows`` (face id, score), keyed by fingerprint
    like every flag (a flag that stays keeps its id); short transactions of WRITE_BATCH rows.
    Returns (inserted, updated, removed)."""
    c = project.conn
    old = {
        fp: (int(i), float(s))
        for i, fp, s in c.execute(
            "SELECT id, fingerprint, score FROM flags WHERE kind = ?", (kind,)
        )
    }
    want = {fingerprint(kind, [f]): (int(f), float(s)) for f, s in rows}
    gone = [old[fp][0] for fp in old.keys() - want.keys()]
    upd = [(s, old[fp][0]) for fp, (_f, s) in want.items() if fp in old and old[fp][1] != s]
    new = [(fp, f, s) for fp, (f, s) in want.items() if fp not in old]
    at = now()
    for s0 in range(0, len(gone), WRITE_BATCH):
        with project.tx():
            c.executemany(
                "DELETE FROM flags WHERE id = ?", [(x,) for x in gone[s0 : s0 + WRITE_BATCH]]
            )
    for s0 in range(0, len(upd), WRITE_BATCH):
        with project.tx():
            c.executemany("UPDATE flags SET score = ? WHERE id = ?", upd[s0 : s0 + WRITE_BATCH])
    for s0 in range(0, len(new), WRITE_BATCH):
        with project.tx():
            for fp, f, s in new[s0 : s0 + WRITE_BATCH]:
                cur = c.execute(
                    "INSERT INTO flags (kind, distance, score, similarity, fingerprint, created_at)"
                    " VALUES (?, NULL, ?, NULL, ?, ?)",
                    (kind, s, fp, at),
                )
                c.execute(
                    "INSERT INTO flag_faces (flag_id, face_id) VALUES (?, ?)", (cur.lastrowid, f)
                )
    return len(new), len(upd), len(gone)


def _replace_all(project: Project, table: str, cols: str, rows: Sequence[tuple]) -> None:
    c = project.conn
    with project.tx():
        c.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names of this module
    marks = ",".join("?" * len(cols.split(",")))
    for s0 in range(0, len(rows), WRITE_BATCH):
        with project.tx():
            c.executemany(
                f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})",
                rows[s0 : s0 + WRITE_BATCH],
            )


def replace_looks_like(project: Project, rows: Sequence[tuple[int, int, float]]) -> None:
    """Make face_looks_like equal ``rows`` (face id, identity id it looks like, margin)."""
    _replace_all(project, "face_looks_like", "face_id, identity_id, margin", list(rows))


def replace_same_person(project: Project, rows: Sequence[tuple[int, int, float]]) -> None:
    """Make same_person equal ``rows`` (identity a, identity b, centre distance), a < b."""
    _replace_all(
        project, "same_person", "a, b, distance", [(min(a, b), max(a, b), d) for a, b, d in rows]
    )


def looks_like_by_face(project: Project, face_ids: Sequence[int]) -> dict[int, tuple[str, float]]:
    """face id -> (key of the identity it looks more like, margin), for flagged faces."""
    out: dict[int, tuple[str, float]] = {}
    ids = list(face_ids)
    for s0 in range(0, len(ids), 900):
        chunk = ids[s0 : s0 + 900]
        for f, key, m in project.conn.execute(
            "SELECT l.face_id, i.key, l.margin FROM face_looks_like l "
            "JOIN identities i ON i.id = l.identity_id "
            f"WHERE l.face_id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            out[int(f)] = (str(key), float(m))
    return out


def looks_like(project: Project, face_id: int) -> tuple[int, str, float] | None:
    """(identity id, key, margin) of the identity a suspect face looks more like, or None."""
    row = project.conn.execute(
        "SELECT l.identity_id, i.key, l.margin FROM face_looks_like l "
        "JOIN identities i ON i.id = l.identity_id WHERE l.face_id = ?",
        (face_id,),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), float(row[2]))


def sample_faces(project: Project, identity_id: int, limit: int = 6) -> list[int]:
    """A few faces of an identity to show beside a suspect face: decodable ones not flagged
    suspect themselves, reviewed-correct first, then by search rank and id."""
    return [
        int(r[0])
        for r in project.conn.execute(
            "SELECT f.id FROM faces f LEFT JOIN face_hashes h ON h.face_id = f.id "
            "WHERE f.identity_id = ? AND h.corrupt IS NULL "
            "AND f.id NOT IN (SELECT face_id FROM face_looks_like) "
            "ORDER BY f.label IS NOT 'correct', f.rank IS NULL, f.rank, f.id LIMIT ?",
            (identity_id, limit),
        )
    ]


@dataclass(frozen=True, slots=True)
class SamePerson:
    a_id: int
    a: str  # identity key
    b_id: int
    b: str
    distance: float
    a_faces: int
    b_faces: int


def same_person(project: Project, limit: int | None = None) -> list[SamePerson]:
    """ "Probably the same person" pairs, closest centres first."""
    sql = (
        "SELECT s.a, ia.key, s.b, ib.key, s.distance, ia.face_count, ib.face_count "
        "FROM same_person s JOIN identities ia ON ia.id = s.a JOIN identities ib ON ib.id = s.b "
        "ORDER BY s.distance, ia.key, ib.key"
    )
    args: list[int] = []
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [
        SamePerson(int(a), str(ka), int(b), str(kb), float(d), int(na or 0), int(nb or 0))
        for a, ka, b, kb, d, na, nb in project.conn.execute(sql, args)
    ]


def same_person_of(project: Project, identity_id: int) -> list[tuple[int, str, float]]:
    """(identity id, key, centre distance) of the identities probably the same person as one."""
    return [
        (int(o), str(k), float(d))
        for o, k, d in project.conn.execute(
            "SELECT s.o, i.key, s.distance FROM (SELECT b AS o, distance FROM same_person "
            "WHERE a = ?1 UNION ALL SELECT a, distance FROM same_person WHERE b = ?1) s "
            "JOIN identities i ON i.id = s.o ORDER BY s.distance",
            (identity_id,),
        )
    ]
