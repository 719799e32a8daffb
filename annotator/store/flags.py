"""SQL for flags, flag_faces, dup_groups and identities.suspicion / flagged_count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from annotator.core.models import origin_of
from annotator.store.db import Project, now


@dataclass(frozen=True, slots=True)
class StoredFlag:
    id: int
    kind: str
    distance: int | None
    score: float
    faces: list[dict[str, object]]  # {"id", "identity", "origin"}


def fingerprint(kind: str, face_ids: Sequence[int]) -> str:
    return kind + ":" + ",".join(str(i) for i in sorted(face_ids))


def replace_flags(
    project: Project, flags: Sequence[tuple[str, Sequence[int], int | None, float]]
) -> tuple[int, int, int]:
    """Make the flags table equal ``flags`` (kind, face ids, distance, score), keyed by
    fingerprint: existing flags are updated, new ones inserted, stale ones removed.

    Returns (inserted, updated, removed). One transaction.
    """
    wanted = {fingerprint(k, f): (k, f, d, s) for k, f, d, s in flags}
    at = now()
    with project.tx() as c:
        c.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _want (fp TEXT PRIMARY KEY, distance INTEGER, score REAL)"
        )
        c.execute("DELETE FROM _want")
        c.executemany(
            "INSERT INTO _want VALUES (?, ?, ?)", ((fp, v[2], v[3]) for fp, v in wanted.items())
        )
        removed = c.execute(
            "DELETE FROM flags WHERE fingerprint NOT IN (SELECT fp FROM _want)"
        ).rowcount
        updated = c.execute(
            "UPDATE flags SET distance = (SELECT distance FROM _want WHERE fp = flags.fingerprint), "
            "score = (SELECT score FROM _want WHERE fp = flags.fingerprint) "
            "WHERE fingerprint IN (SELECT fp FROM _want)"
        ).rowcount
        existing = {r[0] for r in c.execute("SELECT fingerprint FROM flags")}
        inserted = 0
        for fp, (kind, faces, dist, score) in wanted.items():
            if fp in existing:
                continue
            fid = c.execute(
                "INSERT INTO flags (kind, distance, score, fingerprint, created_at) VALUES (?, ?, ?, ?, ?)",
                (kind, dist, score, fp, at),
            ).lastrowid
            c.executemany(
                "INSERT OR IGNORE INTO flag_faces (flag_id, face_id) VALUES (?, ?)",
                ((fid, int(f)) for f in faces),
            )
            inserted += 1
        c.execute("DELETE FROM _want")
    return inserted, updated, removed


def replace_dup_groups(project: Project, rows: Sequence[tuple[int, int, int]]) -> None:
    """rows: (face_id, group_id, is_keeper)."""
    with project.tx() as c:
        c.execute("DELETE FROM dup_groups")
        c.executemany(
            "INSERT INTO dup_groups (face_id, group_id, is_keeper) VALUES (?, ?, ?)", rows
        )


def set_suspicion(project: Project, rows: Sequence[tuple[int, float, int]]) -> None:
    """rows: (identity_id, suspicion, flagged_count); every other identity gets 0."""
    with project.tx() as c:
        c.execute(
            "UPDATE identities SET suspicion = 0, flagged_count = 0 WHERE suspicion != 0 OR flagged_count != 0"
        )
        c.executemany(
            "UPDATE identities SET suspicion = ?, flagged_count = ? WHERE id = ?",
            ((s, n, i) for i, s, n in rows),
        )


def counts_by_kind(project: Project) -> dict[str, int]:
    return dict(
        project.conn.execute("SELECT kind, count(*) FROM flags GROUP BY kind ORDER BY kind")
    )


def list_flags(
    project: Project, kind: str | None = None, limit: int | None = None
) -> list[StoredFlag]:
    """Flags, best score first, with their faces (id, identity key, origin string)."""
    sql = "SELECT id, kind, distance, score FROM flags"
    args: list[object] = []
    if kind:
        sql += " WHERE kind = ?"
        args.append(kind)
    sql += " ORDER BY score DESC, id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    rows = project.conn.execute(sql, args).fetchall()
    out = []
    for fid, k, dist, score in rows:
        faces = []
        for face_id, key, path, fmt, record, relpath in project.conn.execute(
            """SELECT f.id, i.key, s.path, s.format, f.record, f.relpath
               FROM flag_faces ff JOIN faces f ON f.id = ff.face_id
               JOIN identities i ON i.id = f.identity_id JOIN sources s ON s.id = f.source_id
               WHERE ff.flag_id = ? ORDER BY f.id""",
            (fid,),
        ):
            faces.append(
                {
                    "id": face_id,
                    "identity": key,
                    "origin": origin_of(Path(path).name, fmt, record, relpath),
                }
            )
        out.append(StoredFlag(fid, k, dist, float(score), faces))
    return out


def dup_groups(project: Project) -> dict[int, list[tuple[int, bool]]]:
    out: dict[int, list[tuple[int, bool]]] = {}
    for face_id, gid, keeper in project.conn.execute(
        "SELECT face_id, group_id, is_keeper FROM dup_groups ORDER BY group_id, face_id"
    ):
        out.setdefault(gid, []).append((face_id, bool(keeper)))
    return out
