"""Flags and their faces, duplicate groups and the identities' suspicion figures: the tables
the scan's flag step writes and a takedown recounts. The face hashes are in
:mod:`annotator.store.hashes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np

from annotator.model import ProgressFn, origin_of
from annotator.store.db import Project, chunks, now
from annotator.store.hashes import NO_RANK

_DUP_KINDS_SQL = "'exact_dup', 'near_dup', 'cross_identity_dup'"

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
