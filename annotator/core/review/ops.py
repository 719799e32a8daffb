"""Every mutation of review state goes through one function here (DESIGN convention 3).

Each operation writes one *batch* of append-only events in one short transaction, updates the
materialised state (faces.label, faces.identity_id, identities.reviewed, counters) and returns a
:class:`Changes` record the GUI uses to refresh only what changed. Undo and redo are operations
too: they append compensating events and never delete history. Undo/redo stacks are per reviewer
and are rebuilt from the batches table, so they survive closing and reopening the project.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from annotator.model import AnnotatorError, check_label
from annotator.store import labels as labels_store
from annotator.store.db import Project

# Label a label file gives a face it moves ("correct" in the new identity): that file's
# reviewer asserted where it belongs. A face moved by hand in the GUI is left unlabeled in its
# new identity until a reviewer of that identity accepts it (move_faces' default).
MOVED_LABEL = "correct"


@dataclass
class Changes:
    """What an operation changed — enough for views to refresh without re-querying everything."""

    description: str = ""
    batch_id: int | None = None
    labels: dict[int, str | None] = field(default_factory=dict)  # face id -> new label
    moved: dict[int, tuple[int, int]] = field(default_factory=dict)  # face id -> (from, to)
    reviewed: dict[int, bool] = field(default_factory=dict)  # identity id -> reviewed
    identities: set[int] = field(default_factory=set)  # every identity touched
    # faces an operation deliberately left alone, with the reason (Enter's "accept the rest"
    # leaves a face that looks like another person for the reviewer)
    left: dict[int, str] = field(default_factory=dict)

    @property
    def faces(self) -> set[int]:
        return set(self.labels) | set(self.moved)

    def __bool__(self) -> bool:
        return bool(self.labels or self.moved or self.reviewed)


# (kind, face_id, identity_id, target value)
_Item = tuple[str, int | None, int | None, str | None]


def _check_label(label: str | None) -> None:
    if label is not None:
        check_label(label)


def _apply(
    project: Project,
    reviewer: str,
    description: str,
    items: Sequence[_Item],
    batch_kind: str = "do",
    target: int | None = None,
    notes: dict[int, str] | None = None,
    expect: Sequence[str | None] | None = None,
) -> Changes:
    """Write one batch: read current state, append events with prev values, update state.

    ``notes`` (face id -> text) is stored on every event the batch writes for that face.
    ``expect`` (one per item, for undo/redo): the value the item's face or identity must still
    have; an item whose state has changed since (another reviewer's later work) is skipped."""
    notes = notes or {}
    ch = Changes(description=description)
    with project.tx():  # the whole step, the reviewer's first-use row included
        rid = labels_store.reviewer_id(project, reviewer)
        face_ids = [f for _k, f, _i, _v in items if f is not None]
        state = labels_store.face_states(project, face_ids)
        batch_id, at = labels_store.new_batch(project, rid, batch_kind, description, target)
        ch.batch_id = batch_id
        written = 0
        # Events are applied one by one, in order, so counters follow each face exactly.
        for n, (kind, face, ident, value) in enumerate(items):
            want = expect[n] if expect is not None else None
            if kind in ("label", "adjudicate"):
                if face not in state:
                    raise AnnotatorError(f"no face with id {face}")
                cur_ident, cur_label = state[face]
                if cur_label == value or (expect is not None and cur_label != want):
                    continue
                ev = labels_store.insert_event(
                    project,
                    batch_id,
                    rid,
                    at,
                    (kind, face, cur_ident, value, cur_label, notes.get(face)),
                )
                labels_store.apply_labels(project, [(face, cur_ident, cur_label, value, ev)])
                state[face] = (cur_ident, value)
                ch.labels[face] = value
                ch.identities.add(cur_ident)
            elif kind == "move":
                if face not in state:
                    raise AnnotatorError(f"no face with id {face}")
                assert value is not None
                to = int(value)
                cur_ident, cur_label = state[face]
                if to == cur_ident or (expect is not None and str(cur_ident) != want):
                    continue
                if not labels_store.identity_exists(project, to):
                    raise AnnotatorError(f"no identity with id {to}")
                labels_store.insert_event(
                    project,
                    batch_id,
                    rid,
                    at,
                    ("move", face, cur_ident, str(to), str(cur_ident), notes.get(face)),
                )
                labels_store.apply_moves(project, [(face, cur_ident, to, cur_label)])
                state[face] = (to, cur_label)
                if expect is None and labels_store.identity_review_state(project, to):
                    # the target becomes unreviewed: an event of this batch, so that undo
                    # gives it back its reviewed state (undo/redo replay that event instead)
                    labels_store.insert_event(
                        project, batch_id, rid, at, ("review", None, to, "0", "1", None)
                    )
                    labels_store.set_identity_reviewed(project, to, False, rid, at)
                    ch.reviewed[to] = False
                first = ch.moved.get(face, (cur_ident, to))[0]
                if first == to:
                    del ch.moved[face]
                else:
                    ch.moved[face] = (first, to)
                ch.identities.update((cur_ident, to))
            elif kind == "review":
                assert ident is not None
                cur = labels_store.identity_review_state(project, ident)
                if cur is None:
                    raise AnnotatorError(f"no identity with id {ident}")
                new = value == "1"
                if cur == new or (expect is not None and ("1" if cur else "0") != want):
                    continue
                labels_store.insert_event(
                    project,
                    batch_id,
                    rid,
                    at,
                    ("review", None, ident, "1" if new else "0", "1" if cur else "0", None),
                )
                labels_store.set_identity_reviewed(project, ident, new, rid, at)
                ch.reviewed[ident] = new
                ch.identities.add(ident)
            else:  # pragma: no cover - programming error
                raise ValueError(kind)
            written += 1
        if not written:
            # Nothing changed: do not leave an empty batch in the undo stack.
            labels_store.discard_empty_batch(project, batch_id)
            ch.batch_id = None
    return ch


# -- operations ------------------------------------------------------------------------------


def label_faces(
    project: Project,
    face_ids: Iterable[int],
    label: str | None,
    reviewer: str,
    kind: str = "label",
    notes: dict[int, str] | None = None,
) -> Changes:
    """Give ``label`` (or None to clear) to faces; one undo step. ``notes`` (face id -> text)
    is stored on the faces' events (a face whose label does not change gets no event).
    With ``kind="adjudicate"`` (a QA adjudication, final) the batch is not an undo step."""
    _check_label(label)
    ids = list(dict.fromkeys(face_ids))
    if not ids:
        return Changes(description="nothing selected")
    what = label or "unlabeled"
    desc = f"label {len(ids)} face{'s' if len(ids) != 1 else ''} {what}"
    batch_kind = "adjudicate" if kind == "adjudicate" else "do"
    items: list[_Item] = [(kind, f, None, label) for f in ids]
    return _apply(project, reviewer, desc, items, batch_kind, notes=notes)


# Flag kinds saying a face probably shows another person than its identity: Enter leaves such a
# face unlabeled for the reviewer. (`suspect_identity` comes from embedding-based checks; a
# project without it simply has no such flags.)
ANOTHER_PERSON_KINDS = ("cross_identity_dup", "suspect_identity")
LOOKS_LIKE_ANOTHER = "looks like another person"
ALSO_ELSEWHERE = "also filed under another identity"
KEEPER_NOT_KEPT = "duplicate of a face that is not accepted"


def accept_plan(
    facts: Sequence[labels_store.AcceptFacts], identity_id: int, rest: str = "correct"
) -> tuple[dict[int, str], dict[int, str]]:
    """What Enter's "accept the rest" does with the unlabeled faces of an identity:
    (face -> label, face -> reason it is left unlabeled).

    * a face flagged ``corrupt`` becomes ``unusable``;
    * a face flagged as probably another person (``suspect_identity``) is left;
    * a face whose duplicate group reaches another identity (or flagged
      ``cross_identity_dup``) is left: the same picture is filed under two people and the scan's
      keeper (largest image, best rank) does not say which one is right — the G dialog shows
      both identities and labels the misfiled copy ``wrong_identity``;
    * a non-keeper member of a duplicate group within this identity becomes ``duplicate`` when
      the keeper is (or becomes) ``correct``, else it is left;
    * every other face becomes ``rest``."""
    labels: dict[int, str] = {}
    left: dict[int, str] = {}
    copies: list[labels_store.AcceptFacts] = []
    for f in facts:
        if "corrupt" in f.kinds:
            labels[f.face_id] = "unusable"
        elif "suspect_identity" in f.kinds:
            left[f.face_id] = LOOKS_LIKE_ANOTHER
        elif f.elsewhere or "cross_identity_dup" in f.kinds:
            left[f.face_id] = ALSO_ELSEWHERE
        elif f.keeper is not None and f.keeper != f.face_id:
            copies.append(f)  # decided once the keeper's own label is known
        else:
            labels[f.face_id] = rest
    for f in copies:
        assert f.keeper is not None
        kept = f.keeper_label if f.keeper_label is not None else labels.get(f.keeper)
        if kept == "correct" and f.keeper_identity == identity_id:
            labels[f.face_id] = "duplicate"
        else:
            left[f.face_id] = KEEPER_NOT_KEPT
    return labels, left


def accept_summary(ch: Changes) -> str:
    """ "14 correct, 1 unusable, 2 duplicate; 1 left: looks like another person"."""
    counts: dict[str, int] = {}
    for lab in ch.labels.values():
        if lab is not None:
            counts[lab] = counts.get(lab, 0) + 1
    done = ", ".join(f"{n} {lab}" for lab, n in counts.items()) or "no face labeled"
    if ch.left:
        reasons: dict[str, int] = {}
        for r in ch.left.values():
            reasons[r] = reasons.get(r, 0) + 1
        done += f"; {len(ch.left)} left: " + ", ".join(
            r if len(reasons) == 1 else f"{n} {r}" for r, n in reasons.items()
        )
    return done


def review_identity(
    project: Project, identity_id: int, reviewer: str, rest: str | None = "correct"
) -> Changes:
    """Enter's "accept the rest" (see :func:`accept_plan`): label the identity's unlabeled
    faces and mark it reviewed — unless a face was left for the reviewer, then the identity
    stays unreviewed. One undo step; a face someone labeled is never relabeled."""
    _check_label(rest)
    with project.tx():  # the plan is read in the transaction that applies it
        items: list[_Item] = []
        left: dict[int, str] = {}
        if rest is not None:
            plan, left = accept_plan(
                labels_store.accept_facts(project, identity_id), identity_id, rest
            )
            items = [("label", f, None, lab) for f, lab in plan.items()]
        n = len(items)
        if not left:
            items.append(("review", None, identity_id, "1"))
        # faces still unlabeled, the identity still unreviewed: a label another reviewer gave
        # one of them in the meantime is kept
        expect: list[str | None] = [None] * n + ["0"] * (len(items) - n)
        ch0 = Changes(labels={f: lab for _k, f, _i, lab in items if f is not None})
        ch0.left = left
        desc = f"accept identity ({accept_summary(ch0)})"
        ch = _apply(project, reviewer, desc, items, expect=expect)
        ch.left = left
    return ch


def set_reviewed(project: Project, identity_id: int, reviewed: bool, reviewer: str) -> Changes:
    return _apply(
        project,
        reviewer,
        "mark identity " + ("reviewed" if reviewed else "unreviewed"),
        [("review", None, identity_id, "1" if reviewed else "0")],
    )


def move_faces(
    project: Project,
    face_ids: Iterable[int],
    to_identity: int,
    reviewer: str,
    notes: dict[int, str] | None = None,
    label: str | None = None,
) -> Changes:
    """Move faces to another identity; one undo step. A moved face is unreviewed there (its
    label cleared, the target identity unreviewed) unless ``label`` is given (a label file that
    says the face is ``correct`` in its new identity). ``notes`` (face id -> text) is stored
    on the faces' move and label events."""
    _check_label(label)
    ids = list(dict.fromkeys(face_ids))
    items: list[_Item] = [("move", f, None, str(to_identity)) for f in ids]
    items += [("label", f, None, label) for f in ids]
    return _apply(project, reviewer, f"move {len(ids)} face(s)", items, notes=notes)


def move_summary(ch: Changes, target_key: str) -> str:
    """ "moved 1 face to m.xxx (unreviewed there)"."""
    n = len(ch.moved)
    if not n:
        return "no face moved"
    there = " (unreviewed there)" if any(ch.labels.get(f) is None for f in ch.moved) else ""
    return f"moved {n} face{'s' if n != 1 else ''} to {target_key}{there}"


def choose_keeper(project: Project, group: Iterable[int], keeper: int, reviewer: str) -> Changes:
    """In a duplicate group, the keeper becomes ``correct``; every other copy that is unlabeled
    (or ``correct``: two correct copies of one picture contradict the choice) becomes
    ``duplicate`` when it is filed under the keeper's identity, and ``wrong_identity`` when it
    is filed under another identity (a cross-identity copy is the same picture misfiled as
    someone else). A copy a reviewer labeled otherwise (duplicate, wrong identity, unusable,
    unsure) keeps its label (it is in ``Changes.left``); the keeper, chosen by the reviewer,
    is relabeled. One undo step."""
    ids = list(dict.fromkeys(group))
    if keeper not in ids:
        raise AnnotatorError("the keeper must be one of the group's faces")
    with project.tx():
        state = labels_store.face_states(project, ids)
        if keeper not in state:
            raise AnnotatorError(f"no face with id {keeper}")
        kident = state[keeper][0]
        items: list[_Item] = [("label", keeper, None, "correct")]
        expect: list[str | None] = [state[keeper][1]]
        left: dict[int, str] = {}
        for f in ids:
            if f == keeper or f not in state:
                continue
            ident, label = state[f]
            if label is not None and label != "correct":
                left[f] = f"labeled {label} by a reviewer"
                continue
            items.append(("label", f, None, "duplicate" if ident == kident else "wrong_identity"))
            expect.append(label)
        ch = _apply(project, reviewer, f"keep 1 of {len(ids)} duplicates", items, expect=expect)
        ch.left = left
    return ch


# -- undo / redo -----------------------------------------------------------------------------


def _stacks(project: Project, reviewer: str) -> tuple[list[int], list[int], dict[int, str]]:
    rid = labels_store.reviewer_id(project, reviewer)
    undo: list[int] = []
    redo: list[int] = []
    desc: dict[int, str] = {}
    for bid, kind, target, description in labels_store.reviewer_batches(project, rid):
        if kind == "do":
            undo.append(bid)
            desc[bid] = description
            redo.clear()
        elif kind == "undo":
            if undo and undo[-1] == target:
                undo.pop()
                redo.append(target)
        elif kind == "redo":
            if redo and redo[-1] == target:
                redo.pop()
                undo.append(target)
    return undo, redo, desc


def can_undo(project: Project, reviewer: str) -> str | None:
    """Description of the step Ctrl+Z would undo, or None."""
    undo, _redo, desc = _stacks(project, reviewer)
    return desc[undo[-1]] if undo else None


def can_redo(project: Project, reviewer: str) -> str | None:
    _undo, redo, desc = _stacks(project, reviewer)
    return desc[redo[-1]] if redo else None


def undo(project: Project, reviewer: str) -> Changes | None:
    """Undo this reviewer's last step by appending compensating events."""
    with project.tx():  # the stack is read and moved in the same transaction
        stack, _redo, desc = _stacks(project, reviewer)
        if not stack:
            return None
        target = stack[-1]
        events = labels_store.batch_events(project, target)
        items: list[_Item] = [
            (e.kind, e.face_id, e.identity_id, e.prev_value) for e in reversed(events)
        ]
        # only what still is as the step left it: another reviewer's later work is not reverted
        expect = [e.value for e in reversed(events)]
        return _apply_forced(
            project, reviewer, f"undo {desc[target]}", items, "undo", target, expect
        )


def redo(project: Project, reviewer: str) -> Changes | None:
    with project.tx():
        _undo, stack, desc = _stacks(project, reviewer)
        if not stack:
            return None
        target = stack[-1]
        events = labels_store.batch_events(project, target)
        items: list[_Item] = [(e.kind, e.face_id, e.identity_id, e.value) for e in events]
        expect = [e.prev_value for e in events]
        return _apply_forced(
            project, reviewer, f"redo {desc[target]}", items, "redo", target, expect
        )


def _apply_forced(
    project: Project,
    reviewer: str,
    description: str,
    items: Sequence[_Item],
    kind: str,
    target: int,
    expect: Sequence[str | None],
) -> Changes:
    """Like _apply, but the batch is kept even when state already matches (the stack must move)."""
    with project.tx():
        ch = _apply(project, reviewer, description, items, kind, target, expect=expect)
        if ch.batch_id is None:
            rid = labels_store.reviewer_id(project, reviewer)
            ch.batch_id, _at = labels_store.new_batch(project, rid, kind, description, target)
    return ch
