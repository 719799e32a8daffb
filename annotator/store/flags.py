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
from annotator.store.db import Project, now

# -- face hashes -----------------------------------------------------------------------------

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

# A face_hashes row whose values have the types and ranges a scan writes. A crafted or damaged
# project file can hold others (text in phash, a width beyond int32): such a row is not loaded
# and its face counts as unhashed, so the next scan hashes it again and replaces the row.
_WELL_TYPED = """(typeof(h.phash) IN ('integer', 'null') AND typeof(h.dhash) IN ('integer', 'null')
    AND typeof(h.sha256) IN ('blob', 'null')
    AND (h.width IS NULL OR (typeof(h.width) = 'integer' AND h.width BETWEEN 0 AND 2147483647))
    AND (h.height IS NULL OR (typeof(h.height) = 'integer' AND h.height BETWEEN 0 AND 2147483647))
    AND (h.grayscale IS NULL OR h.grayscale IN (0, 1))
    AND typeof(h.sharpness) IN ('real', 'integer', 'null'))"""


def unhashed_face_ids(project: Project) -> np.ndarray:
    """Ids of faces that have no (well-typed) face_hashes row yet (ascending)."""
    cur = project.conn.execute(
        "SELECT f.id FROM faces f LEFT JOIN face_hashes h ON h.face_id = f.id "
        f"WHERE h.face_id IS NULL OR NOT {_WELL_TYPED} ORDER BY f.id"
    )
    return np.fromiter((r[0] for r in cur), dtype=np.int64)


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
    faces: list[dict[str, object]]  # {"id", "identity", "origin"}


def fingerprint(kind: str, face_ids: Sequence[int]) -> str:
    return kind + ":" + ",".join(map(str, sorted(face_ids)))


def replace_flags(
    project: Project,
    flags: Iterable[tuple[str, Sequence[int], int | None, float]],
    progress: ProgressFn | None = None,
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
        cur = c.execute("SELECT id, fingerprint, coalesce(distance, -1), score FROM flags")
        k = 0
        while k < n and (rows := cur.fetchmany(min(200_000, n - k))):
            fid, fps, d, sc = zip(*rows, strict=True)
            e = k + len(rows)
            k1[k:e], k2[k:e] = _keys(fps)
            ids[k:e], dist[k:e], score[k:e] = fid, d, sc
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
        del score, order
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
    flags: Iterable[tuple[str, Sequence[int], int | None, float]],
    progress: ProgressFn | None,
    total: int,
    at: str,
) -> tuple[int, int, int]:
    inserted = updated = 0
    with project.tx() as c:
        st = _Stored(c)
        next_id = (c.execute("SELECT coalesce(max(id), 0) FROM flags").fetchone()[0] or 0) + 1
        batch: list[tuple[str, Sequence[int], int | None, float, str]] = []
        done = 0

        def flush() -> None:
            nonlocal next_id, inserted, updated, done
            if not batch:
                return
            pos = st.find([b[4] for b in batch])
            hit = pos >= 0
            new_flags: list[tuple[object, ...]] = []
            new_faces: list[tuple[int, int]] = []
            # flags already stored: vectorised (first occurrence only; update when changed)
            hi = np.flatnonzero(hit)
            q = pos[hi]
            _, first = np.unique(q, return_index=True)
            keep = np.sort(first)
            keep = keep[~st.seen[q[keep]]]
            hi, q = hi[keep], q[keep]
            st.seen[q] = True
            nd = np.array(
                [-1 if batch[x][2] is None else batch[x][2] for x in hi.tolist()], np.int64
            )
            ns = np.array([batch[x][3] for x in hi.tolist()], np.float64)
            ch = np.flatnonzero((st.dist[q] != nd) | (st.score[q] != ns))
            changed = [
                (None if d < 0 else d, sc, fid)
                for d, sc, fid in zip(
                    nd[ch].tolist(), ns[ch].tolist(), st.ids[q[ch]].tolist(), strict=True
                )
            ]
            updated += len(changed)
            done += len(hi)
            # new flags
            batch_fps: set[str] = set()
            for x in np.flatnonzero(~hit).tolist():
                kind, faces, dist, score, fp = batch[x]
                if fp in batch_fps:
                    continue
                batch_fps.add(fp)
                new_flags.append((next_id, kind, dist, score, fp, at))
                new_faces.extend([(next_id, f) for f in sorted(set(faces))])
                next_id += 1
                done += 1
            before = project.conn.total_changes
            # a flag new to this call but already inserted by an earlier batch of it: skipped
            # by the fingerprint's UNIQUE index (its faces then point at no flag: dropped)
            c.executemany(
                "INSERT INTO flags (id, kind, distance, score, fingerprint, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
                new_flags,
            )
            n_ins = project.conn.total_changes - before
            if n_ins != len(new_flags):
                got = {
                    r[0]
                    for r in c.execute("SELECT id FROM flags WHERE id >= ?", (new_flags[0][0],))
                }
                new_faces = [x for x in new_faces if x[0] in got]
                done -= len(new_flags) - n_ins
            inserted += n_ins
            c.executemany("INSERT INTO flag_faces (flag_id, face_id) VALUES (?, ?)", new_faces)
            c.executemany("UPDATE flags SET distance = ?, score = ? WHERE id = ?", changed)
            batch.clear()
            if progress and total:
                progress(min(done, total), total)

        for kind, faces, dist, score in flags:
            batch.append((kind, faces, dist, score, fingerprint(kind, faces)))
            if len(batch) >= _BATCH:
                flush()
        flush()
        stale = st.ids[~st.seen]
        for s in range(0, len(stale), _BATCH):
            c.executemany(
                "DELETE FROM flags WHERE id = ?", ((x,) for x in stale[s : s + _BATCH].tolist())
            )
        removed = len(stale)
    return inserted, updated, removed


_BATCH = 50_000
_CACHE_KB = 256 * 1024


def replace_dup_groups(project: Project, rows: Iterable[Sequence[int]]) -> None:
    """rows: (face_id, group_id, is_keeper) — tuples or an (n, 3) integer array."""
    if hasattr(rows, "tolist"):  # an array: converted a slice at a time
        arr = rows
        rows = (r for s in range(0, len(arr), _BATCH) for r in arr[s : s + _BATCH].tolist())  # type: ignore[index, arg-type]
    with project.tx() as c:
        c.execute("DELETE FROM dup_groups")
        c.executemany(
            "INSERT INTO dup_groups (face_id, group_id, is_keeper) VALUES (?, ?, ?)",
            (tuple(r) for r in rows),
        )


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
