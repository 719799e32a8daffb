"""Face hashes (filled by `annotator scan`), flags and their faces, duplicate groups and the
identities' suspicion figures: the tables the scan writes and a takedown recounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np

from annotator.model import ProgressFn, origin_of
from annotator.store.db import Project, chunks, now

THUMB_BYTES = 448  # 16x16 gray + 8x8 RGB (annotator.core.dedup.verify.THUMB_BYTES)
_DUP_KINDS_SQL = "'exact_dup', 'near_dup', 'cross_identity_dup'"

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
        ("crop1", np.int64),  # pHashes of centred crops (core/dedup/crops.py); 0 when none
        ("crop2", np.int64),
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
    AND (h.thumb IS NULL OR (typeof(h.thumb) = 'blob' AND length(h.thumb) = 448))
    AND typeof(h.crop_phash1) IN ('integer', 'null') AND typeof(h.crop_phash2) IN ('integer', 'null'))"""
# A decodable face scanned before thumbnails (migration m006) or crop hashes (m013) existed is
# hashed again.
_NEEDS_THUMB = "((h.thumb IS NULL OR h.crop_phash1 IS NULL) AND h.corrupt IS NULL)"


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
    thumb[, crop_phash1, crop_phash2]]) — a row without its 16x16 thumbnail or crop hashes
    stores NULL (that face is never verified as a near copy / a crop candidate)."""

    def full(r: Sequence[object]) -> tuple[object, ...]:
        return (*r, *(None,) * (12 - len(r)), at)

    with project.tx() as c:
        at = now()
        cur = c.executemany(
            "INSERT OR REPLACE INTO face_hashes (face_id, sha256, phash, dhash, width, height, "
            "grayscale, sharpness, corrupt, thumb, crop_phash1, crop_phash2, scanned_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (full(r) for r in rows),
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
                  CASE typeof(f.rank) WHEN 'integer' THEN f.rank ELSE {NO_RANK} END,
                  coalesce(h.crop_phash1, 0), coalesce(h.crop_phash2, 0)
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


# -- flags and duplicate groups -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredFlag:
    id: int
    kind: str
    distance: int | None
    score: float
    faces: list[dict[str, object]]  # {"id", "identity", "origin"} (+ "keeper" in a group)
    similarity: float | None = None  # duplicate groups: lowest thumbnail SSIM of the group


def fingerprint(kind: str, face_ids: Sequence[int]) -> str:
    return kind + ":" + ",".join(map(str, sorted(face_ids)))


def replace_flags(
    project: Project,
    flags: Iterable[tuple[str, Sequence[int], int | None, float, float | None]],
    progress: ProgressFn | None = None,
    total: int = 0,
) -> tuple[int, int, int]:
    """Make the flags table equal ``flags`` (kind, face ids, distance, score, similarity),
    keyed by fingerprint: existing flags keep their id (figures updated when changed), new ones
    are inserted, stale ones removed. Streams ``flags`` in batches; each batch is its own short
    transaction (``WRITE_BATCH`` flags), so a reviewer's label waits milliseconds, never the
    whole phase (the flag set is a list of suggestions: between two batches it is part old,
    part new; :func:`set_flags_state` tells readers that need it whole). Returns (inserted,
    updated, removed).
    """
    at = now()
    # a bigger page cache while millions of index entries go in (default: 2 MB)
    cache = project.conn.execute("PRAGMA cache_size").fetchone()[0]
    project.conn.execute(f"PRAGMA cache_size = {-_CACHE_KB}")
    try:
        return _replace_flags(project, flags, progress, total, at)
    finally:
        project.conn.execute(f"PRAGMA cache_size = {int(cache)}")


def _keys(fps: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit keys per fingerprint (str hashes of the string and of its
    reversal: about a 2^-128 chance that two fingerprints share both). Only compared within
    one call of replace_flags, so Python's per-process hash seed does not matter."""
    return (
        np.fromiter(map(hash, fps), np.int64, len(fps)),
        np.fromiter(map(hash, map(_REVERSED, fps)), np.int64, len(fps)),
    )


_REVERSED = itemgetter(slice(None, None, -1))


class _Stored:
    """The stored flags as arrays sorted by key — about 34 bytes a flag instead of a dict of
    fingerprint strings (hundreds of bytes a flag)."""

    def __init__(self, c) -> None:
        # filled in place (no chunk lists concatenated into second copies), then sorted
        n = int(c.execute("SELECT count(*) FROM flags").fetchone()[0])
        k1, k2, ids = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
        dist, score = np.empty(n, np.int16), np.empty(n, np.float64)
        sim = np.empty(n, np.float64)
        cur = c.execute(
            "SELECT id, fingerprint, coalesce(distance, -1), score, coalesce(similarity, -9) "
            "FROM flags"
        )
        k = 0
        while k < n and (rows := cur.fetchmany(min(200_000, n - k))):
            fid, fps, d, sc, sm = zip(*rows, strict=True)
            e = k + len(rows)
            k1[k:e], k2[k:e] = _keys(fps)
            ids[k:e], dist[k:e], score[k:e], sim[k:e] = fid, d, sc, sm
            k = e
        order = np.lexsort((k2[:k], k1[:k]))
        # one column at a time, each unsorted copy freed as its sorted one is made
        self.k1 = k1[order]
        del k1
        self.k2 = k2[order]
        del k2
        self.ids = ids[order]
        del ids
        self.dist = dist[order]
        del dist
        self.score = score[order]
        del score
        self.sim = sim[order]
        del sim, order
        self.seen = np.zeros(k, bool)

    def find(self, fps: Sequence[str]) -> np.ndarray:
        """Position of each fingerprint among the stored flags, -1 when not stored."""
        q1, q2 = _keys(fps)
        n = len(self.k1)
        if not n:
            return np.full(len(fps), -1, np.int64)
        pos = np.empty(len(q1), np.int64)
        o = np.argsort(q1)
        pos[o] = np.searchsorted(self.k1, q1[o])  # sorted queries: cache-friendly
        p = np.minimum(pos, n - 1)
        hit = (self.k1[p] == q1) & (self.k2[p] == q2)
        out = np.where(hit, p, -1)
        # a first key shared by several stored flags (rare): walk its run for the second key
        for x in np.flatnonzero(~hit & (self.k1[p] == q1)).tolist():
            y = int(pos[x])
            while y < n and self.k1[y] == q1[x]:
                if self.k2[y] == q2[x]:
                    out[x] = y
                    break
                y += 1
        return out


def _replace_flags(
    project: Project,
    flags: Iterable[tuple[str, Sequence[int], int | None, float, float | None]],
    progress: ProgressFn | None,
    total: int,
    at: str,
) -> tuple[int, int, int]:
    inserted = updated = done = 0
    c = project.conn
    st = _Stored(c)
    batch: list[tuple[str, Sequence[int], int | None, float, float | None, str]] = []

    def flush() -> None:
        nonlocal inserted, updated, done
        if not batch:
            return
        pos = st.find([b[5] for b in batch])
        hit = pos >= 0
        # flags already stored: vectorised (first occurrence only; update when changed)
        hi = np.flatnonzero(hit)
        q = pos[hi]
        _, first = np.unique(q, return_index=True)
        keep = np.sort(first)
        keep = keep[~st.seen[q[keep]]]
        hi, q = hi[keep], q[keep]
        st.seen[q] = True
        rows = [batch[x] for x in hi.tolist()]
        nd = np.array([-1 if r[2] is None else r[2] for r in rows], np.int64)
        ns = np.array([r[3] for r in rows], np.float64)
        nm = np.array([-9 if r[4] is None else r[4] for r in rows], np.float64)
        ch = np.flatnonzero(
            (st.dist[q] != nd) | (st.score[q] != ns) | (np.abs(st.sim[q] - nm) > 1e-6)
        )
        changed = [
            (None if d < 0 else d, sc, None if sm == -9 else sm, fid)
            for d, sc, sm, fid in zip(
                nd[ch].tolist(),
                ns[ch].tolist(),
                nm[ch].tolist(),
                st.ids[q[ch]].tolist(),
                strict=True,
            )
        ]
        done += len(hi)
        new_flags: list[tuple[object, ...]] = []
        new_faces: list[tuple[int, int]] = []
        seen_fps: set[str] = set()
        with project.tx():  # one short transaction per batch
            next_id = c.execute("SELECT coalesce(max(id), 0) FROM flags").fetchone()[0] + 1
            for x in np.flatnonzero(~hit).tolist():
                kind, faces, dist, score, sm, fp = batch[x]
                if fp in seen_fps:
                    continue
                seen_fps.add(fp)
                new_flags.append((next_id, kind, dist, score, sm, fp, at))
                new_faces.extend([(next_id, f) for f in sorted(set(faces))])
                next_id += 1
            inserted += _write_flag_batch(c, new_flags, new_faces, changed)
        done += len(new_flags)
        updated += len(changed)
        batch.clear()
        if progress and total:
            progress(min(done, total), total)

    for row in flags:  # (kind, faces, distance, score[, similarity])
        kind, faces, dist, score = row[:4]
        sm = row[4] if len(row) > 4 else None
        batch.append((kind, faces, dist, score, sm, fingerprint(kind, faces)))
        if len(batch) >= WRITE_BATCH:
            flush()
    flush()
    stale = st.ids[~st.seen]
    for s0 in range(0, len(stale), WRITE_BATCH):
        with project.tx():
            c.executemany(
                "DELETE FROM flags WHERE id = ?",
                ((x,) for x in stale[s0 : s0 + WRITE_BATCH].tolist()),
            )
    return inserted, updated, len(stale)


def _write_flag_batch(
    c, new_flags: list[tuple[object, ...]], new_faces: list[tuple[int, int]], changed: list
) -> int:
    """Inside the caller's transaction: new flags with their faces, changed figures; returns
    how many flags were inserted.

    A flag new to this call but already stored by an earlier batch of it is skipped by the
    fingerprint's UNIQUE index (its faces then point at no flag: dropped)."""
    n_ins = 0
    if new_flags:
        before = c.total_changes
        c.executemany(
            "INSERT INTO flags (id, kind, distance, score, similarity, fingerprint, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
            new_flags,
        )
        n_ins = c.total_changes - before
        if n_ins != len(new_flags):
            got = {
                r[0] for r in c.execute("SELECT id FROM flags WHERE id >= ?", (new_flags[0][0],))
            }
            new_faces = [x for x in new_faces if x[0] in got]
        c.executemany("INSERT INTO flag_faces (flag_id, face_id) VALUES (?, ?)", new_faces)
    c.executemany("UPDATE flags SET distance = ?, score = ?, similarity = ? WHERE id = ?", changed)
    return n_ins


WRITE_BATCH = 2_000  # rows per short write transaction of the flag step (~50 ms or less)
_CACHE_KB = 256 * 1024


def replace_dup_groups(project: Project, rows: np.ndarray | Sequence[Sequence[int]]) -> int:
    """Make dup_groups equal ``rows`` ((face_id, group_id, is_keeper), an (n, 3) integer array
    or tuples): only the rows that differ are written, in short transactions of WRITE_BATCH
    rows (a group's id is its keeper's face id, so a re-scan that changes nothing writes
    nothing). Returns the number of rows written or removed."""
    new = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    new = new[np.argsort(new[:, 0], kind="stable")]
    c = project.conn
    n_old = int(c.execute("SELECT count(*) FROM dup_groups").fetchone()[0])
    old = np.empty((n_old, 3), np.int64)
    cur = c.execute("SELECT face_id, group_id, is_keeper FROM dup_groups ORDER BY face_id")
    k = 0
    while k < n_old and (chunk := cur.fetchmany(min(200_000, n_old - k))):
        old[k : k + len(chunk)] = chunk
        k += len(chunk)
    old = old[:k]
    gone = old[~np.isin(old[:, 0], new[:, 0]), 0]
    if len(old):
        p = np.minimum(np.searchsorted(old[:, 0], new[:, 0]), len(old) - 1)
        same = (old[p] == new).all(axis=1)
    else:
        same = np.zeros(len(new), dtype=bool)
    put = new[~same]
    for s0 in range(0, len(gone), WRITE_BATCH):
        with project.tx():
            c.executemany(
                "DELETE FROM dup_groups WHERE face_id = ?",
                ((x,) for x in gone[s0 : s0 + WRITE_BATCH].tolist()),
            )
    for s0 in range(0, len(put), WRITE_BATCH):
        with project.tx():
            c.executemany(
                "INSERT INTO dup_groups (face_id, group_id, is_keeper) VALUES (?, ?, ?) "
                "ON CONFLICT (face_id) DO UPDATE SET group_id = excluded.group_id, "
                "is_keeper = excluded.is_keeper",
                put[s0 : s0 + WRITE_BATCH].tolist(),
            )
    return len(gone) + len(put)


def group_members(
    project: Project, group_ids: Sequence[int]
) -> list[tuple[int, int, int, int, int]]:
    """(group id, face id, width, height, rank) of the members of some duplicate groups; 0 for
    an unknown size, :data:`NO_RANK` for an unknown rank."""
    out: list[tuple[int, int, int, int, int]] = []
    ids = list(group_ids)
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        out += [
            (int(g), int(f), int(w), int(h), int(r))
            for g, f, w, h, r in project.conn.execute(
                "SELECT d.group_id, d.face_id, coalesce(h.width, 0), coalesce(h.height, 0),"
                f" coalesce(f.rank, {NO_RANK}) FROM dup_groups d JOIN faces f ON f.id = d.face_id"
                " LEFT JOIN face_hashes h ON h.face_id = d.face_id"
                f" WHERE d.group_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
        ]
    return out


def set_keepers(project: Project, keepers: Sequence[tuple[int, int]]) -> None:
    """(group id, face id): that face becomes its group's one keeper."""
    with project.tx() as c:
        c.executemany(
            "UPDATE dup_groups SET is_keeper = (face_id = ?) WHERE group_id = ?",
            [(f, g) for g, f in keepers],
        )


def set_suspicion(project: Project, rows: Sequence[tuple[int, float, int]]) -> None:
    """rows: (identity_id, suspicion, flagged_count); every other identity gets 0. Only changed
    identities are written, WRITE_BATCH per short transaction."""
    c = project.conn
    want = {int(i): (float(sc), int(n)) for i, sc, n in rows}
    changes: list[tuple[float, int, int]] = []
    for i, sc, n in c.execute("SELECT id, suspicion, flagged_count FROM identities"):
        w = want.get(i, (0.0, 0))
        if abs((sc or 0.0) - w[0]) > 1e-9 or (n or 0) != w[1]:
            changes.append((w[0], w[1], i))
    for s0 in range(0, len(changes), WRITE_BATCH):
        with project.tx():
            c.executemany(
                "UPDATE identities SET suspicion = ?, flagged_count = ? WHERE id = ?",
                changes[s0 : s0 + WRITE_BATCH],
            )


def set_flags_state(project: Project, state: str) -> None:
    """'updating' while a scan rewrites flags and groups in short batches, 'ready' after: a
    reader that needs them whole (an export) asks :func:`flags_state` first."""
    project.set_meta("flags_state", state)


def flags_state(project: Project) -> str:
    return project.meta("flags_state", "ready") or "ready"


def counts_by_kind(project: Project) -> dict[str, int]:
    return dict(
        project.conn.execute("SELECT kind, count(*) FROM flags GROUP BY kind ORDER BY kind")
    )


def list_flags(
    project: Project, kind: str | None = None, limit: int | None = None
) -> list[StoredFlag]:
    """Flags, best score first, with their faces (id, identity key, origin string)."""
    sql = "SELECT id, kind, distance, score, similarity FROM flags"
    args: list[object] = []
    if kind:
        sql += " WHERE kind = ?"
        args.append(kind)
    sql += " ORDER BY score DESC, id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    rows = project.conn.execute(
        f"""SELECT fl.id, fl.kind, fl.distance, fl.score, fl.similarity, f.id, i.key, s.path,
                  s.format, f.record, f.relpath, g.is_keeper
           FROM ({sql}) fl JOIN flag_faces ff ON ff.flag_id = fl.id
           JOIN faces f ON f.id = ff.face_id
           LEFT JOIN dup_groups g ON g.face_id = f.id AND fl.kind IN ({_DUP_KINDS_SQL})
           JOIN identities i ON i.id = f.identity_id JOIN sources s ON s.id = f.source_id
           ORDER BY fl.score DESC, fl.id, f.id""",
        args,
    )
    out: list[StoredFlag] = []
    names: dict[str, str] = {}
    for fid, k, dist, score, sim, face_id, key, path, fmt, record, relpath, keeper in rows:
        if not out or out[-1].id != fid:
            out.append(StoredFlag(fid, k, dist, float(score), [], sim))
        name = names.get(path)
        if name is None:
            name = names[path] = Path(path).name
        face: dict[str, object] = {
            "id": face_id,
            "identity": key,
            "origin": origin_of(name, fmt, record, relpath),
        }
        if keeper is not None:
            face["keeper"] = bool(keeper)
        out[-1].faces.append(face)
    return out


def group_member_rows(project: Project) -> list[tuple[int, int, int, str | None, bool]]:
    """(group id, face id, identity id, label, the scan's keeper) of every duplicate group's
    faces, the scan's keeper first in each group (core/review/keeper.py)."""
    return [
        (int(g), int(f), int(i), lab, bool(k))
        for g, f, i, lab, k in project.conn.execute(
            "SELECT d.group_id, d.face_id, f.identity_id, f.label, d.is_keeper FROM dup_groups d"
            " JOIN faces f ON f.id = d.face_id ORDER BY d.group_id, d.is_keeper DESC, d.face_id"
        )
    ]


def group_of_faces(project: Project, face_ids: Sequence[int]) -> dict[int, int]:
    """Face id -> its duplicate group's id, for those of ``face_ids`` in a group."""
    out: dict[int, int] = {}
    for chunk in chunks(sorted(set(face_ids))):
        q = ",".join("?" * len(chunk))
        for f, g in project.conn.execute(
            f"SELECT face_id, group_id FROM dup_groups WHERE face_id IN ({q})", chunk
        ):
            out[int(f)] = int(g)
    return out


def dup_groups(project: Project) -> dict[int, list[tuple[int, bool]]]:
    out: dict[int, list[tuple[int, bool]]] = {}
    for face_id, gid, keeper in project.conn.execute(
        "SELECT face_id, group_id, is_keeper FROM dup_groups ORDER BY group_id, face_id"
    ):
        out.setdefault(gid, []).append((face_id, bool(keeper)))
    return out


# -- recounting after a takedown ------------------------------------------------------------


def flag_memberships(
    project: Project, identity_ids: Sequence[int]
) -> tuple[list[tuple[int, int]], list[tuple[int, str, int]]]:
    """For recounting suspicion: (face id, identity id) of every scanned face of the
    identities, and (flag id, kind, face id) of every flag on those faces."""
    c = project.conn
    scanned: list[tuple[int, int]] = []
    flagged: list[tuple[int, str, int]] = []
    ids = list(identity_ids)
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        q = ",".join("?" * len(chunk))
        scanned += [
            (int(a), int(b))
            for a, b in c.execute(
                "SELECT f.id, f.identity_id FROM faces f JOIN face_hashes h ON h.face_id = f.id"
                f" WHERE f.identity_id IN ({q}) ORDER BY f.id",
                chunk,
            )
        ]
        flagged += [
            (int(a), str(b), int(d))
            for a, b, d in c.execute(
                "SELECT fl.id, fl.kind, ff.face_id FROM flag_faces ff"
                " JOIN flags fl ON fl.id = ff.flag_id JOIN faces f ON f.id = ff.face_id"
                f" WHERE f.identity_id IN ({q}) ORDER BY fl.id, ff.face_id",
                chunk,
            )
        ]
    return scanned, flagged


def set_identity_suspicion(
    project: Project, identity_ids: Sequence[int], rows: Sequence[tuple[int, float, int]]
) -> None:
    """Set (identity id, suspicion, flagged_count) rows; the other ``identity_ids`` get 0."""
    with project.tx() as c:
        c.executemany(
            "UPDATE identities SET suspicion = 0, flagged_count = 0 WHERE id = ?",
            [(i,) for i in identity_ids],
        )
        c.executemany(
            "UPDATE identities SET suspicion = ?, flagged_count = ? WHERE id = ?",
            [(s, n, i) for i, s, n in rows],
        )
