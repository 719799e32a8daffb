"""`annotator import FORMAT PATH --project P.db`: import a source (resumable, idempotent)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

from annotator.cli.common import emit_json, json_option, progress_bar, project_option
from annotator.core.importer import import_source, preflight
from annotator.formats import FORMAT_HELP
from annotator.model import FORMATS
from annotator.store.db import open_project
from annotator.store.faces import summary

SHOW_REJECTED = 20


class FormatGroup(click.Group):
    """`annotator import FORMAT`: an unknown FORMAT is named as a format, with the choices."""

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[override]
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise click.UsageError(
                f"unknown format {name!r} (expected one of: {', '.join(FORMATS)})", ctx
            )
        return super().resolve_command(ctx, args)


@click.group("import", cls=FormatGroup)
def import_group() -> None:
    """Import a source into a project (created if missing).

    A bad row is reported and skipped, never stops the import. Importing the same source
    again adds nothing; an interrupted import continues where it stopped when run again.
    """


def _make(fmt: str, path_help: str) -> click.Command:
    @click.command(fmt, help=f"Import {FORMAT_HELP[fmt]}.\n\nPATH: {path_help}")
    @click.argument("path", type=click.Path(path_type=str))
    @project_option
    @click.option(
        "--restart",
        is_flag=True,
        help="Discard what an earlier (e.g. failed or partial) import of PATH stored, then "
        "import it again from the start. Refused when its faces carry review work.",
    )
    @json_option
    def cmd(path: str, project_path: str, as_json: bool, restart: bool, **kw: bool) -> None:
        preflight(fmt, path)  # fail on a missing or foreign source before creating the project
        created = not Path(project_path).expanduser().exists()
        try:
            with (
                open_project(project_path, create=True) as project,
                progress_bar(f"import {fmt}", quiet=as_json) as bar,
            ):
                result = import_source(
                    project,
                    fmt,
                    path,
                    progress=bar,
                    restart=restart,
                    follow_links=kw.get("follow_links", False),
                )
        except BaseException:
            if created:
                _remove_if_empty(project_path)
            raise
        if as_json:
            emit_json(result.to_json())
            return
        what = "names" if fmt == "names" else "faces"
        click.echo(
            f"imported {result.imported} {what}, skipped {result.skipped} already present or "
            f"withdrawn, rejected {len(result.rejected)} bad rows, "
            f"{result.identities} new identities"
        )
        if result.withdrawn:
            click.echo(
                f"refused {result.withdrawn} row(s) of withdrawn people (the withdrawal ledger: "
                "`annotator takedown --list`)"
            )
        for r in result.rejected[:SHOW_REJECTED]:
            click.echo(f"  rejected {r.origin}: {r.reason}")
        if len(result.rejected) > SHOW_REJECTED:
            click.echo(f"  ... and {len(result.rejected) - SHOW_REJECTED} more (see --json)")

    if fmt == "folder":
        cmd = click.option(
            "--follow-links",
            is_flag=True,
            help="Also import symlinks that point outside the root folder (skipped and "
            "reported by default).",
        )(cmd)
    return cmd


def _remove_if_empty(project_path: str) -> None:
    """Remove a project file this command created when the import failed (or was interrupted)
    before it stored any face or identity, so a failed first import leaves nothing behind."""
    p = Path(project_path).expanduser()
    with contextlib.suppress(Exception):
        with open_project(p) as project:
            s = summary(project)
            if s["faces"] or s["identities"]:
                return
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{p}{suffix}")


for _fmt, _help in {
    "msceleb": "the aligned/cropped TSV, e.g. FaceImageCroppedWithAlignment.tsv",
    "devset": "a development-set TSV (MID, EntityNameString, ImageURL, FaceID, FaceRectangle, FaceData)",
    "names": "Top1M_MidList.Name.tsv or a file of that shape",
    "rec": "train.rec (train.idx beside it), or the folder that holds them",
    "folder": "the root folder, holding one folder of images per identity",
}.items():
    import_group.add_command(_make(_fmt, _help))
