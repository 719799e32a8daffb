"""`annotator merge`: bring a reviewer package's new work home, treating the package as
untrusted input (it travels between people).

Before anything is written the whole package is checked: its record and digest (a package of
this project, recorded here, its packed content unchanged) and every batch and event made
after the pack, as if a user typed it (``merge_rules.first_problem``): one bad row refuses the
whole package with one line naming it. Then, in one home transaction per chunk of whole
batches, faces are matched by what they are (source, origin and content digest recorded at pack
time) and identities by key, never by an integer id a takedown or a restart may have given to
someone else; the rules decide per face and identity (apply / agreed / conflict / gone) and the
store writes the plan. A merge of the same package again changes nothing (``merged_batches``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from annotator.core.review import merge_rules as rules
from annotator.core.review.merge_rules import FaceMatch, HomeFace, PkgBatch, PkgEvent, Scope
from annotator.core.review.withdrawal import Ledger, scrubbing
from annotator.model import AnnotatorError, CancelledFn, ProgressFn, never_cancelled
from annotator.store import faces as faces_store
from annotator.store import labels as labels_store
from annotator.store import package_merge as pm
from annotator.store import packages as store
from annotator.store.db import Project, now, open_project

MERGE_CHUNK_EVENTS = 2_500  # events merged per home transaction (whole batches)
MERGED_KINDS = ("do", "undo", "redo", "adjudicate")  # QA batches stay in the package

# The one hook for a withdrawal ledger (issue 22): given the (already validated) events of a
# chunk, the events that may come home and how many were refused -- everything about a
# withdrawn person dropped, and notes naming one rewritten (``event._replace(note=...)``). It
# runs before faces are matched, so a dropped event decides nothing. The default keeps all.
RefuseFn = Callable[[list[PkgEvent]], tuple[list[PkgEvent], int]]


def keep_all(rows: list[PkgEvent]) -> tuple[list[PkgEvent], int]:
    return rows, 0


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
class MergeResult:
    package_id: str
    batches: int = 0
    events: int = 0
    applied: int = 0
    agreed: int = 0
    gone: int = 0
    reviews: int = 0
    reviews_kept: int = 0
    withdrawn: int = 0  # events the refuse hook dropped, notes naming a withdrawn person cleared
    conflicts: list[dict[str, object]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.batches)

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["conflict_count"] = len(self.conflicts)
        return d


def check_package(home: Project, path: str | os.PathLike[str]) -> store.PackageInfo:
    """The package's record, after refusing (one line) a file that is not a package of this
    project, a package this project did not send out, or one whose packed content changed."""
    p = Path(path).expanduser().absolute()
    if p == home.path:
        raise AnnotatorError(f"{p} is the project itself, not a package of it")
    if not p.exists():
        raise AnnotatorError(f"no package file at {p}")
    try:
        pkg = open_project(p)  # refuses a schema the migrations did not make
    except AnnotatorError as e:
        raise AnnotatorError(f"{p.name} is not a reviewer package ({e})") from None
    try:
        info = store.package_info(pkg)
        if info is None:
            raise AnnotatorError(
                f"{p.name} is an annotator project, not a reviewer package (no package record)"
            )
        if info.home_project_id != store.project_id(home):
            raise AnnotatorError(
                f"{p.name} is a package of another project (project {info.home_project_id[:8]},"
                f" packed from {info.home_path}), not of {home.path.name}"
            )
        rec = store.package_record(home, info.id)
        if rec is None:
            raise AnnotatorError(
                f"package {info.id[:8]} is not recorded in {home.path.name} (was it packed from"
                " a copy of this project?)"
            )
        digest = store.content_digest(pkg, info)
        if digest != rec.digest or digest != info.digest:
            raise AnnotatorError(
                f"{p.name} was changed since it was packed (its content digest differs): "
                "refusing to merge a tampered package"
            )
        return info
    finally:
        pkg.close()


@dataclass
class _Package:
    """What the merge of one package knows across its chunks."""

    info: store.PackageInfo
    path: str
    identities: dict[int, str]  # package identity id -> key
    reviewers: dict[int, str]
    ledger: Ledger
    passes: dict[int, int] = field(default_factory=dict)  # home reviewer -> merge pass
    conflicts: list[Conflict] = field(default_factory=list)


def merge(
    home: Project,
    path: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    chunk_events: int = MERGE_CHUNK_EVENTS,
    refuse: RefuseFn = keep_all,
) -> MergeResult:
    """Bring the package's new work home (see the module docstring)."""
    cancelled = cancelled or never_cancelled
    info = check_package(home, path)
    res = MergeResult(info.id)
    pkg_path = str(Path(path).expanduser().absolute())
    with store.attached(home, pkg_path) as c:
        if pm.forked_batches(c, info.id):
            raise AnnotatorError(
                f"{Path(pkg_path).name} holds step(s) under ids already merged from other"
                f" work of package {info.id[:8]} (two copies of the package were worked on?);"
                " merge refused: merge each copy's work through a package of its own"
            )
        faces, idents, revs = pm.package_scope(c)
        # what earlier merges of this package brought is at home already: the rest is checked
        batches = [PkgBatch._make(r) for r in pm.new_batch_rows(c, info.base_batch, info.id)]
        events = [
            PkgEvent._make(r)
            for r in pm.new_event_rows(c, info.base_batch, info.base_event, info.id)
        ]
        scope = Scope(info.base_batch, frozenset(faces), idents, revs, frozenset(pm.batch_ids(c)))
        problem = rules.first_problem(batches, events, scope)
        if problem:
            raise AnnotatorError(f"{Path(pkg_path).name} refused: {problem}; nothing was merged")
        todo = [b for b in batches if b.kind in MERGED_KINDS]
        by_batch: dict[int, list[PkgEvent]] = {}
        for e in events:
            by_batch.setdefault(e.batch_id, []).append(e)
        parts = _parts(todo, by_batch, chunk_events)
        total, done = sum(n for _p, n in parts), 0
        if progress:
            progress(0, total)
        pk = _Package(info, pkg_path, idents, revs, Ledger.of(home))
        for part, n in parts:
            if cancelled():
                raise KeyboardInterrupt
            evs = [e for b in part for e in by_batch.get(b.id, [])]
            _merge_chunk(home, pk, part, evs, refuse, res, first=not res.batches)
            done += n
            if progress:
                progress(done, total)
    origins = faces_store.face_origins(home, [x.face_id for x in pk.conflicts])
    res.conflicts = [
        {
            "face_id": x.face_id,
            "origin": origins.get(x.face_id, "?"),
            "identity_id": x.identity_id,
            "home_label": x.home_label,
            "home_reviewer": x.home_reviewer,
            "package_label": x.package_label,
            "package_reviewer": x.package_reviewer,
            "package_identity_id": x.package_identity_id,
            "package_at": x.package_at,
            "pass": x.pass_id,
        }
        for x in pk.conflicts
    ]
    return res


def _parts(
    todo: Sequence[PkgBatch], by_batch: dict[int, list[PkgEvent]], limit: int
) -> list[tuple[list[PkgBatch], int]]:
    parts: list[tuple[list[PkgBatch], int]] = []
    chunk: list[PkgBatch] = []
    size = 0
    for b in todo:
        n = len(by_batch.get(b.id, []))
        if chunk and size + n > limit:
            parts.append((chunk, size))
            chunk, size = [], 0
        chunk.append(b)
        size += n
    if chunk:
        parts.append((chunk, size))
    return parts


def _home_faces(home: Project, pk: _Package, face_ids: list[int]) -> dict[int, HomeFace]:
    """Package face id -> the home face that is it (same source, origin and content)."""
    c = home.conn
    matches = [FaceMatch(*r) for r in pm.face_matches(c, face_ids)]
    need = [m.home_id for m in matches if rules.same_face(m) is None and m.home_id is not None]
    read: dict[int, bytes] = {}
    if need:
        from annotator.core.infra.access import FaceBytes

        fb = FaceBytes(home)
        try:
            for hid, data in zip(need, fb.read_many(need, errors="return"), strict=True):
                if isinstance(data, bytes):
                    read[hid] = data
        finally:
            fb.close()
    same = [m for m in matches if rules.same_face(m, read.get(m.home_id or 0, b"")) is True]
    changed = pm.changed_since(
        c, [m.home_id or 0 for m in same], pk.info.home_base_event, pk.info.id
    )
    return {
        m.pkg_face: HomeFace(
            m.home_id or 0, m.identity_id or 0, m.label, m.label_event_id, m.home_id in changed
        )
        for m in same
    }


def _merge_chunk(
    home: Project,
    pk: _Package,
    batches: list[PkgBatch],
    events: list[PkgEvent],
    refuse: RefuseFn,
    res: MergeResult,
    first: bool,
) -> None:
    """Some of the package's new batches, in one home transaction."""
    info = pk.info
    with home.tx() as c, scrubbing(home, pk.ledger) as scrubbed:
        # another merge of this package may have committed these batches since we looked
        done = pm.merged_batch_ids(c, info.id)
        if done:
            batches = [b for b in batches if b.id not in done]
            events = [e for e in events if e.batch_id not in done]
        if not batches:
            return
        events, withdrawn = refuse(events)
        face_ids = sorted({e.face_id for e in events if e.face_id is not None})
        homes = _home_faces(home, pk, face_ids)
        named: set[int] = set()
        for e in events:
            if e.identity_id is not None:
                named.add(e.identity_id)
            if e.kind == "move":
                named.update(int(v) for v in (e.value, e.prev_value) if v is not None)
        by_key = pm.identities_by_key(c, [pk.identities[i] for i in named])
        home_ident = {i: by_key.get(pk.identities[i]) for i in named}
        faces = rules.decide_faces(events, homes, home_ident)
        rchanged = pm.reviews_changed_since(
            c, [h for h in home_ident.values() if h is not None], info.home_base_event, info.id
        )
        reviews = rules.decide_reviews(events, home_ident, rchanged)
        used = {b.reviewer_id for b in batches} | {e.reviewer_id for e in events}
        ids = pm.ensure_reviewers(c, [pk.reviewers[r] for r in used], now())
        rev_map = {r: ids[pk.reviewers[r]] for r in used}
        plan = rules.plan_chunk(
            info.id, batches, events, faces, reviews, home_ident, rev_map, pk.reviewers,
            info.base_batch,
            pm.merged_home_batches(c, info.id, [b.target for b in batches if b.target]),
            pm.next_ids(c),
        )  # fmt: skip
        pm.insert_history(c, plan.batches, plan.events)
        pm.record_merged_batches(c, plan.merged)
        pm.apply_face_states(c, plan.faces, plan.counters)
        pm.apply_reviews(c, plan.reviews)
        _queue_conflicts(home, pk, plan.conflicts, rev_map)
        if plan.batches or first:  # the package counts as merged with its first chunk
            store.note_merge(home, info.id, count=first)
    res.batches += len(batches)
    res.events += len(plan.events)
    res.applied += plan.applied
    res.agreed += plan.agreed
    res.gone += plan.gone
    res.reviews += plan.reviews_applied
    res.reviews_kept += plan.reviews_kept
    res.withdrawn += withdrawn + scrubbed.count


def _queue_conflicts(
    home: Project, pk: _Package, conflicts: list[rules.FaceDecision], rev_map: dict[int, int]
) -> None:
    if not conflicts:
        return
    c = home.conn
    at = now()
    for rev in sorted({rev_map[d.p_rev] for d in conflicts}):
        if rev not in pk.passes:
            params = json.dumps({"merge": pk.info.id, "package": pk.path})
            pk.passes[rev] = pm.new_merge_pass(c, rev, at, params, pk.info.id)
    positions = {p: pm.next_qa_position(c, p) for p in pk.passes.values()}
    h_evs = [d.home.label_event_id for d in conflicts if d.home and d.home.label_event_id]
    batches, events, items = rules.plan_conflicts(
        pk.info.id, conflicts, rev_map, pk.passes, positions,
        pm.event_reviewers(c, h_evs), pm.next_ids(c), at,
    )  # fmt: skip
    pm.insert_history(c, batches, events)
    pm.insert_qa_items(c, items)
    names = labels_store.reviewer_names(home)
    for d, ev, item in zip(conflicts, events, items, strict=True):
        assert d.home is not None
        pk.conflicts.append(
            Conflict(
                d.home.id,
                d.home.identity_id,
                d.home.label,
                names.get(item[4]) if item[5] else None,
                d.p_label,
                names.get(ev[2], "?"),
                d.p_ident or 0,
                d.p_at,
                item[0],
            )  # fmt: skip
        )
