"""`annotator stats`: labels, review progress, raw-data noise, throughput, QA agreement."""

from __future__ import annotations

import click

from annotator.cli.common import emit_json, json_option, open_existing, project_option
from annotator.core.review.stats import project_stats, save_plots
from annotator.model import PROVENANCE

# an identity with labels but no review mark may have every face labeled (a label file):
# "partly labeled" said otherwise
STATE_WORDS = {"partly_labeled": "labeled (not reviewed)"}


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
    click.echo(
        "identities: "
        + ", ".join(f"{STATE_WORDS.get(k, k)} {v:,}" for k, v in s["identities"].items())
    )
    n = s["noise"]
    click.echo(
        f"wrong in the raw data, among labeled faces: {n['noisy']:,} of {n['labeled']:,} "
        f"(wrong identity {n['wrong_identity']:,}, duplicate {n['duplicate']:,}, moved "
        f"{n['moved']:,}); labeled faces are no random sample: no rate for the whole data set"
    )
    e = s["noise_estimate"]
    if e is None:
        click.echo(
            "raw-data noise estimate: none yet (draw a random sample: "
            "`annotator qa start --sample random`)"
        )
    elif e["rate"] is None:
        click.echo(f"raw-data noise estimate: {e['drawn']:,} random faces drawn, none judged yet")
    else:
        click.echo(
            f"raw-data noise estimate: {_pct(e['rate'])} (95% CI {_pct(e['ci95'][0])} - "
            f"{_pct(e['ci95'][1])}) from {e['judged'] - e['unsure']:,} faces drawn uniformly "
            f"at random ({e['unsure']:,} unsure left out; {e['drawn'] - e['judged']:,} not "
            f"judged yet); covers {e['population_faces']:,} faces: {e['population']}"
        )
    if s["provenance"]:
        made: dict[str, int] = {}
        for row in s["provenance"]:
            key = row["what"] + (f" ({row['detail']})" if row["detail"] else "")
            made[key] = made.get(key, 0) + row["faces"]
        click.echo("how the current labels were made:")
        for k, v in made.items():
            click.echo(f"  {v:>10,}  {k}")
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
    if s["not_in_activity"]:
        click.echo(
            "not review activity: "
            + ", ".join(
                f"{v:,} face(s) {PROVENANCE.get(k, k)}" for k, v in s["not_in_activity"].items()
            )
        )
    q = s["qa"]
    if q["drawn"]:
        o = q["overall"]
        kappa = "n/a" if o["kappa"] is None else f"{o['kappa']:.3f}"
        click.echo(
            f"QA: {o['judged']:,} of {q['drawn']:,} judged, agreement {_pct(o['agreement'])}, kappa {kappa}"
        )
    for p in paths:
        click.echo(f"plot: {p}")
