"""`annotator config [--project P] [KEY [VALUE]]`: show and set the project's thresholds
(:mod:`annotator.settings`)."""

from __future__ import annotations

from pathlib import Path

import click

from annotator import settings
from annotator.cli.common import emit_json, json_option, open_existing
from annotator.model import AnnotatorError


def _row(s: settings.Setting, value, made, hint: str) -> dict[str, object]:
    """One setting; ``made``: the value the project's flags were made with, when it differs."""
    return {
        "key": s.key,
        "value": value,
        "default": s.default,
        "step": settings.STEPS[s.step],
        "meaning": s.meaning,
        "flags_made_with": made,
        "rerun": hint if made is not None else None,
    }


@click.command("config")
@click.option(
    "--project",
    "-p",
    "project_path",
    type=click.Path(dir_okay=False),
    help="The project file (without it: the defaults).",
)
@click.argument("args", nargs=-1, metavar="[PROJECT] [KEY [VALUE]]")
@click.option("--reset", is_flag=True, help="Set KEY back to its default.")
@json_option
def config(project_path: str | None, args: tuple[str, ...], reset: bool, as_json: bool) -> None:
    """Show the project's settings (every threshold of the flags and the identity check, its
    value, default and meaning), one of them (KEY), or set KEY to VALUE for this project.

    A change says which step to run again: the flags in the project keep the values they were
    made with until then (`annotator scan` recomputes them without hashing again).

    The project is --project P or the first argument (an existing file that is no setting)."""
    rest = list(args)
    if (
        rest
        and rest[0] not in {s.key for s in settings.SETTINGS}
        and Path(rest[0]).expanduser().is_file()
    ):
        first = rest.pop(0)
        if project_path is not None and project_path != first:
            raise AnnotatorError(f"two projects given ({first} and --project {project_path})")
        project_path = first
    if len(rest) > 2:
        raise AnnotatorError(f"too many arguments: {' '.join(rest[2:])} (expected KEY [VALUE])")
    key = rest[0] if rest else None
    value = rest[1] if len(rest) > 1 else None
    if key is not None:
        settings.setting(key)  # an unknown key is one line, before the project opens
    if (value is not None or reset) and project_path is None:
        raise AnnotatorError("setting a value needs --project")
    if value is not None and reset:
        raise AnnotatorError("give a VALUE or --reset, not both")
    if reset and key is None:
        raise AnnotatorError("--reset needs a KEY")
    if project_path is None:
        rows = [_row(s, s.default, None, "") for s in settings.SETTINGS if key in (None, s.key)]
        _show(rows, as_json)
        return
    with open_existing(project_path) as project:
        if value is not None or reset:
            assert key is not None
            old, new = settings.set_value(project, key, None if reset else value)
            made = settings.stale(project).get(key)
            _said(key, old, new, made, settings.rerun_hint(key, project.path), as_json)
            return
        values, stale = settings.load(project), settings.stale(project)
        rows = [
            _row(s, values[s.key], stale.get(s.key), settings.rerun_hint(s.key, project.path))
            for s in settings.SETTINGS
            if key in (None, s.key)
        ]
    _show(rows, as_json)


def _said(key: str, old, new, made, hint: str, as_json: bool) -> None:
    rerun = hint if made is not None else None
    if as_json:
        emit_json({"key": key, "old": old, "new": new, "flags_made_with": made, "rerun": rerun})
        return
    if old == new:
        click.echo(f"{key}: {new} (unchanged)")
    else:
        click.echo(f"{key}: {old} -> {new}")
    if made is not None:
        click.echo(f"the project's flags were made with {key} = {made}; to apply it run:")
        click.echo(f"  {hint}")


def _show(rows: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        emit_json({"settings": rows})
        return
    w = max((len(str(r["key"])) for r in rows), default=0)  # keys longer than 18 broke the table
    for r in rows:
        mark = "" if r["value"] == r["default"] else f"  (default {r['default']})"
        click.echo(f"{r['key']:<{w}} {r['value']!s:>7}  [{r['step']}] {r['meaning']}{mark}")
        if r["rerun"]:
            click.echo(f"{'':<{w}} the flags were made with {r['flags_made_with']}: {r['rerun']}")
