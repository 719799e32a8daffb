"""Project statistics for `annotator stats` and the GUI dashboard (plain dicts, matplotlib
Figures; no Qt).

* Noise of the raw data, two figures: counts among the labeled faces (of the identities
  reviewed so far, and label files) that were wrong in the source — labeled ``wrong_identity`` or ``duplicate``,
  or moved to another identity (misfiled in the raw data even though now ``correct``) — with no
  interval and no rate: identities are reviewed most suspicious first, so they are no random
  sample; and the estimate with a 95% interval from estimate passes (faces drawn uniformly at
  random, ``qa start --sample random``), with the population it covers.
* Labels by provenance (how each current label was made: the reviewer, a label file, a merged
  package, an adjudication).
* Label counts (by label, by reviewer, the noise rate) come from the faces' *current* labels.
* Activity figures come from the history, counting only human review actions (made in the
  reviewer, or a QA adjudication; not label files, merged packages or history of unknown
  provenance, which are counted apart) that are not undone now: per
  reviewer, faces judged (label and adjudication events of forward actions, and QA verdicts;
  undo/redo batches and undone steps do not count) divided by active time, where active time is
  the sum of gaps between consecutive actions, each gap capped at ``IDLE_CAP`` seconds (a longer
  pause is a break), plus ``IDLE_CAP`` for the first action of each session. A rate needs at
  least ``MIN_ACTIONS`` actions over ``MIN_ACTIVE_SECONDS`` of active time (one CLI adjudication
  is not "12 faces/hour"); below that it is None ("not enough activity").
"""

from __future__ import annotations

import io
import math
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from annotator.core.review.qa import noise_estimate
from annotator.core.review.statistics import cohen_kappa, confusion, wilson
from annotator.model import LABEL_COLORS, LABELS, PROVENANCE, UNLABELED_COLOR
from annotator.store import labels as store
from annotator.store import qa as qa_store
from annotator.store.db import Project

IDLE_CAP = 300.0  # seconds
MIN_ACTIONS = 10  # a faces/hour rate needs this many actions ...
MIN_ACTIVE_SECONDS = 600.0  # ... over at least this much active time
ACTIVITY_NOTE = (
    "activity counts human review actions not undone (in the reviewer, or QA adjudications; "
    "not label files or merged packages); label counts are current labels; a rate needs "
    f"{MIN_ACTIONS} actions over {MIN_ACTIVE_SECONDS / 60:.0f} min active"
)


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def throughput(batches: list[tuple[str, str, int]]) -> dict[str, dict[str, Any]]:
    """reviewer -> {labels, actions, active_hours, faces_per_hour, sessions}; faces_per_hour is
    None below MIN_ACTIONS actions or MIN_ACTIVE_SECONDS of active time."""
    out: dict[str, dict[str, Any]] = {}
    prev: dict[str, datetime] = {}
    for name, at, n in batches:
        t = _parse(at)
        d = out.setdefault(name, {"labels": 0, "actions": 0, "active_seconds": 0.0, "sessions": 0})
        d["labels"] += n
        d["actions"] += 1
        last = prev.get(name)
        gap = (t - last).total_seconds() if last is not None else math.inf
        if gap > IDLE_CAP:
            d["sessions"] += 1
            d["active_seconds"] += IDLE_CAP
        else:
            d["active_seconds"] += max(gap, 0.0)
        prev[name] = t
    for d in out.values():
        secs = d.pop("active_seconds")
        d["active_hours"] = secs / 3600
        enough = d["actions"] >= MIN_ACTIONS and secs >= MIN_ACTIVE_SECONDS
        d["faces_per_hour"] = d["labels"] / (secs / 3600) if enough and secs > 0 else None
    return out


def labels_per_hour(batches: list[tuple[str, str, int]]) -> dict[str, int]:
    """Clock hour (``YYYY-MM-DDTHH``, UTC) -> label events, all reviewers."""
    c: Counter[str] = Counter()
    for _name, at, n in batches:
        c[at[:13]] += n
    return dict(sorted(c.items()))


def histogram(values: list[int]) -> dict[str, Any]:
    """Faces-per-identity histogram on 1, 2, 3-4, 5-8, ... (powers of two) bins."""
    if not values:
        return {"bins": [], "counts": [], "min": 0, "median": 0, "max": 0, "mean": 0.0}
    vals = sorted(values)
    edges = [1, 2, 3]
    while edges[-1] <= vals[-1]:
        edges.append((edges[-1] - 1) * 2 + 1)
    counts = [0] * (len(edges) - 1)
    j = 0
    for v in vals:
        while v >= edges[j + 1]:
            j += 1
        counts[j] += 1
    bins = [
        f"{lo}" if hi - lo == 1 else f"{lo}-{hi - 1}"
        for lo, hi in zip(edges, edges[1:], strict=False)
    ]
    return {
        "bins": bins,
        "counts": counts,
        "min": vals[0],
        "median": vals[len(vals) // 2],
        "max": vals[-1],
        "mean": sum(vals) / len(vals),
    }


def qa_summary(project: Project) -> dict[str, Any]:
    pairs = qa_store.qa_pairs(project)
    per: dict[str, list[tuple[str, str]]] = {}
    for name, a, b in pairs:
        per.setdefault(name, []).append((a, b))

    def fig(ps: list[tuple[str, str]]) -> dict[str, Any]:
        agreed = sum(a == b for a, b in ps)
        return {
            "judged": len(ps),
            "agreed": agreed,
            "agreement": agreed / len(ps) if ps else None,
            "agreement_ci95": list(ci) if (ci := wilson(agreed, len(ps))) else None,
            "kappa": cohen_kappa(confusion(ps, sorted({x for p in ps for x in p}))).kappa,
        }

    return {
        "drawn": qa_store.qa_drawn(project),
        "overall": fig([(a, b) for _n, a, b in pairs]),
        "per_reviewer": {n: fig(ps) for n, ps in sorted(per.items())},
    }


def provenance_counts(project: Project) -> list[dict[str, Any]]:
    """How the current labels were made: one row per (provenance, detail, label)."""
    return [
        {"provenance": p, "detail": d, "what": PROVENANCE.get(p, p), "label": lab, "faces": n}
        for p, d, lab, n in store.faces_by_provenance(project)
    ]


def project_stats(project: Project) -> dict[str, Any]:
    """Everything the stats command and the dashboard show, as plain JSON-able data."""
    by_label = store.faces_by_label(project)
    faces_by_label = {lab: by_label.get(lab, 0) for lab in (*LABELS, "unlabeled")}
    labeled = sum(v for k, v in by_label.items() if k != "unlabeled")
    moved = store.moved_faces(project)
    noisy = store.noisy_faces(project)  # a moved face later labeled duplicate counts once
    batches = store.label_batches(project)
    return {
        "faces": sum(by_label.values()),
        "faces_by_label": faces_by_label,
        "faces_by_review_state": store.faces_by_review_state(project),
        "identities": store.identities_by_state(project),
        "identities_with_label": store.identities_by_label(project),
        "noise": {
            "labeled": labeled,
            "wrong_identity": by_label.get("wrong_identity", 0),
            "duplicate": by_label.get("duplicate", 0),
            "moved": moved,
            "noisy": noisy,
            "among": "labeled faces (identities reviewed so far, most suspicious first, and "
            "label files): not a random sample, so no rate or interval is claimed for the raw "
            "data",
        },
        "noise_estimate": noise_estimate(project),
        "provenance": provenance_counts(project),
        "not_in_activity": store.judged_not_by_hand(project),
        "faces_per_identity": histogram(store.face_counts(project)),
        "labels_by_reviewer": store.labels_by_reviewer(project),
        "throughput": throughput(batches),
        "activity_note": ACTIVITY_NOTE,
        "labels_per_hour": labels_per_hour(batches),
        "qa": qa_summary(project),
    }


# -- plots ----------------------------------------------------------------------------------


def _say_empty(ax: Any, text: str) -> None:
    """An empty chart says so instead of showing bare axes from -0.04 to 0.04."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def figures(stats: dict[str, Any]) -> dict[str, Any]:
    """name -> matplotlib Figure (Agg-safe: no pyplot, no GUI backend)."""
    from matplotlib.figure import Figure

    out: dict[str, Any] = {}

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    labs = list(stats["faces_by_label"])
    ax.bar(
        labs,
        [stats["faces_by_label"][k] for k in labs],
        color=[LABEL_COLORS.get(k, UNLABELED_COLOR) for k in labs],  # the grid's colours
    )
    ax.set_ylabel("faces")
    e = stats.get("noise_estimate")
    title = "faces by label"
    if e and e["rate"] is not None:  # only an estimate from a random sample has an interval
        title += (
            f" — raw noise {e['rate']:.1%} [{e['ci95'][0]:.1%}, {e['ci95'][1]:.1%}]"
            f" (random sample of {e['judged'] - e['unsure']})"
        )
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    out["labels"] = fig

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    h = stats["faces_per_identity"]
    ax.bar(h["bins"], h["counts"], color="C2")
    ax.set_xlabel("faces per identity")
    ax.set_ylabel("identities")
    ax.set_title(f"faces per identity (median {h['median']}, max {h['max']})", fontsize=10)
    fig.tight_layout()
    out["faces_per_identity"] = fig

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    revs = sorted(stats["labels_by_reviewer"])
    bottom = [0] * len(revs)
    for lab in LABELS:
        vals = [stats["labels_by_reviewer"][r].get(lab, 0) for r in revs]
        ax.bar(revs, vals, bottom=bottom, label=lab, color=LABEL_COLORS[lab])
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("faces (current label)")
    ax.set_title("labels per reviewer", fontsize=10)
    if revs:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        _say_empty(ax, "no labels yet")
    fig.tight_layout()
    out["reviewers"] = fig

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    hours = stats["labels_per_hour"]
    ax.bar(range(len(hours)), list(hours.values()), color="C4")
    ax.set_xticks(
        range(len(hours)), [k[5:].replace("T", " ") + "h" for k in hours], rotation=45, fontsize=7
    )
    ax.set_ylabel("faces judged")
    ax.set_title("faces judged per clock hour (UTC; steps not undone)", fontsize=10)
    if not hours:
        _say_empty(
            ax,
            "no face judged in the reviewer yet\n(label files and merged packages\nare not review activity)",
        )
    fig.tight_layout()
    out["labels_per_hour"] = fig

    q = stats["qa"]
    if q["overall"]["judged"]:  # only once a QA reviewer has judged something
        fig = Figure(figsize=(6, 3.5), dpi=100)
        ax = fig.add_subplot()
        groups = [("overall", q["overall"])] + list(q["per_reviewer"].items())
        names = [g for g, _ in groups][::-1]
        vals = [f["agreement"] for _, f in groups][::-1]
        cis = [f["agreement_ci95"] for _, f in groups][::-1]
        err = [[v - c[0] for v, c in zip(vals, cis, strict=True)]]
        err.append([c[1] - v for v, c in zip(vals, cis, strict=True)])
        colors = ["C1" if n == "overall" else "C0" for n in names]
        ax.barh(names, vals, xerr=err, color=colors, capsize=4)
        for y, (_n, f) in enumerate(groups[::-1]):
            kappa = "n/a" if f["kappa"] is None else f"{f['kappa']:.2f}"
            ax.text(
                0.02,
                y,
                f" {f['agreed']}/{f['judged']} agree, κ {kappa}",
                va="center",
                fontsize=8,
                bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1},
            )
        ax.set_xlim(0, 1)
        ax.set_xlabel("QA agreement with the original label (95% CI)")
        ax.set_title(
            f"QA agreement by original reviewer — {q['overall']['judged']} of {q['drawn']} judged",
            fontsize=10,
        )
        fig.tight_layout()
        out["qa_agreement"] = fig
    return out


def figure_pngs(stats: dict[str, Any], dpi: int = 100) -> dict[str, bytes]:
    """name -> PNG bytes of every figure (Agg canvas; for the GUI dashboard)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out: dict[str, bytes] = {}
    for name, fig in figures(stats).items():
        FigureCanvasAgg(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        out[name] = buf.getvalue()
    return out


def save_plots(stats: dict[str, Any], folder: str | Path) -> list[str]:
    """Write every figure as ``<name>.png`` into ``folder`` (created); returns the paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures(stats).items():
        FigureCanvasAgg(fig)
        p = d / f"{name}.png"
        fig.savefig(str(p), format="png")
        paths.append(str(p))
    return paths
