"""Shared CLI pieces: the --project / --json options, JSON output, progress bars."""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from annotator.formats import looks_binary
from annotator.model import AnnotatorError, ProgressFn, check_reviewer
from annotator.store.db import Project, open_project

BINARY_SNIFF = 1 << 16  # bytes looked at to tell a binary file given as text


def project_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """The project file, as ``--project PATH`` (``-p``) or as the last argument
    (``annotator info PATH``, ``annotator labels import FILE PATH``); the command gets it as
    ``project_path``. Put it below a command's own arguments so PROJECT comes last."""

    @functools.wraps(f)
    def run(*args: Any, project_opt: str | None, project_arg: str | None, **kw: Any) -> Any:
        if project_opt and project_arg and project_opt != project_arg:
            raise click.UsageError(
                f"two projects given ({project_arg} and --project {project_opt}); give one"
            )
        path = project_opt or project_arg
        if not path:
            raise click.UsageError("no project given: name it as --project PATH or as PROJECT")
        return f(*args, project_path=path, **kw)

    run = click.argument(
        "project_arg", metavar="[PROJECT]", required=False, type=click.Path(dir_okay=False)
    )(run)
    return click.option(
        "--project",
        "-p",
        "project_opt",
        type=click.Path(dir_okay=False),
        help="The project file (SQLite); or give it as the last argument, PROJECT.",
    )(run)


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object on stdout."
)


def validate_reviewer(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """click callback of every ``--reviewer`` option: a blank name is refused in one line."""
    return None if value is None else check_reviewer(value)


def open_existing(path: str) -> Project:
    return open_project(path, create=False)


def require_text_file(path: str, what: str = "file") -> Path:
    """``path`` as a Path when it is an existing text file; else one clear error (a missing
    file, a folder, or a binary file such as a project or an image given by mistake)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise AnnotatorError(f"no such file: {path}")
    if not p.is_file():
        raise AnnotatorError(f"{path} is not a file")
    try:
        with open(p, "rb") as f:
            head = f.read(BINARY_SNIFF)
    except OSError as e:
        raise AnnotatorError(f"cannot read {path}: {e.strerror or e}") from None
    if looks_binary(head):  # a stray NUL byte is a bad line for the reader, not a binary file
        raise AnnotatorError(f"{path} is a binary file, not a text {what}")
    return p


def require_parent_dir(path: str) -> None:
    """Fail before any work when the folder an output file goes into does not exist."""
    parent = Path(path).expanduser().absolute().parent
    if not parent.is_dir():
        raise AnnotatorError(f"cannot write {path}: folder {parent} does not exist")


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, sort_keys=False))


REDRAW_SECONDS = 0.2  # redraw the bar at most this often (a core callback may run per row)


@contextmanager
def progress_bar(
    label: str | Callable[[], str], quiet: bool = False, unit: str = "rows"
) -> Iterator[ProgressFn]:
    """A ``progress(done, total)`` callback (what core functions take) drawing a
    ``click.progressbar`` with percentage, rate and ETA on stderr; silent when stderr is not a
    terminal or with ``quiet`` (--json). ``total`` 0 means not known yet (the bar pulses).
    A callable ``label`` is asked again at each redraw (e.g. a cluster's status)."""
    if quiet or not sys.stderr.isatty():
        yield _silent
        return
    start = time.monotonic()
    known = False  # the total: once known the bar shows the percentage, before it the count

    def rate(done: int | None) -> str | None:
        if done is None:
            return None
        per_s = f"{done / max(time.monotonic() - start, 1e-9):,.0f} {unit}/s"
        return per_s if known else f"{done:,} {unit}, {per_s}"

    # a generator has no length: the bar starts in its "length unknown" form
    with click.progressbar(
        (x for x in ()),
        label=label() if callable(label) else label,
        file=sys.stderr,
        show_eta=True,
        item_show_func=rate,
    ) as bar:
        last = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal last, known
            t = time.monotonic()
            if t - last < REDRAW_SECONDS and not 0 < total <= done:
                return
            last = t
            if callable(label):
                bar.label = label()
            if total > 0 and bar.length != total:
                bar.length = total
                known = True
            bar.update(done - bar.pos, done)

        yield progress


def _silent(done: int, total: int) -> None:
    """The progress callback of a quiet command."""
