"""SQL for `annotator stats` and the GUI dashboard: grouped counts, no per-face rows."""

from __future__ import annotations

from annotator.store.db import Project


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


def label_batches(project: Project) -> list[tuple[str, str, int]]:
    """(reviewer, time, faces judged) of every forward batch that judged faces — label and
    adjudication events of 'do' batches, QA verdicts, confirming adjudications; not undo/redo
    — ordered by reviewer and time."""
    return list(
        project.conn.execute(
            "SELECT r.name, b.at, count(e.id) FROM batches b"
            " JOIN reviewers r ON r.id = b.reviewer_id"
            " JOIN events e ON e.batch_id = b.id AND e.kind IN ('label', 'adjudicate', 'qa')"
            " WHERE b.kind IN ('do', 'qa', 'adjudicate') GROUP BY b.id ORDER BY r.name, b.at, b.id"
        )
    )


def qa_pairs(project: Project) -> list[tuple[str, str, str]]:
    """(original reviewer, original label, QA verdict) of every judged QA item."""
    return list(
        project.conn.execute(
            "SELECT r.name, q.orig_label, q.verdict FROM qa_items q"
            " JOIN reviewers r ON r.id = q.orig_reviewer_id WHERE q.verdict IS NOT NULL"
            " ORDER BY r.name"
        )
    )


def qa_drawn(project: Project) -> int:
    return int(project.conn.execute("SELECT count(*) FROM qa_items").fetchone()[0])
