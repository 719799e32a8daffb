"""SQL for flags, flag_faces, dup_groups and identities.suspicion / flagged_count."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
    return kind + ":" + ",".join(map(str, sorted(face_ids)))


def replace_flags(
    project: Project,
    flags: Iterable[tuple[str, Sequence[int], int | None, float]],
    progress: Callable[[int, int], None] | None = None,
    total: int = 0,
) -> tuple[int, int, int]:
    """Make the flags table equal ``flags`` (kind, face ids, distance, score), keyed by
    fingerprint: existing flags keep their id (score/distance updated when changed), new ones
    are inserted, stale ones removed. Streams ``flags`` in batches (millions of near-duplicate
    pairs never sit in memory as rows); ``progress(done, total)`` per batch when ``total`` is
    given. Returns (inserted, updated, removed). One transaction.
    """
    at = now()
    # a bigger page cache while millions of index entries go in (default: 2 MB)
    cache = project.conn.execute("PRAGMA cache_size").fetchone()[0]
    project.conn.execute(f"PRAGMA cache_size = {-_CACHE_KB}")
    try:
        return _replace_flags(project, flags, progress, total, at)
    finally:
        project.conn.execute(f"PRAGMA cache_size = {int(cache)}")


def _replace_flags(
    project: Project,
    flags: Iterable[tuple[str, Sequence[int], int | None, float]],
    progress: Callable[[int, int], None] | None,
    total: int,
    at: str,
) -> tuple[int, int, int]:
    inserted = updated = 0
    with project.tx() as c:
        existing: dict[str, tuple[int, int | None, float]] = {
            fp: (fid, dist, score)
            for fid, fp, dist, score in c.execute(
                "SELECT id, fingerprint, distance, score FROM flags"
            )
        }
        seen: set[int] = set()
        next_id = (c.execute("SELECT coalesce(max(id), 0) FROM flags").fetchone()[0] or 0) + 1
        new_flags: list[tuple[object, ...]] = []
        new_faces: list[tuple[int, int]] = []
        changed: list[tuple[object, ...]] = []
        done = 0

        def flush() -> None:
            c.executemany(
                "INSERT INTO flags (id, kind, distance, score, fingerprint, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                new_flags,
            )
            c.executemany("INSERT INTO flag_faces (flag_id, face_id) VALUES (?, ?)", new_faces)
            c.executemany("UPDATE flags SET distance = ?, score = ? WHERE id = ?", changed)
            new_flags.clear()
            new_faces.clear()
            changed.clear()
            if progress and total:
                progress(min(done, total), total)

        for kind, faces, dist, score in flags:
            fp = fingerprint(kind, faces)
            old = existing.get(fp)
            if old is not None:
                if old[0] in seen:
                    continue
                seen.add(old[0])
                if old[1] != dist or old[2] != score:
                    changed.append((dist, score, old[0]))
                    updated += 1
            else:
                existing[fp] = (next_id, dist, score)
                seen.add(next_id)
                new_flags.append((next_id, kind, dist, score, fp, at))
                new_faces.extend([(next_id, f) for f in sorted(set(faces))])
                next_id += 1
                inserted += 1
            done += 1
            if len(new_flags) + len(changed) >= _BATCH:
                flush()
        flush()
        stale = [(fid,) for fid, _, _ in existing.values() if fid not in seen]
        c.executemany("DELETE FROM flags WHERE id = ?", stale)
        removed = len(stale)
    return inserted, updated, removed


_BATCH = 50_000
_CACHE_KB = 256 * 1024


def replace_dup_groups(project: Project, rows: Iterable[Sequence[int]]) -> None:
    """rows: (face_id, group_id, is_keeper) — tuples or an (n, 3) integer array."""
    if hasattr(rows, "tolist"):
        rows = rows.tolist()  # type: ignore[union-attr]
    with project.tx() as c:
        c.execute("DELETE FROM dup_groups")
        c.executemany(
            "INSERT INTO dup_groups (face_id, group_id, is_keeper) VALUES (?, ?, ?)",
            (tuple(r) for r in rows),
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
    rows = project.conn.execute(
        f"""SELECT fl.id, fl.kind, fl.distance, fl.score, f.id, i.key, s.path, s.format,
                  f.record, f.relpath
           FROM ({sql}) fl JOIN flag_faces ff ON ff.flag_id = fl.id
           JOIN faces f ON f.id = ff.face_id
           JOIN identities i ON i.id = f.identity_id JOIN sources s ON s.id = f.source_id
           ORDER BY fl.score DESC, fl.id, f.id""",
        args,
    )
    out: list[StoredFlag] = []
    names: dict[str, str] = {}
    for fid, k, dist, score, face_id, key, path, fmt, record, relpath in rows:
        if not out or out[-1].id != fid:
            out.append(StoredFlag(fid, k, dist, float(score), []))
        name = names.get(path)
        if name is None:
            name = names[path] = Path(path).name
        out[-1].faces.append(
            {"id": face_id, "identity": key, "origin": origin_of(name, fmt, record, relpath)}
        )
    return out


def dup_groups(project: Project) -> dict[int, list[tuple[int, bool]]]:
    out: dict[int, list[tuple[int, bool]]] = {}
    for face_id, gid, keeper in project.conn.execute(
        "SELECT face_id, group_id, is_keeper FROM dup_groups ORDER BY group_id, face_id"
    ):
        out.setdefault(gid, []).append((face_id, bool(keeper)))
    return out
