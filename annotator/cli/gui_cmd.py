"""`annotator gui`: the desktop reviewer (Qt is imported only when the command runs)."""

from __future__ import annotations

import click

from annotator.cli.common import emit_json
from annotator.model import AnnotatorError


def _check_reviewer(name: str) -> str:
    from annotator.model import check_reviewer  # the ground floor: no Qt, nothing heavy

    return check_reviewer(name)


@click.command("gui")
@click.argument("project_path", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--project",
    "-p",
    "project_opt",
    type=click.Path(dir_okay=False),
    help="The project file (same as the PROJECT_PATH argument).",
)
@click.option(
    "--reviewer",
    callback=lambda _c, _p, v: None if v is None else _check_reviewer(v),
    help="Your name, recorded with every label (remembered).",
)
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False),
    help="Render the window offscreen to this PNG and exit.",
)
@click.option("--identity", "identity_key", help="Open this identity (key) first.")
@click.option(
    "--view",
    type=click.Choice(["review", "qa", "adjudicate", "stats"]),
    default="review",
    show_default=True,
    help="Start in this view: qa resumes your newest QA pass, adjudicate opens the "
    "adjudication queue, stats the statistics dashboard.",
)
@click.option("--json", "as_json", is_flag=True, help="With --screenshot: print a JSON result.")
def gui(
    project_path: str | None,
    project_opt: str | None,
    reviewer: str | None,
    screenshot: str | None,
    identity_key: str | None,
    view: str,
    as_json: bool,
) -> None:
    """Open the desktop reviewer (last project when none is given)."""
    from annotator.gui.app import run

    if project_path and project_opt and project_path != project_opt:
        raise AnnotatorError("give the project once: as PROJECT_PATH or as --project")
    project_path = project_path or project_opt

    code = run(project_path, reviewer, screenshot, identity_key, view=view)
    if as_json:
        emit_json({"screenshot": screenshot, "exit": code})
    if code:
        raise SystemExit(code)
