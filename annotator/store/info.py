"""SQL for `annotator info` (project summary) and `annotator identities` (per-identity list)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from annotator.store.db import Project


def summary(project: Project) -> dict[str, object]:
    """Counts of everything in the project (cheap: counts and small GROUP BYs)."""
    c = project.conn

    def one(sql: str) -> int:
        return int(c.execute(sql).fetchone()[0])

    return {
        "sources": one("SELECT count(*) FROM sources"),
        "identities": one("SELECT count(*) FROM identities"),
        "faces": one("SELECT count(*) FROM faces"),
        "rejected": one("SELECT count(*) FROM rejected_rows"),
        "hashed": one("SELECT count(*) FROM face_hashes"),
        "corrupt": one("SELECT count(*) FROM face_hashes WHERE corrupt IS NOT NULL"),
        "flags": dict(c.execute("SELECT kind, count(*) FROM flags GROUP BY kind ORDER BY kind")),
        "labels": dict(
            c.execute(
                "SELECT label, count(*) FROM faces WHERE label IS NOT NULL GROUP BY label ORDER BY label"
            )
        ),
        "reviewed_identities": one("SELECT count(*) FROM identities WHERE reviewed = 1"),
    }


def sources(project: Project) -> list[dict[str, object]]:
    """One entry per source: path, format, completeness and its counts."""
    rows = project.conn.execute(
        """
        SELECT s.id, s.path, s.format, s.complete,
               (SELECT count(*) FROM faces f WHERE f.source_id = s.id),
               (SELECT count(*) FROM rejected_rows r WHERE r.source_id = s.id)
        FROM sources s ORDER BY s.id
        """
    )
    return [
        {"id": i, "path": p, "format": f, "complete": bool(done), "faces": n, "rejected": r}
        for i, p, f, done, n, r in rows
    ]


@dataclass
class IdentityInfo:
    id: int
    key: str
    face_count: int
    names: dict[str, str] = field(default_factory=dict)  # lang -> name


def identities(project: Project, limit: int | None = None) -> Iterator[IdentityInfo]:
    """Identities by key with their names; face counts come from identities.face_count."""
    c = project.conn
    sql = "SELECT id, key, face_count FROM identities ORDER BY key"
    params: tuple[int, ...] = ()
    if limit is not None:
        sql += " LIMIT ?"
        params = (limit,)
    batch: list[IdentityInfo] = []
    for row in c.execute(sql, params).fetchall():
        batch.append(IdentityInfo(row[0], row[1], row[2]))
        if len(batch) >= 500:
            yield from _with_names(project, batch)
            batch = []
    yield from _with_names(project, batch)


def _with_names(project: Project, batch: list[IdentityInfo]) -> list[IdentityInfo]:
    if not batch:
        return batch
    by_id = {b.id: b for b in batch}
    q = ",".join("?" * len(by_id))
    for iid, lang, name in project.conn.execute(
        f"SELECT identity_id, lang, name FROM identity_names WHERE identity_id IN ({q}) ORDER BY lang",
        list(by_id),
    ):
        by_id[iid].names[lang] = name
    return batch
