"""`annotator import FORMAT PATH --project P.db`: import a source (resumable, idempotent)."""

from __future__ import annotations

import click

from annotator.cli.common import emit_json, json_option, progress_bar, project_option
from annotator.core.importer import import_source, resolve_path
from annotator.formats import FORMAT_HELP
from annotator.store.db import open_project

SHOW_REJECTED = 20


@click.group("import")
def import_group() -> None:
    """Import a source into a project (created if missing).

    A bad row is reported and skipped, never stops the import. Importing the same source
    again adds nothing; an interrupted import continues where it stopped when run again.
    """


def _make(fmt: str, path_help: str) -> click.Command:
    @click.command(fmt, help=f"Import {FORMAT_HELP[fmt]}.\n\nPATH: {path_help}")
    @click.argument("path", type=click.Path(path_type=str))
    @project_option
    @json_option
    def cmd(path: str, project_path: str, as_json: bool) -> None:
        resolve_path(fmt, path)  # fail on a missing source before creating the project file
        with (
            open_project(project_path, create=True) as project,
            progress_bar(f"import {fmt}", quiet=as_json) as bar,
        ):
            result = import_source(project, fmt, path, progress=bar)
        if as_json:
            emit_json(result.to_json())
            return
        what = "names" if fmt == "names" else "faces"
        click.echo(
            f"imported {result.imported} {what}, skipped {result.skipped} already present or "
            f"withdrawn, rejected {len(result.rejected)} bad rows, "
            f"{result.identities} new identities"
        )
        for r in result.rejected[:SHOW_REJECTED]:
            click.echo(f"  rejected {r.origin}: {r.reason}")
        if len(result.rejected) > SHOW_REJECTED:
            click.echo(f"  ... and {len(result.rejected) - SHOW_REJECTED} more (see --json)")

    return cmd


for _fmt, _help in {
    "msceleb": "the aligned/cropped TSV, e.g. FaceImageCroppedWithAlignment.tsv",
    "devset": "a development-set TSV (MID, EntityNameString, ImageURL, FaceID, FaceRectangle, FaceData)",
    "names": "Top1M_MidList.Name.tsv or a file of that shape",
    "rec": "train.rec (train.idx beside it), or the folder that holds them",
    "folder": "the root folder, holding one folder of images per identity",
}.items():
    import_group.add_command(_make(_fmt, _help))
