"""SQL for `annotator export`: the candidate faces, the figures a datasheet needs, the exports log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from annotator.store.db import Project, now
from annotator.store.labels import PROVENANCE_DETAIL_SQL, PROVENANCE_SQL


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ is ~10x slower per row
class Candidate:
    """A face whose current label is ``correct``, with what the export filters need."""

    face_id: int
    identity_id: int
    identity_key: str
    source_id: int
    source_path: str
    source_format: str
    source_fingerprint: str
    record: int | None
    relpath: str | None
    rank: int | None
    image_url: str | None
    page_url: str | None
    face_ref: str | None
    rect: tuple[float, float, float, float] | None
    corrupt: str | None  # decoder's reason; None when it decodes or was never scanned
    scanned: bool
    dup_group: int | None
    is_keeper: bool
    width: int | None
    height: int | None
    reviewer: str | None  # who gave the current label
    offset: int | None = None  # locator offset in the source (to read in file order)
    length: int | None = None  # locator length (base64 text / record payload); None for folders
    provenance: tuple[str, str | None] = ("unknown", None)  # how the label was made (+ detail)


_CANDIDATE_SQL = f"""
    SELECT f.id, f.identity_id, i.key, f.source_id, s.path, s.format, s.fingerprint,
           f.record, f.relpath, f.rank, f.image_url, f.page_url, f.face_ref,
           f.rect_x0, f.rect_y0, f.rect_x1, f.rect_y1,
           h.corrupt, h.face_id IS NOT NULL, d.group_id, COALESCE(d.is_keeper, 0),
           h.width, h.height, r.name, f.offset, f.length,
           {PROVENANCE_SQL}, {PROVENANCE_DETAIL_SQL}
    FROM faces f
    JOIN identities i ON i.id = f.identity_id
    JOIN sources s ON s.id = f.source_id
    LEFT JOIN face_hashes h ON h.face_id = f.id
    LEFT JOIN dup_groups d ON d.face_id = f.id
    LEFT JOIN events e ON e.id = f.label_event_id
    LEFT JOIN reviewers r ON r.id = e.reviewer_id
    LEFT JOIN batches b ON b.id = e.batch_id
    LEFT JOIN merged_batches m ON m.home_batch_id = b.id
    WHERE f.label = 'correct'
    ORDER BY i.key, f.id
"""


def iter_correct_faces(project: Project) -> Iterator[Candidate]:
    """Every face labeled ``correct``, ordered by identity key then face id, streamed."""
    cur = project.conn.execute(_CANDIDATE_SQL)
    shared: dict[object, object] = {}  # repeated strings (paths, keys, reviewers) share one object
    share = shared.setdefault
    try:
        while rows := cur.fetchmany(1000):
            for r in rows:
                rect = None if r[13] is None else (r[13], r[14], r[15], r[16])
                yield Candidate(
                    r[0],
                    r[1],
                    share(r[2], r[2]),  # type: ignore[arg-type]
                    r[3],
                    share(r[4], r[4]),  # type: ignore[arg-type]
                    share(r[5], r[5]),  # type: ignore[arg-type]
                    share(r[6], r[6]),  # type: ignore[arg-type]
                    r[7],
                    r[8],
                    r[9],
                    r[10],
                    r[11],
                    r[12],
                    rect,
                    r[17],
                    bool(r[18]),
                    r[19],
                    bool(r[20]),
                    r[21],
                    r[22],
                    share(r[23], r[23]),  # type: ignore[arg-type]
                    r[24],
                    r[25],
                    share((r[26], r[27]), (r[26], r[27])),  # type: ignore[arg-type]
                )
            if len(shared) > 100_000:  # many distinct keys: do not keep them all
                shared.clear()
    finally:
        cur.close()


def correct_count(project: Project) -> int:
    return int(
        project.conn.execute("SELECT count(*) FROM faces WHERE label = 'correct'").fetchone()[0]
    )


def dup_group_keepers(project: Project) -> dict[int, int]:
    """group id -> the face an export keeps: among the group's faces labeled ``correct``, the
    scan's keeper, else the lowest face id."""
    out: dict[int, int] = {}
    for gid, fid in project.conn.execute(
        "SELECT d.group_id, d.face_id FROM dup_groups d JOIN faces f ON f.id = d.face_id"
        " WHERE f.label = 'correct' ORDER BY d.group_id, d.is_keeper DESC, d.face_id"
    ):
        out.setdefault(int(gid), int(fid))
    return out


def label_counts(project: Project) -> dict[str, int]:
    """Faces per current label over the whole project (``unlabeled`` for none)."""
    return {
        (lab or "unlabeled"): n
        for lab, n in project.conn.execute(
            "SELECT label, count(*) FROM faces GROUP BY label ORDER BY label"
        )
    }


def project_totals(project: Project) -> dict[str, int]:
    one = lambda sql: int(project.conn.execute(sql).fetchone()[0])  # noqa: E731
    return {
        "faces": one("SELECT count(*) FROM faces"),
        "identities": one("SELECT count(*) FROM identities"),
        "reviewed_identities": one("SELECT count(*) FROM identities WHERE reviewed = 1"),
        "withdrawn_identities": one("SELECT count(*) FROM takedowns"),
        "sources": one("SELECT count(*) FROM sources"),
        "scanned_faces": one("SELECT count(*) FROM face_hashes"),
    }


def source_paths(project: Project) -> list[tuple[str, str]]:
    """(path, format) of every source."""
    return [(str(p), str(f)) for p, f in project.conn.execute("SELECT path, format FROM sources")]


def source_formats(project: Project) -> dict[str, int]:
    return dict(
        project.conn.execute("SELECT format, count(*) FROM sources GROUP BY format ORDER BY format")
    )


def qa_agreement(project: Project) -> dict[str, int]:
    """Raw QA figures from qa_items: items drawn, judged, agreeing, adjudicated."""
    r = project.conn.execute(
        "SELECT count(*), count(verdict), COALESCE(sum(verdict = orig_label), 0),"
        " count(adjudicated) FROM qa_items"
    ).fetchone()
    return {"items": r[0], "judged": r[1], "agreed": int(r[2]), "adjudicated": r[3]}


def record_export(
    project: Project,
    fmt: str,
    out_path: str,
    params: dict[str, object],
    faces: int,
    identities: int,
    manifest_sha256: str,
) -> tuple[int, bool]:
    """Log an export (written just before its folder is swapped into place); (its id, whether
    a row was added). When the last export logged for ``out_path`` has this very manifest, that
    row is the one returned: a rerun of an export killed before its swap writes the same bytes
    and must not be logged twice."""
    with project.tx() as c:
        last = c.execute(
            "SELECT id, manifest_sha256, format, params FROM exports WHERE out_path = ?"
            " ORDER BY id DESC LIMIT 1",
            (out_path,),
        ).fetchone()
        shown = json.dumps(params, sort_keys=True)
        if last is not None and tuple(last[1:]) == (manifest_sha256, fmt, shown):
            return int(last[0]), False
        cur = c.execute(
            "INSERT INTO exports(at, format, out_path, params, faces, identities, manifest_sha256)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (now(), fmt, out_path, shown, faces, identities, manifest_sha256),
        )
        return int(cur.lastrowid or 0), True


def forget_export(project: Project, export_id: int) -> None:
    """Take back the row of an export whose swap failed (the folder never landed)."""
    with project.tx() as c:
        c.execute("DELETE FROM exports WHERE id = ?", (export_id,))


def exports(project: Project) -> list[dict[str, object]]:
    cols = ("id", "at", "format", "out_path", "params", "faces", "identities", "manifest_sha256")
    return [
        dict(zip(cols, r, strict=True))
        for r in project.conn.execute(f"SELECT {', '.join(cols)} FROM exports ORDER BY id")
    ]
