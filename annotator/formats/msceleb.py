"""MS-Celeb-1M text formats: aligned/cropped TSV (7 columns), devset TSV (6 columns), names list.

* Aligned/cropped: ``MID, ImageSearchRank, ImageURL, PageURL, FaceID, FaceRectangle, FaceData``
* Devset: ``MID, EntityNameString, ImageURL, FaceID, FaceRectangle, FaceData``
* Names (Top1M_MidList.Name.tsv): ``MID<TAB>"Name String"@lang``, one line per language.

FaceRectangle is base64 of four little-endian float32: relative x0, y0 (upper left), x1, y1
(bottom right). FaceData is a base64 JPEG. The readers stream the file in large blocks,
record the byte offset + length of the FaceData field (the face's locator) and validate the
base64 without decoding it; only the first bytes are decoded to check the image magic.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from annotator.formats import (
    B64_ALPHABET,
    b64_error,
    image_kind,
    key_error,
    name_error,
    parse_int64,
)
from annotator.model import AnnotatorError, FaceRecord, Locator, NameRecord, Rejected

BLOCK = 8 << 20  # read size
MAX_LINE = 512 << 20  # a "line" longer than this is garbage (no newline in a binary file)

Item = FaceRecord | NameRecord | Rejected
# (resume byte offset after the line, resume line number, item)
Row = tuple[int, int, Item]

_RECT = struct.Struct("<4f")
_BOM = b"\xef\xbb\xbf"
RECT_LIMIT = 10.0
MAX_FIELD = 64 << 10  # a URL, FaceID or name longer than this is not one


def iter_lines(
    fh: BinaryIO, start_pos: int = 0, start_line: int = 0
) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(byte offset of the line, 1-based line number, line without newline)``.

    A trailing ``\\r`` is kept (callers strip it, so field offsets stay exact).
    """
    fh.seek(start_pos)
    pos = start_pos
    line_no = start_line
    buf = b""
    while True:
        chunk = fh.read(BLOCK)
        if not chunk:
            if buf:
                yield pos, line_no + 1, buf
            return
        data = buf + chunk if buf else chunk
        lines = data.split(b"\n")
        buf = lines.pop()
        for ln in lines:
            line_no += 1
            yield pos, line_no, ln
            pos += len(ln) + 1
        if len(buf) > MAX_LINE:
            # Skip the rest of an absurdly long line: report it as one line.
            line_no += 1
            skipped = len(buf)
            while True:
                chunk = fh.read(BLOCK)
                if not chunk:
                    break
                nl = chunk.find(b"\n")
                if nl != -1:
                    skipped += nl + 1
                    fh.seek(pos + skipped)
                    break
                skipped += len(chunk)
            yield pos, line_no, b"\x00LINE-TOO-LONG"
            pos += skipped
            buf = b""


SNIFF_BYTES = 1 << 20  # how much of a file `column_counts` looks at
SNIFF_LINES = 20


def column_counts(head: bytes, whole_file: bool, max_lines: int = SNIFF_LINES) -> list[int]:
    """Tab-separated column counts of the first complete, non-blank lines of ``head`` (the
    first bytes of a file; ``whole_file`` when that is all of it), to tell the TSV shapes
    apart before an import starts."""
    if head.startswith(_BOM):
        head = head[3:]
    lines = head.split(b"\n")
    if not whole_file:
        lines.pop()  # cut short by the read
    return [ln.count(b"\t") + 1 for ln in lines if ln.strip()][:max_lines]


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _not_utf8(fields: list[bytes]) -> int | None:
    """The column number (from 2) of the first of these text fields that is not UTF-8: kept
    with U+FFFD it would be another text (a FaceID no clean list matches, two names one)."""
    for col, f in enumerate(fields, 2):
        if not f.isascii():
            try:
                f.decode("utf-8")
            except UnicodeDecodeError:
                return col
    return None


def parse_rect(field: bytes) -> tuple[tuple[float, float, float, float] | None, str | None]:
    """(rect, None) or (None, reason). An empty field is no rectangle, not an error.

    Coordinates are relative to the image; a rectangle must have x0 <= x1, y0 <= y1, finite
    values within [-RECT_LIMIT, RECT_LIMIT] (faces partly outside the crop are allowed).
    """
    if not field:
        return None, None
    try:
        x0, y0, x1, y1 = _RECT.unpack(binascii.a2b_base64(field, strict_mode=True))
    except binascii.Error:
        return None, f"bad face rectangle ({b64_error(field) or 'invalid base64'})"
    except struct.error:
        return None, f"bad face rectangle ({len(binascii.a2b_base64(field))} bytes, expected 16)"
    if -RECT_LIMIT <= x0 <= x1 <= RECT_LIMIT and -RECT_LIMIT <= y0 <= y1 <= RECT_LIMIT:
        return (x0, y0, x1, y1), None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None, "bad face rectangle (not finite)"
    return None, f"bad face rectangle (x0,y0,x1,y1 = {x0:g},{y0:g},{x1:g},{y1:g})"


def encode_rect(rect: tuple[float, float, float, float]) -> bytes:
    return base64.b64encode(_RECT.pack(*rect))


def parse_name(field: str) -> tuple[str, str]:
    """``"Name String"@lang`` -> (name, lang); a bare name gets lang ``und``."""
    s = field.strip()
    q = s.rfind('"@')
    if s.startswith('"') and q > 0:
        return s[1:q], s[q + 2 :].strip() or "und"
    if len(s) >= 2 and s.startswith('"') and s.endswith('"'):
        return s[1:-1], "und"
    return s, "und"


def _split(line: bytes, line_no: int) -> tuple[bytes, int]:
    """Strip a CR and, on line 1, a UTF-8 BOM; return (line, bytes stripped at the start)."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if line_no == 1 and line.startswith(_BOM):
        return line[3:], 3
    return line, 0


def read_aligned(path: str | Path, start_pos: int = 0, start_line: int = 0) -> Iterator[Row]:
    """Stream a 7-column aligned/cropped TSV."""
    return _read_faces(path, start_pos, start_line, ncols=7)


def read_devset(path: str | Path, start_pos: int = 0, start_line: int = 0) -> Iterator[Row]:
    """Stream a 6-column development-set TSV (names go to ``FaceRecord.names``)."""
    return _read_faces(path, start_pos, start_line, ncols=6)


def _read_faces(path: str | Path, start_pos: int, start_line: int, ncols: int) -> Iterator[Row]:
    """The hot loop of an 89 GB import: no per-line copies except the FaceData field.

    Lines are located with ``bytes.find`` in 8 MiB blocks; only the small leading columns are
    split, the FaceData field is sliced once and validated with ``bytes.translate`` (no decode).
    """
    name = Path(path).name
    a2b = binascii.a2b_base64
    b64_alpha = B64_ALPHABET
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start_pos)
        base = start_pos  # file offset of buf[0]
        buf = b""
        line_no = start_line
        while True:
            chunk = fh.read(BLOCK)
            if chunk:
                buf = buf + chunk if buf else chunk
            elif buf:
                buf += b"\n"  # last line without a newline
            else:
                return
            s = 0
            if base == 0 and line_no == 0 and buf.startswith(_BOM):
                s = 3
            find = buf.find
            while True:
                e = find(b"\n", s)
                if e == -1:
                    break
                line_no += 1
                le = e - 1 if e > s and buf[e - 1] == 13 else e
                t = buf.rfind(b"\t", s, le)
                end = base + e + 1
                reason = None
                if t == -1:
                    if not buf[s:le].strip():
                        s = e + 1
                        continue  # blank line
                    reason = f"expected {ncols} tab-separated columns, found 1"
                else:
                    fields = buf[s:t].split(b"\t")
                    if len(fields) != ncols - 1:
                        reason = f"expected {ncols} tab-separated columns, found {len(fields) + 1}"
                    elif (reason := key_error(fields[0].strip())) is not None:
                        pass
                    elif b"\r" in fields[0].strip():  # an export would change the key
                        reason = "MID contains a carriage return"
                    elif any(b"\0" in f for f in fields[1:]):
                        reason = "a text field contains a NUL byte"
                    elif any(len(f) > MAX_FIELD for f in fields[1:]):
                        reason = f"a text field is longer than {MAX_FIELD >> 10} KiB"
                    elif (col := _not_utf8(fields[1:-1])) is not None:
                        reason = f"column {col} is not valid UTF-8"
                    else:
                        data = buf[t + 1 : le]
                        n = len(data)
                        if n == 0:
                            reason = "FaceData is empty"
                        elif n % 4 or data.translate(None, b64_alpha):
                            reason = f"FaceData: {b64_error(data)}"
                        else:
                            eq = data.find(b"=")
                            if eq != -1 and (eq < n - 2 or data[n - 1] != 61):
                                reason = "FaceData: invalid base64 (misplaced padding)"
                            elif image_kind(a2b(data[:24])) is None:
                                reason = "FaceData is not an image (unknown magic bytes)"
                            else:
                                rect, reason = parse_rect(fields[-1])
                if reason is not None:
                    yield end, line_no, Rejected(f"{name}:{line_no}", reason, line_no)
                    s = e + 1
                    continue
                loc = Locator(base + t + 1, le - t - 1)
                mid = fields[0].strip().decode("utf-8")
                if ncols == 7:
                    rank_s = fields[1]
                    rank: int | None = None
                    if rank_s.strip():
                        rank = parse_int64(rank_s)
                        if rank is None:
                            why = (
                                "out of range"
                                if rank_s.strip().lstrip(b"+-").isdigit()
                                else "not an integer"
                            )
                            yield (
                                end,
                                line_no,
                                Rejected(
                                    f"{name}:{line_no}",
                                    f"ImageSearchRank is {why}: {_text(rank_s)[:40]!r}",
                                    line_no,
                                ),
                            )
                            s = e + 1
                            continue
                    rec = FaceRecord(
                        mid,
                        loc,
                        line_no,
                        rank,
                        _text(fields[2]) or None,
                        _text(fields[3]) or None,
                        _text(fields[4]) or None,
                        rect,
                    )
                else:
                    names: dict[str, str] = {}
                    if fields[1].strip():
                        nm, lang = parse_name(_text(fields[1]))
                        if nm and (why := name_error(nm, lang)) is not None:
                            yield end, line_no, Rejected(f"{name}:{line_no}", why, line_no)
                            s = e + 1
                            continue
                        if nm:
                            names[lang] = nm
                    rec = FaceRecord(
                        mid,
                        loc,
                        line_no,
                        None,
                        _text(fields[2]) or None,
                        None,
                        _text(fields[3]) or None,
                        rect,
                        names,
                    )
                yield end, line_no, rec
                s = e + 1
            base += s
            buf = buf[s:]
            if len(buf) > MAX_LINE:
                raise AnnotatorError(
                    f"{name}: line {line_no + 1} is longer than {MAX_LINE >> 20} MiB; "
                    "this is not a TSV file"
                )
            if not chunk:
                return


def read_names(path: str | Path, start_pos: int = 0, start_line: int = 0) -> Iterator[Row]:
    """Stream an entity-name list: ``MID<TAB>"Name"@lang`` (UTF-8, any script)."""
    name = Path(path).name
    with open(path, "rb", buffering=0) as fh:
        for pos, line_no, raw in iter_lines(fh, start_pos, start_line):
            end = pos + len(raw) + 1
            line, _ = _split(raw, line_no)
            if not line.strip():
                continue
            fields = line.split(b"\t")
            origin = f"{name}:{line_no}"
            if len(fields) != 2:
                yield (
                    end,
                    line_no,
                    Rejected(
                        origin, f"expected 2 tab-separated columns, found {len(fields)}", line_no
                    ),
                )
                continue
            if b"\0" in line:
                yield end, line_no, Rejected(origin, "NUL byte in the line", line_no)
                continue
            try:
                mid = fields[0].decode("utf-8").strip()
                text = fields[1].decode("utf-8")
            except UnicodeDecodeError as e:
                yield (
                    end,
                    line_no,
                    Rejected(origin, f"invalid UTF-8 ({e.reason} at byte {e.start})", line_no),
                )
                continue
            why = key_error(mid.encode("utf-8"))
            if why:
                yield end, line_no, Rejected(origin, why, line_no)
                continue
            nm, lang = parse_name(text)
            if not nm:
                yield end, line_no, Rejected(origin, "empty name", line_no)
                continue
            if "\r" in mid:
                yield end, line_no, Rejected(origin, "MID contains a carriage return", line_no)
                continue
            why = name_error(nm, lang)
            if why:
                yield end, line_no, Rejected(origin, why, line_no)
                continue
            yield end, line_no, NameRecord(mid, lang, nm, line_no)


# -- writers -------------------------------------------------------------------------------


def _clean(s: str | None) -> bytes:
    return (s or "").replace("\t", " ").replace("\n", " ").replace("\r", " ").encode("utf-8")


def write_row(
    fh: BinaryIO,
    identity_key: str,
    rank: int | None,
    image_url: str | None,
    page_url: str | None,
    face_ref: str | None,
    rect: tuple[float, float, float, float] | None,
    jpeg_bytes: bytes,
) -> int:
    """Write one 7-column aligned/cropped row; returns the byte offset of its FaceData field
    relative to the start of the row (so writers can record locators)."""
    head = b"\t".join(
        [
            _clean(identity_key),
            b"" if rank is None else str(int(rank)).encode(),
            _clean(image_url),
            _clean(page_url),
            _clean(face_ref),
            encode_rect(rect) if rect is not None else b"",
            b"",
        ]
    )
    fh.write(head + base64.b64encode(jpeg_bytes) + b"\n")
    return len(head)


def write_record(fh: BinaryIO, rec: FaceRecord, jpeg_bytes: bytes) -> int:
    """:func:`write_row` for a :class:`FaceRecord`."""
    return write_row(
        fh,
        rec.identity_key,
        rec.rank,
        rec.image_url,
        rec.page_url,
        rec.face_ref,
        rec.rect,
        jpeg_bytes,
    )


def write_devset_row(
    fh: BinaryIO,
    identity_key: str,
    name: str | None,
    lang: str | None,
    image_url: str | None,
    face_ref: str | None,
    rect: tuple[float, float, float, float] | None,
    jpeg_bytes: bytes,
) -> None:
    """Write one 6-column devset row (name as ``"Name"@lang`` when a language is given)."""
    name_field = "" if not name else (f'"{name}"@{lang}' if lang else name)
    fh.write(
        b"\t".join(
            [
                _clean(identity_key),
                _clean(name_field),
                _clean(image_url),
                _clean(face_ref),
                encode_rect(rect) if rect is not None else b"",
                base64.b64encode(jpeg_bytes),
            ]
        )
        + b"\n"
    )


def write_name(fh: BinaryIO, identity_key: str, name: str, lang: str) -> None:
    """Write one names-list line: ``MID<TAB>"Name"@lang``."""
    fh.write(_clean(identity_key) + b"\t" + _clean(f'"{name}"@{lang}') + b"\n")
