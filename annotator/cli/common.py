"""Shared CLI pieces: the --project / --json options, JSON output, progress bars."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from annotator.formats import looks_binary
from annotator.model import AnnotatorError, check_reviewer
from annotator.store.db import Project, open_project

BINARY_SNIFF = 1 << 16  # bytes looked at to tell a binary file given as text

project_option = click.option(
    "--project",
    "-p",
    "project_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The project file (SQLite).",
)
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


class Progress:
    """A terminal progress bar with rate and ETA; silent when not a terminal or with --json.

    ``progress(done, total)`` is the callback core functions take.
    """

    def __init__(self, label: str, quiet: bool = False, unit: str = "rows"):
        self.label = label
        self.unit = unit
        self.enabled = not quiet and sys.stderr.isatty()
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        t = time.monotonic()
        if t - self.last < 0.2 and done < total:
            return
        self.last = t
        elapsed = max(t - self.start, 1e-9)
        rate = done / elapsed
        if total > 0:
            frac = min(done / total, 1.0)
            width = 30
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            eta = (total - done) / rate if rate > 0 else 0
            line = f"\r{self.label} [{bar}] {frac * 100:5.1f}% {rate:,.0f} {self.unit}/s ETA {_fmt(eta)}"
        else:
            line = f"\r{self.label} {done:,} {rate:,.0f} {self.unit}/s"
        sys.stderr.write(line)
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _fmt(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@contextmanager
def progress_bar(
    label: str, quiet: bool = False, unit: str = "rows"
) -> Iterator[Callable[[int, int], None]]:
    bar = Progress(label, quiet=quiet, unit=unit)
    try:
        yield bar
    finally:
        bar.close()
