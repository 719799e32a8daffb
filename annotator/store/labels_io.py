"""SQL for label import/export: resolving origins / face ids / clean-list names to faces, and
streaming every face's label state for export (notes go on events through core.ops)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from annotator.model import origin_of
from annotator.store.db import Project

_TEXT_FORMATS = ("msceleb", "devset", "names")
_RECORD_RE = re.compile(r"^(?P<name>.+)(?P<sep>[:#])(?P<rec>\d+)$")


@dataclass(frozen=True, slots=True)
class SourceRef:
    id: int
    name: str  # basename, as in origin strings
    format: str


def sources(project: Project) -> list[SourceRef]:
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
        for s in sources(project):
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
    out: dict[str, int] = {}
    for k in set(keys):
        row = project.conn.execute("SELECT id FROM identities WHERE key = ?", (k,)).fetchone()
        if row:
            out[k] = int(row[0])
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


@dataclass(frozen=True, slots=True)
class LabelRow:
    face_id: int
    origin: str
    identity: str
    label: str | None
    reviewer: str | None
    at: str | None
    note: str | None
    qa_verdict: str | None
    qa_reviewer: str | None
    adjudicated: str | None


def label_rows(project: Project) -> Iterator[LabelRow]:
    """Every face with its current label, who set it and when, and its latest QA verdict."""
    names = {s.id: s for s in sources(project)}
    qa: dict[int, tuple[str | None, str | None, str | None]] = {}
    for fid, verdict, qrev, adj in project.conn.execute(
        "SELECT q.face_id, q.verdict, r.name, q.adjudicated FROM qa_items q"
        " JOIN qa_passes p ON p.id = q.pass_id JOIN reviewers r ON r.id = p.reviewer_id"
        " ORDER BY q.pass_id"
    ):
        qa[int(fid)] = (verdict, qrev if verdict is not None else None, adj)  # latest pass wins
    cur = project.conn.execute(
        """
        SELECT f.id, f.source_id, f.record, f.relpath, i.key, f.label, r.name, e.at, e.note
        FROM faces f
        JOIN identities i ON i.id = f.identity_id
        LEFT JOIN events e ON e.id = f.label_event_id
        LEFT JOIN reviewers r ON r.id = e.reviewer_id
        ORDER BY f.id
        """
    )
    for fid, sid, record, relpath, key, label, rev, at, note in cur:
        s = names[sid]
        verdict, qrev, adj = qa.get(int(fid), (None, None, None))
        yield LabelRow(
            int(fid),
            origin_of(s.name, s.format, record, relpath),
            key,
            label,
            rev if label is not None else None,
            at if label is not None else None,
            note if label is not None else None,
            verdict,
            qrev,
            adj,
        )


def face_origins(project: Project, face_ids: Sequence[int]) -> dict[int, str]:
    names = {s.id: s for s in sources(project)}
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
