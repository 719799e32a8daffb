"""The `annotator` command: a click group whose subcommands live one family per module.

Every command exits non-zero with one line on stderr on failure (never a traceback),
and takes ``--json`` to print one machine-readable object on stdout.

Exit codes: 0 success; 1 an error (``error: ...`` on stderr: bad input, a usage mistake such as
an unknown option or format, or an unexpected failure); 130 interrupted (Ctrl-C); 141 stdout
was closed early (``annotator flags --json | head``), which is quiet. ``ANNOTATOR_DEBUG=1``
shows the traceback of an unexpected failure.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sqlite3
import sys
from typing import Any, NoReturn

import click

from annotator import __version__
from annotator.model import AnnotatorError

# name -> "module:attribute"; modules are imported only when their command runs,
# so `annotator --help` stays fast and never imports Qt.
COMMANDS: dict[str, str] = {
    "import": "annotator.cli.import_cmd:import_group",
    "info": "annotator.cli.info_cmd:info",
    "identities": "annotator.cli.info_cmd:identities",
    "demo": "annotator.cli.demo_cmd:demo",
    "scan": "annotator.cli.scan_cmd:scan",
    "embed": "annotator.cli.embed_cmd:embed",
    "flags": "annotator.cli.scan_cmd:flags",
    "gui": "annotator.cli.gui_cmd:gui",
    "labels": "annotator.cli.labels_cmd:labels",
    "qa": "annotator.cli.qa_cmd:qa",
    "export": "annotator.cli.export_cmd:export",
    "evaluate": "annotator.cli.evaluate_cmd:evaluate",
    "stats": "annotator.cli.stats_cmd:stats",
    "takedown": "annotator.cli.takedown_cmd:takedown",
    "config": "annotator.cli.config_cmd:config",
    "install-desktop": "annotator.cli.install_cmd:install_desktop",
    "pack": "annotator.cli.pack_cmd:pack",
    "merge": "annotator.cli.pack_cmd:merge",
}

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `yes | head`
DEBUG_ENV = "ANNOTATOR_DEBUG"

_CLICK_FLOW = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


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

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Like click's main, but a usage mistake is one ``error: ...`` line too."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # `annotator qa`: show the group's help
            e.show()
            sys.exit(e.exit_code)
        except click.UsageError as e:
            hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            _fail(_sentence(e.format_message()) + hint)
        except click.ClickException as e:
            _fail(_sentence(e.format_message()), e.exit_code or EXIT_ERROR)
        except click.exceptions.Abort:  # Ctrl-C or EOF while click was parsing or prompting
            _interrupted()
        # An int here is click's exit code for --help/--version/ctx.exit(n); commands return None.
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            rv = super().invoke(ctx)
            sys.stdout.flush()  # meet a closed pipe here rather than at interpreter exit
            return rv
        except _CLICK_FLOW:
            raise
        except BrokenPipeError:
            _broken_pipe()
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
            _fail(_sentence(f"{e.strerror or e}") + where)
        except KeyboardInterrupt:
            _interrupted()
        except Exception as e:  # a bug: still one line, the traceback only on request
            if os.environ.get(DEBUG_ENV):
                raise
            _fail(
                f"unexpected {type(e).__name__}: {_sentence(str(e)) or '(no message)'} "
                f"(run with {DEBUG_ENV}=1 to see the traceback, and please report it)"
            )


def _sentence(message: str) -> str:
    """One line: newlines folded, a click-style capital and final period dropped."""
    msg = " ".join(message.split())
    if len(msg) > 1 and msg[0].isupper() and msg[1].islower():
        msg = msg[0].lower() + msg[1:]
    return msg[:-1] if msg.endswith(".") else msg


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    one_line = " ".join(message.split())
    click.echo(f"error: {one_line}", err=True)
    sys.exit(code)


def _interrupted() -> NoReturn:
    click.echo(
        "interrupted; the project file is consistent, run the command again to finish",
        err=True,
    )
    sys.exit(EXIT_INTERRUPTED)


def _broken_pipe() -> NoReturn:
    """The reader of stdout went away (`| head`): stop quietly, like a SIGPIPE'd program."""
    try:  # the interpreter's final flush must not meet the closed pipe again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (e.g. click's test runner)
        pass
    sys.exit(EXIT_BROKEN_PIPE)


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
