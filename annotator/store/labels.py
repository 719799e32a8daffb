"""Reviewers, batches/events (the append-only history) and the materialised label state.

The truth is the event log; ``faces.label``, ``faces.identity_id``, ``identities.reviewed`` and the
denormalised counters are kept in step with it inside the same transaction.

Also the grouped counts of labels for `annotator stats` and the dashboard, and the label export
rows (every face's current label).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from annotator.model import HUMAN_PROVENANCE, origin_of
from annotator.store.db import Project, chunks, current_origin, now
from annotator.store.faces import source_refs


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    batch_id: int
    kind: str
    face_id: int | None
    identity_id: int | None
    value: str | None
    prev_value: str | None


def reviewer_id(project: Project, name: str) -> int:
    """The id of a reviewer, created on first use."""
    name = name.strip()
    row = project.conn.execute("SELECT id FROM reviewers WHERE name = ?", (name,)).fetchone()
    if row:
        return row[0]
    with project.tx() as c:
        c.execute(
            "INSERT INTO reviewers(name, created_at) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
            (name, now()),
        )
        return c.execute("SELECT id FROM reviewers WHERE name = ?", (name,)).fetchone()[0]


def reviewer_names(project: Project) -> dict[int, str]:
    return dict(project.conn.execute("SELECT id, name FROM reviewers"))


def new_batch(
    project: Project, reviewer: int, kind: str, description: str, target: int | None = None
) -> tuple[int, str]:
    with project.tx() as c:
        at = now()
        cur = c.execute(
            "INSERT INTO batches(reviewer_id, at, kind, target, description, origin, origin_detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (reviewer, at, kind, target, description, *current_origin(project)),
        )
        return int(cur.lastrowid), at


def discard_empty_batch(project: Project, batch_id: int) -> None:
    """Drop a batch that wrote no event (inside the transaction that created it)."""
    with project.tx() as c:
        c.execute(
            "DELETE FROM batches WHERE id = ? AND NOT EXISTS (SELECT 1 FROM events WHERE batch_id = ?)",
            (batch_id, batch_id),
        )


def insert_event(
    project: Project,
    batch_id: int,
    reviewer: int,
    at: str,
    row: tuple[str, int | None, int | None, str | None, str | None, str | None],
) -> int:
    """row: (kind, face_id, identity_id, value, prev_value, note). Returns the event id."""
    with project.tx() as c:
        cur = c.execute(
            "INSERT INTO events(batch_id, reviewer_id, at, kind, face_id, identity_id, value, prev_value, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (batch_id, reviewer, at, *row),
        )
        return int(cur.lastrowid)


def batch_events(project: Project, batch_id: int) -> list[Event]:
    c = project.conn
    return [
        Event(*r)
        for r in c.execute(
            "SELECT id, batch_id, kind, face_id, identity_id, value, prev_value FROM events"
            " WHERE batch_id = ? ORDER BY id",
            (batch_id,),
        )
    ]


def reviewer_batches(project: Project, reviewer: int) -> list[tuple[int, str, int | None, str]]:
    c = project.conn
    return list(
        c.execute(
            "SELECT id, kind, target, description FROM batches WHERE reviewer_id = ? ORDER BY id",
            (reviewer,),
        )
    )


def face_states(project: Project, face_ids: Sequence[int]) -> dict[int, tuple[int, str | None]]:
    """face_id -> (current identity id, current label) for the faces that exist."""
    c = project.conn
    out: dict[int, tuple[int, str | None]] = {}
    for chunk in chunks(list(face_ids)):
        q = f"SELECT id, identity_id, label FROM faces WHERE id IN ({','.join('?' * len(chunk))})"
        for fid, ident, label in c.execute(q, chunk):
            out[fid] = (ident, label)
    return out


def unlabeled_faces(project: Project, identity_id: int) -> list[int]:
    c = project.conn
    return [
        r[0]
        for r in c.execute(
            "SELECT id FROM faces WHERE identity_id = ? AND label IS NULL ORDER BY id",
            (identity_id,),
        )
    ]


@dataclass(frozen=True, slots=True)
class AcceptFacts:
    """What Enter's "accept the rest" needs to know about one unlabeled face of an identity:
    its flag kinds and, when it is in a duplicate group, the group's keeper (face, identity,
    current label)."""

    face_id: int
    kinds: frozenset[str]
    keeper: int | None = None
    keeper_identity: int | None = None
    keeper_label: str | None = None
    elsewhere: bool = False  # a member of its duplicate group is filed under another identity


def accept_facts(project: Project, identity_id: int) -> list[AcceptFacts]:
    """The unlabeled faces of an identity with their flag kinds, duplicate-group keeper (the
    scan's keeper in ``dup_groups``) and whether their group reaches another identity, in face
    order."""
    c = project.conn
    rows = c.execute(
        """SELECT f.id,
                  (SELECT group_concat(DISTINCT fl.kind) FROM flag_faces ff
                     JOIN flags fl ON fl.id = ff.flag_id WHERE ff.face_id = f.id),
                  k.face_id, kf.identity_id, kf.label,
                  EXISTS (SELECT 1 FROM dup_groups o JOIN faces of ON of.id = o.face_id
                          WHERE o.group_id = d.group_id AND of.identity_id != f.identity_id)
           FROM faces f
           LEFT JOIN dup_groups d ON d.face_id = f.id
           LEFT JOIN dup_groups k ON k.group_id = d.group_id AND k.is_keeper = 1
           LEFT JOIN faces kf ON kf.id = k.face_id
           WHERE f.identity_id = ? AND f.label IS NULL ORDER BY f.id""",
        (identity_id,),
    ).fetchall()
    out: list[AcceptFacts] = []
    seen: set[int] = set()
    for fid, kinds, keeper, kident, klabel, elsewhere in rows:
        if fid in seen:  # (a group with two keepers would repeat a face: keep the first)
            continue
        seen.add(fid)
        out.append(
            AcceptFacts(
                int(fid),
                frozenset(kinds.split(",")) if kinds else frozenset(),
                None if keeper is None else int(keeper),
                None if kident is None else int(kident),
                klabel,
                bool(elsewhere),
            )
        )
    return out


def apply_labels(
    project: Project, changes: Sequence[tuple[int, int, str | None, str | None, int | None]]
) -> None:
    """changes: (face_id, identity_id, old_label, new_label, event_id). Keeps labeled_count right."""
    with project.tx() as c:
        c.executemany(
            "UPDATE faces SET label = ?, label_event_id = ? WHERE id = ?",
            ((new, ev, fid) for fid, _i, _old, new, ev in changes),
        )
        delta: dict[int, int] = {}
        for _fid, ident, old, new, _ev in changes:
            d = (new is not None) - (old is not None)
            if d:
                delta[ident] = delta.get(ident, 0) + d
        c.executemany(
            "UPDATE identities SET labeled_count = labeled_count + ? WHERE id = ?",
            ((d, i) for i, d in delta.items()),
        )


def apply_moves(project: Project, moves: Sequence[tuple[int, int, int, str | None]]) -> None:
    """moves: (face_id, from_identity, to_identity, current label). Keeps the counters right
    (faces, labeled faces, flagged faces; suspicion waits for the next scan's flag step)."""
    with project.tx() as c:
        c.executemany(
            "UPDATE faces SET identity_id = ? WHERE id = ?",
            ((to, fid) for fid, _f, to, _l in moves),
        )
        for fid, frm, to, label in moves:
            lab = 1 if label is not None else 0
            # a flagged face takes its flag count along (the header's "N flagged")
            flg = (
                1
                if c.execute("SELECT 1 FROM flag_faces WHERE face_id = ?", (fid,)).fetchone()
                else 0
            )
            c.execute(
                "UPDATE identities SET face_count = face_count - 1, labeled_count = labeled_count - ?,"
                " flagged_count = max(flagged_count - ?, 0) WHERE id = ?",
                (lab, flg, frm),
            )
            c.execute(
                "UPDATE identities SET face_count = face_count + 1, labeled_count = labeled_count + ?,"
                " flagged_count = flagged_count + ? WHERE id = ?",
                (lab, flg, to),
            )


def identity_review_state(project: Project, identity_id: int) -> bool | None:
    c = project.conn
    row = c.execute("SELECT reviewed FROM identities WHERE id = ?", (identity_id,)).fetchone()
    return None if row is None else bool(row[0])


def set_identity_reviewed(
    project: Project, identity_id: int, reviewed: bool, reviewer: int, at: str
) -> None:
    with project.tx() as c:
        if reviewed:
            c.execute(
                "UPDATE identities SET reviewed = 1, reviewed_by = ?, reviewed_at = ? WHERE id = ?",
                (reviewer, at, identity_id),
            )
        else:
            c.execute(
                "UPDATE identities SET reviewed = 0, reviewed_by = NULL, reviewed_at = NULL WHERE id = ?",
                (identity_id,),
            )


def identity_exists(project: Project, identity_id: int) -> bool:
    c = project.conn
    return c.execute("SELECT 1 FROM identities WHERE id = ?", (identity_id,)).fetchone() is not None


# -- label export ----------------------------------------------------------------------------


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
    names = {s.id: s for s in source_refs(project)}
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


# -- grouped counts for `annotator stats` ----------------------------------------------------


def faces_by_label(project: Project) -> dict[str, int]:
    return {
        (lab or "unlabeled"): n
        for lab, n in project.conn.execute("SELECT label, count(*) FROM faces GROUP BY label")
    }


def faces_by_review_state(project: Project) -> dict[str, int]:
    """Faces of reviewed / unreviewed identities."""
    out = {"reviewed": 0, "unreviewed": 0}
    for rev, n in project.conn.execute(
        "SELECT i.reviewed, count(*) FROM faces f JOIN identities i ON i.id = f.identity_id"
        " GROUP BY i.reviewed"
    ):
        out["reviewed" if rev else "unreviewed"] += n
    return out


def identities_by_state(project: Project) -> dict[str, int]:
    """Identities: reviewed, partly labeled (not reviewed), untouched, empty (no faces)."""
    row = project.conn.execute(
        """SELECT
             COALESCE(sum(reviewed = 1), 0),
             COALESCE(sum(reviewed = 0 AND labeled_count > 0), 0),
             COALESCE(sum(reviewed = 0 AND labeled_count = 0 AND face_count > 0), 0),
             COALESCE(sum(reviewed = 0 AND face_count = 0), 0)
           FROM identities"""
    ).fetchone()
    return {"reviewed": row[0], "partly_labeled": row[1], "untouched": row[2], "empty": row[3]}


def identities_by_label(project: Project) -> dict[str, int]:
    """Identities having at least one face with each label."""
    return {
        (lab or "unlabeled"): n
        for lab, n in project.conn.execute(
            "SELECT label, count(DISTINCT identity_id) FROM faces GROUP BY label"
        )
    }


def moved_faces(project: Project) -> int:
    """Faces whose current identity differs from the imported one (misfiled in the raw data)."""
    return int(
        project.conn.execute(
            "SELECT count(*) FROM faces WHERE identity_id != orig_identity_id AND label IS NOT NULL"
        ).fetchone()[0]
    )


def noisy_faces(project: Project) -> int:
    """Labeled faces that were wrong in the raw data: labeled ``wrong_identity`` or
    ``duplicate``, or moved to another identity (each face counted once)."""
    return int(
        project.conn.execute(
            "SELECT count(*) FROM faces WHERE label IS NOT NULL AND"
            " (label IN ('wrong_identity', 'duplicate') OR identity_id != orig_identity_id)"
        ).fetchone()[0]
    )


def face_counts(project: Project) -> list[int]:
    """Faces per identity, for identities that have faces."""
    return [
        r[0] for r in project.conn.execute("SELECT face_count FROM identities WHERE face_count > 0")
    ]


def labels_by_reviewer(project: Project) -> dict[str, dict[str, int]]:
    """reviewer -> label -> faces whose *current* label that reviewer gave."""
    out: dict[str, dict[str, int]] = {}
    for name, lab, n in project.conn.execute(
        "SELECT r.name, f.label, count(*) FROM faces f JOIN events e ON e.id = f.label_event_id"
        " JOIN reviewers r ON r.id = e.reviewer_id WHERE f.label IS NOT NULL"
        " GROUP BY r.name, f.label ORDER BY r.name, f.label"
    ):
        out.setdefault(name, {})[lab] = n
    return out


# A batch's provenance (model.PROVENANCE) and its detail, over ``batches b`` LEFT JOINed with
# ``merged_batches m ON m.home_batch_id = b.id``: a package's batch merged home, a QA
# adjudication, else the channel the batch recorded (NULL before m014: unknown).
PROVENANCE_SQL = (
    "CASE WHEN m.home_batch_id IS NOT NULL THEN 'merge' WHEN b.kind = 'adjudicate'"
    " THEN 'adjudication' ELSE coalesce(b.origin, 'unknown') END"
)
PROVENANCE_DETAIL_SQL = (
    "CASE WHEN m.home_batch_id IS NOT NULL THEN m.package_id"
    " WHEN b.kind = 'adjudicate' THEN NULL ELSE b.origin_detail END"
)
_HUMAN = "(" + ", ".join(f"'{k}'" for k in sorted(HUMAN_PROVENANCE)) + ")"


def faces_by_provenance(project: Project) -> list[tuple[str, str | None, str, int]]:
    """(provenance, detail, label, faces) of the labelled faces: how each current label was
    made (the batch of its label event)."""
    return [
        (str(p), d, str(lab), int(n))
        for p, d, lab, n in project.conn.execute(
            f"SELECT {PROVENANCE_SQL}, {PROVENANCE_DETAIL_SQL}, f.label, count(*) FROM faces f"
            " JOIN events e ON e.id = f.label_event_id JOIN batches b ON b.id = e.batch_id"
            " LEFT JOIN merged_batches m ON m.home_batch_id = b.id"
            " WHERE f.label IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
    ]


def moves_by_provenance(project: Project) -> dict[str, int]:
    """provenance -> faces now filed under another identity than the imported one, by how
    the latest move of each was made."""
    return {
        str(p): int(n)
        for p, n in project.conn.execute(
            f"SELECT {PROVENANCE_SQL}, count(*) FROM faces f"
            " JOIN events e ON e.id = (SELECT max(id) FROM events WHERE face_id = f.id"
            "   AND kind = 'move')"
            " JOIN batches b ON b.id = e.batch_id"
            " LEFT JOIN merged_batches m ON m.home_batch_id = b.id"
            " WHERE f.identity_id != f.orig_identity_id GROUP BY 1 ORDER BY 1"
        )
    }


_NOT_UNDONE = (
    "WITH last AS (SELECT target, max(id) AS id FROM batches"
    "   WHERE kind IN ('undo', 'redo') GROUP BY target),"
    " undone AS (SELECT l.target FROM last l JOIN batches u ON u.id = l.id"
    "   WHERE u.kind = 'undo')"
)


def label_batches(project: Project) -> list[tuple[str, str, int]]:
    """(reviewer, time, faces judged) of every forward batch of a human review action (made in
    the reviewer, or a QA adjudication) that judged faces and is not undone now — label and
    adjudication events of 'do' batches, QA verdicts, confirming adjudications; not undo/redo
    batches themselves, nor a step whose latest undo/redo is an undo; not label files, merged
    packages or history of unknown provenance — ordered by reviewer and time."""
    return list(
        project.conn.execute(
            _NOT_UNDONE + " SELECT r.name, b.at, count(e.id) FROM batches b"
            " JOIN reviewers r ON r.id = b.reviewer_id"
            " JOIN events e ON e.batch_id = b.id AND e.kind IN ('label', 'adjudicate', 'qa')"
            " LEFT JOIN merged_batches m ON m.home_batch_id = b.id"
            " WHERE b.kind IN ('do', 'qa', 'adjudicate') AND b.id NOT IN (SELECT target FROM undone)"
            f" AND {PROVENANCE_SQL} IN {_HUMAN}"
            " GROUP BY b.id ORDER BY r.name, b.at, b.id"
        )
    )


def judged_not_by_hand(project: Project) -> dict[str, int]:
    """provenance -> faces judged by forward batches not undone that activity leaves out (label
    files, merged packages, unknown provenance)."""
    return {
        str(p): int(n)
        for p, n in project.conn.execute(
            _NOT_UNDONE + f" SELECT {PROVENANCE_SQL}, count(e.id) FROM batches b"
            " JOIN events e ON e.batch_id = b.id AND e.kind IN ('label', 'adjudicate', 'qa')"
            " LEFT JOIN merged_batches m ON m.home_batch_id = b.id"
            " WHERE b.kind IN ('do', 'qa', 'adjudicate') AND b.id NOT IN (SELECT target FROM undone)"
            f" AND {PROVENANCE_SQL} NOT IN {_HUMAN} GROUP BY 1 ORDER BY 1"
        )
    }
