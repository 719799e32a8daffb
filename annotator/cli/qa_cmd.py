"""`annotator qa ...` — QA passes from the command line: start, items, label, report,
queue, adjudicate."""

from __future__ import annotations

import click

from annotator.cli.common import (
    emit_json,
    json_option,
    open_existing,
    project_option,
    require_text_file,
    validate_reviewer,
)
from annotator.core.review import qa as core
from annotator.core.review.labels_io import face_id_of
from annotator.model import LABELS

reviewer_option = click.option(
    "--reviewer", "-r", required=True, callback=validate_reviewer, help="Your reviewer name."
)
pass_option = click.option("--pass", "pass_id", type=int, required=True, help="The QA pass id.")


@click.group()
def qa() -> None:
    """Second-reviewer QA: blind sample, verdicts, agreement report, adjudication."""


@qa.command("start")
@project_option
@reviewer_option
@click.option("--fraction", type=float, default=None, help="Share of eligible faces (default 0.1).")
@click.option("--count", type=int, default=None, help="Number of faces to sample.")
@click.option("--seed", type=int, default=None, help="Random seed (reproducible sample).")
@click.option(
    "--sample",
    type=click.Choice(core.SAMPLES),
    default="stratified",
    show_default=True,
    help="stratified: faces labeled by others, by reviewer and label (agreement with the "
    "labels); random: faces drawn uniformly at random from every face of the project, judged "
    "against the identity they were imported with (the raw data's noise rate with an interval).",
)
@json_option
def start(
    project_path: str,
    reviewer: str,
    fraction: float | None,
    count: int | None,
    seed: int | None,
    sample: str,
    as_json: bool,
) -> None:
    """Start a QA pass: a stratified random sample of faces labeled by others, or (--sample
    random) a uniformly random sample of all faces that estimates the raw data's noise."""
    with open_existing(project_path) as project:
        res = core.start_pass(
            project, reviewer, fraction=fraction, count=count, seed=seed, sample=sample
        )
    if as_json:
        emit_json(res.to_json())
        return
    if res.sample == "random":
        click.echo(
            f"QA pass {res.pass_id} for {res.reviewer}: {res.items} faces drawn uniformly at "
            f"random from all {res.eligible} faces (seed {res.seed}); judge each against the "
            "identity it was imported with; `annotator stats` then shows the noise estimate"
        )
        return
    click.echo(
        f"QA pass {res.pass_id} for {res.reviewer}: {res.items} of {res.eligible} eligible "
        f"faces (seed {res.seed})"
    )
    for s in res.strata:
        click.echo(f"  {s['reviewer']:<16} {s['label']:<15} {s['sampled']:>6} of {s['size']}")


@qa.command("items")
@project_option
@pass_option
@click.option("--all", "include_done", is_flag=True, help="Also items already given a verdict.")
@click.option("--limit", type=click.IntRange(0), default=None, help="At most this many items.")
@json_option
def items(
    project_path: str, pass_id: int, include_done: bool, limit: int | None, as_json: bool
) -> None:
    """List a pass's items blind (the original label is not shown)."""
    with open_existing(project_path) as project:
        its = core.next_items(project, pass_id, limit=limit, include_done=include_done)
    if as_json:
        emit_json(
            {
                "pass": pass_id,
                "items": [
                    {
                        "face_id": i.face_id,
                        "position": i.position,
                        "origin": i.origin,
                        "identity": i.identity_key,
                        "verdict": i.verdict,
                    }
                    for i in its
                ],
            }
        )
        return
    for i in its:
        click.echo(f"{i.origin}\t{i.identity_key}\t{i.verdict or ''}")


@qa.command("label")
@reviewer_option
@pass_option
@click.argument("file", type=click.Path(dir_okay=False))
@project_option
@json_option
def label(project_path: str, reviewer: str, pass_id: int, file: str, as_json: bool) -> None:
    """Record QA verdicts from FILE, a CSV/TSV of origin (or face id), label."""
    require_text_file(file, "verdict file (CSV/TSV)")
    with open_existing(project_path) as project:
        res = core.verdicts_from_file(project, pass_id, file, reviewer)
    if as_json:
        emit_json(res.to_json())
        return
    click.echo(f"{res.recorded} verdict(s) recorded, {len(res.errors)} bad line(s)")
    for e in res.errors[:20]:
        click.echo(f"  line {e.line}: {e.reason}", err=True)


@qa.command("report")
@project_option
@click.option("--pass", "pass_id", type=int, default=None, help="Only this pass (default: all).")
@json_option
def report(project_path: str, pass_id: int | None, as_json: bool) -> None:
    """Agreement per original reviewer and overall: kappa with 95% CI, confusion, error rate."""
    with open_existing(project_path) as project:
        rep = core.report(project, pass_id)
    if as_json:
        emit_json(rep)
        return
    click.echo(f"items checked: {rep['items_checked']} of {rep['items_total']}")
    groups = {"overall": rep["overall"], **rep["per_reviewer"]}  # type: ignore[dict-item]
    for name, g in groups.items():
        click.echo(f"\n{name}: {g['items']} item(s)")
        if not g["items"]:
            continue
        kci = g["kappa_ci95"]
        kappa = "undefined" if g["kappa"] is None else f"{g['kappa']:.3f}"
        ci = f" (95% CI {kci[0]:.3f} to {kci[1]:.3f})" if kci else ""
        ev = g["error_rate_ci95"]
        click.echo(f"  agreement {g['percent_agreement']:.1f}%   kappa {kappa}{ci}")
        click.echo(
            f"  error rate of original labels {100 * g['error_rate']:.1f}% "
            f"(95% CI {100 * ev[0]:.1f}% to {100 * ev[1]:.1f}%)"
        )
        if g.get("error_rate_weighted") is not None:
            wv = g["error_rate_weighted_ci95"]
            click.echo(
                f"  weighted by stratum size  {100 * g['error_rate_weighted']:.1f}% "
                f"(95% CI {100 * wv[0]:.1f}% to {100 * wv[1]:.1f}%)"
            )
        used = [
            lab
            for lab in LABELS
            if sum(g["confusion"][lab].values()) or sum(g["confusion"][o][lab] for o in LABELS)
        ]
        # each column as wide as its full label name (no "wrong_ide"); 67 columns for all five
        width = {q: max(5, len(q)) for q in used}
        click.echo("  original \\ QA   " + " ".join(f"{q:>{width[q]}}" for q in used))
        for o in used:
            click.echo(
                f"  {o:<15} " + " ".join(f"{g['confusion'][o][q]:>{width[q]}}" for q in used)
            )
    click.echo(f"\nawaiting adjudication: {rep['adjudication_pending']}")
    click.echo(f"({rep['kappa_method']})")


@qa.command("queue")
@project_option
@click.option("--pass", "pass_id", type=int, default=None, help="Only this pass (default: all).")
@json_option
def queue(project_path: str, pass_id: int | None, as_json: bool) -> None:
    """List the adjudication queue: items where the QA verdict differs from the original."""
    with open_existing(project_path) as project:
        q = core.adjudication_queue(project, pass_id)
        judged = sum(p.judged for p in core.passes(project) if pass_id in (None, p.pass_id))
    if as_json:
        emit_json({"queue": [d.to_json() for d in q]})
        return
    if not q:
        where = f" in pass {pass_id}" if pass_id is not None else ""
        why = "every QA verdict agrees or is decided" if judged else "no QA verdict recorded yet"
        click.echo(f"nothing to adjudicate{where}: {why}")
    for d in q:
        click.echo(
            f"pass {d.pass_id}\t{d.origin}\t{d.identity_key}\t{d.orig_label} ({d.orig_reviewer})"
            f"\t{d.verdict} ({d.qa_reviewer})"
        )


@qa.command(
    "adjudicate",
    help="Decide a disagreement: ORIGIN (or face id) gets LABEL, final and recorded.\n\n"
    f"LABEL is one of: {', '.join(LABELS)}.",
)
@reviewer_option
@pass_option
@click.argument("origin")
@click.argument("label", type=click.Choice(LABELS), metavar="LABEL")
@project_option
@json_option
def adjudicate(
    project_path: str, reviewer: str, pass_id: int, origin: str, label: str, as_json: bool
) -> None:
    with open_existing(project_path) as project:
        fid = face_id_of(project, origin)
        ch = core.adjudicate(project, pass_id, fid, label, reviewer)
    if as_json:
        emit_json({"pass": pass_id, "face_id": fid, "label": label, "changed": bool(ch)})
    else:
        click.echo(f"{origin}: {label} (final)")
