"""`annotator labels import|export` — label files in and out."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from annotator.cli.common import (
    emit_json,
    json_option,
    open_existing,
    progress_bar,
    project_option,
    require_parent_dir,
    require_text_file,
    validate_reviewer,
)
from annotator.core.review import labels_io
from annotator.model import LABELS

MAX_ERRORS_SHOWN = 20
SHAPE_TEXT = {  # how the file was read (core.labels_io's shapes)
    "labels": "read as a label file (origin or face id, label)",
    "clean": "read as a clean list (listed faces are correct)",
    "empty": "no label lines",
}


@click.group()
def labels() -> None:
    """Import labels from a CSV/TSV or a clean list, or export every face's label."""


@labels.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@project_option
@click.option(
    "--reviewer",
    "-r",
    required=True,
    callback=validate_reviewer,
    help="Who the imported labels are recorded as.",
)
@click.option(
    "--others",
    type=click.Choice(LABELS),
    default=None,
    help="Label for faces of the mentioned identities that the file does not list "
    "(e.g. wrong_identity for a clean list).",
)
@json_option
def import_labels(
    file: str, project_path: str, reviewer: str, others: str | None, as_json: bool
) -> None:
    """Apply labels from FILE.

    FILE is a CSV/TSV (header optional) of `origin` or face id, label (correct, wrong_identity,
    duplicate, unusable, unsure), optional new identity key and note; or a clean list of
    `MID/rank-FaceId-0.jpg<TAB>MID` lines whose faces are correct. Unknown faces and bad lines
    are reported with their line numbers and skipped.
    """
    require_text_file(file, "label file (CSV/TSV or clean list)")
    with (
        open_existing(project_path) as project,
        progress_bar("labels", quiet=as_json, unit="faces") as bar,
    ):
        res = labels_io.import_labels(project, file, reviewer, others, progress=bar)
    if as_json:
        emit_json(res.to_json())
        return
    how = SHAPE_TEXT.get(res.shape, res.shape)
    click.echo(
        f"{how}: {res.applied} face(s) changed, {res.unchanged} already so, "
        f"{len(res.errors)} bad line(s)"
    )
    for e in res.errors[:MAX_ERRORS_SHOWN]:
        click.echo(f"  line {e.line}: {e.reason}", err=True)
    if len(res.errors) > MAX_ERRORS_SHOWN:
        click.echo(f"  ... and {len(res.errors) - MAX_ERRORS_SHOWN} more (see --json)", err=True)


@labels.command("export")
@project_option
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to this file instead of stdout.",
)
@json_option
def export_labels(project_path: str, out: str | None, as_json: bool) -> None:
    """Export every face's current label, reviewer, time and QA verdict.

    CSV by default. With --json: one JSON object {"faces": [...]} on stdout, or, with --out,
    JSON lines in the file and a summary object on stdout.
    """
    if out is not None:
        require_parent_dir(out)
    with open_existing(project_path) as project:
        rows = labels_io.export_rows(project)
        if as_json and out is None:
            emit_json({"faces": list(rows)})
            return
        if out is None:
            labels_io.write_csv(rows, sys.stdout)
            return
        tmp = f"{out}.part"
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                if as_json:
                    n = 0
                    for row in rows:
                        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                        n += 1
                else:
                    n = labels_io.write_csv(rows, fh)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    if as_json:
        emit_json({"faces": n, "out": str(Path(out).absolute()), "format": "jsonl"})
    else:
        click.echo(f"{n} face(s) written to {out}")
