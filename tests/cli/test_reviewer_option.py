"""`--reviewer ""` (or blanks) is refused in one line by every command that takes a name."""

import pytest
from click.testing import CliRunner

from annotator.cli.main import cli
from annotator.model import AnnotatorError, check_reviewer


def test_check_reviewer():
    assert check_reviewer("  alice ") == "alice"
    for bad in ("", "   ", "\t", "a\x00b", "x" * 201):
        with pytest.raises(AnnotatorError):
            check_reviewer(bad)


@pytest.mark.parametrize(
    "args",
    [
        ["labels", "import", "f.csv", "-p", "p.db"],
        ["takedown", "m.1", "-p", "p.db"],
        ["qa", "start", "-p", "p.db"],
        ["gui", "p.db", "--screenshot", "x.png"],
    ],
)
@pytest.mark.parametrize("name", ["", "   "])
def test_blank_reviewer_is_refused_everywhere(tmp_path, monkeypatch, args, name):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, [*args, "--reviewer", name])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "reviewer" in lines[0]


def test_reviewer_names_that_hide_what_they_say_are_refused():
    """Issue 20 finding 16 (reviewer names): bidi overrides and a BOM make a name display as
    something else; a ZWNJ (Persian names) is fine."""
    for bad in ("bob\u202eecila", "\ufeffalice", "a\u2066b", "a\u2028b", "a\x85b"):
        with pytest.raises(AnnotatorError, match="reviewer"):
            check_reviewer(bad)
    assert check_reviewer("مهر\u200cناز") == "مهر\u200cناز"
