"""`annotator install-desktop`: the menu entry, icons and project-file type for this install."""

from __future__ import annotations

from pathlib import Path

import click

from annotator import desktop
from annotator.cli.common import emit_json, json_option


@click.command("install-desktop")
@click.option(
    "--prefix",
    type=str,  # checked by desktop (an empty prefix is refused, not read as ".")
    default=None,
    help="Install under this folder's share/ (default: ~/.local, for your user only).",
)
@click.option("--uninstall", is_flag=True, help="Remove the files an earlier install wrote.")
@json_option
def install_desktop(prefix: str | None, uninstall: bool, as_json: bool) -> None:
    """Add annotator to the desktop's application menu (Linux, freedesktop.org).

    Writes share/applications/io.github.annotator.desktop (starting this installation of
    annotator, so a project file can be opened from the file manager), the icons in the
    hicolor theme and the MIME type of project files, then refreshes the desktop caches.
    """
    if uninstall:
        res = desktop.uninstall(prefix)
    else:
        res = desktop.install(prefix)
    if as_json:
        emit_json({"action": "uninstall" if uninstall else "install", **res.as_dict()})
        return
    if uninstall:
        click.echo(f"removed {len(res.files)} file(s) under {res.prefix}")
        return
    click.echo(f"installed {len(res.files)} file(s) under {res.prefix}")
    click.echo(f"  menu entry: {_desktop(res)}")
    click.echo(f"  starts: {res.exec_line}")
    if not res.refreshed:
        click.echo("  (no desktop cache tool found; the menu may show it after logging in again)")


def _desktop(res: desktop.DesktopFiles) -> Path:
    return next(p for p in res.files if p.suffix == ".desktop")
