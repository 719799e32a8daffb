"""`annotator takedown KEY` — remove an identity completely (privacy request); `--from` many,
`--package` from a package file, `--list` the withdrawal ledger."""

from __future__ import annotations

import sys

import click

from annotator.cli.common import (
    emit_json,
    json_option,
    open_existing,
    project_option,
    require_text_file,
    validate_reviewer,
)
from annotator.core.review import requests
from annotator.core.review.package_purge import purge_package
from annotator.core.review.takedown import TakedownResult, find_copies
from annotator.core.review.takedown import takedown as do_takedown
from annotator.core.review.withdrawal import read_requests
from annotator.model import AnnotatorError
from annotator.store import withdrawal as ledger_store


@click.command()
@click.argument("key", required=False)
@project_option
@click.option(
    "--reviewer",
    "-r",
    default=None,
    callback=validate_reviewer,
    help="Who carries out the takedown (required unless --list).",
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
    "--include-lookalikes",
    is_flag=True,
    help="Also remove the faces the embeddings say look like the person, filed under other "
    "identities (default: listed, not removed).",
)
@click.option(
    "--force-unscanned",
    is_flag=True,
    help="Go ahead although some faces are not scanned (copies among them are not found).",
)
@click.option(
    "--from",
    "from_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="A requests file: one key or name a line, # comments. One summary, asked once.",
)
@click.option(
    "--package",
    "package",
    default=None,
    type=click.Path(dir_okay=False),
    help="Purge KEY (withdrawn at home already) from this reviewer package file.",
)
@click.option("--list", "list_", is_flag=True, help="Show the withdrawal ledger and exit.")
@json_option
def takedown(
    key: str | None,
    project_path: str,
    reviewer: str | None,
    reason: str | None,
    yes: bool,
    keep_copies: bool,
    include_lookalikes: bool,
    force_unscanned: bool,
    from_file: str | None,
    package: str | None,
    list_: bool,
    as_json: bool,
) -> None:
    """Remove identity KEY and everything about it from the project, irreversibly.

    Faces, hashes, flags, duplicate groups, names, label and QA history of its faces, the
    identity, and the thumbnail cache are deleted, the file is compacted (VACUUM), and only
    salted digests of the key, names and photos stay (the withdrawal ledger), so that import,
    merge and pack refuse the person.

    Copies of the person's photos filed under other identities — byte-identical (same SHA-256)
    or in the same verified duplicate group as one of its faces — are removed too (counted by
    how they were found); with --keep-copies they stay and are listed for a reviewer. Faces
    the embeddings say look like the person are listed ("probably the same person, filed
    elsewhere") and removed with --include-lookalikes. Faces not scanned yet cannot be
    matched: scan first, or pass --force-unscanned.

    --from FILE takes many requests (keys or names); --package PKG.db purges a withdrawn person
    from a reviewer package file; --list shows the ledger.
    """
    if list_:
        with open_existing(project_path) as project:
            rows = ledger_store.ledger(project)
        _echo_ledger(rows, as_json)
        return
    if reviewer is None and package is None:
        raise AnnotatorError("give the reviewer who carries out the takedown (--reviewer NAME)")
    if from_file is not None:
        if key:
            raise AnnotatorError("give KEY or --from FILE, not both")
        _bulk(
            project_path,
            from_file,
            reviewer or "",
            reason,
            yes,
            as_json,
            keep_copies,
            include_lookalikes,
            force_unscanned,
        )
        return
    if not key:
        raise AnnotatorError("give the identity KEY to take down (or --from FILE, or --list)")
    if package is not None:
        _confirm(yes, as_json, f"Remove {key} from package {package} for good?", key)
        with open_existing(project_path) as project:
            pres = purge_package(project, package, key)
        if as_json:
            emit_json(pres.to_json())
            return
        click.echo(
            f"package {pres.package_id[:8]}: removed {pres.faces_removed} face(s) of the person, "
            f"{pres.copies_removed} copy(ies), {pres.notes_scrubbed} note(s); "
            f"{pres.refused_by_ledger} more matched the withdrawal ledger; file compacted"
        )
        if not pres.home_updated:
            click.echo(
                "warning: the home project has no record of this package; it will not merge",
                err=True,
            )
        return
    if not yes:
        _confirm(
            yes,
            as_json,
            f"Remove identity {key} and all its faces"
            f"{_copies_note(project_path, key, keep_copies)} for good?",
            key,
        )
    with open_existing(project_path) as project:
        res = do_takedown(
            project,
            key,
            reviewer or "",
            reason,
            keep_copies=keep_copies,
            force_unscanned=force_unscanned,
            include_lookalikes=include_lookalikes,
        )
    if as_json:
        emit_json(res.to_json())
        return
    click.echo(
        f"removed {res.faces_removed} face(s), {res.flags_removed} flag(s), "
        f"{res.events_removed} event(s), {res.qa_items_removed} QA item(s); file compacted"
    )
    _echo_copies(res)
    _echo_lookalikes(res)
    _echo_packages(project_path, res.packages)
    for u in res.unfinished_packages:
        click.echo(
            f"warning: {u['file']} is left by a pack that never finished (killed); it may hold "
            "this person's faces and their bytes: delete it",
            err=True,
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


def _confirm(yes: bool, as_json: bool, question: str, what: str) -> None:
    """Irreversible: only a person answering the prompt on a terminal, or --yes, goes on."""
    if yes:
        return
    if as_json or not sys.stdin.isatty():
        why = "with --json" if as_json else "with no terminal to ask on"
        raise AnnotatorError(
            f"takedown is irreversible: {why}, pass --yes to remove {what}; nothing was removed"
        )
    if not click.confirm(question, default=False):
        raise AnnotatorError("cancelled; nothing was removed")


def _bulk(
    project_path: str,
    from_file: str,
    reviewer: str,
    reason: str | None,
    yes: bool,
    as_json: bool,
    keep_copies: bool,
    include_lookalikes: bool,
    force_unscanned: bool,
) -> None:
    lines = read_requests(str(require_text_file(from_file, "requests file")))
    with open_existing(project_path) as project:
        pl = requests.plan(project, [r for _n, r in lines])
        if not as_json:
            _echo_plan(pl, keep_copies, include_lookalikes)
        if not pl.people:
            if as_json:
                emit_json({"plan": pl.to_json(), "done": [], "failed": []})
            return
        _confirm(yes, as_json, f"Withdraw these {len(pl.people)} people for good?", "them")
        res = requests.run(
            project,
            pl.people,
            reviewer,
            reason,
            keep_copies=keep_copies,
            include_lookalikes=include_lookalikes,
            force_unscanned=force_unscanned,
        )
    if as_json:
        emit_json({"plan": pl.to_json(), **res.to_json()})
        return
    click.echo(f"withdrew {len(res.done)} people; file compacted")
    for f in res.failed:
        click.echo(f"not withdrawn: {f['request']}: {f['reason']}", err=True)


def _echo_plan(pl: requests.Plan, keep_copies: bool, include_lookalikes: bool) -> None:
    faces = sum(p.faces for p in pl.people)
    copies = sum(p.copies for p in pl.people)
    look = sum(p.lookalikes for p in pl.people)
    pk = sum(p.packages for p in pl.people)
    click.echo(
        f"{len(pl.people)} people to withdraw: {faces} face(s), {copies} copy(ies) under other "
        f"identities ({'kept' if keep_copies else 'removed'}), {look} look-alike face(s) "
        f"({'removed' if include_lookalikes else 'listed, not removed'}), held by {pk} "
        "package(s) out"
    )
    if pl.done:
        click.echo(f"{len(pl.done)} request(s) already carried out (in the ledger)")
    for r in pl.unknown:
        click.echo(f"unknown: {r} (no identity has this key or name)")
    for r, keys in pl.ambiguous.items():
        click.echo(f"ambiguous: {r} names {len(keys)} identities ({', '.join(keys)}); give a key")


def _echo_ledger(rows: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        emit_json({"takedowns": rows})
        return
    if not rows:
        click.echo("no takedowns")
        return
    for r in rows:
        d: dict = r["digests"]  # type: ignore[assignment]
        out: dict = r["copies_out"]  # type: ignore[assignment]
        click.echo(
            f"#{r['id']} {r['at']} by {r['by'] or '?'}: {r['faces_removed']} face(s) removed; "
            f"ledger holds {d.get('key', 0)} key, {d.get('name', 0)} name and "
            f"{d.get('photo', 0)} photo digest(s)"
        )
        for e in out.get("exports", []):
            click.echo(
                f"  export #{e['id']} {e['folder']} (manifest {str(e['manifest_sha256'])[:12]})"
            )
        for p in out.get("packages", []):
            img = ", with images" if p["with_images"] else ""
            click.echo(f"  package {str(p['id'])[:8]} {p['file']}{img}")
        for u in out.get("unfinished_packages", []):
            click.echo(f"  unfinished package file {u['file']}")
        for f in out.get("in_project", []):
            click.echo(f"  still in the project: face {f['face']} {f['origin']} ({f['found_by']})")


def _echo_lookalikes(res: TakedownResult) -> None:
    if res.same_person:
        click.echo(
            f"warning: {res.same_person} other identity(ies) are probably the same person (the "
            "embeddings put their centres close); review them and take them down too if so",
            err=True,
        )
    if res.lookalikes_removed:
        click.echo(
            f"removed {res.lookalikes_removed} face(s) that look like the person, filed under "
            "other identities (probably the same person, filed elsewhere)"
        )
    elif res.lookalikes:
        click.echo(
            f"{len(res.lookalikes)} face(s) look like the person, filed under other identities "
            "(probably the same person, filed elsewhere); NOT removed (--include-lookalikes):"
        )
        for c in res.lookalikes:
            click.echo(f"  face {c['id']}  {c['origin']}")


def _echo_packages(project_path: str, packages: list[dict[str, object]]) -> None:
    """The packages out that hold the person, each with the command that purges it (KEY is not
    echoed back: the output may end up in a log)."""
    for p in packages:
        img = " (with images)" if p["with_images"] else ""
        click.echo(
            f"warning: package {str(p['id'])[:8]}{img} sent out holds this person; purge it:"
            f" annotator takedown KEY --project {project_path} --package {p['file']} --yes",
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
