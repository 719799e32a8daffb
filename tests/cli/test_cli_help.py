"""Every command has help text and exits 0 on --help; unknown commands fail with one line."""

import click
import pytest
from click.testing import CliRunner

from annotator.cli.main import COMMANDS, cli


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, [*path, name])


def test_all_commands_are_registered():
    runner = CliRunner()
    listed = runner.invoke(cli, ["--help"]).output
    for name in COMMANDS:
        assert name in listed, f"command {name} is missing from `annotator --help`"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name):
    ctx = click.Context(cli)
    top = cli.get_command(ctx, name)
    assert top is not None, name
    runner = CliRunner()
    for path, cmd in _walk(top, [name]):
        assert (cmd.help or "").strip(), f"`annotator {' '.join(path)}` has no help text"
        r = runner.invoke(cli, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)


def test_unknown_command():
    r = CliRunner().invoke(cli, ["frobnicate"])
    assert r.exit_code == 1
    assert r.output.splitlines() == ["error: no such command 'frobnicate' (see `cli --help`)"]
