"""Lists of one entry a line: the requests of ``takedown --from`` (keys or names) and the keys
of ``pack --identities-file``. What each line means is the caller's; this reads the lines.

UTF-8 (a leading BOM skipped); a line ends at LF, CRLF or a lone CR (old Mac files), as label
files count them. A line that is not UTF-8 refuses the whole file, naming file and line:
read with U+FFFD in it, it would be another text (a request that names nobody, or a key that
does not exist) and the command would go on without it — a takedown list or a package's share
is fixed and given again, not half carried out.
"""

from __future__ import annotations

from pathlib import Path

from annotator.formats import physical_lines
from annotator.model import AnnotatorError


def read_lines(path: str | Path) -> list[tuple[int, str]]:
    """(line number, text without its line end) of every line of ``path``;
    :class:`AnnotatorError` ``FILE:LINE: not UTF-8 (...)`` at the first line that is not."""
    out: list[tuple[int, str]] = []
    try:
        with open(path, "rb") as f:
            for n, raw in physical_lines(f):
                assert raw is not None  # no max_line: every line is whole
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise AnnotatorError(
                        f"{path}:{n}: not UTF-8 (byte 0x{raw[e.start]:02x} at byte "
                        f"{e.start + 1} of the line); nothing was done: mend or remove "
                        "that line"
                    ) from None
                out.append((n, text))
    except OSError as e:
        raise AnnotatorError(f"cannot read {path}: {e.strerror or e}") from None
    return out
