"""`annotator takedown KEY` — remove an identity completely (privacy request)."""

from __future__ import annotations

import sys

import click

from annotator.cli.common import (
    emit_json,
    json_option,
    open_existing,
    project_option,
    validate_reviewer,
)
from annotator.core.takedown import takedown as do_takedown
from annotator.model import AnnotatorError


@click.command()
@click.argument("key")
@project_option
@click.option(
    "--reviewer",
    "-r",
    required=True,
    callback=validate_reviewer,
    help="Who carries out the takedown.",
)
@click.option("--reason", default=None, help="Why (stored as given: do not put the name here).")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Do not ask for confirmation (required without a terminal and with --json).",
)
@json_option
def takedown(
    key: str, project_path: str, reviewer: str, reason: str | None, yes: bool, as_json: bool
) -> None:
    """Remove identity KEY and everything about it from the project, irreversibly.

    Faces, hashes, flags, duplicate groups, names, label and QA history of its faces, the
    identity, and the thumbnail cache are deleted, the file is compacted (VACUUM), and only a
    salted digest of KEY stays so that a re-import skips it.
    """
    if not yes:
        # irreversible: only a person answering the prompt on a terminal, or --yes, goes on
        if as_json or not sys.stdin.isatty():
            why = "with --json" if as_json else "with no terminal to ask on"
            raise AnnotatorError(
                f"takedown is irreversible: {why}, pass --yes to remove {key}; nothing was removed"
            )
        if not click.confirm(f"Remove identity {key} and all its faces for good?", default=False):
            raise AnnotatorError("cancelled; nothing was removed")
    with open_existing(project_path) as project:
        res = do_takedown(project, key, reviewer, reason)
    if as_json:
        emit_json(res.to_json())
        return
    click.echo(
        f"removed {res.faces_removed} face(s), {res.flags_removed} flag(s), "
        f"{res.events_removed} event(s), {res.qa_items_removed} QA item(s); file compacted"
    )
    if not res.wal_truncated:
        click.echo(
            "warning: another program has the project open, so its write-ahead log (-wal file) "
            "could not be truncated yet; it is cleared when the last program closes the project",
            err=True,
        )
    if res.earlier_exports:
        click.echo(
            f"warning: {res.earlier_exports} earlier export(s) of this project may still hold "
            "this person's images on disk; delete or re-export them (`annotator export ... --force`)",
            err=True,
        )
