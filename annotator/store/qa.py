"""SQL for QA passes: candidates, items, verdict and adjudication events.

QA verdicts are events of kind ``qa`` in batches of kind ``qa`` (so they are never part of a
reviewer's undo stack and never touch ``faces.label``). Adjudications that change a label go
through ``core.ops`` (kind ``adjudicate``); an adjudication that confirms the current label is
recorded here as its own ``adjudicate`` event in a batch of kind ``adjudicate``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from annotator.store.db import Project, current_origin, now


@dataclass(frozen=True, slots=True)
class Candidate:
    face_id: int
    label: str
    reviewer_id: int  # reviewer of the event that set the current label
    event_id: int


@dataclass
class Candidates:
    """The faces a QA pass may draw, as arrays (~26 bytes a face, not an object each), in face
    id order; ``label[i]`` indexes ``labels``."""

    face_id: np.ndarray  # int64
    reviewer_id: np.ndarray  # int64: reviewer of the event that set the current label
    event_id: np.ndarray  # int64
    label: np.ndarray  # int16
    labels: list[str]

    def __len__(self) -> int:
        return len(self.face_id)

    def candidate(self, i: int) -> Candidate:
        return Candidate(
            int(self.face_id[i]),
            self.labels[int(self.label[i])],
            int(self.reviewer_id[i]),
            int(self.event_id[i]),
        )


def candidates(project: Project, exclude_reviewer: int) -> Candidates:
    """Labeled faces whose current label was set by someone else than ``exclude_reviewer``,
    that ``exclude_reviewer`` never labeled, moved or adjudicated (a QA look must be blind), and
    that no earlier QA pass already checked in this same state (same label event)."""
    cur = project.conn.execute(
        """
        SELECT f.id, f.label, e.reviewer_id, e.id FROM faces f
        JOIN events e ON e.id = f.label_event_id
        WHERE f.label IS NOT NULL AND e.reviewer_id != ?1
          AND NOT EXISTS (SELECT 1 FROM qa_items q
                          WHERE q.face_id = f.id AND q.orig_event_id = f.label_event_id)
          AND NOT EXISTS (SELECT 1 FROM events x
                          WHERE x.face_id = f.id AND x.reviewer_id = ?1
                            AND x.kind IN ('label', 'move', 'adjudicate'))
        ORDER BY f.id
        """,
        (exclude_reviewer,),
    )
    codes: dict[str, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    while True:
        rows = None  # drop the last chunk before fetching the next one
        rows = cur.fetchmany(8192)
        if not rows:
            break
        n = len(rows)
        parts.append(
            (
                np.fromiter((r[0] for r in rows), np.int64, n),
                np.fromiter((r[2] for r in rows), np.int64, n),
                np.fromiter((r[3] for r in rows), np.int64, n),
                np.fromiter((codes.setdefault(str(r[1]), len(codes)) for r in rows), np.int16, n),
            )
        )
    cols = [
        np.concatenate([p[j] for p in parts]) if parts else np.zeros(0, np.int64) for j in range(4)
    ]
    return Candidates(cols[0], cols[1], cols[2], cols[3].astype(np.int16), list(codes))


def create_pass(
    project: Project,
    reviewer_id: int,
    seed: int,
    params: dict[str, object],
    items: Sequence[Candidate],
    population: int | None = None,
) -> int:
    """One pass and its items (in the given order) in one transaction; returns the pass id.
    With ``population`` (faces it was drawn from uniformly at random) an estimate pass."""
    with project.tx() as c:
        cur = c.execute(
            "INSERT INTO qa_passes(reviewer_id, created_at, seed, params) VALUES (?, ?, ?, ?)",
            (reviewer_id, now(), seed, json.dumps(params, sort_keys=True)),
        )
        pid = int(cur.lastrowid or 0)
        if population is not None:
            c.execute(
                "INSERT INTO estimate_passes(pass_id, population) VALUES (?, ?)", (pid, population)
            )
        c.executemany(
            "INSERT INTO qa_items(pass_id, face_id, position, orig_label, orig_reviewer_id,"
            " orig_event_id) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (pid, it.face_id, pos, it.label, it.reviewer_id, it.event_id)
                for pos, it in enumerate(items)
            ],
        )
    return pid


@dataclass(frozen=True, slots=True)
class PassInfo:
    id: int
    reviewer_id: int
    reviewer: str
    created_at: str
    seed: int
    params: dict[str, object]


def get_pass(project: Project, pass_id: int) -> PassInfo | None:
    row = project.conn.execute(
        "SELECT p.id, p.reviewer_id, r.name, p.created_at, p.seed, p.params FROM qa_passes p"
        " JOIN reviewers r ON r.id = p.reviewer_id WHERE p.id = ?",
        (pass_id,),
    ).fetchone()
    if row is None:
        return None
    return PassInfo(int(row[0]), int(row[1]), row[2], row[3], int(row[4]), json.loads(row[5]))


def pass_summaries(project: Project) -> list[tuple[int, str, str, int, int, int]]:
    """(pass id, QA reviewer, created at, seed, items, items with a verdict) of every pass."""
    return [
        (int(a), str(b), str(c), int(d), int(e), int(f))
        for a, b, c, d, e, f in project.conn.execute(
            "SELECT p.id, r.name, p.created_at, p.seed, count(q.face_id), count(q.verdict)"
            " FROM qa_passes p JOIN reviewers r ON r.id = p.reviewer_id"
            " LEFT JOIN qa_items q ON q.pass_id = p.id"
            " WHERE p.id NOT IN (SELECT pass_id FROM merge_passes)"
            " GROUP BY p.id ORDER BY p.id"
        )
    ]


@dataclass(frozen=True, slots=True)
class Item:
    pass_id: int
    face_id: int
    position: int
    orig_label: str
    orig_reviewer_id: int
    orig_reviewer: str
    qa_reviewer: str
    verdict: str | None
    adjudicated: str | None
    identity_id: int
    identity_key: str


_NOT_MERGE = "p.id NOT IN (SELECT pass_id FROM merge_passes)"
# blind QA of labels: neither merge conflicts nor estimate passes (random faces, no label asked)
_LABEL_QA = _NOT_MERGE + " AND p.id NOT IN (SELECT pass_id FROM estimate_passes)"

_ITEM_SQL = """
    SELECT q.pass_id, q.face_id, q.position, q.orig_label, q.orig_reviewer_id, ro.name, rq.name,
           q.verdict, q.adjudicated, f.identity_id, i.key
    FROM qa_items q
    JOIN qa_passes p ON p.id = q.pass_id
    JOIN reviewers ro ON ro.id = q.orig_reviewer_id
    JOIN reviewers rq ON rq.id = p.reviewer_id
    JOIN faces f ON f.id = q.face_id
    JOIN identities i ON i.id = f.identity_id
"""


def items(
    project: Project, pass_id: int | None = None, merges: bool = False, estimates: bool = False
) -> list[Item]:
    """Every item (of one pass, or of all passes), in pass then position order. Items of
    ``merge`` passes (conflicts a package merge queued, see store/packages.py) only with
    ``merges``: they are no blind QA sample; items of estimate passes (no label was asked
    about) only with ``estimates``."""
    only = "1" if merges else _NOT_MERGE
    if not estimates:
        only += " AND p.id NOT IN (SELECT pass_id FROM estimate_passes)"
    if pass_id is None:
        rows = project.conn.execute(_ITEM_SQL + f" WHERE {only} ORDER BY q.pass_id, q.position")
    else:
        rows = project.conn.execute(
            _ITEM_SQL + f" WHERE q.pass_id = ? AND {only} ORDER BY q.position", (pass_id,)
        )
    return [Item(*r) for r in rows]


def item(project: Project, pass_id: int, face_id: int) -> Item | None:
    row = project.conn.execute(
        _ITEM_SQL + " WHERE q.pass_id = ? AND q.face_id = ?", (pass_id, face_id)
    ).fetchone()
    return Item(*row) if row else None


@dataclass(frozen=True, slots=True)
class BlindRow:
    face_id: int
    position: int
    identity_id: int
    identity_key: str
    verdict: str | None


def blind_items(
    project: Project, pass_id: int, include_done: bool, limit: int | None
) -> list[BlindRow]:
    """Items for the QA reviewer: never the original label or reviewer."""
    # an estimate pass asks about the identity each face was imported with
    sql = (
        "SELECT q.face_id, q.position, i.id, i.key, q.verdict FROM qa_items q"
        " JOIN faces f ON f.id = q.face_id JOIN identities i ON i.id = CASE WHEN EXISTS"
        "  (SELECT 1 FROM estimate_passes x WHERE x.pass_id = q.pass_id)"
        "  THEN f.orig_identity_id ELSE f.identity_id END"
        " WHERE q.pass_id = ?"
    )
    if not include_done:
        sql += " AND q.verdict IS NULL"
    sql += " ORDER BY q.position"
    args: list[object] = [pass_id]
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return [BlindRow(*r) for r in project.conn.execute(sql, args)]


def record_verdict(
    project: Project,
    pass_id: int,
    face_id: int,
    identity_id: int,
    verdict: str,
    previous: str | None,
    reviewer_id: int,
) -> int:
    """A ``qa`` event in its own ``qa`` batch, and the item's verdict; returns the event id."""
    at = now()
    with project.tx() as c:
        bid = c.execute(
            "INSERT INTO batches(reviewer_id, at, kind, target, description, origin, origin_detail)"
            " VALUES (?, ?, 'qa', NULL, ?, ?, ?)",
            (
                reviewer_id,
                at,
                f"QA pass {pass_id}: face {face_id} {verdict}",
                *current_origin(project),
            ),
        ).lastrowid
        ev = int(
            c.execute(
                "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id, identity_id, value,"
                " prev_value, note) VALUES (?, ?, ?, 'qa', ?, ?, ?, ?, ?)",
                (
                    bid,
                    reviewer_id,
                    at,
                    face_id,
                    identity_id,
                    verdict,
                    previous,
                    f"qa pass {pass_id}",
                ),
            ).lastrowid
            or 0
        )
        c.execute(
            "UPDATE qa_items SET verdict = ?, verdict_event_id = ? WHERE pass_id = ? AND face_id = ?",
            (verdict, ev, pass_id, face_id),
        )
    return ev


def record_confirming_adjudication(
    project: Project, pass_id: int, face_id: int, identity_id: int, label: str, reviewer_id: int
) -> int:
    """An adjudication that keeps the current label: its own event, faces.label untouched."""
    at = now()
    with project.tx() as c:
        bid = c.execute(
            "INSERT INTO batches(reviewer_id, at, kind, target, description, origin, origin_detail)"
            " VALUES (?, ?, 'adjudicate', NULL, ?, ?, ?)",
            (
                reviewer_id,
                at,
                f"adjudicate QA pass {pass_id}: face {face_id} {label}",
                *current_origin(project),
            ),
        ).lastrowid
        return int(
            c.execute(
                "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id, identity_id, value,"
                " prev_value, note) VALUES (?, ?, ?, 'adjudicate', ?, ?, ?, ?, ?)",
                (bid, reviewer_id, at, face_id, identity_id, label, label, f"qa pass {pass_id}"),
            ).lastrowid
            or 0
        )


def set_adjudicated(
    project: Project, pass_id: int, face_id: int, label: str, event_id: int
) -> None:
    with project.tx() as c:
        c.execute(
            "UPDATE qa_items SET adjudicated = ?, adjudicated_event_id = ? WHERE pass_id = ? AND face_id = ?",
            (label, event_id, pass_id, face_id),
        )


def adjudication_event(project: Project, batch_id: int, face_id: int) -> int | None:
    row = project.conn.execute(
        "SELECT id FROM events WHERE batch_id = ? AND face_id = ? AND kind = 'adjudicate'",
        (batch_id, face_id),
    ).fetchone()
    return int(row[0]) if row else None


def identity_item_states(project: Project) -> list[tuple[int, str, str | None, str | None]]:
    """(current identity id, orig label, verdict, adjudicated) of every QA item."""
    return [
        (int(a), b, c, d)
        for a, b, c, d in project.conn.execute(
            "SELECT f.identity_id, q.orig_label, q.verdict, q.adjudicated FROM qa_items q"
            " JOIN faces f ON f.id = q.face_id JOIN qa_passes p ON p.id = q.pass_id"
            f" WHERE {_LABEL_QA}"
        )
    ]


# -- for `annotator stats` -------------------------------------------------------------------


def qa_pairs(project: Project) -> list[tuple[str, str, str]]:
    """(original reviewer, original label, QA verdict) of every judged QA item."""
    return list(
        project.conn.execute(
            "SELECT r.name, q.orig_label, q.verdict FROM qa_items q"
            " JOIN reviewers r ON r.id = q.orig_reviewer_id JOIN qa_passes p ON p.id = q.pass_id"
            f" WHERE q.verdict IS NOT NULL AND {_LABEL_QA} ORDER BY r.name"
        )
    )


def qa_drawn(project: Project) -> int:
    """Items of blind label QA passes (not estimate samples; merge conflicts included)."""
    return int(
        project.conn.execute(
            "SELECT count(*) FROM qa_items"
            " WHERE pass_id NOT IN (SELECT pass_id FROM estimate_passes)"
        ).fetchone()[0]
    )


# -- estimate passes: faces drawn uniformly at random ------------------------------------------


def all_face_ids(project: Project) -> np.ndarray:
    """Every face id of the project (the population of an estimate pass), ascending."""
    cur = project.conn.execute("SELECT id FROM faces ORDER BY id")
    parts = []
    while rows := cur.fetchmany(65536):
        parts.append(np.fromiter((r[0] for r in rows), np.int64, len(rows)))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def label_states(project: Project, face_ids: Sequence[int], nobody: int) -> list[Candidate]:
    """The faces with their current label ('unlabeled' when none), its reviewer (``nobody``
    when none) and event (0 when none), in the order given."""
    out: dict[int, Candidate] = {}
    ids = list(face_ids)
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        for fid, lab, rid, eid in project.conn.execute(
            "SELECT f.id, f.label, e.reviewer_id, f.label_event_id FROM faces f"
            " LEFT JOIN events e ON e.id = f.label_event_id"
            f" WHERE f.id IN ({','.join('?' * len(part))})",
            part,
        ):
            out[int(fid)] = Candidate(
                int(fid),
                lab or "unlabeled",
                nobody if rid is None else int(rid),
                0 if lab is None else int(eid or 0),
            )
    return [out[f] for f in ids if f in out]


def is_estimate_pass(project: Project, pass_id: int) -> int | None:
    """The population of an estimate pass; None for any other pass."""
    row = project.conn.execute(
        "SELECT population FROM estimate_passes WHERE pass_id = ?", (pass_id,)
    ).fetchone()
    return int(row[0]) if row else None


def estimate_verdicts(project: Project) -> list[tuple[int, int, str | None]]:
    """(pass id, population, verdict or None) of every item of every estimate pass."""
    return [
        (int(a), int(b), c)
        for a, b, c in project.conn.execute(
            "SELECT q.pass_id, x.population, coalesce(q.adjudicated, q.verdict) FROM qa_items q"
            " JOIN estimate_passes x ON x.pass_id = q.pass_id ORDER BY q.pass_id, q.position"
        )
    ]


def anyone_else_labeled(project: Project, reviewer: str) -> bool:
    """Whether some face's current label was given by another reviewer than ``reviewer`` (a
    blind label QA pass of theirs has something to draw; the sample itself checks more)."""
    return (
        project.conn.execute(
            "SELECT 1 FROM faces f JOIN events e ON e.id = f.label_event_id"
            " JOIN reviewers r ON r.id = e.reviewer_id WHERE r.name != ? LIMIT 1",
            (reviewer.strip(),),
        ).fetchone()
        is not None
    )
