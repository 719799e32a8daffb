"""The rules of `annotator merge`, as plain functions over rows (no SQL, tested without a
project): is every event of a package one a user could have typed, is a home face the face
that was packed, and per face and identity whether the package's work comes home (apply),
is already so at home (agreed), waits for adjudication (conflict) or has nowhere to go (gone).
``core/review/merge.py`` reads the rows through ``store/package_merge.py`` and writes the plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from annotator.model import LABELS, AnnotatorError, check_reviewer

BATCH_KINDS = ("do", "undo", "redo", "adjudicate", "qa")
# event kinds a batch of each kind may hold (as core.ops and core.review.qa write them)
EVENT_KINDS = {
    "do": ("label", "move", "review"),
    "undo": ("label", "move", "review"),
    "redo": ("label", "move", "review"),
    "adjudicate": ("adjudicate",),
    "qa": ("qa",),
}
MAX_TEXT = 10_000  # a batch description or an event note
MAX_AT = 64


class PkgBatch(NamedTuple):
    id: int
    reviewer_id: int
    at: str
    kind: str
    target: int | None
    description: str


class PkgEvent(NamedTuple):
    id: int
    batch_id: int
    reviewer_id: int
    at: str
    kind: str
    face_id: int | None
    identity_id: int | None
    value: str | None
    prev_value: str | None
    note: str | None


@dataclass(frozen=True)
class Scope:
    """What a package may speak about: its packed faces and identities (covered by its
    digest), its reviewers, every batch id it holds, the last batch id at pack time."""

    base_batch: int
    faces: frozenset[int]
    identities: Mapping[int, str]  # package identity id -> key
    reviewers: Mapping[int, str]
    batches: frozenset[int]


# -- is every event one a user could have typed ------------------------------------------------


def _text_problem(value: object, what: str, limit: int) -> str | None:
    if not isinstance(value, str):
        return f"{what} is not text"
    if "\x00" in value:
        return f"{what} holds a NUL character"
    if len(value) > limit:
        return f"{what} is longer than {limit:,} characters"
    return None


def _ident_id(value: object, scope: Scope) -> int | None:
    """The package identity a move names, or None."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        i = int(value)
        return i if i in scope.identities else None
    return None


def batch_problem(b: PkgBatch, scope: Scope) -> str | None:
    if not isinstance(b.id, int) or b.id <= scope.base_batch:
        return "is not a batch made after the pack"
    if b.kind not in BATCH_KINDS:
        return f"has an unknown kind {str(b.kind)[:40]!r}"
    name = scope.reviewers.get(b.reviewer_id) if isinstance(b.reviewer_id, int) else None
    if name is None:
        return "names no reviewer of the package"
    try:
        if check_reviewer(str(name)) != name:
            return "has a reviewer name with blanks around it"
    except AnnotatorError as e:
        return str(e)
    for problem in (
        _text_problem(b.at, "its time", MAX_AT),
        _text_problem(b.description, "its description", MAX_TEXT),
    ):
        if problem:
            return problem
    if b.kind in ("undo", "redo"):
        if not isinstance(b.target, int) or b.target not in scope.batches or b.target >= b.id:
            return f"is an {b.kind} of no earlier batch of the package"
    elif b.target is not None:
        return f"is a {b.kind} step with a target"
    return None


def event_problem(e: PkgEvent, batch: PkgBatch | None, scope: Scope) -> str | None:
    if batch is None:
        return "belongs to no batch made after the pack"
    if e.reviewer_id != batch.reviewer_id:
        return "has another reviewer than its batch"
    if e.kind not in EVENT_KINDS[batch.kind]:
        return f"is a {str(e.kind)[:40]!r} event in a {batch.kind} batch"
    for problem in (
        _text_problem(e.at, "its time", MAX_AT),
        None if e.note is None else _text_problem(e.note, "its note", MAX_TEXT),
    ):
        if problem:
            return problem
    if e.kind == "qa":  # stays in the package: QA is done at home
        return None
    if e.identity_id not in scope.identities:
        return "names an identity that is not in the package"
    if e.kind == "review":
        if e.face_id is not None:
            return "is a review event of a face"
        if e.value not in ("0", "1") or e.prev_value not in ("0", "1", None):
            return "is a review event whose value is not 0 or 1"
        return None
    if e.face_id not in scope.faces:
        return "names a face that was not packed"
    if e.kind == "move":
        if _ident_id(e.value, scope) is None or _ident_id(e.prev_value, scope) is None:
            return "moves a face to or from an identity that is not in the package"
        return None
    # label / adjudicate
    if (e.value is None and e.kind == "adjudicate") or (
        e.value is not None and e.value not in LABELS
    ):
        return f"has an unknown label {str(e.value)[:40]!r}"
    if e.prev_value is not None and e.prev_value not in LABELS:
        return f"has an unknown previous label {str(e.prev_value)[:40]!r}"
    return None


def first_problem(
    batches: Sequence[PkgBatch], events: Sequence[PkgEvent], scope: Scope
) -> str | None:
    """The first batch or event a user could not have made, said in a few words (None when
    every one is fine)."""
    by_id: dict[int, PkgBatch] = {}
    for b in batches:
        problem = batch_problem(b, scope)
        if problem:
            return f"batch {b.id} {problem}"
        by_id[b.id] = b
    for e in events:
        problem = event_problem(e, by_id.get(e.batch_id), scope)
        if problem:
            return f"event {e.id} ({str(e.kind)[:20]}) {problem}"
    return None


# -- is the home face the face that was packed --------------------------------------------------


class FaceMatch(NamedTuple):
    """A packed face and the home face at the same source and origin (if any)."""

    pkg_face: int
    home_id: int | None
    identity_id: int | None
    label: str | None
    label_event_id: int | None
    pkg_sha: bytes | None  # content digest at pack time
    home_sha: bytes | None  # from home's scan
    pkg_fingerprint: str | None
    home_fingerprint: str | None
    pkg_offset: int | None
    home_offset: int | None
    pkg_length: int | None
    home_length: int | None


def same_face(m: FaceMatch, home_bytes: bytes | None = None) -> bool | None:
    """True when the home face is what was packed: same source and origin and the same
    content (home's scan digest, or ``home_bytes`` read now); None: the bytes must be read.
    A package made before content digests were recorded, of a face never scanned, is matched
    by its unchanged source file and locator."""
    if m.home_id is None:
        return False
    if m.pkg_sha is not None:
        if m.home_sha is not None:
            return bytes(m.home_sha) == bytes(m.pkg_sha)
        if home_bytes is None:
            return None
        return hashlib.sha256(home_bytes).digest() == bytes(m.pkg_sha)
    return (m.pkg_fingerprint, m.pkg_offset, m.pkg_length) == (
        m.home_fingerprint,
        m.home_offset,
        m.home_length,
    )


# -- per face and identity: apply, agreed, conflict, gone ---------------------------------------


class HomeFace(NamedTuple):
    id: int
    identity_id: int
    label: str | None
    label_event_id: int | None
    changed: bool  # home labelled or moved it since the pack (not through this package)


@dataclass
class FaceDecision:
    face: int  # package face id
    state: str  # apply | agreed | conflict | gone
    home: HomeFace | None
    p_ident: int | None = None  # home identity the package leaves it in
    p_label: str | None = None
    lab_ev: int | None = None  # package event id of its last label
    p_rev: int = 0  # package reviewer of its last label or move
    p_at: str = ""


def _face_events(events: Iterable[PkgEvent]) -> dict[int, list[PkgEvent]]:
    out: dict[int, list[PkgEvent]] = {}
    for e in events:
        if e.face_id is not None and e.kind in ("label", "adjudicate", "move"):
            out.setdefault(e.face_id, []).append(e)
    return out


def _idents_of(evs: Sequence[PkgEvent]) -> set[int]:
    out: set[int] = set()
    for e in evs:
        if e.identity_id is not None:
            out.add(e.identity_id)
        if e.kind == "move":
            out.update(int(v) for v in (e.value, e.prev_value) if v is not None)
    return out


def decide_faces(
    events: Sequence[PkgEvent],
    homes: Mapping[int, HomeFace | None],
    home_ident: Mapping[int, int | None],
) -> dict[int, FaceDecision]:
    """Per packed face the events touch. ``homes``: package face id -> the home face that is
    it (None: not at home any more); ``home_ident``: package identity id -> home identity id
    with the same key (None: gone)."""
    out: dict[int, FaceDecision] = {}
    for face, evs in _face_events(events).items():
        home = homes.get(face)
        if home is None or any(home_ident.get(i) is None for i in _idents_of(evs)):
            out[face] = FaceDecision(face, "gone", home)
            continue
        labels = [e for e in evs if e.kind != "move"]
        moves = [e for e in evs if e.kind == "move"]
        last = labels[-1] if labels else None
        p_ident = home_ident[int(moves[-1].value or 0)] if moves else home.identity_id
        p_label = last.value if last else home.label
        who = last or moves[-1]
        if not home.changed:
            state = "apply"
        elif (home.identity_id, home.label) == (p_ident, p_label):
            state = "agreed"
        else:
            state = "conflict"
        out[face] = FaceDecision(
            face, state, home, p_ident, p_label, last.id if last else None, who.reviewer_id, who.at
        )
    return out


@dataclass
class ReviewDecision:
    ident: int  # package identity id
    home_ident: int | None
    state: str  # apply | kept | gone
    event: PkgEvent


def decide_reviews(
    events: Sequence[PkgEvent], home_ident: Mapping[int, int | None], changed: set[int]
) -> dict[int, ReviewDecision]:
    """Per identity whose review state the events change: comes home unless home changed it
    since the pack (``changed``: home identity ids) or the identity is no longer at home."""
    last: dict[int, PkgEvent] = {}
    for e in events:
        if e.kind == "review" and e.face_id is None and e.identity_id is not None:
            last[e.identity_id] = e
    out: dict[int, ReviewDecision] = {}
    for ident, e in last.items():
        h = home_ident.get(ident)
        state = "gone" if h is None else "kept" if h in changed else "apply"
        out[ident] = ReviewDecision(ident, h, state, e)
    return out


# -- the plan of one chunk ------------------------------------------------------------------------


@dataclass
class ChunkPlan:
    batches: list[tuple] = field(default_factory=list)  # rows for main.batches
    events: list[tuple] = field(default_factory=list)  # rows for main.events
    merged: list[tuple] = field(default_factory=list)  # rows for main.merged_batches
    faces: list[tuple] = field(default_factory=list)  # (identity, label, label event, face)
    counters: list[tuple] = field(default_factory=list)  # (face delta, labeled delta, identity)
    reviews: list[tuple] = field(default_factory=list)  # (reviewed, by, at, identity)
    conflicts: list[FaceDecision] = field(default_factory=list)
    applied: int = 0
    agreed: int = 0
    gone: int = 0
    reviews_applied: int = 0
    reviews_kept: int = 0


def _home_event(e: PkgEvent, d: FaceDecision | None, home_ident: Mapping[int, int | None]):
    """(face id, identity id, value, prev value) of a package event, in home ids."""
    ident = home_ident.get(e.identity_id) if e.identity_id is not None else None
    if e.kind == "review":
        return None, ident, e.value, e.prev_value
    assert d is not None and d.home is not None
    if e.kind == "move":
        to, frm = (home_ident[int(v or 0)] for v in (e.value, e.prev_value))
        return d.home.id, ident, str(to), str(frm)
    return d.home.id, ident if ident is not None else d.home.identity_id, e.value, e.prev_value


def plan_chunk(
    package_id: str,
    batches: Sequence[PkgBatch],
    events: Sequence[PkgEvent],
    faces: Mapping[int, FaceDecision],
    reviews: Mapping[int, ReviewDecision],
    home_ident: Mapping[int, int | None],
    rev_map: Mapping[int, int],
    rev_names: Mapping[int, str],
    base_batch: int,
    merged_home: Mapping[int, int],
    last_ids: tuple[int, int],
) -> ChunkPlan:
    """Rows to write for some of the package's new batches: the events that come home (new
    ids after ``last_ids``, home's last batch and event ids), their batches (an undo/redo of
    a batch made before the pack becomes a plain step: at home that batch also holds work the
    package never had), the faces' and identities' new state and the conflicts."""
    p = ChunkPlan()
    coming = [
        e
        for e in events
        if (
            e.kind == "review"
            and reviews.get(e.identity_id or 0, None) is not None
            and reviews[e.identity_id or 0].state == "apply"
        )
        or (
            e.kind != "review"
            and e.face_id in faces
            and faces[e.face_id].state in ("apply", "agreed")
        )
    ]
    with_events = {e.batch_id for e in coming}
    b0, e0 = last_ids
    bmap = {b.id: b0 + n for n, b in enumerate((b for b in batches if b.id in with_events), 1)}
    for b in batches:
        if b.id in bmap:
            kind, target = b.kind, b.target
            if kind in ("undo", "redo") and (target or 0) <= base_batch:
                kind, target = "do", None
            elif target is not None:
                target = bmap.get(target, merged_home.get(target))
            p.batches.append(
                (bmap[b.id], rev_map[b.reviewer_id], b.at, kind, target, b.description)
            )
        key = f"{b.at}|{rev_names[b.reviewer_id]}|{b.kind}"
        p.merged.append((package_id, b.id, bmap.get(b.id), key))
    emap: dict[int, int] = {}
    for n, e in enumerate(coming, 1):
        emap[e.id] = e0 + n
        f, i, v, pv = _home_event(e, faces.get(e.face_id or 0), home_ident)
        p.events.append(
            (e0 + n, bmap[e.batch_id], rev_map[e.reviewer_id], e.at, e.kind, f, i, v, pv, e.note)
        )
    delta: dict[int, list[int]] = {}
    for d in faces.values():
        if d.state == "gone":
            p.gone += 1
        elif d.state == "agreed":
            p.agreed += 1
        elif d.state == "conflict":
            p.conflicts.append(d)
        else:
            assert d.home is not None and d.p_ident is not None
            p.applied += 1
            h = d.home
            ev = emap[d.lab_ev] if d.lab_ev is not None else h.label_event_id
            p.faces.append((d.p_ident, d.p_label, ev, h.id))
            for ident, df, dl in (
                (h.identity_id, -1, -(h.label is not None)),
                (d.p_ident, 1, int(d.p_label is not None)),
            ):
                acc = delta.setdefault(ident, [0, 0])
                acc[0] += df
                acc[1] += dl
    p.counters = [(df, dl, i) for i, (df, dl) in sorted(delta.items()) if df or dl]
    for r in reviews.values():
        if r.state == "kept":
            p.reviews_kept += 1
        elif r.state == "apply":
            p.reviews_applied += 1
            on = r.event.value == "1"
            by = rev_map[r.event.reviewer_id] if on else None
            p.reviews.append((int(on), by, r.event.at if on else None, r.home_ident))
    p.conflicts.sort(key=lambda d: d.home.id if d.home else 0)
    return p


def plan_conflicts(
    package_id: str,
    conflicts: Sequence[FaceDecision],
    rev_map: Mapping[int, int],
    passes: Mapping[int, int],
    positions: Mapping[int, int],
    home_event_reviewers: Mapping[int, int],
    last_ids: tuple[int, int],
    at: str,
) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """A conflict: home keeps its label; the package's becomes a ``qa`` event (at the
    package's time) in one ``qa`` batch per package reviewer, and an item of that reviewer's
    merge pass (``passes``: home reviewer -> pass, ``positions``: pass -> next position), so
    it waits in the adjudication queue. Returns (batches, events, qa items) rows."""
    b0, e0 = last_ids
    batches: list[tuple] = []
    bid: dict[int, int] = {}
    for d in conflicts:
        rev = rev_map[d.p_rev]
        if rev not in bid:
            bid[rev] = b0 + len(bid) + 1
            batches.append(
                (
                    bid[rev],
                    rev,
                    at,
                    "qa",
                    None,
                    f"merge of package {package_id[:8]}: conflicts for adjudication",
                )
            )
    events: list[tuple] = []
    items: list[tuple] = []
    pos = dict(positions)
    for n, d in enumerate(conflicts, 1):
        h = d.home
        assert h is not None
        rev = rev_map[d.p_rev]
        note = f"package {package_id[:8]}"
        if d.p_ident != h.identity_id:
            note += f": moved to identity {d.p_ident}"
        events.append(
            (e0 + n, bid[rev], rev, d.p_at, "qa", h.id, h.identity_id, d.p_label, h.label, note)
        )
        pass_id = passes[rev]
        h_ev = h.label_event_id or 0
        items.append(
            (
                pass_id,
                h.id,
                pos[pass_id],
                h.label or "unlabeled",
                home_event_reviewers.get(h_ev, rev),
                h_ev,
                d.p_label or "unlabeled",
                e0 + n,
            )
        )
        pos[pass_id] += 1
    return batches, events, items
