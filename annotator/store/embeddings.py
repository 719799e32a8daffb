"""SQL for face_embeddings (filled by `annotator embed`, see annotator/core/identity/embed.py).

A vector is stored as 128 little-endian float16 values (a 256-byte BLOB); a row's ``model``
names the network and the alignment that made it, so a change of either re-embeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from annotator.store.db import Project, now

DIM = 128
VECTOR_DTYPE = np.dtype("<f2")


def to_blob(vector: np.ndarray) -> bytes:
    """One embedding (any float dtype, DIM values) as the stored BLOB."""
    v = np.asarray(vector, dtype=VECTOR_DTYPE).reshape(-1)
    if len(v) != DIM:
        raise ValueError(f"an embedding has {DIM} values, not {len(v)}")
    return v.tobytes()


def from_blobs(blobs: Sequence[bytes]) -> np.ndarray:
    """Stored BLOBs -> an (n, DIM) float16 array."""
    if not blobs:
        return np.empty((0, DIM), dtype=VECTOR_DTYPE)
    return np.frombuffer(b"".join(blobs), dtype=VECTOR_DTYPE).reshape(len(blobs), DIM)


def identity_ids_of_keys(project: Project, keys: Iterable[str]) -> tuple[list[int], list[str]]:
    """(ids of the identities with these keys, in order, keys not found)."""
    ids: list[int] = []
    missing: list[str] = []
    for k in keys:
        row = project.conn.execute("SELECT id FROM identities WHERE key = ?", (k,)).fetchone()
        if row is None:
            missing.append(k)
        elif row[0] not in ids:
            ids.append(int(row[0]))
    return ids, missing


def _identity_filter(identity_ids: Sequence[int] | None) -> tuple[str, list[int]]:
    if identity_ids is None:
        return "", []
    return f" AND f.identity_id IN ({','.join('?' * len(identity_ids))})", list(identity_ids)


def scan_counts(project: Project, identity_ids: Sequence[int] | None = None) -> dict[str, int]:
    """Faces in scope: 'faces', 'scanned' (have a face_hashes row), 'corrupt' (among them)."""
    where, args = _identity_filter(identity_ids)
    row = project.conn.execute(
        "SELECT count(*), count(h.face_id), count(h.corrupt) FROM faces f "
        f"LEFT JOIN face_hashes h ON h.face_id = f.id WHERE 1{where}",
        args,
    ).fetchone()
    return {"faces": int(row[0]), "scanned": int(row[1]), "corrupt": int(row[2])}


def faces_to_embed(
    project: Project, model: str, identity_ids: Sequence[int] | None = None
) -> np.ndarray:
    """Ids of scanned, decodable faces without an embedding by ``model`` (a row of another
    model counts as none), in working order: unreviewed identities first, the most suspicious
    first, each identity's faces together and ascending."""
    where, args = _identity_filter(identity_ids)
    cur = project.conn.execute(
        "SELECT f.id FROM faces f JOIN identities i ON i.id = f.identity_id "
        "JOIN face_hashes h ON h.face_id = f.id "
        "LEFT JOIN face_embeddings e ON e.face_id = f.id "
        f"WHERE h.corrupt IS NULL AND (e.face_id IS NULL OR e.model != ?){where} "
        "ORDER BY i.reviewed, i.suspicion DESC, f.identity_id, f.id",
        [model, *args],
    )
    return np.fromiter((r[0] for r in cur), dtype=np.int64)


def insert_embeddings(
    project: Project, model: str, rows: Iterable[tuple[int, str, str | None, bytes | None]]
) -> int:
    """rows: (face_id, status 'ok'|'failed', reason, vector BLOB or None). Replaces a face's
    earlier row (of another model). Joins the caller's transaction."""
    at = now()
    with project.tx() as c:
        cur = c.executemany(
            "INSERT OR REPLACE INTO face_embeddings (face_id, model, status, reason, vector, "
            "embedded_at) VALUES (?, ?, ?, ?, ?, ?)",
            ((fid, model, status, reason, vec, at) for fid, status, reason, vec in rows),
        )
        return cur.rowcount


def counts(project: Project, model: str | None = None) -> dict[str, int]:
    """Stored embeddings by status ('ok', 'failed'), of ``model`` or of any model."""
    sql = "SELECT status, count(*) FROM face_embeddings"
    args: list[str] = []
    if model is not None:
        sql += " WHERE model = ?"
        args.append(model)
    out = {"ok": 0, "failed": 0}
    out.update({s: int(n) for s, n in project.conn.execute(sql + " GROUP BY status", args)})
    return out


def load_embeddings(
    project: Project, model: str, identity_ids: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(face ids, identity ids, (n, DIM) float16 vectors) of the faces embedded by ``model``,
    ordered by face id."""
    where, args = _identity_filter(identity_ids)
    rows = project.conn.execute(
        "SELECT e.face_id, f.identity_id, e.vector FROM face_embeddings e "
        "JOIN faces f ON f.id = e.face_id "
        f"WHERE e.model = ? AND e.status = 'ok'{where} ORDER BY e.face_id",
        [model, *args],
    ).fetchall()
    faces = np.array([r[0] for r in rows], dtype=np.int64)
    idents = np.array([r[1] for r in rows], dtype=np.int64)
    return faces, idents, from_blobs([r[2] for r in rows])


def failures(project: Project, limit: int = 10) -> list[tuple[int, str]]:
    """(face id, reason) of the first failed embeddings."""
    return [
        (int(f), str(r))
        for f, r in project.conn.execute(
            "SELECT face_id, coalesce(reason, '') FROM face_embeddings WHERE status = 'failed' "
            "ORDER BY face_id LIMIT ?",
            (limit,),
        )
    ]


def face_rects(
    project: Project, face_ids: Sequence[int]
) -> dict[int, tuple[float, float, float, float]]:
    """The face rectangles (relative x0, y0, x1, y1, as the reader gave them) of those of
    ``face_ids`` that have one."""
    out: dict[int, tuple[float, float, float, float]] = {}
    for s in range(0, len(face_ids), 500):
        part = list(face_ids[s : s + 500])
        for fid, *rect in project.conn.execute(
            "SELECT id, rect_x0, rect_y0, rect_x1, rect_y1 FROM faces "
            f"WHERE rect_x0 IS NOT NULL AND id IN ({','.join('?' * len(part))})",
            part,
        ):
            out[int(fid)] = (float(rect[0]), float(rect[1]), float(rect[2]), float(rect[3]))
    return out


def notes(project: Project, model: str) -> dict[int, str]:
    """face id -> the reason stored with an ok vector of ``model`` (``--align box``: how a
    face without a usable box was aligned instead); faces without one are absent."""
    return {
        int(f): str(r)
        for f, r in project.conn.execute(
            "SELECT face_id, reason FROM face_embeddings "
            "WHERE model = ? AND status = 'ok' AND reason IS NOT NULL",
            (model,),
        )
    }
