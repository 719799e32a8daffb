"""The CLI progress bar (click.progressbar): drawn on a terminal, silent otherwise or with
--json."""

from __future__ import annotations

import io
import sys

from annotator.cli import common


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drive(quiet=False):
    with common.progress_bar("scanning", quiet=quiet, unit="faces") as progress:
        progress(0, 0)  # total not known yet
        progress(50, 100)
        progress(100, 100)  # the end is always drawn


def test_bar_on_a_terminal(monkeypatch):
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(common, "REDRAW_SECONDS", 0.0)
    drive()
    out = err.getvalue()
    assert "scanning" in out and "50%" in out and "100%" in out and "faces/s" in out
    assert out.endswith("\n")


def test_silent_with_json_or_without_a_terminal(monkeypatch):
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    drive(quiet=True)
    assert err.getvalue() == ""
    plain = io.StringIO()  # a pipe or a file
    monkeypatch.setattr(sys, "stderr", plain)
    drive()
    assert plain.getvalue() == ""
