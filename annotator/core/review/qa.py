"""QA passes: a blind second look at a stratified sample of labeled faces, agreement figures,
and the adjudication of disagreements; and estimate passes: faces drawn uniformly at random
from the whole project, whose verdicts give the raw data's noise rate with an interval (the
only place such an interval comes from: labels given in review order are no random sample).

* Sample: labeled faces whose current label was set by someone other than the QA reviewer
  and that the QA reviewer never labeled, moved or adjudicated themselves, stratified by
  (original reviewer, label). Allocation is proportional (largest remainder) with a floor of
  one item per stratum when the sample is large enough, and always at least one item per
  label kind present. Reproducible: ``numpy.random.default_rng(seed)``; the pass's items are
  shuffled so strata (and so labels) cannot be guessed from the order.
* A verdict is its own ``qa`` event; it never changes ``faces.label``.
* Agreement: Cohen's kappa with the large-sample standard error of Fleiss, Cohen & Everitt
  (1969) and a normal 95% interval (clipped to [-1, 1]); error rate of the original labels with
  a Wilson 95% interval, where an original label counts as an error when the adjudicated label
  (or, before adjudication, the QA verdict) differs from it. Figures are over the sampled items
  (unweighted).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from annotator.core.review import ops
from annotator.core.review.labels_io import LabelLine, LineError, read_label_file, resolve_ref
from annotator.core.review.statistics import cohen_kappa, wilson, wilson_p
from annotator.model import LABELS, ORIGIN_IMPORT, AnnotatorError, check_label
from annotator.store import faces as faces_store
from annotator.store import labels as labels_store
from annotator.store import qa as store
from annotator.store.db import Project, made_by

DEFAULT_FRACTION = 0.1


# -- sampling ------------------------------------------------------------------------------------


def allocate(sizes: Sequence[int], labels: Sequence[str], n: int) -> list[int]:
    """How many items to draw from each stratum (``sizes[h]`` faces, label ``labels[h]``).

    Proportional with largest remainders, capped by stratum size; every stratum gets at least one
    item when ``n`` allows, and every label kind present always gets at least one (so the result
    may exceed ``n`` when ``n`` is smaller than the number of label kinds).
    """
    k = len(sizes)
    total = sum(sizes)
    if k == 0 or total == 0:
        return [0] * k
    kinds = sorted(set(labels), key=lambda x: (LABELS.index(x) if x in LABELS else 99, x))
    n = min(max(n, len(kinds)), total)
    mins = [0] * k
    if n >= k:
        mins = [1 if s > 0 else 0 for s in sizes]
    else:
        for lab in kinds:  # the largest stratum of each label kind
            h = max((i for i in range(k) if labels[i] == lab), key=lambda i: (sizes[i], -i))
            mins[h] = 1
    raw = [n * s / total for s in sizes]
    alloc = [min(max(math.floor(r), m), s) for r, m, s in zip(raw, mins, sizes, strict=True)]
    diff = n - sum(alloc)
    while diff > 0:
        h = max((i for i in range(k) if alloc[i] < sizes[i]), key=lambda i: (raw[i] - alloc[i], -i))
        alloc[h] += 1
        diff -= 1
    while diff < 0:
        h = min((i for i in range(k) if alloc[i] > mins[i]), key=lambda i: (raw[i] - alloc[i], i))
        alloc[h] -= 1
        diff += 1
    return alloc


@dataclass
class PassResult:
    pass_id: int
    reviewer: str
    seed: int
    items: int
    eligible: int
    strata: list[dict[str, object]] = field(default_factory=list)
    sample: str = "stratified"

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def start_pass(
    project: Project,
    reviewer: str,
    *,
    fraction: float | None = None,
    count: int | None = None,
    seed: int | None = None,
    sample: str = "stratified",
) -> PassResult:
    """Draw a QA sample for ``reviewer`` and store it as a new pass: ``stratified`` (labeled
    faces of other reviewers, by reviewer and label: agreement with the labels) or ``random``
    (an estimate pass: faces drawn uniformly at random from every face of the project; its
    verdicts estimate the raw data's noise, see :func:`noise_estimate`)."""
    if sample not in SAMPLES:
        raise AnnotatorError(f"unknown sample {sample!r} (expected one of {', '.join(SAMPLES)})")
    if fraction is not None and count is not None:
        raise AnnotatorError("give either a fraction or a count, not both")
    if count is not None and count < 1:
        raise AnnotatorError("the count must be at least 1")
    if fraction is None and count is None:
        fraction = DEFAULT_FRACTION
    if fraction is not None and not 0 < fraction <= 1:
        raise AnnotatorError("the fraction must be in (0, 1]")
    if seed is None:
        seed = secrets.randbelow(2**31)
    if seed < 0:
        raise AnnotatorError("the seed must be a non-negative integer")
    with project.tx():  # one transaction: the QA reviewer's first-use row and the pass
        if sample == "random":
            return _draw_estimate(project, reviewer, fraction, count, seed)
        return _draw_pass(project, reviewer, fraction, count, seed)


SAMPLES = ("stratified", "random")
# What an estimate pass stands for (said with every figure drawn from it).
ESTIMATE_POPULATION = (
    "every face of the project when the sample was drawn, each under the identity it was "
    "imported with (the raw data as imported)"
)
NOISY_VERDICTS = ("wrong_identity", "duplicate")


def random_sample(population: int, n: int, seed: int) -> np.ndarray:
    """``n`` distinct indexes into ``range(population)``, each subset equally likely (a simple
    random sample without replacement), in random order; reproducible by ``seed``."""
    rng = np.random.default_rng(seed)
    return rng.choice(population, size=min(n, population), replace=False)


def _draw_estimate(
    project: Project, reviewer: str, fraction: float | None, count: int | None, seed: int
) -> PassResult:
    rid = labels_store.reviewer_id(project, reviewer)
    ids = store.all_face_ids(project)
    if not len(ids):
        raise AnnotatorError("nothing to sample: the project has no faces")
    n = count if count is not None else max(1, round((fraction or 0) * len(ids)))
    picked = [int(ids[int(i)]) for i in random_sample(len(ids), n, seed)]
    chosen = store.label_states(project, picked, rid)
    params = {
        "sample": "random",
        "fraction": fraction,
        "count": count,
        "eligible": len(ids),
        "population": ESTIMATE_POPULATION,
    }
    pid = store.create_pass(project, rid, seed, params, chosen, population=len(ids))
    return PassResult(pid, reviewer, seed, len(chosen), len(ids), [], "random")


def estimate_from_verdicts(verdicts: Sequence[str | None]) -> dict[str, object]:
    """The raw-noise estimate of a uniformly random sample's verdicts: the share of faces judged
    ``wrong_identity`` or ``duplicate`` among those judged (``unsure`` left out: no answer),
    with a Wilson 95% interval. ``None`` entries are items not judged yet."""
    judged = [v for v in verdicts if v is not None]
    unsure = sum(v == "unsure" for v in judged)
    answered = len(judged) - unsure
    noisy = sum(v in NOISY_VERDICTS for v in judged)
    ci = wilson(noisy, answered)
    return {
        "drawn": len(verdicts),
        "judged": len(judged),
        "unsure": unsure,
        "noisy": noisy,
        "by_verdict": {lab: sum(v == lab for v in judged) for lab in LABELS},
        "rate": _r(noisy / answered) if answered else None,
        "ci95": [_r(ci[0]), _r(ci[1])] if ci else None,
    }


def noise_estimate(project: Project) -> dict[str, object] | None:
    """The raw data's noise rate with a 95% interval, from the verdicts of every estimate pass
    (faces drawn uniformly at random; pooled), and the population it covers; None when no
    estimate pass was drawn. Never from labels given in review order (not a random sample)."""
    rows = store.estimate_verdicts(project)
    if not rows:
        return None
    est = estimate_from_verdicts([v for _p, _n, v in rows])
    est["passes"] = sorted({p for p, _n, _v in rows})
    est["population_faces"] = max(n for _p, n, _v in rows)
    est["population"] = ESTIMATE_POPULATION
    est["method"] = (
        "faces drawn uniformly at random (without replacement within a pass; passes pooled); "
        "noisy = QA verdict (or adjudication) wrong_identity or duplicate; unsure verdicts left "
        "out; Wilson 95% interval"
    )
    return est


def _draw_pass(
    project: Project, reviewer: str, fraction: float | None, count: int | None, seed: int
) -> PassResult:
    rid = labels_store.reviewer_id(project, reviewer)
    cands = store.candidates(project, rid)
    if not cands:
        raise AnnotatorError(
            f"nothing to check: no labeled face set by another reviewer than {reviewer!r}, "
            f"never labeled by {reviewer!r}, that an earlier QA pass did not already check"
        )
    # strata (original reviewer, label) as index arrays into the candidates, in face id order
    nlab = len(cands.labels)
    code = cands.reviewer_id * nlab + cands.label
    by_stratum = np.argsort(code, kind="stable")  # stable: face id order within a stratum
    code = code[by_stratum]
    starts = np.flatnonzero(np.diff(code)) + 1
    strata: dict[tuple[int, str], np.ndarray] = {}
    for lo, hi in zip([0, *starts.tolist()], [*starts.tolist(), len(code)], strict=True):
        u = int(code[lo])
        strata[(u // nlab, cands.labels[u % nlab])] = by_stratum[lo:hi]
    del code
    keys = sorted(strata, key=lambda k: (k[0], LABELS.index(k[1]) if k[1] in LABELS else 99, k[1]))
    sizes = [len(strata[k]) for k in keys]
    n = count if count is not None else max(1, round((fraction or 0) * len(cands)))
    alloc = allocate(sizes, [k[1] for k in keys], n)
    rng = np.random.default_rng(seed)
    picked: list[int] = []  # candidate indexes
    for key, a in zip(keys, alloc, strict=True):
        members = strata[key]
        if a:
            idx = rng.choice(len(members), size=a, replace=False)
            picked.extend(int(members[int(i)]) for i in sorted(idx))
    order = rng.permutation(len(picked))
    chosen = [cands.candidate(picked[int(i)]) for i in order]
    names = labels_store.reviewer_names(project)
    info = [
        {"reviewer": names.get(k[0], str(k[0])), "label": k[1], "size": s, "sampled": a}
        for k, s, a in zip(keys, sizes, alloc, strict=True)
    ]
    params = {"fraction": fraction, "count": count, "eligible": len(cands), "strata": info}
    pid = store.create_pass(project, rid, seed, params, chosen)
    return PassResult(pid, reviewer, seed, len(chosen), len(cands), info)


def _pass(project: Project, pass_id: int) -> store.PassInfo:
    p = store.get_pass(project, pass_id)
    if p is None:
        raise AnnotatorError(f"no QA pass {pass_id}")
    return p


@dataclass(frozen=True, slots=True)
class PassSummary:
    pass_id: int
    reviewer: str
    created_at: str
    seed: int
    items: int
    judged: int  # items with a verdict

    @property
    def complete(self) -> bool:
        return self.judged >= self.items


def passes(project: Project, reviewer: str | None = None) -> list[PassSummary]:
    """Every QA pass (or only ``reviewer``'s) with its progress, oldest first."""
    out = [PassSummary(*row) for row in store.pass_summaries(project)]
    if reviewer is not None:
        out = [p for p in out if p.reviewer == reviewer.strip()]
    return out


@dataclass(frozen=True, slots=True)
class BlindItem:
    """What the QA reviewer may see: the face and the identity it claims, not the label."""

    face_id: int
    position: int
    origin: str
    identity_id: int
    identity_key: str
    verdict: str | None  # the QA reviewer's own verdict so far


def next_items(
    project: Project, pass_id: int, limit: int | None = None, include_done: bool = False
) -> list[BlindItem]:
    """The pass's items in order (by default only those still without a verdict), blind."""
    _pass(project, pass_id)
    rows = store.blind_items(project, pass_id, include_done, limit)
    origins = faces_store.face_origins(project, [r.face_id for r in rows])
    return [
        BlindItem(
            r.face_id,
            r.position,
            origins.get(r.face_id, "?"),
            r.identity_id,
            r.identity_key,
            r.verdict,
        )
        for r in rows
    ]


def record_verdict(project: Project, pass_id: int, face_id: int, label: str, reviewer: str) -> int:
    """The QA reviewer's verdict on one item: its own ``qa`` event; returns the event id."""
    check_label(label)
    p = _pass(project, pass_id)
    if reviewer.strip() != p.reviewer:
        raise AnnotatorError(f"QA pass {pass_id} belongs to {p.reviewer!r}, not {reviewer!r}")
    it = store.item(project, pass_id, face_id)
    if it is None:
        raise AnnotatorError(f"face {face_id} is not in QA pass {pass_id}")
    # cannot happen for a stratified sample; an estimate pass asks about the raw data, not
    # about a label (an unlabeled face's item names the pass's reviewer)
    if it.orig_reviewer_id == p.reviewer_id and store.is_estimate_pass(project, pass_id) is None:
        raise AnnotatorError("a reviewer cannot QA their own label")
    return store.record_verdict(
        project, pass_id, face_id, it.identity_id, label, it.verdict, p.reviewer_id
    )


@dataclass
class VerdictFileResult:
    recorded: int = 0
    errors: list[LineError] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"recorded": self.recorded, "errors": [e.to_json() for e in self.errors]}


def verdicts_from_file(
    project: Project, pass_id: int, path: str | Path, reviewer: str
) -> VerdictFileResult:
    """Record verdicts from a CSV/TSV of ``origin-or-face-id, label`` (bad lines reported and
    skipped), in one transaction."""
    p = _pass(project, pass_id)
    if reviewer.strip() != p.reviewer:
        raise AnnotatorError(f"QA pass {pass_id} belongs to {p.reviewer!r}, not {reviewer!r}")
    parsed = read_label_file(path)
    res = VerdictFileResult(errors=list(parsed.errors))
    if parsed.shape == "clean":
        raise AnnotatorError("a QA verdict file has lines of origin,label (not a clean list)")
    resolver = faces_store.FaceResolver(project)
    # the file is one action: all its verdicts or none; each records the file as its provenance
    with made_by(ORIGIN_IMPORT, Path(path).name), project.tx():
        for row in parsed.rows:
            assert isinstance(row, LabelLine)
            if row.label is None:
                res.errors.append(LineError(row.line, "no label"))
                continue
            fid, reason = resolve_ref(resolver, row.ref)
            if fid is None:
                res.errors.append(LineError(row.line, reason or "unknown face"))
                continue
            try:
                record_verdict(project, pass_id, fid, row.label, reviewer)
            except AnnotatorError as e:
                res.errors.append(LineError(row.line, str(e)))
                continue
            res.recorded += 1
    res.errors.sort(key=lambda e: e.line)
    return res


# -- agreement -----------------------------------------------------------------------------------


def agreement(
    pairs: Iterable[tuple[str, str, str | None]], weights: Sequence[float] | None = None
) -> dict[str, object]:
    """Figures for (original label, QA verdict, adjudicated label or None) triples.

    ``weights`` (one per triple: faces its sampling stratum stands for / items judged in it)
    give the population estimate of the error rate: the sample over-represents small strata
    (one item at least per stratum and per label kind), so the unweighted rate is biased
    towards their error rates. Its interval is Wilson's at Kish's effective sample size."""
    idx = {lab: i for i, lab in enumerate(LABELS)}
    table = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    errors = 0
    n = 0
    unsure = 0  # verdicts `unsure`, not adjudicated: no answer about the label, not an error
    w_all = w_err = w_sq = 0.0
    for t, (orig, verdict, adj) in enumerate(pairs):
        table[idx[orig], idx[verdict]] += 1
        n += 1
        if adj is None and verdict == "unsure" and orig != "unsure":
            unsure += 1
            continue
        wrong = (adj or verdict) != orig
        if wrong:
            errors += 1
        if weights is not None:
            w = float(weights[t])
            w_all += w
            w_sq += w * w
            w_err += w * wrong
    agree = int(np.trace(table))
    k = cohen_kappa(table)
    answered = n - unsure
    ci = wilson(errors, answered)
    weighted = wci = None
    if weights is not None and w_all > 0:
        weighted = w_err / w_all
        wci = wilson_p(weighted, w_all * w_all / w_sq)
    return {
        "items": n,
        "agree": agree,
        "percent_agreement": round(100.0 * agree / n, 4) if n else None,
        "kappa": _r(k.kappa),
        "kappa_se": _r(k.se),
        "kappa_ci95": [_r(k.ci[0]), _r(k.ci[1])] if k.ci else None,
        "confusion": {
            orig: {qa: int(table[i, j]) for j, qa in enumerate(LABELS)}
            for i, orig in enumerate(LABELS)
        },
        "errors": errors,
        "unsure_verdicts": unsure,
        "error_rate": _r(errors / answered) if answered else None,
        "error_rate_ci95": [_r(ci[0]), _r(ci[1])] if ci else None,
        "error_rate_weighted": _r(weighted),
        "error_rate_weighted_ci95": [_r(wci[0]), _r(wci[1])] if wci else None,
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def report(project: Project, pass_id: int | None = None) -> dict[str, object]:
    """Agreement per original reviewer and overall, over the items with a verdict."""
    if pass_id is not None:
        _pass(project, pass_id)
        if store.is_estimate_pass(project, pass_id) is not None:
            raise AnnotatorError(
                f"QA pass {pass_id} is a random sample of all faces, not a check of labels: "
                "its figure is the raw-data noise estimate of `annotator stats`"
            )
    its = store.items(project, pass_id)
    done = [i for i in its if i.verdict is not None]
    weights = _stratum_weights(project, done)
    per: dict[str, list[tuple[str, str, str | None]]] = {}
    per_w: dict[str, list[float]] = {}
    for i, w in zip(done, weights, strict=True):
        assert i.verdict is not None
        per.setdefault(i.orig_reviewer, []).append((i.orig_label, i.verdict, i.adjudicated))
        per_w.setdefault(i.orig_reviewer, []).append(w)
    overall = agreement([(i.orig_label, i.verdict or "", i.adjudicated) for i in done], weights)
    return {
        "pass": pass_id,
        "passes": sorted({i.pass_id for i in its}),
        "items_total": len(its),
        "items_checked": len(done),
        "kappa_method": "Cohen's kappa; 95% CI = kappa +/- 1.96 SE, SE large-sample "
        "(Fleiss, Cohen & Everitt 1969)",
        "error_rate_method": "original label differs from the adjudicated label (or the QA "
        "verdict when not adjudicated; an `unsure` verdict not adjudicated is no answer and "
        "left out); Wilson 95% interval; error_rate: unweighted over the "
        "sample; error_rate_weighted: each judged item weighted by the faces of its sampling "
        "stratum (original reviewer, label) per item judged there, the estimate for all the "
        "labels the sample stands for (Wilson interval at Kish's effective sample size)",
        "overall": overall,
        "per_reviewer": {name: agreement(v, per_w[name]) for name, v in sorted(per.items())},
        "adjudication_pending": sum(
            1 for i in done if i.verdict != i.orig_label and i.adjudicated is None
        ),
    }


def _stratum_weights(project: Project, done: Sequence[store.Item]) -> list[float]:
    """Per judged item: faces of its stratum at sampling time / judged items of that stratum
    (strata are per pass, by original reviewer and label, as the pass recorded them)."""
    sizes: dict[tuple[int, str, str], int] = {}
    for pid in {i.pass_id for i in done}:
        p = store.get_pass(project, pid)
        for st in (p.params.get("strata") or []) if p else []:  # type: ignore[union-attr]
            sizes[(pid, str(st["reviewer"]), str(st["label"]))] = int(st["size"])
    judged: dict[tuple[int, str, str], int] = {}
    for i in done:
        key = (i.pass_id, i.orig_reviewer, i.orig_label)
        judged[key] = judged.get(key, 0) + 1
    out = []
    for i in done:
        key = (i.pass_id, i.orig_reviewer, i.orig_label)
        out.append(max(sizes.get(key, judged[key]), judged[key]) / judged[key])
    return out


# -- adjudication --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disagreement:
    pass_id: int
    face_id: int
    origin: str
    identity_id: int
    identity_key: str
    orig_label: str
    orig_reviewer: str
    verdict: str
    qa_reviewer: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def adjudication_queue(project: Project, pass_id: int | None = None) -> list[Disagreement]:
    """Items whose QA verdict differs from the original label and that await a decision
    (and faces a package merge found labelled differently at home: ``merge`` passes)."""
    its = [
        i
        for i in store.items(project, pass_id, merges=True)
        if i.verdict is not None and i.verdict != i.orig_label and i.adjudicated is None
    ]
    origins = faces_store.face_origins(project, [i.face_id for i in its])
    return [
        Disagreement(
            i.pass_id,
            i.face_id,
            origins.get(i.face_id, "?"),
            i.identity_id,
            i.identity_key,
            i.orig_label,
            i.orig_reviewer,
            i.verdict or "",
            i.qa_reviewer,
        )
        for i in its
    ]


def adjudicate(
    project: Project, pass_id: int, face_id: int, label: str, reviewer: str
) -> ops.Changes:
    """The final decision on a QA item: the face's label becomes ``label`` (an ``adjudicate``
    event) and the item records it."""
    check_label(label)
    _pass(project, pass_id)
    it = store.item(project, pass_id, face_id)
    if it is None:
        raise AnnotatorError(f"face {face_id} is not in QA pass {pass_id}")
    if it.verdict is None:
        raise AnnotatorError(f"face {face_id} has no QA verdict yet in pass {pass_id}")
    # one transaction: the label, the confirming record and the item's mark commit together
    with project.tx():
        ch = ops.label_faces(project, [face_id], label, reviewer, kind="adjudicate")
        ev = store.adjudication_event(project, ch.batch_id, face_id) if ch.batch_id else None
        if ev is None:  # the label already was the decision: record the decision on its own
            rid = labels_store.reviewer_id(project, reviewer)
            ev = store.record_confirming_adjudication(
                project, pass_id, face_id, it.identity_id, label, rid
            )
        store.set_adjudicated(project, pass_id, face_id, label, ev)
    return ch


QA_PASSED = "passed"
QA_PENDING = "pending"  # some of its QA items have no verdict yet
QA_DISAGREEMENT = "disagreement"  # a QA verdict differs from the label and is not adjudicated


def identity_qa_states(project: Project) -> dict[int, str]:
    """identity id -> :data:`QA_PASSED`, :data:`QA_PENDING` or :data:`QA_DISAGREEMENT`, for the
    identities that have QA items (an identity absent from the result was never sampled).

    Passed: every one of its QA items has a verdict that agrees with the original label or was
    adjudicated (the adjudicator's decision is final). A disagreement outranks pending items."""
    rank = {QA_PASSED: 0, QA_PENDING: 1, QA_DISAGREEMENT: 2}
    out: dict[int, str] = {}
    for ident, orig, verdict, adj in store.identity_item_states(project):
        if adj is not None or (verdict is not None and verdict == orig):
            st = QA_PASSED
        elif verdict is None:
            st = QA_PENDING
        else:
            st = QA_DISAGREEMENT
        if rank[st] >= rank[out.get(ident, QA_PASSED)]:
            out[ident] = st
    return out


def identity_qa_status(project: Project) -> dict[int, bool]:
    """identity id -> passed: it has >= 1 QA item and every item agrees or was adjudicated."""
    return {i: st == QA_PASSED for i, st in identity_qa_states(project).items()}
