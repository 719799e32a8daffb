"""The `annotator` command: a click group whose subcommands live one family per module.

Every command exits non-zero with one line on stderr on failure (never a traceback),
and takes ``--json`` to print one machine-readable object on stdout.
"""

from __future__ import annotations

import importlib
import sqlite3
import sys

import click

from annotator import __version__
from annotator.core.models import AnnotatorError

# name -> "module:attribute"; modules are imported only when their command runs,
# so `annotator --help` stays fast and never imports Qt.
COMMANDS: dict[str, str] = {
    "import": "annotator.cli.import_cmd:import_group",
    "info": "annotator.cli.info_cmd:info",
    "identities": "annotator.cli.info_cmd:identities",
    "demo": "annotator.cli.demo_cmd:demo",
    "scan": "annotator.cli.scan_cmd:scan",
    "flags": "annotator.cli.scan_cmd:flags",
    "gui": "annotator.cli.gui_cmd:gui",
    "labels": "annotator.cli.labels_cmd:labels",
    "qa": "annotator.cli.qa_cmd:qa",
    "export": "annotator.cli.export_cmd:export",
    "evaluate": "annotator.cli.evaluate_cmd:evaluate",
    "stats": "annotator.cli.stats_cmd:stats",
    "takedown": "annotator.cli.takedown_cmd:takedown",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = []
        for name, target in COMMANDS.items():
            if importlib.util.find_spec(target.split(":")[0]) is not None:
                names.append(name)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        if importlib.util.find_spec(module_name) is None:
            return None
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except AnnotatorError as e:
            _fail(str(e))
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                _fail(f"the project file is busy (another program is writing to it): {e}")
            _fail(f"database error: {e}")
        except sqlite3.DatabaseError as e:
            _fail(f"database error: {e}")
        except OSError as e:
            where = f": {e.filename}" if getattr(e, "filename", None) else ""
            _fail(f"{e.strerror or e}{where}")
        except KeyboardInterrupt:
            click.echo(
                "interrupted; the project file is consistent, run the command again to finish",
                err=True,
            )
            sys.exit(130)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="annotator")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Curate a noisy face-identity dataset into a small, verified test set.

    With no command, opens the desktop reviewer (same as `annotator gui`).
    """
    if ctx.invoked_subcommand is None:
        gui = cli.get_command(ctx, "gui")
        if gui is None:
            click.echo(ctx.get_help())
            return
        ctx.invoke(gui)


def main() -> None:
    cli(prog_name="annotator")


if __name__ == "__main__":
    main()
