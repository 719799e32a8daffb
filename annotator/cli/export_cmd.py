"""`annotator export`: write the verified faces as a clean test set."""

from __future__ import annotations

import click

from annotator.cli.common import emit_json, json_option, open_existing, progress_bar, project_option
from annotator.core.export.run import export_dataset
from annotator.core.export.sinks import EXPORT_FORMATS


@click.command("export")
@project_option
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder: new or empty, or an earlier export to replace with --force.",
)
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(EXPORT_FORMATS),
    help="folder: one folder per identity; msceleb: 7-column TSV; rec: InsightFace train.rec/.idx/property; csv: manifest only.",
)
@click.option("--require-qa", is_flag=True, help="Only identities that passed QA.")
@click.option(
    "--min-faces",
    type=int,
    default=1,
    show_default=True,
    help="Leave out identities with fewer faces.",
)
@click.option(
    "--pairs",
    type=int,
    default=0,
    show_default=True,
    help="Also write N genuine + N impostor verification pairs (pairs.txt, pairs.bin).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the pairs.")
@click.option(
    "--force",
    is_flag=True,
    help="Replace an earlier export in --out (recognised by its manifest.json); any other "
    "non-empty folder is refused.",
)
@json_option
def export(
    project_path: str,
    out: str,
    fmt: str,
    require_qa: bool,
    min_faces: int,
    pairs: int,
    seed: int,
    force: bool,
    as_json: bool,
) -> None:
    """Export faces labeled `correct` (not corrupt, one per duplicate group) as a test set.

    Writes manifest.json (filters, counts, SHA-256 of every file) and a README.md datasheet.
    The same project and arguments give byte-identical files.
    """
    with (
        open_existing(project_path) as project,
        progress_bar("export", quiet=as_json, unit="faces") as bar,
    ):
        res = export_dataset(
            project,
            out,
            fmt,
            require_qa=require_qa,
            min_faces=min_faces,
            pairs=pairs,
            seed=seed,
            force=force,
            progress=bar,
        )
    if as_json:
        emit_json(res.to_json())
        return
    click.echo(
        f"exported {res.faces:,} faces of {res.identities:,} identities ({res.format}) to {res.out}"
    )
    if res.pairs:
        click.echo(f"pairs: {res.pairs} genuine + {res.pairs} impostor (pairs.txt, pairs.bin)")
    for reason, n in res.excluded.items():
        click.echo(f"  excluded {n:>8,}  {reason}")
    if not res.export_id:
        click.echo("(the project is read-only here: this export is not in its export log)")
