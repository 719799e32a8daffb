"""`annotator pack` and `annotator merge` — reviewer packages that travel and come back."""

from __future__ import annotations

import click

from annotator.cli.common import (
    emit_json,
    json_option,
    open_existing,
    progress_bar,
    project_option,
    require_parent_dir,
    require_text_file,
)
from annotator.core.review import merge as merge_core
from annotator.core.review import pack as core
from annotator.model import AnnotatorError

MAX_CONFLICTS_SHOWN = 20


@click.command("pack")
@project_option
@click.option("--identities", "keys", default=None, help="Identity keys, comma separated.")
@click.option(
    "--identities-file",
    "keys_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="A text file of identity keys, one per line.",
)
@click.option(
    "--unreviewed",
    type=int,
    default=None,
    help="The N first unreviewed identities in review order that no package still out holds.",
)
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False), help="The package file."
)
@click.option(
    "--with-images", is_flag=True, help="Put the faces' original bytes inside the package."
)
@json_option
def pack(
    project_path: str,
    keys: str | None,
    keys_file: str | None,
    unreviewed: int | None,
    out: str,
    with_images: bool,
    as_json: bool,
) -> None:
    """Write a reviewer package: a project file with some identities, their faces, hashes,
    flags and labels so far, to review on another machine and bring back with `merge`."""
    given = [x for x in (keys, keys_file, unreviewed) if x is not None]
    if len(given) != 1:
        raise AnnotatorError("give exactly one of --identities, --identities-file, --unreviewed")
    key_list: list[str] | None = None
    if keys is not None:
        key_list = [k for k in keys.split(",") if k.strip()]
    elif keys_file is not None:
        key_list = core.read_identities_file(require_text_file(keys_file, "identity list"))
    require_parent_dir(out)
    with open_existing(project_path) as project:
        ids = core.select_identities(project, key_list, unreviewed)
        with progress_bar("embedding images", quiet=as_json, unit="faces") as bar:
            res = core.pack(project, ids, out, with_images=with_images, progress=bar)
    if as_json:
        emit_json(res.to_json())
        return
    images = ", with images" if res.with_images else ""
    click.echo(
        f"package {res.package_id} -> {res.out}: {res.identities:,} identities, "
        f"{res.faces:,} faces, {res.events:,} events of history{images}"
    )


@click.command("merge")
@click.argument("package", type=click.Path(dir_okay=False))
@project_option
@json_option
def merge(package: str, project_path: str, as_json: bool) -> None:
    """Bring a reviewer package's new labels home (again: nothing changes). A face labelled
    differently at home since the pack, or by another package, goes to `qa queue`."""
    with open_existing(project_path) as project:
        with progress_bar("merging", quiet=as_json, unit="events") as bar:
            res = merge_core.merge(project, package, progress=bar)
    if as_json:
        emit_json(res.to_json())
        return
    if not res.changed:
        click.echo(f"package {res.package_id}: nothing new to merge")
        return
    click.echo(
        f"package {res.package_id}: {res.batches:,} batches, {res.events:,} events merged; "
        f"{res.applied:,} faces updated, {res.agreed:,} already so at home, "
        f"{len(res.conflicts):,} conflicts queued for adjudication"
    )
    if res.gone:
        click.echo(f"  {res.gone:,} faces no longer at home (taken down): skipped")
    if res.withdrawn:
        click.echo(f"  {res.withdrawn:,} events or notes about withdrawn people left out")
    if res.reviews_kept:
        click.echo(f"  {res.reviews_kept:,} identity review marks kept as home changed them since")
    for x in res.conflicts[:MAX_CONFLICTS_SHOWN]:
        click.echo(
            f"  conflict {x['origin']}: home {x['home_label'] or 'unlabeled'} "
            f"({x['home_reviewer'] or '?'}), package {x['package_label'] or 'unlabeled'} "
            f"({x['package_reviewer']}) -> qa queue, pass {x['pass']}"
        )
    if len(res.conflicts) > MAX_CONFLICTS_SHOWN:
        click.echo(f"  ... and {len(res.conflicts) - MAX_CONFLICTS_SHOWN:,} more (see qa queue)")
