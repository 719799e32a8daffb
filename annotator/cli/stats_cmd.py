"""`annotator stats`: labels, review progress, raw-data noise, throughput, QA agreement."""

from __future__ import annotations

import click

from annotator.cli.common import emit_json, json_option, open_existing, project_option
from annotator.core.review.stats import project_stats, save_plots


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


@click.command("stats")
@project_option
@json_option
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write PNG plots into this folder.",
)
def stats(project_path: str, as_json: bool, plots_dir: str | None) -> None:
    """Faces and identities by label and review state, noise rate, reviewers, QA agreement."""
    with open_existing(project_path) as project:
        s = project_stats(project)
    paths = save_plots(s, plots_dir) if plots_dir else []
    if as_json:
        emit_json({**s, "plots": paths})
        return
    click.echo(f"faces {s['faces']:,}")
    for k, v in s["faces_by_label"].items():
        click.echo(f"  {k:<16}{v:>10,}")
    click.echo(
        "faces by review state: "
        + ", ".join(f"{k} {v:,}" for k, v in s["faces_by_review_state"].items())
    )
    click.echo("identities: " + ", ".join(f"{k} {v:,}" for k, v in s["identities"].items()))
    n = s["noise"]
    ci = "" if n["ci95"] is None else f" (95% CI {_pct(n['ci95'][0])} - {_pct(n['ci95'][1])})"
    click.echo(
        f"raw-data noise: {_pct(n['rate'])}{ci} — {n['noisy']:,} of {n['labeled']:,} labeled faces "
        f"(wrong identity {n['wrong_identity']:,}, duplicate {n['duplicate']:,}, moved {n['moved']:,})"
    )
    h = s["faces_per_identity"]
    click.echo(
        f"faces per identity: min {h['min']}, median {h['median']}, max {h['max']}, mean {h['mean']:.1f}"
    )
    click.echo(f"  {'faces':>9} {'identities':>10}")  # the histogram's two columns
    for b, c in zip(h["bins"], h["counts"], strict=True):
        click.echo(f"  {b:>9} {c:>10,}")
    if s["labels_by_reviewer"]:
        click.echo("current labels by reviewer:")
        for name, labs in s["labels_by_reviewer"].items():
            click.echo(f"  {name:<16} " + ", ".join(f"{k} {v:,}" for k, v in labs.items()))
    if s["throughput"]:
        click.echo("activity (actions not undone):")
        for name, t in s["throughput"].items():
            fph = (
                "not enough activity for a rate"
                if t["faces_per_hour"] is None
                else f"{t['faces_per_hour']:,.0f} faces/hour"
            )
            click.echo(
                f"  {name:<16} {t['labels']:>8,} faces judged in {t['actions']:,} action(s), "
                f"{t['active_hours']:.2f} h active, {fph}"
            )
        click.echo(f"  ({s['activity_note']})")
    q = s["qa"]
    if q["drawn"]:
        o = q["overall"]
        kappa = "n/a" if o["kappa"] is None else f"{o['kappa']:.3f}"
        click.echo(
            f"QA: {o['judged']:,} of {q['drawn']:,} judged, agreement {_pct(o['agreement'])}, kappa {kappa}"
        )
    for p in paths:
        click.echo(f"plot: {p}")
