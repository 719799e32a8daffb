"""Format readers and writers: one module per source format, no Qt, no SQL.

Readers stream their source (memory independent of file size) and yield
``(resume_pos, resume_record, item)`` tuples where ``item`` is a
:class:`~annotator.model.FaceRecord`, a :class:`~annotator.model.NameRecord`
or a :class:`~annotator.model.Rejected`, and ``resume_pos``/``resume_record`` is the
position to restart from to continue *after* that item. The importer stores that position in
the same transaction as the rows, so an interrupted import resumes exactly.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from annotator.model import FORMATS, AnnotatorError

# Formats and what they are, for `--help` texts and error messages.
FORMAT_HELP: dict[str, str] = {
    "msceleb": "MS-Celeb-1M aligned/cropped TSV (7 columns, base64 JPEG in the last)",
    "devset": "MS-Celeb-1M development-set TSV (6 columns)",
    "names": 'entity name list: MID<TAB>"Name"@lang (Top1M_MidList.Name.tsv)',
    "rec": "InsightFace RecordIO: train.rec + train.idx (+ property)",
    "folder": "a folder per identity: ROOT/<identity>/<image>",
}
assert tuple(FORMAT_HELP) == FORMATS

FINGERPRINT_CHUNK = 1 << 20  # 1 MiB

B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

# Image magic numbers: (prefix, offset) pairs. WebP is RIFF....WEBP.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})


INT64_MAX = (1 << 63) - 1
MAX_KEY_BYTES = 1024  # an identity key (MID, folder name) longer than this is not one


def key_error(raw: bytes, what: str = "MID") -> str | None:
    """Why ``raw`` (already stripped) cannot be an identity key, or None when it can: empty,
    not UTF-8 (two different broken keys must not merge into one U+FFFD key), holding a NUL
    byte or a character that hides what the text says (:data:`HIDING`), or absurdly long.
    (Other control characters occur in folder names and survive an export and re-import, so
    they stay allowed.) ``what`` names the key in the reason."""
    if not raw:
        return f"empty {what}"
    if len(raw) > MAX_KEY_BYTES:
        return f"{what} longer than {MAX_KEY_BYTES} bytes"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"{what} is not valid UTF-8 ({e.reason} at byte {e.start})"
    if "\0" in text:
        return f"{what} contains a NUL byte"
    if any(ch in HIDING for ch in text):
        return f"{what} contains a direction-override, line-separator or BOM character"
    return None


# a key holding one of these would change on its way through a line-based file (a TSV export
# writes them as spaces; a names list or label file would split the line)
_LINE_BREAKING = {"\t": "a tab", "\r": "a carriage return", "\n": "a line feed"}


def text_key_error(key: str, what: str = "key") -> str | None:
    """:func:`key_error` for a key that is text already (an identity folder's name), plus the
    tab, CR and LF a TSV's MID cannot hold either; None when ``key`` can be a key."""
    why = key_error(key.encode("utf-8", "surrogateescape"), what)
    if why is None:
        for ch, name in _LINE_BREAKING.items():
            if ch in key:
                return f"{what} contains {name}"
    return why


def shown(text: str) -> str:
    """``text`` for one line of a message: characters that are not printable (controls, line
    breaks, direction overrides, the BOM) as their Python escapes."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


# characters that make a text display as something else: bidi embeddings, overrides and
# isolates, line/paragraph separators, the BOM (ZWNJ/ZWJ, used in many scripts, are fine)
HIDING = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029\ufeff")
MAX_NAME_CHARS = 1000
MAX_LANG_CHARS = 35  # the longest BCP 47 tags in use are far shorter


def name_error(name: str, lang: str) -> str | None:
    """Why a ``"Name"@lang`` cannot be stored (None when it can)."""
    if len(name) > MAX_NAME_CHARS:
        return f"name longer than {MAX_NAME_CHARS} characters"
    if len(lang) > MAX_LANG_CHARS or not lang.replace("-", "").isalnum() or not lang.isascii():
        return f"language tag {lang[:40]!r} is not a language tag"
    if "\0" in name or any(ch in HIDING for ch in name):
        return "name contains a NUL, direction-override, line-separator or BOM character"
    return None


def parse_int64(raw: bytes) -> int | None:
    """An optionally signed run of ASCII digits within SQLite's int64 range, else None."""
    s = raw.strip()
    digits = s[1:] if s[:1] in (b"-", b"+") else s
    if not digits or not digits.isdigit() or len(digits) > 19:  # bytes.isdigit is ASCII-only
        return None
    v = int(s)
    return v if -INT64_MAX - 1 <= v <= INT64_MAX else None


_BINARY_MAGIC = (
    b"SQLite format 3\0",
    b"\x1f\x8b",  # gzip
    b"PK\x03\x04",  # zip
    b"\x7fELF",
    b"\x0a\x23\xd7\xce",  # RecordIO magic 0xced7230a, little-endian
)


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes of a file given as text are plainly a binary file (an image, a
    project, an archive, RecordIO, UTF-16...). A stray NUL byte in a text file is not enough:
    that line is rejected by the reader like any other bad line."""
    if not head:
        return False
    if image_kind(head[:16]) is not None or head.startswith(_BINARY_MAGIC):
        return True
    nul = head.count(b"\0")
    if not nul:
        return False
    if nul * 8 > len(head):  # UTF-16/32 text, or binary data
        return True
    # binary data: most "lines" hold a NUL or are not UTF-8; a text file: a few bad lines
    lines = head.split(b"\n")
    bad = 0
    for ln in lines:
        if b"\0" in ln:
            bad += 1
            continue
        try:
            ln.decode("utf-8")
        except UnicodeDecodeError:
            bad += 1
    return bad >= 3 and bad * 4 > len(lines)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise AnnotatorError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return fmt


def image_kind(head: bytes) -> str | None:
    """The image type told by the first bytes (>= 12 of them), or None when it is not an image."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM":
        return "bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def b64_error(field: bytes) -> str | None:
    """Why ``field`` is not valid (standard, padded) base64, or None when it is.

    Validates without decoding: decoding every image of an 89 GB file at import would be the
    bottleneck (``bytes.translate`` runs ~8x faster than ``base64.b64decode`` here).
    """
    n = len(field)
    if n == 0:
        return "empty base64 field"
    if n % 4:
        return f"invalid base64 (length {n} is not a multiple of 4)"
    if field.translate(None, B64_ALPHABET):
        return "invalid base64 (characters outside the alphabet)"
    eq = field.find(b"=")
    if eq != -1 and (eq < n - 2 or field[n - 1] != 61):  # 61 == ord("=")
        return "invalid base64 (misplaced padding)"
    return None


def fingerprint(path: str | os.PathLike[str]) -> str:
    """Content fingerprint of a source file: sha256 of its size + first 1 MiB + last 1 MiB.

    Why not the whole file: the MS-Celeb-1M aligned TSV is 89 GB; hashing it would take
    minutes to hours on every import and every open. Size + head + tail catches the realistic
    changes (truncation, append, replacement by another file, re-download of another version)
    at the cost of two 1 MiB reads. A change confined to the middle of a file of the same size
    is not detected; size/mtime are recorded too.

    A directory (folder source) is fingerprinted by the sorted names and mtimes of its
    identity folders, which change when images are added or removed.
    """
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        h.update(b"folder\0")
        for name, mtime_ns in folder_listing(p):
            h.update(
                name.encode("utf-8", "surrogateescape") + b"\0" + str(mtime_ns).encode() + b"\n"
            )
        return h.hexdigest()
    size = p.stat().st_size
    h.update(str(size).encode() + b"\0")
    with open(p, "rb") as f:
        h.update(f.read(FINGERPRINT_CHUNK))
        if size > FINGERPRINT_CHUNK:
            f.seek(max(size - FINGERPRINT_CHUNK, FINGERPRINT_CHUNK))
            h.update(f.read(FINGERPRINT_CHUNK))
    return h.hexdigest()


def folder_listing(root: Path) -> list[tuple[str, int]]:
    """Sorted (name, mtime_ns) of the entries directly under ``root``."""
    out = []
    with os.scandir(root) as it:
        for e in it:
            try:
                out.append((e.name, e.stat().st_mtime_ns))
            except OSError:
                out.append((e.name, -1))
    out.sort()
    return out


def source_stat(path: str | os.PathLike[str]) -> tuple[int, float]:
    """(size, mtime) recorded for a source; for a folder, size = number of entries."""
    p = Path(path)
    st = p.stat()
    if p.is_dir():
        with os.scandir(p) as it:
            return sum(1 for _ in it), st.st_mtime
    return st.st_size, st.st_mtime


def display_name(path: str | os.PathLike[str]) -> str:
    """The file name used in origin strings (``faces.tsv:17``)."""
    return Path(path).name


_BOM = b"\xef\xbb\xbf"


def physical_lines(fh: BinaryIO, max_line: int | None = None) -> Iterator[tuple[int, bytes | None]]:
    """(1-based line number, bytes without line end) of every line of ``fh``, streamed: a
    leading BOM skipped, lines ending at LF, CRLF or a lone CR; with ``max_line``, None for a
    longer line (its bytes are skipped, not held). Label files and key lists count lines so."""
    no = 0
    size = -1 if max_line is None else max_line + 1
    while True:
        raw = fh.readline(size)
        if not raw:
            return
        if max_line is not None and len(raw) > max_line and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = fh.readline(size)
            no += 1
            yield no, None
            continue
        if no == 0 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        for part in raw.splitlines() or [b""]:  # also old-Mac CR line ends
            no += 1
            yield no, part
