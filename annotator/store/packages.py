"""SQL for reviewer packages: pack (copy identities into a new project file), the package
records on both sides, the content digest, embedded face bytes. The merge's reads and writes
are in ``package_merge.py``.

A package is a project file made by the same migrations. Pack keeps every id of the home
project (faces, identities, sources, reviewers, batches, events) and records what each packed
face is (``package_faces``: its content digest), so a merge finds home faces by source, origin
and content and identities by key, never trusting an id. Pack ATTACHes the package to the home
connection as ``pkg`` and copies with INSERT ... SELECT, reading home in one deferred
transaction (a WAL snapshot, no write lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from annotator.store.db import Project, now

# -- attaching ---------------------------------------------------------------------------------


@contextlib.contextmanager
def attached(project: Project, path: str | Path) -> Iterator[sqlite3.Connection]:
    """The package file ATTACHed to the home connection as ``pkg`` (detached on exit)."""
    c = project.conn
    c.execute("ATTACH DATABASE ? AS pkg", (str(path),))
    try:
        yield c
    finally:
        if c.in_transaction:
            c.execute("ROLLBACK")
        for t in _TEMPS:
            c.execute(f"DROP TABLE IF EXISTS temp.{t}")
        c.execute("DETACH DATABASE pkg")


_TEMPS = (
    "pk_sel",
    "pk_faces",
    "pk_batches",
)


def set_delete_journal(path: str | Path) -> None:
    """A package travels as one file: no -wal beside it."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()


# -- project id, package records ---------------------------------------------------------------


def project_id(project: Project) -> str:
    pid = project.meta("project_id")
    assert pid is not None  # m005_packages gives every project one
    return pid


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """The record inside a package file."""

    id: str
    home_project_id: str
    home_path: str
    packed_at: str
    home_base_batch: int
    home_base_event: int
    base_batch: int
    base_event: int
    with_images: bool
    digest: str


def package_info(project: Project) -> PackageInfo | None:
    row = project.conn.execute(
        "SELECT id, home_project_id, home_path, packed_at, home_base_batch, home_base_event,"
        " base_batch, base_event, with_images, digest FROM package_info"
    ).fetchone()
    if row is None:
        return None
    return PackageInfo(*row[:8], bool(row[8]), row[9])  # type: ignore[call-arg]


@dataclass(frozen=True, slots=True)
class PackageRecord:
    """A package as the home project remembers it."""

    id: str
    out_path: str
    packed_at: str
    base_batch: int
    base_event: int
    identities: int
    faces: int
    with_images: bool
    digest: str
    merges: int
    last_merged_at: str | None

    @property
    def state(self) -> str:
        return "merged" if self.merges else "out"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "path": self.out_path,
            "packed_at": self.packed_at,
            "identities": self.identities,
            "faces": self.faces,
            "with_images": self.with_images,
            "state": self.state,
            "merges": self.merges,
            "last_merged_at": self.last_merged_at,
        }


_REC_SQL = (
    "SELECT id, out_path, packed_at, base_batch, base_event, identities, faces, with_images,"
    " digest, merges, last_merged_at FROM packages"
)


def _record(r: Sequence[object]) -> PackageRecord:
    return PackageRecord(*r[:7], bool(r[7]), *r[8:])  # type: ignore[arg-type]


def package_record(project: Project, package_id: str) -> PackageRecord | None:
    row = project.conn.execute(_REC_SQL + " WHERE id = ?", (package_id,)).fetchone()
    return _record(row) if row else None


def package_records(project: Project) -> list[PackageRecord]:
    return [_record(r) for r in project.conn.execute(_REC_SQL + " ORDER BY packed_at, id")]


def record_package(project: Project, rec: PackageRecord, identity_ids: Iterable[int]) -> None:
    """Remember a package sent out (one short transaction)."""
    with project.tx() as c:
        c.execute(
            "INSERT INTO packages(id, out_path, packed_at, base_batch, base_event, identities,"
            " faces, with_images, digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                rec.id,
                rec.out_path,
                rec.packed_at,
                rec.base_batch,
                rec.base_event,
                rec.identities,
                rec.faces,
                int(rec.with_images),
                rec.digest,
            ),
        )
        c.executemany(
            "INSERT OR IGNORE INTO package_identities(package_id, identity_id) VALUES (?, ?)",
            ((rec.id, i) for i in identity_ids),
        )


def note_merge(project: Project, package_id: str, count: bool = True) -> None:
    """A merge brought the package's work home (``count``: a new merge, else one more chunk
    of the same)."""
    with project.tx() as c:
        c.execute(
            "UPDATE packages SET merges = merges + ?, last_merged_at = ? WHERE id = ?",
            (int(count), now(), package_id),
        )


# -- selecting what to pack -------------------------------------------------------------------


def unreviewed_identities(project: Project, n: int) -> list[int]:
    """The ``n`` first unreviewed identities with faces in review order (most suspicious first),
    leaving out those already in a package that is still out (never merged)."""
    return [
        int(r[0])
        for r in project.conn.execute(
            """
            SELECT i.id FROM identities i
            WHERE i.reviewed = 0 AND i.face_count > 0
              AND NOT EXISTS (SELECT 1 FROM package_identities pi
                              JOIN packages p ON p.id = pi.package_id
                              WHERE pi.identity_id = i.id AND p.merges = 0)
            ORDER BY i.reviewed, i.suspicion DESC, i.id LIMIT ?
            """,
            (n,),
        )
    ]


# -- pack ----------------------------------------------------------------------------------------


@dataclass
class PackCounts:
    identities: int = 0
    faces: int = 0
    events: int = 0
    batches: int = 0
    flags: int = 0
    home_base_batch: int = 0
    home_base_event: int = 0
    base_batch: int = 0
    base_event: int = 0


def copy_into_package(c: sqlite3.Connection, identity_ids: Sequence[int]) -> PackCounts:
    """Copy the identities, their faces and everything about them from ``main`` (home) into the
    attached, empty ``pkg``, keeping ids. Reads home in one deferred transaction (a snapshot;
    home writers are not blocked) and commits the package."""
    c.execute("CREATE TEMP TABLE pk_sel (id INTEGER PRIMARY KEY)")
    c.executemany("INSERT OR IGNORE INTO temp.pk_sel(id) VALUES (?)", ((i,) for i in identity_ids))
    n = PackCounts()
    c.execute("BEGIN")
    try:
        hb, he = c.execute(
            "SELECT (SELECT coalesce(max(id), 0) FROM main.batches),"
            " (SELECT coalesce(max(id), 0) FROM main.events)"
        ).fetchone()
        n.home_base_batch, n.home_base_event = int(hb), int(he)
        _copy_faces(c)
        _copy_history(c)
        _count(c, n)
        c.execute("COMMIT")
    except BaseException:
        if c.in_transaction:
            c.execute("ROLLBACK")
        raise
    return n


def _copy_faces(c: sqlite3.Connection) -> None:
    """Sources, identities (and stubs), names, faces, hashes, whole flags and groups."""
    c.execute(
        "CREATE TEMP TABLE pk_faces AS SELECT id, orig_identity_id, source_id FROM main.faces"
        " WHERE identity_id IN (SELECT id FROM temp.pk_sel)"
    )
    c.execute("CREATE UNIQUE INDEX temp.pk_faces_id ON pk_faces (id)")
    c.execute("INSERT INTO pkg.reviewers SELECT * FROM main.reviewers")
    c.execute(
        "INSERT INTO pkg.sources SELECT * FROM main.sources"
        " WHERE id IN (SELECT source_id FROM temp.pk_faces)"
    )
    c.execute(
        "INSERT INTO pkg.identities SELECT * FROM main.identities"
        " WHERE id IN (SELECT id FROM temp.pk_sel)"
    )
    # identities some packed faces were imported under (they moved since): empty stubs,
    # so faces.orig_identity_id stays a valid reference; marked reviewed so that they do
    # not show up as work in the package
    c.execute(
        "INSERT INTO pkg.identities(id, key, face_count, labeled_count, flagged_count,"
        " suspicion, reviewed) SELECT id, key, 0, 0, 0, 0, 1 FROM main.identities"
        " WHERE id IN (SELECT orig_identity_id FROM temp.pk_faces)"
        " AND id NOT IN (SELECT id FROM temp.pk_sel)"
    )
    c.execute(
        "INSERT INTO pkg.identity_names SELECT * FROM main.identity_names"
        " WHERE identity_id IN (SELECT id FROM pkg.identities)"
    )
    c.execute(
        "INSERT INTO pkg.name_words SELECT * FROM main.name_words"
        " WHERE identity_id IN (SELECT id FROM pkg.identities)"
    )
    c.execute(
        "INSERT INTO pkg.faces SELECT * FROM main.faces"
        " WHERE identity_id IN (SELECT id FROM temp.pk_sel) ORDER BY id"
    )
    c.execute(
        "INSERT INTO pkg.face_hashes SELECT * FROM main.face_hashes"
        " WHERE face_id IN (SELECT id FROM temp.pk_faces)"
    )
    # flags and duplicate groups whose every face is packed
    c.execute(
        "INSERT INTO pkg.flags SELECT * FROM main.flags f WHERE f.id IN"
        " (SELECT ff.flag_id FROM main.flag_faces ff WHERE ff.face_id IN"
        "  (SELECT id FROM temp.pk_faces))"
        " AND NOT EXISTS (SELECT 1 FROM main.flag_faces x WHERE x.flag_id = f.id"
        "  AND x.face_id NOT IN (SELECT id FROM temp.pk_faces))"
    )
    c.execute(
        "INSERT INTO pkg.flag_faces SELECT * FROM main.flag_faces"
        " WHERE flag_id IN (SELECT id FROM pkg.flags)"
    )
    c.execute(
        "INSERT INTO pkg.dup_groups SELECT * FROM main.dup_groups d WHERE d.group_id IN"
        " (SELECT g.group_id FROM main.dup_groups g WHERE g.face_id IN"
        "  (SELECT id FROM temp.pk_faces))"
        " AND NOT EXISTS (SELECT 1 FROM main.dup_groups x WHERE x.group_id = d.group_id"
        "  AND x.face_id NOT IN (SELECT id FROM temp.pk_faces))"
    )


def _copy_history(c: sqlite3.Connection) -> None:
    # label history so far: events of the packed faces and review events of the packed
    # identities, their batches and the batches those compensate (undo/redo targets)
    c.execute(
        "CREATE TEMP TABLE pk_batches AS SELECT DISTINCT batch_id AS id FROM main.events"
        " WHERE face_id IN (SELECT id FROM temp.pk_faces)"
        " OR (face_id IS NULL AND identity_id IN (SELECT id FROM temp.pk_sel))"
    )
    c.execute(
        "INSERT INTO temp.pk_batches SELECT target FROM main.batches WHERE id IN"
        " (SELECT id FROM temp.pk_batches) AND target IS NOT NULL"
        " AND target NOT IN (SELECT id FROM temp.pk_batches)"
    )
    c.execute(
        "INSERT INTO pkg.batches SELECT * FROM main.batches"
        " WHERE id IN (SELECT id FROM temp.pk_batches) ORDER BY id"
    )
    c.execute(
        "INSERT INTO pkg.events SELECT * FROM main.events"
        " WHERE face_id IN (SELECT id FROM temp.pk_faces)"
        " OR (face_id IS NULL AND identity_id IN (SELECT id FROM temp.pk_sel)) ORDER BY id"
    )


def _count(c: sqlite3.Connection, n: PackCounts) -> None:
    def one(sql: str) -> int:
        return int(c.execute(sql).fetchone()[0])

    n.identities = one(
        "SELECT count(*) FROM temp.pk_sel WHERE id IN (SELECT id FROM pkg.identities)"
    )
    n.faces = one("SELECT count(*) FROM pkg.faces")
    n.events = one("SELECT count(*) FROM pkg.events")
    n.batches = one("SELECT count(*) FROM pkg.batches")
    n.flags = one("SELECT count(*) FROM pkg.flags")
    n.base_batch = one("SELECT coalesce(max(id), 0) FROM pkg.batches")
    n.base_event = one("SELECT coalesce(max(id), 0) FROM pkg.events")


def package_counts(project: Project) -> tuple[int, int, int, set[int], set[int]]:
    """In a package: faces, events, flags, its identity ids, the identities its faces are in."""
    c = project.conn

    def one(sql: str) -> int:
        return int(c.execute(sql).fetchone()[0])

    return (
        one("SELECT count(*) FROM faces"),
        one("SELECT count(*) FROM events"),
        one("SELECT count(*) FROM flags"),
        {int(r[0]) for r in c.execute("SELECT id FROM identities")},
        {int(r[0]) for r in c.execute("SELECT DISTINCT identity_id FROM faces")},
    )


def packed_face_ids(project: Project) -> list[int]:
    return [int(r[0]) for r in project.conn.execute("SELECT id FROM faces ORDER BY id")]


def faces_without_digest(project: Project) -> list[int]:
    """Packed faces the home scan gave no content digest (they are read to make one)."""
    return [
        int(r[0])
        for r in project.conn.execute(
            "SELECT f.id FROM faces f LEFT JOIN face_hashes h ON h.face_id = f.id"
            " WHERE h.sha256 IS NULL ORDER BY f.id"
        )
    ]


def record_face_digests(project: Project, rows: Sequence[tuple[int, bytes]]) -> None:
    """(face id, sha256 of its bytes): what a packed face is, for the merge to find it again
    (faces the scan digested are recorded from face_hashes)."""
    with project.tx() as c:
        c.execute(
            "INSERT OR REPLACE INTO package_faces(face_id, sha256) SELECT face_id, sha256"
            " FROM face_hashes WHERE sha256 IS NOT NULL"
        )
        c.executemany("INSERT OR REPLACE INTO package_faces(face_id, sha256) VALUES (?, ?)", rows)


def insert_blobs(project: Project, rows: Sequence[tuple[int, bytes]]) -> None:
    with project.tx() as c:
        c.executemany("INSERT OR REPLACE INTO face_blobs(face_id, data) VALUES (?, ?)", rows)


def write_package_info(project: Project, info: PackageInfo) -> None:
    with project.tx() as c:
        c.execute("DELETE FROM package_info")
        c.execute(
            "INSERT INTO package_info(id, home_project_id, home_path, packed_at, home_base_batch,"
            " home_base_event, base_batch, base_event, with_images, digest)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                info.id,
                info.home_project_id,
                info.home_path,
                info.packed_at,
                info.home_base_batch,
                info.home_base_event,
                info.base_batch,
                info.base_event,
                int(info.with_images),
                info.digest,
            ),
        )


def content_digest(project: Project, info: PackageInfo) -> str:
    """sha256 over what a package holds that its reviewer cannot change: the record, sources,
    identities, faces' locators and provenance, hashes, the history up to the pack, bytes."""
    c = project.conn
    h = hashlib.sha256()
    head = [
        info.id,
        info.home_project_id,
        info.packed_at,
        info.home_base_batch,
        info.home_base_event,
        info.base_batch,
        info.base_event,
        int(info.with_images),
    ]
    h.update(json.dumps(head).encode())
    queries = [
        "SELECT id, path, format, size, fingerprint FROM sources ORDER BY id",
        "SELECT id, key FROM identities ORDER BY id",
        "SELECT id, orig_identity_id, source_id, record, relpath, offset, length, rank,"
        " face_ref FROM faces ORDER BY id",
        "SELECT face_id, hex(sha256), phash, dhash, width, height, corrupt FROM face_hashes"
        " ORDER BY face_id",
        f"SELECT id, reviewer_id, at, kind, target, description FROM batches WHERE id <= {int(info.base_batch)} ORDER BY id",
        "SELECT id, batch_id, reviewer_id, at, kind, face_id, identity_id, value, prev_value,"
        f" note FROM events WHERE batch_id <= {int(info.base_batch)} ORDER BY id",
        "SELECT id, name FROM reviewers WHERE id IN (SELECT reviewer_id FROM batches"
        f" WHERE id <= {int(info.base_batch)}) ORDER BY id",
    ]
    for sql in queries:
        h.update(b"\x1e" + sql.encode())
        cur = c.execute(sql)
        while rows := cur.fetchmany(8192):
            h.update(repr(rows).encode())
    if c.execute("SELECT 1 FROM package_faces LIMIT 1").fetchone() is not None:
        # packages made before m015 have none: their digest stays what it was
        h.update(b"\x1epackage_faces")
        cur = c.execute("SELECT face_id, hex(sha256) FROM package_faces ORDER BY face_id")
        while rows := cur.fetchmany(8192):
            h.update(repr(rows).encode())
    h.update(b"\x1eblobs")
    cur = c.execute("SELECT face_id, data FROM face_blobs ORDER BY face_id")
    while rows := cur.fetchmany(256):
        for fid, data in rows:
            if not isinstance(fid, int) or not isinstance(data, bytes):  # crafted: never equal
                h.update(repr((fid, data)).encode())
                continue
            h.update(int(fid).to_bytes(8, "little", signed=True))
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
    return h.hexdigest()


# -- embedded bytes ------------------------------------------------------------------------------


def has_blobs(project: Project) -> bool:
    return project.conn.execute("SELECT 1 FROM face_blobs LIMIT 1").fetchone() is not None


def blobs(project: Project, face_ids: Sequence[int]) -> dict[int, bytes]:
    """face id -> embedded bytes, for the faces that have them."""
    out: dict[int, bytes] = {}
    for i in range(0, len(face_ids), 900):
        chunk = list(face_ids[i : i + 900])
        q = ",".join("?" * len(chunk))
        out.update(
            project.conn.execute(
                f"SELECT face_id, data FROM face_blobs WHERE face_id IN ({q})", chunk
            )
        )
    return out


def embedded_ids(project: Project, face_ids: Sequence[int]) -> set[int]:
    """Those of ``face_ids`` whose bytes are embedded (without reading the bytes)."""
    out: set[int] = set()
    for i in range(0, len(face_ids), 900):
        chunk = list(face_ids[i : i + 900])
        q = ",".join("?" * len(chunk))
        out.update(
            r[0]
            for r in project.conn.execute(
                f"SELECT face_id FROM face_blobs WHERE face_id IN ({q})", chunk
            )
        )
    return out


def blobs_in_file(path: str, face_ids: Sequence[int]) -> dict[int, bytes]:
    """Like :func:`blobs`, with a read-only connection of its own (for worker threads and
    processes, which never share the project's connection)."""
    uri = Path(path).absolute().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    try:
        out: dict[int, bytes] = {}
        for i in range(0, len(face_ids), 900):
            chunk = list(face_ids[i : i + 900])
            q = ",".join("?" * len(chunk))
            out.update(
                conn.execute(f"SELECT face_id, data FROM face_blobs WHERE face_id IN ({q})", chunk)
            )
        return out
    except sqlite3.Error:
        return {}
    finally:
        conn.close()


def source_paths(project: Project) -> list[str]:
    return [str(r[0]) for r in project.conn.execute("SELECT path FROM sources")]


# -- info ----------------------------------------------------------------------------------------


def summary(project: Project) -> dict[str, object]:
    """Packages out (never merged) and merged, with details, for `annotator info`; in a
    package file, ``of``: where it comes from."""
    recs = package_records(project)
    info = package_info(project)
    return {
        "out": sum(1 for r in recs if not r.merges),
        "merged": sum(1 for r in recs if r.merges),
        "list": [r.to_json() for r in recs],
        "of": None
        if info is None
        else {
            "id": info.id,
            "home_path": info.home_path,
            "packed_at": info.packed_at,
            "with_images": info.with_images,
        },
    }
