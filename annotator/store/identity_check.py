"""SQL for what the face embeddings say about identities (annotator/core/identity/identity_check.py):
``suspect_identity`` flags, the identity each such face looks more like (``face_looks_like``),
"probably the same person" pairs of identities (``same_person``), each identity's stored
centre (``identity_centres``) and the identities whose centre is stale."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from annotator.model import COPY_VECTOR_DIST, NOT_IN_CENTRE
from annotator.store.db import Project, now
from annotator.store.embeddings import DIM, VECTOR_DTYPE, from_blobs
from annotator.store.flags import WRITE_BATCH, fingerprint

CENTRE_DTYPE = np.dtype("<f4")
REACH_DTYPE = np.dtype("<f4")
CHUNK_IDS = 900  # ids per IN (...) list


def model_in_use(project: Project, hint: str | None = None) -> str | None:
    """The embedding model with the most stored vectors (None: no embeddings). With ``hint``
    (the model of the last check) a project holding that model's vectors only is answered
    from the index, without counting."""
    c = project.conn
    if hint is not None:
        mine = c.execute(
            "SELECT 1 FROM face_embeddings WHERE model = ? AND status = 'ok' LIMIT 1", (hint,)
        ).fetchone()
        other = c.execute(
            "SELECT 1 FROM face_embeddings WHERE model < ?1 OR model > ?1 LIMIT 1", (hint,)
        ).fetchone()
        if mine is not None and other is None:
            return hint
    row = c.execute(
        "SELECT model FROM face_embeddings WHERE status = 'ok' GROUP BY model "
        "ORDER BY count(*) DESC, model LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def scanned_faces(project: Project) -> tuple[np.ndarray, np.ndarray]:
    """(face ids, identity ids) of every scanned face (the denominator of suspicion)."""
    cur = project.conn.execute(
        "SELECT f.id, f.identity_id FROM face_hashes h JOIN faces f ON f.id = h.face_id"
    )
    flat = np.fromiter(itertools.chain.from_iterable(cur), np.int64).reshape(-1, 2)
    return flat[:, 0].copy(), flat[:, 1].copy()


def flag_members(project: Project) -> list[tuple[int, str, int]]:
    """(flag id, kind, face id) of every flag's faces."""
    return [
        (int(a), str(k), int(f))
        for a, k, f in project.conn.execute(
            "SELECT fl.id, fl.kind, ff.face_id FROM flags fl JOIN flag_faces ff "
            "ON ff.flag_id = fl.id ORDER BY fl.id, ff.face_id"
        )
    ]


def _kind_flags(project: Project, kind: str, identity_ids: Sequence[int] | None):
    c = project.conn
    if identity_ids is None:
        yield from c.execute("SELECT id, fingerprint, score FROM flags WHERE kind = ?", (kind,))
        return
    ids = list(identity_ids)
    for s0 in range(0, len(ids), CHUNK_IDS):
        chunk = ids[s0 : s0 + CHUNK_IDS]
        yield from c.execute(
            "SELECT fl.id, fl.fingerprint, fl.score FROM flags fl "
            "JOIN flag_faces ff ON ff.flag_id = fl.id JOIN faces f ON f.id = ff.face_id "
            f"WHERE fl.kind = ? AND f.identity_id IN ({','.join('?' * len(chunk))})",
            [kind, *chunk],
        )


def replace_kind_flags(
    project: Project,
    kind: str,
    rows: Sequence[tuple[int, float]],
    identity_ids: Sequence[int] | None = None,
) -> tuple[int, int, int]:
    """Make the one-face flags of ``kind`` (on the faces of ``identity_ids``, default all)
    equal ``rows`` (face id, score), keyed by fingerprint like every flag (a flag that stays
    keeps its id); short transactions of WRITE_BATCH rows. Returns (inserted, updated,
    removed)."""
    c = project.conn
    old = {fp: (int(i), float(s)) for i, fp, s in _kind_flags(project, kind, identity_ids)}
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


def sample_faces(
    project: Project, identity_id: int, limit: int = 6, near: int | None = None
) -> list[int]:
    """A few faces of an identity to show beside a suspect face: decodable ones not flagged
    suspect themselves, reviewed-correct first, then by search rank and id. ``near``: a face
    whose nearest of them come first (by their vectors of the model the check uses; the
    evidence a reviewer compares a look-alike with), as the check weighs them: faces labelled
    wrong or unusable, copies of the face (nearer than COPY_VECTOR_DIST) and faces without
    such a vector after the rest."""
    sql = (
        "SELECT f.id{} FROM faces f LEFT JOIN face_hashes h ON h.face_id = f.id {}"
        "WHERE f.identity_id = ? AND h.corrupt IS NULL "
        "AND f.id NOT IN (SELECT face_id FROM face_looks_like) "
        "ORDER BY f.label IS NOT 'correct', f.rank IS NULL, f.rank, f.id"
    )
    c = project.conn
    own = None
    if near is not None:
        models = c.execute(
            "SELECT model, vector FROM face_embeddings WHERE face_id = ? AND status = 'ok' "
            "ORDER BY model",
            (near,),
        ).fetchall()
        use = model_in_use(project) if len(models) > 1 else None
        own = next((m for m in models if use is None or m[0] == use), None)
    if own is None:
        return [int(r[0]) for r in c.execute(sql.format("", "") + " LIMIT ?", (identity_id, limit))]
    rows = [
        (int(f), v, lb)
        for f, v, lb in c.execute(
            sql.format(
                ", e.vector, f.label",
                "LEFT JOIN face_embeddings e ON e.face_id = f.id AND e.model = ? "
                "AND e.status = 'ok' ",
            ),
            (own[0], identity_id),
        )
        if int(f) != near
    ]
    x = from_blobs([own[1]])[0].astype(np.float64)
    vec = [(f, v) for f, v, lb in rows if v is not None and lb not in NOT_IN_CENTRE]
    d = (
        np.sqrt(((from_blobs([v for _f, v in vec]).astype(np.float64) - x) ** 2).sum(1))
        if vec
        else np.zeros(0)
    )
    order = np.argsort(d, kind="stable")
    first = [vec[i][0] for i in order if d[i] >= COPY_VECTOR_DIST]
    shown = set(first)
    return (first + [f for f, _v, _lb in rows if f not in shown])[:limit]


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


def kind_flag_rows(project: Project, kind: str) -> list[tuple[int, float]]:
    """(face id, score) of the one-face flags of ``kind``."""
    return [
        (int(f), float(s))
        for f, s in project.conn.execute(
            "SELECT ff.face_id, fl.score FROM flags fl JOIN flag_faces ff ON ff.flag_id = fl.id "
            "WHERE fl.kind = ? ORDER BY ff.face_id",
            (kind,),
        )
    ]


def kind_flag_faces(project: Project, kind: str) -> list[int]:
    """The face ids of the one-face flags of ``kind``, ascending (without their scores)."""
    cur = project.conn.execute(
        "SELECT ff.face_id FROM flags fl JOIN flag_faces ff ON ff.flag_id = fl.id "
        "WHERE fl.kind = ? ORDER BY ff.face_id",
        (kind,),
    )
    return np.fromiter(itertools.chain.from_iterable(cur), np.int64).tolist()


def _delete_of(project: Project, sql: str, identity_ids: Sequence[int], times: int = 1) -> None:
    ids = [int(i) for i in identity_ids]
    for s0 in range(0, len(ids), CHUNK_IDS):
        chunk = ids[s0 : s0 + CHUNK_IDS]
        with project.tx() as c:
            c.execute(sql.format(marks=",".join("?" * len(chunk))), chunk * times)


def replace_looks_like_of(
    project: Project, identity_ids: Sequence[int], rows: Sequence[tuple[int, int, float]]
) -> None:
    """The looks-like rows of the faces of ``identity_ids`` become ``rows``."""
    _delete_of(
        project,
        "DELETE FROM face_looks_like WHERE face_id IN "
        "(SELECT id FROM faces WHERE identity_id IN ({marks}))",
        identity_ids,
    )
    _insert(project, "face_looks_like", "face_id, identity_id, margin", list(rows))


def replace_same_person_of(
    project: Project, identity_ids: Sequence[int], rows: Sequence[tuple[int, int, float]]
) -> None:
    """The same-person pairs naming any of ``identity_ids`` become ``rows``."""
    _delete_of(
        project, "DELETE FROM same_person WHERE a IN ({marks}) OR b IN ({marks})", identity_ids, 2
    )
    _insert(
        project, "same_person", "a, b, distance", [(min(a, b), max(a, b), d) for a, b, d in rows]
    )


def _insert(project: Project, table: str, cols: str, rows: list[tuple]) -> None:
    marks = ",".join("?" * len(cols.split(",")))
    for s0 in range(0, len(rows), WRITE_BATCH):
        with project.tx() as c:
            c.executemany(
                f"INSERT OR REPLACE INTO {table} ({cols}) VALUES ({marks})",  # noqa: S608
                rows[s0 : s0 + WRITE_BATCH],
            )


# -- embeddings by identity, centres, stale identities ---------------------------------------


def identity_ranges(project: Project, max_faces: int) -> list[tuple[int, int]]:
    """(first, last) identity ids of consecutive runs of identities holding about
    ``max_faces`` faces together (an identity is never split)."""
    out: list[tuple[int, int]] = []
    lo = tot = None
    last = 0
    for i, n in project.conn.execute("SELECT id, face_count FROM identities ORDER BY id"):
        if lo is None:
            lo, tot = i, 0
        tot += n or 0
        last = i
        if tot >= max_faces:
            out.append((lo, i))
            lo = None
    if lo is not None:
        out.append((lo, last))
    return out


def _label_rows(rows: list) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    face = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    ident = np.fromiter((r[1] for r in rows), np.int64, len(rows))
    return face, ident, from_blobs([r[2] for r in rows]), [r[3] for r in rows]


_EMB = (
    "SELECT e.face_id, f.identity_id, e.vector, f.label FROM faces f "
    "JOIN face_embeddings e ON e.face_id = f.id WHERE e.model = ? AND e.status = 'ok' AND "
)


def embeddings_in_range(project: Project, model: str, lo: int, hi: int):
    """(face ids, identity ids, float16 vectors, labels) of the embedded faces of identities
    ``lo``..``hi``, grouped by identity, faces ascending."""
    rows = project.conn.execute(
        _EMB + "f.identity_id BETWEEN ? AND ? ORDER BY f.identity_id, f.id", (model, lo, hi)
    ).fetchall()
    return _label_rows(rows)


def embeddings_of(project: Project, model: str, identity_ids: Sequence[int]):
    """As :func:`embeddings_in_range`, for the identities ``identity_ids``."""
    ids = sorted(set(identity_ids))
    rows: list = []
    for s0 in range(0, len(ids), CHUNK_IDS):
        chunk = ids[s0 : s0 + CHUNK_IDS]
        rows += project.conn.execute(
            _EMB + f"f.identity_id IN ({','.join('?' * len(chunk))}) ORDER BY f.identity_id, f.id",
            [model, *chunk],
        ).fetchall()
    return _label_rows(rows)


CENTRE_COLS = ("kept", "faces", "spread", "far", "score")
CAND_COLS = ("cand_faces", "cand_t", "cand_vec")


def load_centres(project: Project) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(identity ids ascending, (m, dim) float32 centres, (m, 5) values of CENTRE_COLS)."""
    rows = project.conn.execute(
        f"SELECT identity_id, centre, {', '.join(CENTRE_COLS)} FROM identity_centres "  # noqa: S608
        "ORDER BY identity_id"
    ).fetchall()
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    if not rows:
        return ids, np.zeros((0, 128), np.float32), np.zeros((0, len(CENTRE_COLS)))
    dim = len(rows[0][1]) // CENTRE_DTYPE.itemsize
    cen = np.frombuffer(b"".join(r[1] for r in rows), CENTRE_DTYPE).reshape(len(rows), dim)
    vals = np.array([r[2:] for r in rows], np.float64)
    return ids, cen.astype(np.float32), vals


_CAND = "SELECT identity_id, cand_faces, cand_t, cand_vec FROM identity_centres "


def _cand_arrays(rows: list) -> tuple[np.ndarray, ...]:
    face = np.frombuffer(b"".join(r[1] for r in rows), "<i8")
    n = [len(r[1]) // 8 for r in rows]
    ident = np.repeat([r[0] for r in rows], n).astype(np.int64)
    t = np.frombuffer(b"".join(r[2] for r in rows), "<f8")
    vec = np.frombuffer(b"".join(r[3] for r in rows), VECTOR_DTYPE).reshape(-1, DIM)
    return ident, face, t, vec


def candidates(project: Project, identity_ids: Sequence[int] | None = None, per: int = 2000):
    """The stored look-alike candidates (of ``identity_ids``, default all), ``per`` identities
    at a time: (identity id of each face, face ids, t, (n, dim) float16 vectors)."""
    c = project.conn
    if identity_ids is not None:
        ids = sorted({int(i) for i in identity_ids})
        for s0 in range(0, len(ids), CHUNK_IDS):
            chunk = ids[s0 : s0 + CHUNK_IDS]
            rows = c.execute(
                _CAND + f"WHERE identity_id IN ({','.join('?' * len(chunk))}) ORDER BY identity_id",
                chunk,
            ).fetchall()
            if rows:
                yield _cand_arrays(rows)
        return
    last = -1
    while True:
        rows = c.execute(
            _CAND + "WHERE identity_id > ? ORDER BY identity_id LIMIT ?", (last, per)
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield _cand_arrays(rows)


@dataclass(slots=True)
class Reaches:
    """The stored reaches (m019), identities ascending: ``top`` the largest of each, ``n``
    its candidates; per candidate (grouped by identity) ``reach`` and ``t``, both rounded
    up."""

    ids: np.ndarray
    top: np.ndarray
    n: np.ndarray
    reach: np.ndarray
    t: np.ndarray


def candidate_reaches(project: Project) -> Reaches:
    """Every stored reach (identities whose two blobs disagree in length are left out)."""
    rows = project.conn.execute(
        "SELECT identity_id, reach, cand_reach, cand_t FROM candidate_reach "
        "WHERE length(cand_reach) = length(cand_t) ORDER BY identity_id"
    ).fetchall()
    k = len(rows)
    ids = np.fromiter((r[0] for r in rows), np.int64, k)
    top = np.fromiter((r[1] for r in rows), np.float64, k)
    n = np.fromiter((len(r[2]) // REACH_DTYPE.itemsize for r in rows), np.int64, k)
    reach = np.frombuffer(b"".join(r[2] for r in rows), REACH_DTYPE)
    t = np.frombuffer(b"".join(r[3] for r in rows), REACH_DTYPE)
    return Reaches(ids, top, n, reach, t)


def candidate_vectors(
    project: Project, identity_ids: Sequence[int], first: Sequence[int], n: Sequence[int]
):
    """The float16 vectors of the ``first`` candidates of each of ``identity_ids`` (of ``n``
    stored, by their reach), concatenated in that order, read as blob prefixes (no row
    decoding); None when an identity's vectors are not ``n`` (its centre row was written
    without its reach)."""
    size = DIM * VECTOR_DTYPE.itemsize
    parts: list[bytes] = []
    for i, k, total in zip(identity_ids, first, n, strict=True):
        with project.conn.blobopen("identity_centres", "cand_vec", int(i), readonly=True) as b:
            if len(b) != total * size:
                return None
            parts.append(b.read(k * size))
    return np.frombuffer(b"".join(parts), VECTOR_DTYPE).reshape(-1, DIM)


def write_centres(
    project: Project, rows: Sequence[tuple], removed: Sequence[int] = (), everything: bool = False
) -> None:
    """Store centres: rows (identity id, float32 centre, *CENTRE_COLS, candidate face ids,
    their t, their float16 vectors, their reach); drop ``removed`` (or, with ``everything``,
    every centre stored before; their reaches go with them)."""
    c = project.conn
    if everything:
        with project.tx():
            c.execute("DELETE FROM identity_centres")
    for s0 in range(0, len(removed), WRITE_BATCH):
        with project.tx():
            c.executemany(
                "DELETE FROM identity_centres WHERE identity_id = ?",
                [(int(i),) for i in removed[s0 : s0 + WRITE_BATCH]],
            )
    k = len(CENTRE_COLS)
    data = [
        (
            int(r[0]),
            np.asarray(r[1], CENTRE_DTYPE).tobytes(),
            *(float(v) for v in r[2 : 2 + k]),
            np.asarray(r[2 + k], "<i8").tobytes(),
            np.asarray(r[3 + k], "<f8").tobytes(),
            np.asarray(r[4 + k], "<f2").tobytes(),
        )
        for r in rows
    ]
    cols = ", ".join(("identity_id", "centre", *CENTRE_COLS, *CAND_COLS))
    _insert(project, "identity_centres", cols, data)
    reach = []
    for r in rows:  # rounded up: a stored reach or t is never below the one computed
        a, t = (
            np.nextafter(np.asarray(x, REACH_DTYPE), np.float32(np.inf))
            for x in (r[5 + k], r[3 + k])
        )
        reach.append((int(r[0]), float(a.max()) if len(a) else 0.0, a.tobytes(), t.tobytes()))
    _insert(project, "candidate_reach", "identity_id, reach, cand_reach, cand_t", reach)


def stale_identities(project: Project) -> list[int]:
    """Identities whose faces, labels or vectors changed since their centre was stored."""
    return [
        int(i) for (i,) in project.conn.execute("SELECT identity_id FROM identity_centres_stale")
    ]


def gone_identities(project: Project, identity_ids: Sequence[int]) -> list[int]:
    """Those of ``identity_ids`` no longer in the project (taken down, discarded)."""
    have: set[int] = set()
    ids = [int(i) for i in identity_ids]
    for s0 in range(0, len(ids), CHUNK_IDS):
        chunk = ids[s0 : s0 + CHUNK_IDS]
        have.update(
            int(i)
            for (i,) in project.conn.execute(
                f"SELECT id FROM identities WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )
        )
    return [i for i in ids if i not in have]


def clear_stale(project: Project, identity_ids: Sequence[int] | None = None) -> None:
    """Forget the stale marks of ``identity_ids`` (default: all)."""
    with project.tx() as c:
        if identity_ids is None:
            c.execute("DELETE FROM identity_centres_stale")
        else:
            c.executemany(
                "DELETE FROM identity_centres_stale WHERE identity_id = ?",
                [(int(i),) for i in identity_ids],
            )
