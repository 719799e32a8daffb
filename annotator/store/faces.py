"""SQL for sources, import runs, rejected rows, identities, identity names and faces.

Bulk writes take the connection of an open transaction (``with project.tx() as c``) so the
importer can put a batch of rows and its resume position in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from annotator.model import Rejected
from annotator.store import namesearch
from annotator.store.db import Project, now


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
            namesearch.refresh(c, {r[0] for r in rows})
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
