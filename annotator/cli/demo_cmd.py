"""`annotator demo [DIR]`: draw the synthetic demo dataset, import it, say what to do next.

Re-running is safe: when DIR already holds a demo made with the same options its files are
reused and the (idempotent) import adds nothing. A DIR holding a demo project made with other
options, or a faces.tsv that the demo did not write, is refused rather than overwritten.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import click

from annotator.cli.common import emit_json, json_option, progress_bar
from annotator.core.importer import import_source
from annotator.demo.dataset import generate_demo, injected_counts
from annotator.model import AnnotatorError
from annotator.store import hashes as hashes_store
from annotator.store.db import open_project

DEFAULT_DIR = "annotator-demo"
PROJECT_NAME = "demo.db"
TRUTH_LABELS = "truth-labels.tsv"


def truth_labels(truth: dict[str, Any]) -> dict[int, str]:
    """Line -> the label a careful reviewer gives each imported row of the demo, from its
    ground truth: another person's face (a wrong identity, or a copy filed under another
    identity) ``wrong_identity``, a truncated JPEG ``unusable``, the second copy of an exact
    or near duplicate ``duplicate``, every other face ``correct``."""
    broken = {b["line"] for b in truth["broken"]}
    other = {int(n) for n in truth["true_identity"]} | set(truth["wrong_identity"])
    trunc = set(truth["truncated"])
    dup = {b for _a, b in truth["exact_dup"] + truth["near_dup"]}
    out: dict[int, str] = {}
    for ident in truth["identities"].values():
        for line in ident["lines"]:
            if line in broken:
                continue
            out[line] = (
                "wrong_identity"
                if line in other
                else "unusable"
                if line in trunc
                else "duplicate"
                if line in dup
                else "correct"
            )
    return dict(sorted(out.items()))


def write_truth_labels(d: Path, truth: dict[str, Any]) -> Path:
    """DIR/truth-labels.tsv: the ground truth as a label file (`annotator labels import`), to
    try the steps after review without reviewing by hand."""
    path = d / TRUTH_LABELS
    text = "".join(f"faces.tsv:{n}\t{lab}\n" for n, lab in truth_labels(truth).items())
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def _existing_params(d: Path) -> dict[str, Any] | None:
    """The options of the demo already in ``d``; None when there is none.

    Raises when ``d`` holds files of the demo's names that the demo did not write.
    """
    truth = d / "truth.json"
    if not truth.exists():
        if (d / "faces.tsv").exists() or (d / "names.tsv").exists():
            raise AnnotatorError(
                f"{d} holds a faces.tsv or names.tsv that `annotator demo` did not write; "
                "choose another folder"
            )
        return None
    try:
        params = json.loads(truth.read_text(encoding="utf-8"))["params"]
    except (ValueError, KeyError, TypeError, OSError):
        raise AnnotatorError(
            f"{truth} is not a demo ground-truth file; choose another folder"
        ) from None
    if not isinstance(params, dict):
        raise AnnotatorError(f"{truth} is not a demo ground-truth file; choose another folder")
    return params


@click.command("demo")
@click.argument("directory", required=False, default=DEFAULT_DIR, type=click.Path(file_okay=False))
@click.option(
    "--identities",
    "n_identities",
    default=40,
    show_default=True,
    type=click.IntRange(2, 100_000),
    help="How many invented people to draw.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Random seed; the same seed gives byte-identical files.",
)
@json_option
def demo(directory: str, n_identities: int, seed: int, as_json: bool) -> None:
    """Draw a synthetic face dataset into DIR (default ./annotator-demo) and import it.

    Writes DIR/faces.tsv (MS-Celeb 7-column TSV), DIR/names.tsv (names list),
    DIR/truth.json (the injected duplicates, wrong identities and broken rows) and
    DIR/truth-labels.tsv (that truth as a label file), then imports faces and names into
    DIR/demo.db. No real person's image is used: the faces are drawn.
    Running it again with the same options reuses the files and adds nothing.
    """
    d = Path(directory).expanduser().absolute()
    if d.exists() and not d.is_dir():
        raise AnnotatorError(f"{d} is a file, not a folder")
    project_path = d / PROJECT_NAME
    wanted = {"identities": n_identities, "faces_per_identity": [8, 30], "seed": seed, "size": 112}
    have = _existing_params(d) if d.exists() else None
    if have is not None and have != wanted and project_path.exists():
        raise AnnotatorError(
            f"{d} already holds a demo made with --identities {have.get('identities')} "
            f"--seed {have.get('seed')}; run with those options, choose another folder, "
            "or delete this one"
        )
    generated = have != wanted or not all(
        (d / f).exists() for f in ("faces.tsv", "names.tsv", "truth.json")
    )
    if generated:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise AnnotatorError(f"cannot create {d}: {e.strerror or e}") from None
        with progress_bar("drawing faces", quiet=as_json, unit="faces") as bar:
            res = generate_demo(d, identities=n_identities, seed=seed, progress=bar)
        if not res.complete:  # pragma: no cover - only with a cancelled() callback
            raise AnnotatorError("demo generation was cancelled")
    truth = json.loads((d / "truth.json").read_text(encoding="utf-8"))
    labels_path = write_truth_labels(d, truth)

    with open_project(project_path, create=True) as project:
        with progress_bar("import faces", quiet=as_json) as bar:
            faces = import_source(project, "msceleb", d / "faces.tsv", progress=bar)
        with progress_bar("import names", quiet=as_json) as bar:
            names = import_source(project, "names", d / "names.tsv", progress=bar)
        unscanned = len(hashes_store.unhashed_face_ids(project)) > 0

    injected = injected_counts(truth)
    p = shlex.quote(str(project_path))
    next_steps = [
        f"annotator info --project {p}",
        f"annotator identities --project {p}",
        # a project scanned before (demo run again) needs no scan: look at its flags instead
        f"annotator scan --project {p}" if unscanned else f"annotator flags --project {p}",
        f"annotator gui --project {p}",
    ]
    if as_json:
        emit_json(
            {
                "dir": str(d),
                "project": str(project_path),
                "faces_tsv": str(d / "faces.tsv"),
                "names_tsv": str(d / "names.tsv"),
                "truth_json": str(d / "truth.json"),
                "truth_labels": str(labels_path),
                "generated": generated,
                "identities": len(truth["identities"]),
                "injected": injected,
                "faces": faces.to_json(),
                "names": names.to_json(),
                "next": next_steps,
            }
        )
        return
    verb = "drew" if generated else "reused"
    rows = sum(len(v["lines"]) for v in truth["identities"].values()) + injected["broken"]
    click.echo(f"{verb} {rows} rows of {len(truth['identities'])} invented identities in {d}")
    click.echo(f"  faces.tsv   MS-Celeb 7-column TSV ({injected['broken']} rows broken on purpose)")
    click.echo("  names.tsv   names list (several languages and scripts)")
    click.echo("  truth.json  ground truth: " + ", ".join(f"{v} {k}" for k, v in injected.items()))
    click.echo(f"  {TRUTH_LABELS}  the ground truth as a label file (`annotator labels import`)")
    click.echo(
        f"project {project_path}: imported {faces.imported} faces "
        f"({faces.skipped} already there, {len(faces.rejected)} rejected) and "
        f"{names.imported} names ({names.skipped} already there)"
    )
    click.echo("next:")
    for s in next_steps:
        click.echo(f"  {s}")
