"""formats/keylist: lists of one entry a line (takedown --from, pack --identities-file)."""

import pytest

from annotator.formats.keylist import read_lines
from annotator.model import AnnotatorError


def test_bom_crlf_and_a_last_line_without_newline(tmp_path):
    f = tmp_path / "k.txt"
    f.write_bytes("\ufeffm.a\r\n\r\n# c\nNäme\tx\nlast".encode())
    assert read_lines(f) == [(1, "m.a"), (2, ""), (3, "# c"), (4, "Näme\tx"), (5, "last")]


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"a\nb\xff\nc\n", 2),  # a stray byte
        (b"a\n\xef\xbb\xbfb\n\xc3(\n", 3),  # a BOM inside is UTF-8; a broken sequence is not
        (b"a\nb\n\xe2\x82", 3),  # cut in the middle of a character (a truncated file)
        (b"\xff\xfea\x00\n", 1),  # UTF-16
    ],
)
def test_a_line_that_is_not_utf8_is_named(tmp_path, data, line):
    f = tmp_path / "k.txt"
    f.write_bytes(data)
    with pytest.raises(AnnotatorError, match=rf"^{f}:{line}: not UTF-8 \("):
        read_lines(f)


def test_a_lone_cr_ends_a_line_as_in_label_files(tmp_path):
    """Old Mac line ends: numbered as the label-file reader numbers them."""
    f = tmp_path / "k.txt"
    f.write_bytes(b"a\rb\r\nc\n\xff\r")
    with pytest.raises(AnnotatorError, match=rf"^{f}:4: not UTF-8"):
        read_lines(f)
    f.write_bytes(b"a\rb\r\nc\n")
    assert read_lines(f) == [(1, "a"), (2, "b"), (3, "c")]
