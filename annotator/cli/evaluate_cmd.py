"""`annotator evaluate`: score predictions on an exported set (MS-Celeb-1M protocol)."""

from __future__ import annotations

import click

from annotator.cli.common import emit_json, json_option, require_parent_dir, require_text_file
from annotator.core.evaluate import (
    PRECISIONS,
    curve_figure,
    load_truth,
    require_matches,
    save_figure,
)
from annotator.core.evaluate import evaluate as run_evaluation


@click.command("evaluate")
@click.option(
    "--truth",
    "truth_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="An export folder (msceleb, folder, rec or csv).",
)
@click.option(
    "--predictions",
    required=True,
    type=click.Path(dir_okay=False),
    help="ImageURL<TAB>FaceID<TAB>MID<TAB>confidence, or file<TAB>MID<TAB>confidence lines.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the precision/coverage curve as a PNG.",
)
@json_option
def evaluate(truth_dir: str, predictions: str, plot: str | None, as_json: bool) -> None:
    """Coverage at precision 0.95 / 0.99 and top-1 accuracy over all test faces."""
    truth = load_truth(truth_dir)
    require_text_file(predictions, "predictions file")
    if plot:
        require_parent_dir(plot)
    ev = run_evaluation(truth, predictions)
    require_matches(truth, ev)
    if plot:
        save_figure(curve_figure(ev), plot)
    if as_json:
        obj = ev.to_json()
        obj["plot"] = plot
        emit_json(obj)
        return
    click.echo(f"test faces     {ev.total:,}")
    click.echo(f"answered       {ev.answered:,}")
    click.echo(f"unmatched      {ev.unmatched:,} prediction lines name no test face")
    click.echo(f"top-1 accuracy {ev.top1:.4f}")
    for p in PRECISIONS:
        c, t = ev.coverage_at(p)
        thr = "" if t is None else f" (threshold {t:g})"
        click.echo(f"coverage@P={p:.2f} {c:.4f}{thr}")
    if ev.bad_count:
        click.echo(f"{ev.bad_count} bad prediction line(s) skipped:", err=True)
        for r in ev.bad_lines:
            click.echo(f"  line {r.record}: {r.reason}", err=True)
    if plot:
        click.echo(f"curve written to {plot}")
