"""Every command takes the project as --project PATH or as its last argument (PROJECT)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from annotator.cli.main import COMMANDS, cli


@pytest.fixture
def proj(tmp_path, build_project):
    p = build_project(tmp_path / "p.db", [3, 2])
    p.close()
    return str(tmp_path / "p.db")


READERS = [
    ["info"],
    ["identities"],
    ["stats"],
    ["flags"],
    ["labels", "export"],
    ["qa", "report"],
    ["qa", "queue"],
]


@pytest.mark.parametrize("cmd", READERS, ids=" ".join)
def test_positional_project_is_the_same_as_the_option(proj, cmd):
    r = CliRunner()
    a = r.invoke(cli, [*cmd, "--json", proj])
    b = r.invoke(cli, [*cmd, "--json", "--project", proj])
    assert a.exit_code == 0, a.output
    assert a.output == b.output


def test_positional_project_after_the_commands_own_arguments(proj, tmp_path):
    labels = tmp_path / "l.tsv"
    labels.write_text("1\tcorrect\n")
    r = CliRunner().invoke(cli, ["labels", "import", str(labels), proj, "-r", "alice", "--json"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        cli, ["qa", "adjudicate", "--pass", "1", "-r", "bob", "1", "correct", proj]
    )
    assert r.exit_code == 1 and r.output.strip() == "error: no QA pass 1"


def test_no_project_or_two_projects_are_one_line(proj, tmp_path):
    r = CliRunner().invoke(cli, ["info"])
    assert r.exit_code != 0 and "no project given" in r.output
    r = CliRunner().invoke(cli, ["info", proj, "-p", str(tmp_path / "other.db")])
    assert r.exit_code != 0 and "two projects given" in r.output


def test_every_command_with_a_project_takes_it_as_an_argument():
    ctx = click.Context(cli)

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                yield from walk(cmd.get_command(ctx, name), [*path, name])
        else:
            yield path, cmd

    seen = 0
    for name in COMMANDS:
        for path, cmd in walk(cli.get_command(ctx, name), [name]):
            opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
            if "--project" not in opts:
                continue
            seen += 1
            args = [p for p in cmd.params if isinstance(p, click.Argument)]
            last = args[-1].human_readable_name if args else ""
            # PROJECT last, or (config, whose own arguments are optional) its first argument
            assert last.strip("[]") in ("PROJECT", "PROJECT_PATH") or last.startswith(
                "[PROJECT]"
            ), path
    assert seen >= 15


def test_config_takes_the_project_as_its_first_argument(proj):
    r = CliRunner()
    a = r.invoke(cli, ["config", proj, "--json"])
    b = r.invoke(cli, ["config", "--project", proj, "--json"])
    assert a.exit_code == 0, a.output
    assert a.output == b.output
