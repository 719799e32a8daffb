"""SQL for reviewer packages: pack (copy identities into a new project file) and merge (bring a
package's new batches/events home), the package records on both sides, embedded face bytes.

A package is a project file made by the same migrations. Pack keeps every id of the home
project (faces, identities, sources, reviewers, batches, events), so merging needs no id
mapping except for what the package itself created: reviewers (matched by name), batches and
events (new ids at home, remembered in ``merged_batches`` by (package id, package batch id)).

Both directions work with the package ATTACHed to the home connection as ``pkg`` and move rows
with set operations (INSERT ... SELECT, UPDATE ... FROM), never row by row in Python. While
packing, the home file is only read (a deferred transaction: a WAL snapshot, no write lock);
a merge writes home in one short transaction per chunk of package batches.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from annotator.store.db import Project, now

LABEL_KINDS = "('label', 'adjudicate', 'move')"
MERGE_BATCH_KINDS = "('do', 'undo', 'redo', 'adjudicate')"  # QA batches stay in the package


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
    "mg_b",
    "mg_e",
    "mg_rmap",
    "mg_last",
    "mg_fs",
    "mg_ce",
    "mg_bmap",
    "mg_rv",
    "mg_cb",
    "mg_cf",
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


def note_merge(project: Project, package_id: str) -> None:
    with project.tx() as c:
        c.execute(
            "UPDATE packages SET merges = merges + 1, last_merged_at = ? WHERE id = ?",
            (now(), package_id),
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
        c.execute("COMMIT")
    except BaseException:
        if c.in_transaction:
            c.execute("ROLLBACK")
        raise
    return n


def packed_face_ids(project: Project) -> list[int]:
    return [int(r[0]) for r in project.conn.execute("SELECT id FROM faces ORDER BY id")]


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
    h.update(b"\x1eblobs")
    cur = c.execute("SELECT face_id, data FROM face_blobs ORDER BY face_id")
    while rows := cur.fetchmany(256):
        for fid, data in rows:
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


# -- merge ---------------------------------------------------------------------------------------


# what identifies a package batch besides its id: two copies of one package both number their
# new batches from the same id on
_BATCH_KEY = (
    "pb.at || '|' || (SELECT name FROM pkg.reviewers r WHERE r.id = pb.reviewer_id)"
    " || '|' || pb.kind"
)


def forked_batches(c: sqlite3.Connection, package_id: str) -> int:
    """Batches of the package whose id was merged before for another batch (the package was
    copied and both copies were worked on)."""
    return int(
        c.execute(
            f"SELECT count(*) FROM main.merged_batches m JOIN pkg.batches pb"
            f" ON pb.id = m.package_batch_id WHERE m.package_id = ? AND m.batch_key != {_BATCH_KEY}",
            (package_id,),
        ).fetchone()[0]
    )


def new_batches(c: sqlite3.Connection, package_id: str, base_batch: int) -> list[tuple[int, int]]:
    """(package batch id, events) of the package's batches made after the pack and not merged
    yet, in order (QA batches stay in the package)."""
    return [
        (int(a), int(b))
        for a, b in c.execute(
            f"""
            SELECT b.id, (SELECT count(*) FROM pkg.events e WHERE e.batch_id = b.id)
            FROM pkg.batches b
            WHERE b.id > ? AND b.kind IN {MERGE_BATCH_KINDS}
              AND NOT EXISTS (SELECT 1 FROM main.merged_batches m
                              WHERE m.package_id = ? AND m.package_batch_id = b.id)
            ORDER BY b.id
            """,
            (base_batch, package_id),
        )
    ]


@dataclass
class Conflict:
    face_id: int
    identity_id: int
    home_label: str | None
    home_reviewer: str | None
    package_label: str | None
    package_reviewer: str
    package_identity_id: int
    package_at: str
    pass_id: int


@dataclass
class ChunkResult:
    batches: int = 0
    events: int = 0
    applied: int = 0  # faces whose home state became the package's
    agreed: int = 0  # faces changed at home since the pack to the same state
    gone: int = 0  # faces (or their target identity) no longer at home
    reviews: int = 0  # identities whose review state came home
    reviews_kept: int = 0  # review changes not brought home: home changed it since the pack
    conflicts: list[Conflict] = field(default_factory=list)


def merge_chunk(
    project: Project,
    package_id: str,
    package_path: str,
    home_base_event: int,
    batch_ids: Sequence[int],
    passes: dict[int, int],
) -> ChunkResult:
    """Merge some of the package's new batches in one home transaction (``pkg`` attached).

    Per face the package's events touch: when home has no label/move event on it since the
    pack (other than what earlier merges of this package brought), its events come home and
    its state becomes the package's; when home changed it to the same state, the events come
    home as history; else it is a conflict: home keeps its label, the package's label is
    recorded as a ``qa`` event and a QA item of a merge pass (``merge_passes``) (``passes``: home reviewer id
    -> pass id of this merge, filled here), which puts it in the adjudication queue.
    """
    r = ChunkResult()
    with project.tx() as c:
        c.execute("CREATE TEMP TABLE mg_b (pid INTEGER PRIMARY KEY)")
        c.executemany("INSERT INTO temp.mg_b(pid) VALUES (?)", ((b,) for b in batch_ids))
        c.execute(
            "CREATE TEMP TABLE mg_e AS SELECT e.* FROM pkg.events e"
            " WHERE e.batch_id IN (SELECT pid FROM temp.mg_b) AND e.kind != 'qa'"
        )
        c.execute("CREATE INDEX temp.mg_e_face ON mg_e (face_id, kind, id)")
        # reviewers by name
        c.execute(
            "INSERT INTO main.reviewers(name, created_at) SELECT r.name, r.created_at"
            " FROM pkg.reviewers r WHERE (r.id IN (SELECT reviewer_id FROM temp.mg_e)"
            " OR r.id IN (SELECT reviewer_id FROM pkg.batches WHERE id IN (SELECT pid FROM temp.mg_b)))"
            " AND r.name NOT IN (SELECT name FROM main.reviewers)"
        )
        c.execute(
            "CREATE TEMP TABLE mg_rmap AS SELECT p.id AS pid, h.id AS hid FROM pkg.reviewers p"
            " JOIN main.reviewers h ON h.name = p.name"
        )
        # per touched face: the state the chunk's events leave it in (last label, last move)
        c.execute(
            f"""
            CREATE TEMP TABLE mg_last AS
            SELECT face_id,
                   max(CASE WHEN kind IN ('label', 'adjudicate') THEN id END) AS lab_ev,
                   max(CASE WHEN kind = 'move' THEN id END) AS mov_ev
            FROM temp.mg_e WHERE face_id IS NOT NULL AND kind IN {LABEL_KINDS}
            GROUP BY face_id
            """
        )
        c.execute(
            f"""
            CREATE TEMP TABLE mg_fs AS
            SELECT l.face_id AS face_id, hf.identity_id AS h_ident, hf.label AS h_label,
                   hf.label_event_id AS h_ev,
                   coalesce(CAST(mv.value AS INTEGER), hf.identity_id) AS p_ident,
                   CASE WHEN l.lab_ev IS NULL THEN hf.label ELSE lb.value END AS p_label,
                   l.lab_ev AS p_ev,
                   coalesce(lb.reviewer_id, mv.reviewer_id) AS p_rev,
                   coalesce(lb.at, mv.at) AS p_at,
                   CASE WHEN hf.id IS NULL THEN 'gone'
                        WHEN mv.value IS NOT NULL AND NOT EXISTS
                             (SELECT 1 FROM main.identities i WHERE i.id = CAST(mv.value AS INTEGER))
                             THEN 'gone'
                        WHEN NOT EXISTS (SELECT 1 FROM main.events x
                             WHERE x.face_id = l.face_id AND x.id > ?1 AND x.kind IN {LABEL_KINDS}
                               AND NOT EXISTS (SELECT 1 FROM main.merged_batches m
                                   WHERE m.home_batch_id = x.batch_id AND m.package_id = ?2))
                             THEN 'apply'
                        ELSE 'changed' END AS state
            FROM temp.mg_last l
            LEFT JOIN main.faces hf ON hf.id = l.face_id
            LEFT JOIN temp.mg_e lb ON lb.id = l.lab_ev
            LEFT JOIN temp.mg_e mv ON mv.id = l.mov_ev
            """,
            (home_base_event, package_id),
        )
        c.execute(
            "UPDATE temp.mg_fs SET state = CASE WHEN h_ident = p_ident AND h_label IS p_label"
            " THEN 'agreed' ELSE 'conflict' END WHERE state = 'changed'"
        )
        c.execute("CREATE UNIQUE INDEX temp.mg_fs_face ON mg_fs (face_id)")
        # identities whose review state the chunk changes, and whether home changed it since
        c.execute(
            """
            CREATE TEMP TABLE mg_rv AS
            SELECT e.identity_id AS ident, max(e.id) AS ev,
                   CASE WHEN NOT EXISTS (SELECT 1 FROM main.identities i WHERE i.id = e.identity_id)
                        THEN 'gone'
                        WHEN EXISTS (SELECT 1 FROM main.events x WHERE x.identity_id = e.identity_id
                             AND x.face_id IS NULL AND x.kind = 'review' AND x.id > ?1
                             AND NOT EXISTS (SELECT 1 FROM main.merged_batches m
                                 WHERE m.home_batch_id = x.batch_id AND m.package_id = ?2))
                        THEN 'kept' ELSE 'apply' END AS state
            FROM temp.mg_e e WHERE e.face_id IS NULL AND e.kind = 'review'
            GROUP BY e.identity_id
            """,
            (home_base_event, package_id),
        )
        # the events that come home, with their new ids
        e0 = int(c.execute("SELECT coalesce(max(id), 0) FROM main.events").fetchone()[0])
        c.execute(
            f"""
            CREATE TEMP TABLE mg_ce AS
            SELECT e.id AS pid, ?1 + row_number() OVER (ORDER BY e.id) AS hid
            FROM temp.mg_e e
            WHERE (e.face_id IS NOT NULL AND e.kind IN {LABEL_KINDS}
                   AND e.face_id IN (SELECT face_id FROM temp.mg_fs WHERE state IN ('apply', 'agreed')))
               OR (e.face_id IS NULL AND e.kind = 'review'
                   AND e.identity_id IN (SELECT ident FROM temp.mg_rv WHERE state = 'apply'))
            """,
            (e0,),
        )
        c.execute("CREATE UNIQUE INDEX temp.mg_ce_pid ON mg_ce (pid)")
        b0 = int(c.execute("SELECT coalesce(max(id), 0) FROM main.batches").fetchone()[0])
        c.execute(
            "CREATE TEMP TABLE mg_bmap AS SELECT b.pid AS pid, ?1 + row_number() OVER"
            " (ORDER BY b.pid) AS hid FROM temp.mg_b b WHERE b.pid IN"
            " (SELECT e.batch_id FROM temp.mg_e e JOIN temp.mg_ce ce ON ce.pid = e.id)",
            (b0,),
        )
        # batches: an undo/redo of a batch made before the pack becomes a plain step
        # ('do'): at home that batch also holds work the package never had
        c.execute(
            """
            INSERT INTO main.batches(id, reviewer_id, at, kind, target, description)
            SELECT m.hid, rm.hid, b.at,
                   CASE WHEN b.kind IN ('undo', 'redo') AND b.target <= (SELECT base_batch
                        FROM pkg.package_info) THEN 'do' ELSE b.kind END,
                   CASE WHEN b.target IS NULL OR b.target <= (SELECT base_batch
                        FROM pkg.package_info) THEN NULL
                        ELSE coalesce((SELECT t.hid FROM temp.mg_bmap t WHERE t.pid = b.target),
                             (SELECT mb.home_batch_id FROM main.merged_batches mb
                              WHERE mb.package_id = ?1 AND mb.package_batch_id = b.target)) END,
                   b.description
            FROM temp.mg_bmap m JOIN pkg.batches b ON b.id = m.pid
            JOIN temp.mg_rmap rm ON rm.pid = b.reviewer_id
            ORDER BY m.hid
            """,
            (package_id,),
        )
        c.execute(
            """
            INSERT INTO main.events(id, batch_id, reviewer_id, at, kind, face_id, identity_id,
                                    value, prev_value, note)
            SELECT ce.hid, bm.hid, rm.hid, e.at, e.kind, e.face_id, e.identity_id, e.value,
                   e.prev_value, e.note
            FROM temp.mg_ce ce JOIN temp.mg_e e ON e.id = ce.pid
            JOIN temp.mg_bmap bm ON bm.pid = e.batch_id
            JOIN temp.mg_rmap rm ON rm.pid = e.reviewer_id
            ORDER BY ce.hid
            """
        )
        c.execute(
            "INSERT INTO main.merged_batches(package_id, package_batch_id, home_batch_id,"
            f" batch_key) SELECT ?, b.pid, m.hid, {_BATCH_KEY} FROM temp.mg_b b"
            " JOIN pkg.batches pb ON pb.id = b.pid LEFT JOIN temp.mg_bmap m ON m.pid = b.pid",
            (package_id,),
        )
        # the materialised state of the applied faces, and the identities' counters
        c.execute(
            """
            UPDATE main.identities SET face_count = face_count + d.df,
                                       labeled_count = labeled_count + d.dl
            FROM (SELECT ident, sum(df) AS df, sum(dl) AS dl FROM (
                    SELECT h_ident AS ident, -1 AS df, -(h_label IS NOT NULL) AS dl
                    FROM temp.mg_fs WHERE state = 'apply'
                    UNION ALL
                    SELECT p_ident, 1, (p_label IS NOT NULL) FROM temp.mg_fs WHERE state = 'apply')
                  GROUP BY ident) AS d
            WHERE identities.id = d.ident AND (d.df != 0 OR d.dl != 0)
            """
        )
        c.execute(
            """
            UPDATE main.faces SET identity_id = s.p_ident, label = s.p_label,
                   label_event_id = coalesce((SELECT ce.hid FROM temp.mg_ce ce WHERE ce.pid = s.p_ev),
                                             faces.label_event_id)
            FROM temp.mg_fs s WHERE faces.id = s.face_id AND s.state = 'apply'
            """
        )
        c.execute(
            """
            UPDATE main.identities SET reviewed = CAST(e.value AS INTEGER),
                   reviewed_by = CASE WHEN e.value = '1' THEN rm.hid END,
                   reviewed_at = CASE WHEN e.value = '1' THEN e.at END
            FROM temp.mg_rv v JOIN temp.mg_e e ON e.id = v.ev JOIN temp.mg_rmap rm ON rm.pid = e.reviewer_id
            WHERE identities.id = v.ident AND v.state = 'apply'
            """
        )
        # conflicts: the package's label becomes a QA verdict (a 'qa' event, at the package's
        # time) in a merge pass per package reviewer (one 'qa' batch per reviewer and chunk)
        at = now()
        c.execute(
            "CREATE TEMP TABLE mg_cb (rev INTEGER PRIMARY KEY, batch INTEGER, pass INTEGER,"
            " pos INTEGER)"
        )
        for (rev,) in c.execute(
            "SELECT DISTINCT rm.hid FROM temp.mg_fs s JOIN temp.mg_rmap rm ON rm.pid = s.p_rev"
            " WHERE s.state = 'conflict' ORDER BY 1"
        ).fetchall():
            pid = passes.get(rev)
            if pid is None:
                params = json.dumps({"merge": package_id, "package": package_path})
                pid = int(
                    c.execute(
                        "INSERT INTO qa_passes(reviewer_id, created_at, seed, params)"
                        " VALUES (?, ?, 0, ?)",
                        (rev, at, params),
                    ).lastrowid
                    or 0
                )
                c.execute(
                    "INSERT INTO merge_passes(pass_id, package_id) VALUES (?, ?)", (pid, package_id)
                )
                passes[rev] = pid
            bid = c.execute(
                "INSERT INTO batches(reviewer_id, at, kind, target, description)"
                " VALUES (?, ?, 'qa', NULL, ?)",
                (rev, at, f"merge of package {package_id[:8]}: conflicts for adjudication"),
            ).lastrowid
            c.execute(
                "INSERT INTO temp.mg_cb(rev, batch, pass, pos) VALUES (?, ?, ?,"
                " (SELECT coalesce(max(position) + 1, 0) FROM qa_items WHERE pass_id = ?))",
                (rev, bid, pid, pid),
            )
        q0 = int(c.execute("SELECT coalesce(max(id), 0) FROM main.events").fetchone()[0])
        c.execute(
            """
            CREATE TEMP TABLE mg_cf AS
            SELECT s.face_id AS face_id, s.h_ident AS h_ident, s.h_label AS h_label,
                   coalesce(s.h_ev, 0) AS h_ev, rm.hid AS rev, s.p_label AS p_label,
                   s.p_ident AS p_ident, s.p_at AS p_at, cb.batch AS batch, cb.pass AS pass,
                   cb.pos - 1 + row_number() OVER (PARTITION BY rm.hid ORDER BY s.face_id) AS pos,
                   ?1 + row_number() OVER (ORDER BY s.face_id) AS ev,
                   coalesce(he.reviewer_id, rm.hid) AS h_rev
            FROM temp.mg_fs s JOIN temp.mg_rmap rm ON rm.pid = s.p_rev
            JOIN temp.mg_cb cb ON cb.rev = rm.hid
            LEFT JOIN main.events he ON he.id = s.h_ev
            WHERE s.state = 'conflict'
            """,
            (q0,),
        )
        c.execute(
            "INSERT INTO main.events(id, batch_id, reviewer_id, at, kind, face_id, identity_id,"
            " value, prev_value, note)"
            " SELECT ev, batch, rev, p_at, 'qa', face_id, h_ident, p_label, h_label,"
            " ?1 || CASE WHEN p_ident != h_ident THEN ': moved to identity ' || p_ident ELSE ''"
            " END FROM temp.mg_cf ORDER BY ev",
            (f"package {package_id[:8]}",),
        )
        c.execute(
            "INSERT INTO main.qa_items(pass_id, face_id, position, orig_label, orig_reviewer_id,"
            " orig_event_id, verdict, verdict_event_id)"
            " SELECT pass, face_id, pos, coalesce(h_label, 'unlabeled'), h_rev, h_ev,"
            " coalesce(p_label, 'unlabeled'), ev FROM temp.mg_cf WHERE true"
            " ON CONFLICT(pass_id, face_id) DO UPDATE SET verdict = excluded.verdict,"
            " verdict_event_id = excluded.verdict_event_id, orig_label = excluded.orig_label,"
            " orig_reviewer_id = excluded.orig_reviewer_id, orig_event_id = excluded.orig_event_id"
        )
        r.conflicts = [
            Conflict(*row)
            for row in c.execute(
                """
                SELECT cf.face_id, cf.h_ident, cf.h_label, hr.name, cf.p_label, pr.name,
                       cf.p_ident, cf.p_at, cf.pass
                FROM temp.mg_cf cf JOIN main.reviewers pr ON pr.id = cf.rev
                LEFT JOIN main.events he ON he.id = cf.h_ev
                LEFT JOIN main.reviewers hr ON hr.id = he.reviewer_id
                ORDER BY cf.face_id
                """
            )
        ]

        def one(sql: str) -> int:
            return int(c.execute(sql).fetchone()[0])

        r.batches = len(batch_ids)
        r.events = one("SELECT count(*) FROM temp.mg_ce")
        r.applied = one("SELECT count(*) FROM temp.mg_fs WHERE state = 'apply'")
        r.agreed = one("SELECT count(*) FROM temp.mg_fs WHERE state = 'agreed'")
        r.gone = one("SELECT count(*) FROM temp.mg_fs WHERE state = 'gone'")
        r.reviews = one("SELECT count(*) FROM temp.mg_rv WHERE state = 'apply'")
        r.reviews_kept = one("SELECT count(*) FROM temp.mg_rv WHERE state = 'kept'")
        for t in _TEMPS:
            c.execute(f"DROP TABLE IF EXISTS temp.{t}")
    return r


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
