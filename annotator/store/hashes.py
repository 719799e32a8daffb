"""Face hashes (filled by `annotator scan`): the well-typed rows a scan wrote, loaded as
NumPy arrays for the flag step, the verification thumbnails, byte-identical groups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from annotator.store.db import Project, chunks, now

THUMB_BYTES = 448  # 16x16 gray + 8x8 RGB (annotator.core.dedup.verify.THUMB_BYTES)
# -- face hashes -----------------------------------------------------------------------------

# Columns loaded for flag computation; NULLs become sentinel values.
HASH_DTYPE = np.dtype(
    [
        ("face_id", np.int64),
        ("identity_id", np.int64),
        ("phash", np.int64),
        ("dhash", np.int64),
        ("width", np.int32),
        ("height", np.int32),
        ("grayscale", np.int8),
        ("sharpness", np.float64),
        ("corrupt", np.int8),
        ("rank", np.int64),  # search rank; 2**62 when unknown
    ]
)
NO_RANK = 2**62

# A face_hashes row whose values have the types and ranges a scan writes. A crafted or damaged
# project file can hold others (text in phash, a width beyond int32): such a row is not loaded
# and its face counts as unhashed, so the next scan hashes it again and replaces the row.
_WELL_TYPED = """(typeof(h.phash) IN ('integer', 'null') AND typeof(h.dhash) IN ('integer', 'null')
    AND typeof(h.sha256) IN ('blob', 'null')
    AND (h.width IS NULL OR (typeof(h.width) = 'integer' AND h.width BETWEEN 0 AND 2147483647))
    AND (h.height IS NULL OR (typeof(h.height) = 'integer' AND h.height BETWEEN 0 AND 2147483647))
    AND (h.grayscale IS NULL OR h.grayscale IN (0, 1))
    AND typeof(h.sharpness) IN ('real', 'integer', 'null')
    AND (h.thumb IS NULL OR (typeof(h.thumb) = 'blob' AND length(h.thumb) = 448)))"""
# A decodable face scanned before thumbnails existed (migration m006) is hashed again.
_NEEDS_THUMB = "(h.thumb IS NULL AND h.corrupt IS NULL)"


def unhashed_face_ids(project: Project) -> np.ndarray:
    """Ids of faces that have no (well-typed) face_hashes row yet (ascending)."""
    cur = project.conn.execute(
        "SELECT f.id FROM faces f LEFT JOIN face_hashes h ON h.face_id = f.id "
        f"WHERE h.face_id IS NULL OR NOT {_WELL_TYPED} OR {_NEEDS_THUMB} ORDER BY f.id"
    )
    return np.fromiter((r[0] for r in cur), dtype=np.int64)


def face_ids_of_source(project: Project, source_id: int) -> set[int]:
    return {
        r[0] for r in project.conn.execute("SELECT id FROM faces WHERE source_id = ?", (source_id,))
    }


def insert_hashes(project: Project, rows: Iterable[Sequence[object]]) -> int:
    """rows: (face_id, sha256, phash, dhash, width, height, grayscale, sharpness, corrupt[,
    thumb]) — a row without its 16x16 thumbnail stores NULL (that face is never verified as
    a near copy)."""
    with project.tx() as c:
        at = now()
        cur = c.executemany(
            "INSERT OR REPLACE INTO face_hashes (face_id, sha256, phash, dhash, width, height, "
            "grayscale, sharpness, corrupt, thumb, scanned_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((*r, None, at) if len(r) == 9 else (*r, at) for r in rows),
        )
        return cur.rowcount


def load_hashes(project: Project) -> np.ndarray:
    """All scanned faces as a structured array (HASH_DTYPE), ordered by face id."""
    n = int(project.conn.execute("SELECT count(*) FROM face_hashes").fetchone()[0])
    cur = project.conn.execute(
        f"""SELECT h.face_id, f.identity_id, coalesce(h.phash, 0), coalesce(h.dhash, 0),
                  coalesce(h.width, 0),
                  coalesce(h.height, 0), coalesce(h.grayscale, 0), coalesce(h.sharpness, -1),
                  h.corrupt IS NOT NULL,
                  CASE typeof(f.rank) WHEN 'integer' THEN f.rank ELSE {NO_RANK} END
           FROM face_hashes h JOIN faces f ON f.id = h.face_id
           WHERE {_WELL_TYPED} ORDER BY h.face_id"""
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


def load_thumbs(project: Project, face_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(thumbnails, present): the (len(face_ids), THUMB_BYTES) uint8 verification thumbnails of these
    (distinct) faces in their order, and which faces have one (a face scanned before
    thumbnails existed has none until it is hashed again).

    Read by primary key in sorted ``IN`` lists of 500 ids: the lookups walk the table's B-tree
    in order, so the cost follows the ids asked for, not the table (a join through a temporary
    table of the ids let SQLite scan all of face_hashes for each call: 10M rows per slice of
    the pixel test)."""
    ids = np.asarray(face_ids, dtype=np.int64)
    out = np.zeros((len(ids), THUMB_BYTES), dtype=np.uint8)
    present = np.zeros(len(ids), dtype=bool)
    if not len(ids):
        return out, present
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    c = project.conn
    for chunk in chunks(sorted_ids.tolist()):
        rows = c.execute(
            f"SELECT face_id, thumb FROM face_hashes WHERE face_id IN ({','.join('?' * len(chunk))}) "
            "AND length(thumb) = ?",
            (*chunk, THUMB_BYTES),
        ).fetchall()
        if not rows:
            continue
        got = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        buf = np.frombuffer(b"".join(r[1] for r in rows), np.uint8).reshape(len(rows), -1)
        at = order[np.searchsorted(sorted_ids, got)]
        out[at] = buf
        present[at] = True
    return out, present


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
