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
from annotator.core.review.takedown import TakedownResult, find_copies
from annotator.core.review.takedown import takedown as do_takedown
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
@click.option(
    "--keep-copies",
    is_flag=True,
    help="Do not remove copies of the person's photos filed under other identities; list them.",
)
@click.option(
    "--force-unscanned",
    is_flag=True,
    help="Go ahead although some faces are not scanned (copies among them are not found).",
)
@json_option
def takedown(
    key: str,
    project_path: str,
    reviewer: str,
    reason: str | None,
    yes: bool,
    keep_copies: bool,
    force_unscanned: bool,
    as_json: bool,
) -> None:
    """Remove identity KEY and everything about it from the project, irreversibly.

    Faces, hashes, flags, duplicate groups, names, label and QA history of its faces, the
    identity, and the thumbnail cache are deleted, the file is compacted (VACUUM), and only a
    salted digest of KEY stays so that a re-import skips it.

    Copies of the person's photos filed under other identities — byte-identical (same SHA-256)
    or in the same verified duplicate group as one of its faces — are removed too (counted by
    how they were found); with --keep-copies they stay and are listed for a reviewer. Faces
    not scanned yet cannot be matched: scan first, or pass --force-unscanned.
    """
    if not yes:
        # irreversible: only a person answering the prompt on a terminal, or --yes, goes on
        if as_json or not sys.stdin.isatty():
            why = "with --json" if as_json else "with no terminal to ask on"
            raise AnnotatorError(
                f"takedown is irreversible: {why}, pass --yes to remove {key}; nothing was removed"
            )
        if not click.confirm(
            f"Remove identity {key} and all its faces{_copies_note(project_path, key, keep_copies)} for good?",
            default=False,
        ):
            raise AnnotatorError("cancelled; nothing was removed")
    with open_existing(project_path) as project:
        res = do_takedown(
            project,
            key,
            reviewer,
            reason,
            keep_copies=keep_copies,
            force_unscanned=force_unscanned,
        )
    if as_json:
        emit_json(res.to_json())
        return
    click.echo(
        f"removed {res.faces_removed} face(s), {res.flags_removed} flag(s), "
        f"{res.events_removed} event(s), {res.qa_items_removed} QA item(s); file compacted"
    )
    _echo_copies(res)
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


def _copies_note(project_path: str, key: str, keep_copies: bool) -> str:
    """The copies of the person's photos under other identities, for the confirmation prompt."""
    with open_existing(project_path) as project:
        found = find_copies(project, key)
    if found is None or not found.rows:
        return ""
    n = len(found.rows)
    verb = "kept and listed" if keep_copies else "removed too"
    return (
        f" ({n} copy(ies) of its photos under {found.identities} other identity(ies) "
        f"will be {verb})"
    )


def _echo_copies(res: TakedownResult) -> None:
    how = f"{res.copies_by_sha256} byte-identical, {res.copies_by_near} verified near copy(ies)"
    if res.copies_removed:
        click.echo(
            f"removed {res.copies_removed} copy(ies) of the person's photos filed under "
            f"{res.copy_identities} other identity(ies) ({how})"
        )
        if res.identities_emptied:
            click.echo(
                f"warning: {res.identities_emptied} of those identities have no face left; if "
                "they are the same person under another key, take them down too",
                err=True,
            )
    elif res.copies_kept:
        click.echo(
            f"kept {res.copies_kept} copy(ies) of the person's photos filed under "
            f"{res.copy_identities} other identity(ies) ({how}); they REMAIN in the project:"
        )
        for c in res.copies:
            click.echo(f"  face {c['id']}  {c['origin']}  ({c['found_by']})")
    else:
        click.echo("no copies of the person's photos found under other identities")
    if res.unscanned_faces:
        click.echo(
            f"warning: {res.unscanned_faces} face(s) were not scanned, so copies among them were "
            "not looked for",
            err=True,
        )
