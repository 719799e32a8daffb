"""`annotator info` (what is in a project) and `annotator identities` (one line per identity)."""

from __future__ import annotations

import click

from annotator.cli.common import emit_json, json_option, open_existing, project_option
from annotator.store import faces as store
from annotator.store import packages as packages_store


@click.command("info")
@project_option
@json_option
def info(project_path: str, as_json: bool) -> None:
    """Counts of sources, identities, faces, rejected rows, hashes, flags and labels."""
    with open_existing(project_path) as project:
        s = store.summary(project)
        srcs = store.source_summaries(project)
        pk = packages_store.summary(project)
    if as_json:
        emit_json({**s, "source_list": srcs, "packages": pk})
        return
    click.echo(f"project     {project.path}")
    for key in (
        "sources",
        "identities",
        "faces",
        "rejected",
        "hashed",
        "corrupt",
        "reviewed_identities",
    ):
        click.echo(f"{key.replace('_', ' '):<20}{s[key]:>12,}")
    for title in ("flags", "labels"):
        d = s[title]
        assert isinstance(d, dict)
        if d:
            click.echo(f"{title}:")
            for k, v in d.items():
                click.echo(f"  {k:<18}{v:>12,}")
    if pk["list"]:
        click.echo(f"{'packages':<20}{pk['out']:>6,} out, {pk['merged']:,} merged")
    if pk["of"]:
        of = pk["of"]
        click.echo(f"package of {of['home_path']} (id {of['id']}, packed {of['packed_at']})")
    if srcs:
        click.echo("source list:")
        for src in srcs:
            state = "" if src["complete"] else "  (partial: run the import again to finish)"
            click.echo(
                f"  [{src['format']}] {src['path']}: {src['faces']:,} faces, "
                f"{src['rejected']:,} rejected{state}"
            )


@click.command("identities")
@project_option
@json_option
@click.option(
    "--limit", type=click.IntRange(0), default=None, help="Show at most this many identities."
)
def identities(project_path: str, as_json: bool, limit: int | None) -> None:
    """One entry per identity: key, names by language, face count."""
    with open_existing(project_path) as project:
        items = list(store.identities(project, limit=limit))
    if as_json:
        emit_json(
            {"identities": [{"key": i.key, "names": i.names, "faces": i.face_count} for i in items]}
        )
        return
    for i in items:
        names = "; ".join(f"{n} @{lang}" for lang, n in i.names.items())
        click.echo(f"{i.key}\t{i.face_count}\t{names}")
