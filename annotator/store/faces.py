"""Sources, import runs, rejected rows, identities, identity names (and their search words)
and faces: the tables an import fills.

Every function takes a :class:`Project`; writers join the caller's transaction
(``with project.tx():`` around several calls makes them one), so the importer puts a batch of
rows and its resume position in one transaction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from annotator.model import Rejected, origin_of
from annotator.store.db import Project, now
from annotator.store.names import refresh_name_words


@dataclass(frozen=True, slots=True)
class Source:
    id: int
    path: str
    format: str
    size: int
    mtime: float
    fingerprint: str
    complete: bool
    resume_pos: int
    resume_record: int


_SOURCE_COLS = "id, path, format, size, mtime, fingerprint, complete, resume_pos, resume_record"


def _source(row: Sequence[object]) -> Source:
    return Source(
        int(row[0]),
        str(row[1]),
        str(row[2]),
        int(row[3]),
        float(row[4]),
        str(row[5]),  # type: ignore[arg-type]
        bool(row[6]),
        int(row[7]),
        int(row[8]),  # type: ignore[arg-type]
    )


# -- sources ---------------------------------------------------------------------------------


def get_source(project: Project, path: str, fmt: str) -> Source | None:
    row = project.conn.execute(
        f"SELECT {_SOURCE_COLS} FROM sources WHERE path = ? AND format = ?", (path, fmt)
    ).fetchone()
    return _source(row) if row else None


def source_by_id(project: Project, source_id: int) -> Source | None:
    row = project.conn.execute(
        f"SELECT {_SOURCE_COLS} FROM sources WHERE id = ?", (source_id,)
    ).fetchone()
    return _source(row) if row else None


def all_sources(project: Project) -> list[Source]:
    return [
        _source(r) for r in project.conn.execute(f"SELECT {_SOURCE_COLS} FROM sources ORDER BY id")
    ]


def add_source(
    project: Project, path: str, fmt: str, size: int, mtime: float, fingerprint: str
) -> Source:
    with project.tx() as c:
        c.execute(
            "INSERT INTO sources(path, format, size, mtime, fingerprint, added_at) VALUES (?, ?, ?, ?, ?, ?)",
            (path, fmt, size, mtime, fingerprint, now()),
        )
    src = get_source(project, path, fmt)
    assert src is not None
    return src


def update_source_stat(project: Project, source_id: int, size: int, mtime: float) -> None:
    """Record a new size/mtime for a source whose content fingerprint did not change."""
    with project.tx() as c:
        c.execute("UPDATE sources SET size = ?, mtime = ? WHERE id = ?", (size, mtime, source_id))


def set_resume(
    project: Project, source_id: int, pos: int, record: int, complete: bool = False
) -> None:
    with project.tx() as c:
        c.execute(
            "UPDATE sources SET resume_pos = ?, resume_record = ?, complete = ? WHERE id = ?",
            (pos, record, int(complete), source_id),
        )


# -- import runs ---------------------------------------------------------------------------


def start_run(project: Project, source_id: int) -> int:
    with project.tx() as c:
        cur = c.execute(
            "INSERT INTO import_runs(source_id, started_at, status) VALUES (?, ?, 'running')",
            (source_id, now()),
        )
        return int(cur.lastrowid or 0)


def update_run(project: Project, run_id: int, imported: int, skipped: int, rejected: int) -> None:
    with project.tx() as c:
        c.execute(
            "UPDATE import_runs SET imported = ?, skipped = ?, rejected = ? WHERE id = ?",
            (imported, skipped, rejected, run_id),
        )


def finish_run(
    project: Project, run_id: int, status: str, imported: int, skipped: int, rejected: int
) -> None:
    with project.tx() as c:
        update_run(project, run_id, imported, skipped, rejected)
        c.execute(
            "UPDATE import_runs SET status = ?, finished_at = ? WHERE id = ?",
            (status, now(), run_id),
        )


# -- rejected rows -------------------------------------------------------------------------


def insert_rejected(project: Project, source_id: int, rows: Iterable[Rejected]) -> None:
    with project.tx() as c:
        c.executemany(
            "INSERT INTO rejected_rows(source_id, record, origin, reason) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(source_id, origin) DO UPDATE SET reason = excluded.reason",
            [(source_id, r.record, r.origin, r.reason) for r in rows],
        )


def rejected_of_source(project: Project, source_id: int) -> list[Rejected]:
    return [
        Rejected(o, r, rec)
        for o, r, rec in project.conn.execute(
            "SELECT origin, reason, record FROM rejected_rows WHERE source_id = ? ORDER BY record, id",
            (source_id,),
        )
    ]


# -- identities and names ------------------------------------------------------------------


def identity_ids(project: Project) -> dict[str, int]:
    """Every identity key -> id (100k-1M entries for the big datasets: fine in memory)."""
    return dict(project.conn.execute("SELECT key, id FROM identities"))


def create_identities(project: Project, keys: Iterable[str]) -> dict[str, int]:
    """Create (or find) identities by key; returns key -> id."""
    with project.tx() as c:
        out: dict[str, int] = {}
        for k in keys:
            row = c.execute(
                "INSERT INTO identities(key) VALUES (?) ON CONFLICT(key) DO UPDATE SET key = excluded.key "
                "RETURNING id",
                (k,),
            ).fetchone()
            out[k] = int(row[0])
        return out


def insert_names(project: Project, rows: Iterable[tuple[int, str, str]]) -> int:
    """Insert (identity_id, lang, name); the first name per language wins. Returns rows added."""
    with project.tx() as c:
        rows = list(rows)
        before = c.total_changes
        c.executemany(
            "INSERT INTO identity_names(identity_id, lang, name) VALUES (?, ?, ?) "
            "ON CONFLICT(identity_id, lang) DO NOTHING",
            rows,
        )
        added = c.total_changes - before
        if added:
            refresh_name_words(c, {r[0] for r in rows})
        return added


def refresh_face_counts(project: Project, ids: Iterable[int]) -> None:
    """Recount identities.face_count for the given identities (index range scans)."""
    with project.tx() as c:
        c.executemany(
            "UPDATE identities SET face_count = (SELECT count(*) FROM faces WHERE identity_id = ?) WHERE id = ?",
            [(i, i) for i in ids],
        )


def takedown_digests(project: Project) -> set[str]:
    return {r[0] for r in project.conn.execute("SELECT key_digest FROM takedowns")}


# -- faces ---------------------------------------------------------------------------------

# identity_id, source_id, record, relpath, offset, length, rank, image_url, page_url, face_ref,
# x0, y0, x1, y1
FaceRow = tuple[
    int,
    int,
    int | None,
    str | None,
    int | None,
    int | None,
    int | None,
    str | None,
    str | None,
    str | None,
    float | None,
    float | None,
    float | None,
    float | None,
]


def insert_faces(project: Project, rows: Sequence[FaceRow]) -> int:
    """Bulk insert; rows already present (same source + record/relpath) are ignored.

    Returns the number of rows actually inserted.
    """
    with project.tx() as c:
        before = c.total_changes
        c.executemany(
            "INSERT OR IGNORE INTO faces(identity_id, orig_identity_id, source_id, record, relpath, "
            "offset, length, rank, image_url, page_url, face_ref, rect_x0, rect_y0, rect_x1, rect_y1) "
            "VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            rows,
        )
        return c.total_changes - before


def source_face_count(project: Project, source_id: int) -> int:
    return int(
        project.conn.execute(
            "SELECT count(*) FROM faces WHERE source_id = ?", (source_id,)
        ).fetchone()[0]
    )


def source_run_imported(project: Project, source_id: int) -> int:
    """Rows imported from a source over all its import runs."""
    row = project.conn.execute(
        "SELECT coalesce(sum(imported), 0) FROM import_runs WHERE source_id = ?", (source_id,)
    ).fetchone()
    return int(row[0])


@dataclass(frozen=True, slots=True)
class FaceLocation:
    face_id: int
    source_id: int
    record: int | None
    relpath: str | None
    offset: int | None
    length: int | None


def face_locations(project: Project, face_ids: Sequence[int]) -> dict[int, FaceLocation]:
    """Locators of the given faces (missing ids are absent from the result)."""
    out: dict[int, FaceLocation] = {}
    conn = project.conn
    for i in range(0, len(face_ids), 500):
        chunk = list(face_ids[i : i + 500])
        q = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT id, source_id, record, relpath, offset, length FROM faces WHERE id IN ({q})",
            chunk,
        ):
            out[row[0]] = FaceLocation(*row)
    return out


# -- project summary and identity listing (`annotator info`) ---------------------------------


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


def source_summaries(project: Project) -> list[dict[str, object]]:
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


# -- faces by reference (label files, QA origins) ---------------------------------------------

_TEXT_FORMATS = ("msceleb", "devset", "names")
_RECORD_RE = re.compile(r"^(?P<name>.+)(?P<sep>[:#])(?P<rec>\d+)$")


@dataclass(frozen=True, slots=True)
class SourceRef:
    id: int
    name: str  # basename, as in origin strings
    format: str


def source_refs(project: Project) -> list[SourceRef]:
    return [
        SourceRef(int(i), os.path.basename(p), f)
        for i, p, f in project.conn.execute("SELECT id, path, format FROM sources ORDER BY id")
    ]


class FaceResolver:
    """Turns the reference strings of label files (origin or face id) into face ids."""

    def __init__(self, project: Project):
        self.conn = project.conn
        self.by_name: dict[str, list[SourceRef]] = {}
        self.folders: list[SourceRef] = []
        for s in source_refs(project):
            self.by_name.setdefault(s.name, []).append(s)
            if s.format == "folder":
                self.folders.append(s)

    def face_exists(self, face_id: int) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM faces WHERE id = ?", (face_id,)).fetchone() is not None
        )

    def by_origin(self, origin: str) -> list[int]:
        """Face ids whose origin string is ``origin`` (several when source names repeat)."""
        out: list[int] = []
        m = _RECORD_RE.match(origin)
        if m:
            want = "rec" if m["sep"] == "#" else None
            for s in self.by_name.get(m["name"], []):
                if (want == "rec") != (s.format == "rec") or s.format == "folder":
                    continue
                row = self.conn.execute(
                    "SELECT id FROM faces WHERE source_id = ? AND record = ?", (s.id, int(m["rec"]))
                ).fetchone()
                if row:
                    out.append(int(row[0]))
        if not out:
            for s in self.folders:
                row = self.conn.execute(
                    "SELECT id FROM faces WHERE source_id = ? AND relpath = ?", (s.id, origin)
                ).fetchone()
                if row:
                    out.append(int(row[0]))
        return out


def identity_ids_by_key(project: Project, keys: Iterable[str]) -> dict[str, int]:
    """key -> identity id for the keys that exist (one IN query per 900 keys)."""
    wanted = sorted(set(keys))
    out: dict[str, int] = {}
    for i in range(0, len(wanted), 900):
        chunk = wanted[i : i + 900]
        q = ",".join("?" * len(chunk))
        out.update(
            project.conn.execute(f"SELECT key, id FROM identities WHERE key IN ({q})", chunk)
        )
    return out


def faces_by_rank_ref(
    project: Project, identity_id: int
) -> dict[tuple[int | None, str | None], list[int]]:
    """(rank, face_ref) -> face ids of the faces imported under ``identity_id``."""
    out: dict[tuple[int | None, str | None], list[int]] = {}
    for fid, rank, ref in project.conn.execute(
        "SELECT id, rank, face_ref FROM faces WHERE orig_identity_id = ? ORDER BY id",
        (identity_id,),
    ):
        out.setdefault((rank, ref), []).append(int(fid))
    return out


def resident_faces(project: Project, identity_id: int) -> list[int]:
    """Faces imported under ``identity_id`` that are still there (not moved away by a reviewer)."""
    return [
        int(r[0])
        for r in project.conn.execute(
            "SELECT id FROM faces WHERE identity_id = ?1 AND orig_identity_id = ?1 ORDER BY id",
            (identity_id,),
        )
    ]


def face_origins(project: Project, face_ids: Sequence[int]) -> dict[int, str]:
    names = {s.id: s for s in source_refs(project)}
    out: dict[int, str] = {}
    ids = list(face_ids)
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        q = ",".join("?" * len(chunk))
        for fid, sid, record, relpath in project.conn.execute(
            f"SELECT id, source_id, record, relpath FROM faces WHERE id IN ({q})", chunk
        ):
            s = names[sid]
            out[int(fid)] = origin_of(s.name, s.format, record, relpath)
    return out
