"""What the face embeddings say about identities, kept up to date in a project (no SQL, no Qt):
``suspect_identity`` flags (strangers and look-alikes), the identity a look-alike resembles and
"probably the same person" pairs; the rule is core/identity/rule.py.

Each identity's centre is stored (``identity_centres``). A refresh recomputes only the
identities whose faces, labels or vectors changed (the store's triggers mark them) and those
with a stored look-alike candidate face that a changed centre comes nearer than its watch
distance (``IdentityCheck.watch``: its ``t``, and ODD_GAP beyond for a third identity's
centre; compared only where the stored reach, |f - c_own| + watch, lets a changed centre come
that near: ``candidate_reach``), so the flags equal a full recomputation;
everything is recomputed when the model or the rule changed, or when an earlier refresh did
not finish. Runs at the end of ``annotator embed`` and in the
scan's flag step; faces are read once, an identity range at a time (bounded memory).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from annotator import settings
from annotator.core.dedup import flags as flag_rules
from annotator.core.dedup import flagset
from annotator.core.identity import nearest, rule
from annotator.core.identity.centres import METRICS, Metric, metric_of
from annotator.core.identity.rule import (
    Centres,
    Faces,
    IdentityCheck,
)
from annotator.core.infra.blas import one_blas_thread
from annotator.core.infra.workers import process_pool, usable_cores
from annotator.model import NOT_IN_CENTRE
from annotator.settings import DEFAULTS, Values
from annotator.store import flags as flags_store
from annotator.store import identity_check as ic_store
from annotator.store.db import Project, open_project

KIND = "suspect_identity"
EMBED_WEIGHT = 1.0  # identity suspicion: + EMBED_WEIGHT x its worst flagged face's score / UNIT
MARGIN_UNIT = 0.1
CHUNK_FACES = 200_000  # faces read at a time by a full refresh
PARALLEL_RANGES = 3  # a full refresh of this many ranges or more measures them on worker processes
REACH_SLACK = nearest.SLACK + 1e-3  # float32 centre distances against a stored reach
STATE_META = "identity_check"  # model|rule of the stored centres; '' while a refresh runs
DLIB = METRICS["dlib_resnet_v1/"]
SUSPECT_REL_MARGIN = DEFAULTS.suspect_margin  # the defaults; per project: annotator.settings
SAME_PERSON_RATIO = DEFAULTS.same_person_ratio


@dataclass(frozen=True, slots=True)
class _Run:
    """What one refresh judges with: the model's metric and the project's settings."""

    metric: Metric
    rel_margin: float
    ratio: float


def check(
    face: np.ndarray,
    ident: np.ndarray,
    vectors: np.ndarray,
    *,
    metric: Metric = DLIB,
    exact: bool = False,
    rel_margin: float = SUSPECT_REL_MARGIN,
    same_person_ratio: float = SAME_PERSON_RATIO,
) -> IdentityCheck:
    """The rule on vectors alone (faces come back grouped by identity); see rule.py."""
    return rule.check(
        face,
        ident,
        vectors,
        metric,
        exact=exact,
        rel_margin=rel_margin,
        same_person_ratio=same_person_ratio,
    )


@dataclass(slots=True)
class Refresh:
    """What a refresh did: ``mode`` full / incremental / none; the identities recomputed;
    every ``suspect_identity`` face of the project and the same-person pairs after it."""

    mode: str = "none"
    model: str = ""
    recomputed: int = 0
    global_faces: int = 0  # faces compared with every centre (the bound did not hold)
    compared: int = 0  # incremental: stored candidates compared with the changed centres ...
    candidates: int = 0  # ... of this many stored
    asked: int = 0  # faces whose nearest faces were read (see rule.IdentityCheck)
    by_faces: int = 0  # ... and found look-alikes by them (before the 45 % cap)
    suspect: list[int] = field(default_factory=list)
    same_person: list[tuple[int, int, float]] = field(default_factory=list)
    seconds: float = 0.0


def _masks(labels: list) -> tuple[np.ndarray, np.ndarray]:
    use = np.fromiter((lb not in NOT_IN_CENTRE for lb in labels), bool, len(labels))
    protect = np.fromiter((lb == "correct" for lb in labels), bool, len(labels))
    return use, protect


def _stats(rows, metric: Metric):
    face, ident, vec, labels = rows
    use, protect = _masks(labels)
    with one_blas_thread():  # many small products: threads cost more than they give
        cen, faces, _order = rule.identity_stats(face, ident, vec, metric, use, protect)
    return cen, faces


def _rows(r: IdentityCheck, uid: np.ndarray | None = None) -> list[tuple]:
    """The identity_centres rows of the identities ``uid`` (default: those of the faces
    judged in ``r``); each one's candidates farthest reach first (a changed centre can reach
    a prefix of them: an incremental refresh reads only that)."""
    cen, f = r.centres, r.faces
    uid = np.unique(f.ident) if uid is None else uid
    k = np.flatnonzero(r.cand)
    watch = r.watch
    reach = f.d_centre + watch
    k = k[np.lexsort((-reach[k], f.ident[k]))]
    lo, hi = np.searchsorted(f.ident[k], uid, "left"), np.searchsorted(f.ident[k], uid, "right")
    out = []
    for u, p, a, b in zip(
        uid.tolist(), cen.pos(uid).tolist(), lo.tolist(), hi.tolist(), strict=True
    ):
        kk = k[a:b]
        out.append(
            (u, cen.centre[p], cen.kept[p], cen.count[p], cen.spread[p], cen.far[p], cen.score[p],
             f.face[kk], watch[kk], f.vectors[kk], reach[kk])
        )  # fmt: skip
    return out


def _measure(project: Project, model: str, run: _Run, lo: int, hi: int):
    """(centres, the faces the rule can flag) of the identities ``lo``..``hi``; None: no
    vectors there."""
    rows = ic_store.embeddings_in_range(project, model, lo, hi)
    if not len(rows[0]):
        return None
    c, f = _stats(rows, run.metric)
    return c, rule.flaggable(f, c, run.metric, run.rel_margin)


def _measure_in_worker(path: str, model: str, run: _Run, lo: int, hi: int):
    """:func:`_measure` in a pool worker, on its own connection to the project file."""
    with open_project(path) as project:
        return _measure(project, model, run, lo, hi)


def _measured(project: Project, model: str, run: _Run, ranges: list[tuple[int, int]]):
    """:func:`_measure` of each range, in order: on a pool of one worker process per core
    when there are at least PARALLEL_RANGES ranges (measuring is per-identity Python work,
    one core's worth), else here."""
    workers = min(usable_cores(), len(ranges))
    if workers < 2 or len(ranges) < PARALLEL_RANGES:
        for lo, hi in ranges:
            yield _measure(project, model, run, lo, hi)
        return
    with process_pool(workers) as pool:
        futures = [
            pool.submit(_measure_in_worker, str(project.path), model, run, lo, hi)
            for lo, hi in ranges
        ]
        for fu in futures:
            yield fu.result()


def _full(project: Project, model: str, run: _Run, out: Refresh) -> None:
    """Every identity measured once (a range of identities at a time); of each range only the
    faces the rule can flag are kept (strangers, and look-alike candidates: whether a face is
    one depends on its own identity alone), then judged against every centre."""
    metric = run.metric
    parts: list[Centres] = []
    kept: list[Faces] = []
    for got in _measured(project, model, run, ic_store.identity_ranges(project, CHUNK_FACES)):
        if got is not None:
            parts.append(got[0])
            kept.append(got[1])
    cen = Centres.join(parts) if parts else Centres.empty()
    nb = nearest.centre_neighbours(cen.centre)
    pairs = rule.same_person(cen, metric, nb, ratio=run.ratio)
    flags: list[tuple[int, float]] = []
    looks: list[tuple[int, int, float]] = []
    ic_store.write_centres(project, [], everything=True)
    state = (cen, nb, pairs, run, str(project.path), model)
    for uid, (fl, lk, rows, counts, score) in _judged(state, parts, kept, project):
        flags += fl
        looks += lk
        out.global_faces += counts[0]
        out.asked += counts[1]
        out.by_faces += counts[2]
        cen.score[cen.pos(uid)] = score
        ic_store.write_centres(project, rows)
    ic_store.replace_kind_flags(project, KIND, flags)
    ic_store.replace_looks_like(project, looks)
    ic_store.replace_same_person(project, pairs)
    out.recomputed = len(cen.uid)
    _set_suspicion(project, cen, None)


def faces_of(project: Project, model: str) -> rule.FacesOf:
    """The rule's :data:`rule.FacesOf` read from the project: the embedded faces of some
    identities that may make their centres."""

    def of(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        face, ident, vec, labels = ic_store.embeddings_of(project, model, ids.tolist())
        use, _protect = _masks(labels)
        return face[use], ident[use], vec[use]

    return of


# a judging worker's (centres, neighbours, pairs, run, project path, model) and its own
# connection to the project (opened on first use)
_JUDGE: tuple | None = None
_JUDGE_PROJECT: Project | None = None


def _judge_start(*state) -> None:
    global _JUDGE
    _JUDGE = state


def _judge_part(f: Faces, uid: np.ndarray, state: tuple | None = None, project=None):
    """The kept faces of one range (identities ``uid``) judged against every centre: (flag
    rows, looks-like rows, centre rows, (faces compared with every centre, faces whose nearest
    faces were read, look-alikes told by them), the scores of ``uid``). ``project``: read
    faces through it (else a worker's own connection)."""
    global _JUDGE_PROJECT
    cen, nb, pairs, run, path, model = _JUDGE if state is None else state  # type: ignore[misc]
    if project is None:
        if _JUDGE_PROJECT is None:
            _JUDGE_PROJECT = open_project(path)
        project = _JUDGE_PROJECT
    r = rule.judge(
        f, cen, nb, pairs, run.metric, faces_of(project, model), rel_margin=run.rel_margin
    )
    counts = (r.global_faces, r.asked, r.by_faces)
    return r.flag_rows(), r.suspects(), _rows(r, uid), counts, cen.score[cen.pos(uid)]


def _judged(state: tuple, parts: list[Centres], kept: list[Faces], project: Project):
    """(uid, :func:`_judge_part`) of each range, in order: on a pool of one worker process per
    core (one BLAS/faiss thread each: OpenMP threads of one process were measured to wait on
    each other on a loaded machine) from PARALLEL_RANGES ranges on, else here."""
    workers = min(usable_cores(), len(parts))
    if workers < 2 or len(parts) < PARALLEL_RANGES:
        for c, f in zip(parts, kept, strict=True):
            yield c.uid, _judge_part(f, c.uid, state, project)
        return
    with process_pool(workers, _judge_start, state) as pool:
        futures = [pool.submit(_judge_part, f, c.uid) for c, f in zip(parts, kept, strict=True)]
        kept.clear()  # the pool holds them until they are sent
        for c, fu in zip(parts, futures, strict=True):
            yield c.uid, fu.result()


def _stored_centres(project: Project) -> Centres:
    ids, cen, vals = ic_store.load_centres(project)
    kept, count, spread, far, score = (vals[:, j].copy() for j in range(5))
    return Centres(ids, cen, kept, count, spread, far, score)


def _reached(
    project: Project, old: Centres, moved: np.ndarray, skip: np.ndarray, out: Refresh
) -> np.ndarray:
    """Identities (not in ``skip``) with a look-alike candidate face that a centre of
    ``moved`` (old or new places of the changed centres) is nearer than its stored watch
    distance (``IdentityCheck.watch``): the only faces of the other identities whose flags a
    changed centre can change. ``old``: the stored centres. By the triangle bound a moved
    centre c can be that near a candidate f of identity A only when |c - c_A| < |f - c_A| +
    watch (f's stored reach): only those candidates are read and compared (all of an identity
    whose reaches are not stored)."""
    if not len(moved) or not len(old.uid):
        return np.zeros(0, np.int64)
    near = nearest.min_dist(old.centre, moved).astype(np.float64)  # each centre to the moved
    st = ic_store.candidate_reaches(project)
    p = np.minimum(old.pos(st.ids), len(old.uid) - 1)
    ok = (old.uid[p] == st.ids) & ~np.isin(st.ids, skip)
    ok &= near[p] < st.top + REACH_SLACK
    each = np.repeat(ok, st.n) & (st.reach + REACH_SLACK > np.repeat(near[p], st.n))
    out.candidates, out.compared = len(each), int(each.sum())
    hit: list[np.ndarray] = []
    ident = np.repeat(st.ids, st.n)
    if each.any():
        # of each identity, its candidates up to the last one a moved centre can reach (all
        # of them before it, when stored farthest reach first)
        start = np.r_[0, np.cumsum(st.n)[:-1]]
        owner = np.repeat(np.arange(len(st.ids)), st.n)
        last = np.zeros(len(st.ids), np.int64)
        np.maximum.at(last, owner[each], np.flatnonzero(each) - start[owner[each]] + 1)
        some = np.flatnonzero(last)
        vec = ic_store.candidate_vectors(
            project, st.ids[some].tolist(), last[some].tolist(), st.n[some].tolist()
        )
        if vec is None:  # a centre row written without its reach: compare them all
            out.candidates = out.compared = 0
            return _reached_all(project, moved, skip, out=out)
        cnt = last[some]
        rows = np.repeat(start[some] - np.r_[0, np.cumsum(cnt)[:-1]], cnt) + np.arange(cnt.sum())
        m = each[rows]
        d = nearest.min_dist(vec[m], moved)
        hit.append(ident[rows[m]][d < st.t[rows[m]] + nearest.SLACK])
    rest = np.setdiff1d(old.uid, np.r_[st.ids, skip])  # no reach stored (before m019)
    if len(rest):
        hit.append(_reached_all(project, moved, skip, rest, out))
    return np.unique(np.concatenate(hit)) if hit else np.zeros(0, np.int64)


def _reached_all(project: Project, moved, skip, ids=None, out: Refresh | None = None):
    """As :func:`_reached`, every stored candidate (of ``ids``, default all) compared."""
    hit: list[np.ndarray] = []
    for ident, _face, t, vec in ic_store.candidates(project, None if ids is None else ids.tolist()):
        m = ~np.isin(ident, skip)
        if out is not None:
            out.candidates += len(m)
            out.compared += int(m.sum())
        if m.any():
            d = nearest.min_dist(vec[m], moved)
            hit.append(ident[m][d < t[m] + nearest.SLACK])
    return np.unique(np.concatenate(hit)) if hit else np.zeros(0, np.int64)


def _incremental(project: Project, model: str, run: _Run, stale: list[int], out: Refresh) -> None:
    metric = run.metric
    old = _stored_centres(project)
    st = np.array(sorted(stale), np.int64)
    new_c, new_f = _stats(ic_store.embeddings_of(project, model, st.tolist()), metric)
    was = np.isin(old.uid, st)
    cen = Centres.join([old.take(~was), new_c])
    removed = np.setdiff1d(old.uid[was], new_c.uid)
    with one_blas_thread():  # products of a few centres: threads spin more than they give
        affected = _reached(project, old, np.concatenate([old.centre[was], new_c.centre]), st, out)
    groups = [new_f]
    if len(affected):
        groups.append(_stats(ic_store.embeddings_of(project, model, affected.tolist()), metric)[1])
    redo = np.concatenate([new_c.uid, affected])
    nb = _neighbour_rows(cen.centre, cen.pos(redo))
    gone = set(st.tolist())
    pairs = [(p.a_id, p.b_id, p.distance) for p in ic_store.same_person(project)]
    pairs = [p for p in pairs if p[0] not in gone and p[1] not in gone]
    new_pairs = rule.same_person(cen, metric, nb, query=new_c.uid, ratio=run.ratio)
    pairs = sorted(set(pairs) | set(new_pairs), key=lambda r: (r[2], r[0], r[1]))
    ids = np.concatenate([redo, removed]).tolist()
    flags: list[tuple[int, float]] = []
    looks: list[tuple[int, int, float]] = []
    rows: list[tuple] = []
    for f in groups:
        if len(f.face):
            r = rule.judge(
                f, cen, nb, pairs, metric, faces_of(project, model), rel_margin=run.rel_margin
            )
            flags += r.flag_rows()
            looks += r.suspects()
            rows += _rows(r)
            out.global_faces += r.global_faces
            out.asked += r.asked
            out.by_faces += r.by_faces
    ic_store.replace_kind_flags(project, KIND, flags, ids)
    ic_store.replace_looks_like_of(project, ids, looks)
    ic_store.replace_same_person_of(project, np.r_[st, removed].tolist(), new_pairs)
    ic_store.write_centres(project, rows, removed.tolist())
    out.recomputed = len(redo)
    _set_suspicion(project, cen, ids)


def _neighbour_rows(C: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each centre's K nearest others, filled for the rows ``pos`` only."""
    k = min(nearest.K, max(len(C) - 1, 0))
    dist = np.zeros((len(C), k), np.float32)
    idx = np.zeros((len(C), k), np.int64)
    if len(pos) and k:
        dist[pos], idx[pos] = nearest.knn(C[pos], C, k, exclude=pos)
    return dist, idx


def refresh(
    project: Project, *, full: bool = False, values: Values | None = None
) -> Refresh | None:
    """Bring the ``suspect_identity`` flags, looks-like identities, same-person pairs, stored
    centres and identity suspicion up to date with the stored embeddings (of the model with
    the most vectors) and the project's settings (or ``values``), and record the settings
    used; None (and all of them emptied) without embeddings."""
    t0 = time.perf_counter()
    values = values if values is not None else settings.load(project)
    last = project.meta(STATE_META, "") or ""
    model = ic_store.model_in_use(project, last.split("|", 1)[0] or None)
    if model is None:
        _clear(project)
        return None
    run = _Run(metric_of(model), float(values.suspect_margin), float(values.same_person_ratio))
    state = f"{model}|{rule.fingerprint(run.metric)}|{run.rel_margin!r}|{run.ratio!r}"
    out = Refresh(model=model)
    stale = ic_store.stale_identities(project)
    # an identity deleted (takedown, discard) took its stored centre with it: where it stood,
    # faces of others may have looked like it, so everything is measured again
    full = full or bool(stale and ic_store.gone_identities(project, stale))
    if full or project.meta(STATE_META, "") != state:
        out.mode = "full"
        project.set_meta(STATE_META, "")
        ic_store.clear_stale(project)
        _full(project, model, run, out)
    elif stale:
        out.mode = "incremental"
        project.set_meta(STATE_META, "")
        ic_store.clear_stale(project, stale)
        _incremental(project, model, run, stale, out)
    project.set_meta(STATE_META, state)
    settings.record(project, settings.EMBED, values.of(settings.EMBED))
    out.suspect = ic_store.kind_flag_faces(project, KIND)
    out.same_person = [(p.a_id, p.b_id, p.distance) for p in ic_store.same_person(project)]
    out.seconds = time.perf_counter() - t0
    return out


def _clear(project: Project) -> None:
    ic_store.replace_kind_flags(project, KIND, [])
    ic_store.replace_looks_like(project, [])
    ic_store.replace_same_person(project, [])
    ic_store.write_centres(project, [], everything=True)
    ic_store.clear_stale(project)
    project.set_meta(STATE_META, "")


def identity_scores(project: Project) -> dict[int, float]:
    """Embedding evidence per identity (its worst flagged face's score), from the centres."""
    ids, _c, vals = ic_store.load_centres(project)
    j = ic_store.CENTRE_COLS.index("score")
    return {int(i): float(v) for i, v in zip(ids, vals[:, j], strict=True) if v > 0}


def add_embedding_suspicion(
    rows: list[tuple[int, float, int]], scores: dict[int, float]
) -> list[tuple[int, float, int]]:
    """The identity suspicion rows (identity, score, flagged faces) of the flag rule, plus the
    embedding evidence: EMBED_WEIGHT x (worst flagged face's score / MARGIN_UNIT)."""
    extra = {i: EMBED_WEIGHT * v / MARGIN_UNIT for i, v in scores.items() if v > 0}
    out = [(i, round(s + extra.pop(i, 0.0), 6), n) for i, s, n in rows]
    out += [(i, round(v, 6), 0) for i, v in extra.items()]
    return out


def _set_suspicion(project: Project, cen: Centres, ids: list[int] | None) -> None:
    """Recount the suspicion of ``ids`` (None: every identity) from their stored flags."""
    scores = {int(i): float(v) for i, v in zip(cen.uid, cen.score, strict=True) if v > 0}
    if ids is None:
        face, ident = ic_store.scanned_faces(project)
        members = ic_store.flag_members(project)
    else:
        scanned, members = flags_store.flag_memberships(project, ids)
        wanted = set(ids)
        scores = {i: v for i, v in scores.items() if i in wanted}
        face = np.array([f for f, _i in scanned], np.int64)
        ident = np.array([i for _f, i in scanned], np.int64)
    by_flag: dict[int, tuple[str, list[int]]] = {}
    for flag_id, kind, f in members:
        by_flag.setdefault(flag_id, (kind, []))[1].append(f)
    fl = [flagset.Flag(k, tuple(fs), None, 0.0) for k, fs in by_flag.values()]
    rows = add_embedding_suspicion(flag_rules.suspicion(fl, face, ident), scores)
    if ids is None:
        flags_store.set_suspicion(project, rows)
    else:
        flags_store.set_identity_suspicion(project, ids, rows)


def attach(
    project: Project,
    fs: flagset.FlagSet,
    face: np.ndarray,
    ident: np.ndarray,
    values: Values | None = None,
):
    """The scan's flag step: bring the check up to date (:func:`refresh`, with the scan's
    ``values``), add its ``suspect_identity`` flags to ``fs`` (computed, not yet stored) and
    recompute its identity suspicion. ``face``/``ident``: every scanned face. None without
    embeddings."""
    res = refresh(project, values=values)
    if res is None:
        return None
    rows = ic_store.kind_flag_rows(project, KIND)
    if rows:
        k = len(rows)
        fs.kind = np.r_[fs.kind, np.full(k, flagset.KIND_CODE[KIND], np.int8)]
        fs.distance = np.r_[fs.distance, np.full(k, -1, np.int16)]
        fs.score = np.r_[fs.score, [s for _f, s in rows]]
        fs.similarity = np.r_[fs.similarity, np.full(k, np.nan, np.float32)]
        fs.offsets = np.r_[fs.offsets, fs.offsets[-1] + np.arange(1, k + 1)]
        fs.face_ids = np.r_[fs.face_ids, np.array([f for f, _s in rows], fs.face_ids.dtype)]
    fs.suspicion = add_embedding_suspicion(
        flag_rules.suspicion_arrays(fs.kind, fs.offsets, fs.face_ids, face, ident),
        identity_scores(project),
    )
    return res
