"""SQL for face_hashes (filled by `annotator scan`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from annotator.store.db import Project, now

# Columns loaded for flag computation; NULLs become sentinel values.
HASH_DTYPE = np.dtype(
    [
        ("face_id", np.int64),
        ("identity_id", np.int64),
        ("phash", np.int64),
        ("width", np.int32),
        ("height", np.int32),
        ("grayscale", np.int8),
        ("sharpness", np.float64),
        ("corrupt", np.int8),
        ("rank", np.int64),  # search rank; 2**62 when unknown
    ]
)
NO_RANK = 2**62


def unhashed_face_ids(project: Project) -> np.ndarray:
    """Ids of faces that have no face_hashes row yet (ascending)."""
    cur = project.conn.execute(
        "SELECT f.id FROM faces f LEFT JOIN face_hashes h ON h.face_id = f.id "
        "WHERE h.face_id IS NULL ORDER BY f.id"
    )
    return np.fromiter((r[0] for r in cur), dtype=np.int64)


def source_of_faces(project: Project) -> dict[int, int]:
    """face count per source id (for source checks)."""
    return dict(project.conn.execute("SELECT source_id, count(*) FROM faces GROUP BY source_id"))


def face_ids_of_source(project: Project, source_id: int) -> set[int]:
    return {
        r[0] for r in project.conn.execute("SELECT id FROM faces WHERE source_id = ?", (source_id,))
    }


def insert_hashes(project: Project, rows: Iterable[Sequence[object]]) -> int:
    """rows: (face_id, sha256, phash, dhash, width, height, grayscale, sharpness, corrupt)."""
    with project.tx() as c:
        at = now()
        cur = c.executemany(
            "INSERT OR REPLACE INTO face_hashes (face_id, sha256, phash, dhash, width, height, "
            "grayscale, sharpness, corrupt, scanned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tuple(r) + (at,) for r in rows),
        )
        return cur.rowcount


def load_hashes(project: Project) -> np.ndarray:
    """All scanned faces as a structured array (HASH_DTYPE), ordered by face id."""
    n = int(project.conn.execute("SELECT count(*) FROM face_hashes").fetchone()[0])
    cur = project.conn.execute(
        f"""SELECT h.face_id, f.identity_id, coalesce(h.phash, 0), coalesce(h.width, 0),
                  coalesce(h.height, 0), coalesce(h.grayscale, 0), coalesce(h.sharpness, -1),
                  h.corrupt IS NOT NULL, coalesce(f.rank, {NO_RANK})
           FROM face_hashes h JOIN faces f ON f.id = h.face_id ORDER BY h.face_id"""
    )
    # filled in place, slice by slice (no list of chunks concatenated into a second copy)
    out = np.empty(n, dtype=HASH_DTYPE)
    k = 0
    while k < n and (rows := cur.fetchmany(min(200_000, n - k))):
        out[k : k + len(rows)] = np.array(rows, dtype=HASH_DTYPE)
        k += len(rows)
    rest = cur.fetchall()  # rows added since the count (another writer): kept, not dropped
    if rest:
        return np.concatenate([out[:k], np.array(rest, dtype=HASH_DTYPE)])
    return out[:k]


def sha256_groups(project: Project) -> list[list[int]]:
    """Face ids sharing identical bytes (groups of >= 2), each sorted."""
    out = []
    for (ids,) in project.conn.execute(
        "SELECT group_concat(face_id) FROM face_hashes WHERE sha256 IS NOT NULL "
        "GROUP BY sha256 HAVING count(*) > 1"
    ):
        out.append(sorted(int(x) for x in ids.split(",")))
    return out


def sha256_group_arrays(project: Project) -> tuple[np.ndarray, np.ndarray]:
    """Byte-identical faces as arrays: (face ids, group index), groups of >= 2, each group's
    ids ascending — the array form of :func:`sha256_groups` (no Python list per group)."""
    cur = project.conn.execute(
        "SELECT face_id, sha256 FROM face_hashes WHERE sha256 IN ("
        "  SELECT sha256 FROM face_hashes WHERE sha256 IS NOT NULL"
        "  GROUP BY sha256 HAVING count(*) > 1) ORDER BY sha256, face_id"
    )
    faces: list[int] = []
    group: list[int] = []
    last = None
    g = -1
    for fid, sha in cur:
        if sha != last:
            g += 1
            last = sha
        faces.append(fid)
        group.append(g)
    return np.array(faces, dtype=np.int64), np.array(group, dtype=np.int64)


def face_count(project: Project) -> int:
    return int(project.conn.execute("SELECT count(*) FROM faces").fetchone()[0])


def hash_of(project: Project, face_id: int) -> tuple[int | None, int | None, str | None] | None:
    row = project.conn.execute(
        "SELECT phash, dhash, corrupt FROM face_hashes WHERE face_id = ?", (face_id,)
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def counts(project: Project) -> tuple[int, int]:
    """(hashed, corrupt)."""
    row = project.conn.execute(
        "SELECT count(*), coalesce(sum(corrupt IS NOT NULL), 0) FROM face_hashes"
    ).fetchone()
    return int(row[0]), int(row[1])
