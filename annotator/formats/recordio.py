"""InsightFace RecordIO (.rec + .idx + optional ``property``), read and written without mxnet.

On-disk record (dmlc-core RecordIO)::

    uint32 magic 0xced7230a | uint32 lrecord | payload | zero padding to 4 bytes

``lrecord``: upper 3 bits = continuation flag (0 whole record, 1 first part, 2 middle part,
3 last part), lower 29 bits = length of this part. dmlc's writer splits a payload at every
4-byte-aligned occurrence of the magic number; the reader re-joins the parts with the magic
between them.

Payload (mxnet ``recordio.pack``): IRHeader ``<IfQQ`` (flag, label, id, id2), then ``flag``
float32 labels when flag > 0, then the image bytes.

InsightFace datasets (MS1MV2/MS1MV3/Glint360K): record 0 may be a header with flag=2 and
label [first, end): records 1..first-1 are images labelled with their class index, records
first..end-1 are one per class with label [start, end) (the range of its image records).
Without the header record every key in the .idx is an image.

The ``.idx`` is text: ``key<TAB>byte offset`` per line. A face's locator is the record's start
offset and the total payload length; its record number is the .idx key.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from annotator.formats import image_kind
from annotator.formats.recordio_idx import read_idx
from annotator.model import AnnotatorError, FaceRecord, Locator, Rejected

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
_HEAD = struct.Struct("<II")
IR_HEADER = struct.Struct("<IfQQ")  # flag, label, id, id2 (24 bytes)
LEN_MASK = (1 << 29) - 1

Row = tuple[int, int, FaceRecord | Rejected]


class RecordError(Exception):
    """A record that cannot be read at its offset."""


def idx_path_for(rec_path: str | Path) -> Path:
    p = Path(rec_path)
    return p.with_suffix(".idx")


def read_record_at(fh: BinaryIO, offset: int) -> bytes:
    """Read the (re-joined) payload of the record starting at ``offset``."""
    fh.seek(offset)
    return read_record(fh)


def read_record(fh: BinaryIO) -> bytes:
    """Read the record at the current position; raises RecordError on a malformed record."""
    return read_record_with(fh.read)


def read_record_with(read: Callable[[int], bytes]) -> bytes:
    """Read one (possibly split) record through ``read(n)``, which returns the next n bytes of
    the file (fewer at its end); raises RecordError on a malformed record."""
    parts: list[bytes] = []
    while True:
        head = read(8)
        if len(head) < 8:
            raise RecordError("truncated record header")
        magic, lrec = _HEAD.unpack(head)
        if magic != MAGIC:
            raise RecordError(f"bad magic 0x{magic:08x}")
        cflag, length = lrec >> 29, lrec & LEN_MASK
        data = read(length)
        if len(data) < length:
            raise RecordError("truncated record")
        pad = (-length) & 3
        if pad:
            read(pad)
        if cflag == 0:
            if parts:
                raise RecordError("whole record inside a split record")
            return data
        if cflag == 1:
            if parts:
                raise RecordError("split record restarted")
            parts.append(data)
        elif cflag == 2:
            if not parts:
                raise RecordError("middle part without a first part")
            parts.append(data)
        elif cflag == 3:
            if not parts:
                raise RecordError("last part without a first part")
            parts.append(data)
            return MAGIC_BYTES.join(parts)
        else:
            raise RecordError(f"bad continuation flag {cflag}")


def unpack(payload: bytes) -> tuple[int, float | tuple[float, ...], int, int, bytes]:
    """Split a payload into (flag, label or labels, id, id2, image bytes)."""
    if len(payload) < IR_HEADER.size:
        raise RecordError(f"payload of {len(payload)} bytes is shorter than the IRHeader")
    flag, label, id1, id2 = IR_HEADER.unpack_from(payload)
    start = IR_HEADER.size
    if flag > 0:
        end = start + 4 * flag
        if end > len(payload):
            raise RecordError(f"IRHeader flag {flag} exceeds the payload")
        labels = struct.unpack_from(f"<{flag}f", payload, start)
        return flag, labels, id1, id2, payload[end:]
    return flag, label, id1, id2, payload[start:]


def image_of(payload: bytes) -> bytes:
    """The image bytes of a payload."""
    return unpack(payload)[4]


def read_property(rec_path: str | Path) -> tuple[int, int, int] | None:
    """``property`` beside the .rec: "num_classes,height,width" (None when absent/bad)."""
    p = Path(rec_path).with_name("property")
    try:
        vals = [int(v) for v in p.read_text().strip().split(",")]
    except (OSError, ValueError):
        return None
    return (vals[0], vals[1], vals[2]) if len(vals) == 3 else None


def read_rec(rec_path: str | Path, start_pos: int = 0, start_index: int = 0) -> Iterator[Row]:
    """Stream the image records of a .rec in file order.

    Yields ``(resume_pos, resume_index, item)``; ``resume_pos`` is the byte offset of the next
    record and ``resume_index`` the position in the offset-sorted .idx. ``start_pos`` /
    ``start_index`` continue an earlier read.
    """
    rec_path = Path(rec_path)
    idx_path = idx_path_for(rec_path)
    if not idx_path.exists():
        raise AnnotatorError(f"index file {idx_path} not found beside {rec_path.name}")
    name = rec_path.name
    keys, offs, bad = read_idx(idx_path)
    if start_index == 0:
        for r in bad:
            yield 0, 0, r
    n = len(keys)
    rec_size = rec_path.stat().st_size
    with open(rec_path, "rb", buffering=4 << 20) as fh:
        # Header record (key 0 with flag 2): identity records are skipped, images labelled.
        id_first = id_end = None
        hdr_key = None
        zero = np.nonzero(keys == 0)[0]
        if len(zero):
            try:
                flag, label, *_ = unpack(read_record_at(fh, int(offs[zero[0]])))
            except (RecordError, OSError, OverflowError):
                flag, label = 0, 0.0
            if flag == 2 and isinstance(label, tuple):
                hdr_key = 0
                why = header_problem(label, keys)
                if why is None and label[1] > label[0]:
                    why = _range_record_problem(fh, keys, offs, int(label[0]), int(label[1]))
                if why is None:
                    id_first, id_end = int(label[0]), int(label[1])
                elif start_index == 0:
                    yield 0, 0, Rejected(f"{name}#0", why, 0)
        fh.seek(0)
        for j in range(start_index, n):
            key, off = int(keys[j]), int(offs[j])
            next_pos = int(offs[j + 1]) if j + 1 < n else -1
            if key == hdr_key or (id_first is not None and id_first <= key < id_end):
                continue  # header / per-identity range records are not faces
            origin = f"{name}#{key}"
            if off + _HEAD.size > rec_size:
                yield (
                    next_pos,
                    j + 1,
                    Rejected(
                        origin,
                        f".idx offset {off} is past the end of {name} ({rec_size} bytes)",
                        key,
                    ),
                )
                continue
            try:
                if fh.tell() != off:
                    fh.seek(off)
                payload = read_record(fh)
                flag, label, _, _, img = unpack(payload)
            except (RecordError, OSError, OverflowError) as e:
                yield next_pos, j + 1, Rejected(origin, f"unreadable record: {e}", key)
                fh.seek(0)  # an unknown position after a failed read
                continue
            if hdr_key is not None and id_first is None and flag == 2 and not img:
                continue  # a per-identity range record under an untrusted header
            lab = label[0] if isinstance(label, tuple) else label
            if not np.isfinite(lab) or lab < 0 or lab != int(lab) or lab >= MAX_CLASS:
                yield next_pos, j + 1, Rejected(origin, f"bad class label {lab!r}", key)
                continue
            if image_kind(img[:16]) is None:
                yield (
                    next_pos,
                    j + 1,
                    Rejected(origin, "payload is not an image (unknown magic bytes)", key),
                )
                continue
            rec = FaceRecord(str(int(lab)), Locator(offset=off, length=len(payload)), key)
            yield next_pos, j + 1, rec


def _range_record_problem(
    fh: BinaryIO, keys: np.ndarray, offs: np.ndarray, first: int, end: int
) -> str | None:
    """The record of key ``first`` must be a per-identity range record (flag 2, no image);
    when it is an image or unreadable the header contradicts the data."""
    at = np.nonzero(keys == first)[0]
    try:
        flag, _label, _, _, img = unpack(read_record_at(fh, int(offs[at[0]])))
    except (RecordError, OSError, OverflowError, IndexError):
        flag, img = -1, b""
    if flag == 2 and not img:
        return None
    return (
        f"header record range [{first}, {end}) contradicts the data (record #{first} is not a "
        "per-identity range record); header ignored, every record read"
    )


MAX_CLASS = float(1 << 31)  # a class label at or above this is not a class index


def header_problem(label: tuple[float, ...], keys: np.ndarray) -> str | None:
    """Why a header record's [first, end) range cannot be trusted (None when it fits the
    data): labels that are not finite whole numbers, a range that is empty or backwards, or
    one the .idx contradicts (keys of the range missing, or no image key below it)."""
    shown = ", ".join(f"{v:g}" for v in label[:2])
    if len(label) < 2 or not all(np.isfinite(v) and v == int(v) for v in label[:2]):
        return f"bad header record (range [{shown}]); header ignored, every record read"
    first, end = int(label[0]), int(label[1])
    if not 1 <= first <= end or end - first > len(keys):
        return (
            f"header record range [{first}, {end}) does not fit the {len(keys)} records of "
            "the index; header ignored, every record read"
        )
    in_range = int(np.count_nonzero((keys >= first) & (keys < end)))
    if in_range != end - first:
        return (
            f"header record range [{first}, {end}) contradicts the index ({in_range} of its "
            f"{end - first} keys exist); header ignored, every record read"
        )
    return None


def read_image_at(fh: BinaryIO, offset: int, length: int) -> bytes:
    """The image bytes of the record at ``offset`` whose payload is ``length`` bytes."""
    payload = read_record_at(fh, offset)
    if len(payload) != length:
        raise RecordError(f"record payload is {len(payload)} bytes, expected {length}")
    return image_of(payload)


# -- writer -------------------------------------------------------------------------------


def pack(label: float | Sequence[float], img: bytes, id1: int = 0, id2: int = 0) -> bytes:
    """mxnet ``recordio.pack``: a number label -> flag 0; a sequence -> flag = its length."""
    if isinstance(label, (int, float)):
        return IR_HEADER.pack(0, float(label), id1, id2) + img
    labels = np.asarray(label, dtype="<f4")
    return IR_HEADER.pack(labels.size, 0.0, id1, id2) + labels.tobytes() + img


def encode_record(payload: bytes) -> bytes:
    """dmlc RecordIOWriter::WriteRecord: split at 4-aligned magic occurrences, pad to 4."""
    n = len(payload)
    if n >= 1 << 29:
        raise ValueError("RecordIO records must be shorter than 2**29 bytes")
    out = bytearray()
    dptr = 0
    i = payload.find(MAGIC_BYTES)
    while i != -1 and i + 4 <= (n >> 2) << 2:
        if i % 4 == 0:
            out += MAGIC_BYTES + struct.pack("<I", ((1 if dptr == 0 else 2) << 29) | (i - dptr))
            out += payload[dptr:i]
            dptr = i + 4
            i = payload.find(MAGIC_BYTES, dptr)
        else:
            i = payload.find(MAGIC_BYTES, i + 1)
    out += MAGIC_BYTES + struct.pack("<I", ((3 if dptr else 0) << 29) | (n - dptr))
    out += payload[dptr:]
    out += b"\0" * ((-n) & 3)
    return bytes(out)


class RecordWriter:
    """Write .rec/.idx (+ ``property``) the way mxnet's MXIndexedRecordIO + pack do.

    Usage: ``w = RecordWriter(path, with_header=True)``; ``w.add(class_index, jpeg)`` in class
    order; ``w.close()`` writes the header record (key 0), the per-class range records and the
    ``property`` file. With ``with_header=False`` images are keys 0.. and nothing else is written.
    """

    def __init__(
        self,
        rec_path: str | Path,
        with_header: bool = True,
        image_size: tuple[int, int] = (112, 112),
    ):
        self.rec_path = Path(rec_path)
        self.with_header = with_header
        self.image_size = image_size
        self._items: list[tuple[int, bytes]] = []  # kept until close: header needs the counts
        self.offsets: dict[int, int] = {}

    def add(self, class_index: int, img: bytes) -> None:
        self._items.append((int(class_index), img))

    def _write(self, rec: BinaryIO, idx: BinaryIO, key: int, payload: bytes) -> None:
        pos = rec.tell()
        rec.write(encode_record(payload))
        idx.write(f"{key}\t{pos}\n".encode())
        self.offsets[key] = pos

    def close(self) -> None:
        items = sorted(self._items, key=lambda t: t[0]) if self.with_header else self._items
        with open(self.rec_path, "wb") as rec, open(idx_path_for(self.rec_path), "wb") as idx:
            if not self.with_header:
                for key, (cls, img) in enumerate(items):
                    self._write(rec, idx, key, pack(cls, img))
                return
            first = len(items) + 1
            classes = sorted({c for c, _ in items})
            end = first + len(classes)
            self._write(rec, idx, 0, pack([first, end], b""))
            ranges: dict[int, list[int]] = {}
            for key, (cls, img) in enumerate(items, 1):
                self._write(rec, idx, key, pack(cls, img))
                r = ranges.setdefault(cls, [key, key + 1])
                r[1] = key + 1
            for key, cls in enumerate(classes, first):
                self._write(rec, idx, key, pack(ranges[cls], b""))
        self.rec_path.with_name("property").write_text(
            f"{len(classes)},{self.image_size[0]},{self.image_size[1]}\n"
        )

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


class RecordStreamWriter:
    """Write an InsightFace .rec/.idx (+ ``property``) with a header record while images arrive
    in class order, keeping no image in memory (for exports of any size).

    The layout is the one :class:`RecordWriter` writes with ``with_header=True``: record 0 at
    offset 0 is the header (flag 2, label [first, end)), images are keys 1..n labelled with their
    class, keys first..end-1 hold one [start, end) range per class. The header is written first
    as a placeholder of the same size and rewritten by :meth:`close`. ``add`` returns the key.
    Labels are float32 (as in mxnet), so keys must stay below 2**24.
    """

    MAX_KEY = 1 << 24

    def __init__(self, rec_path: str | Path, buffering: int = 1 << 18):
        self.rec_path = Path(rec_path)
        self._rec = open(self.rec_path, "xb", buffering=buffering)  # noqa: SIM115
        try:
            self._idx = open(idx_path_for(self.rec_path), "xb", buffering=buffering)  # noqa: SIM115
        except BaseException:
            self._rec.close()
            raise
        self._pos = 0
        self._header_len = self._put(0, pack([0, 0], b""))
        self.count = 0
        self.ranges: list[list[int]] = []  # [class, start key, end key)

    def _put(self, key: int, payload: bytes) -> int:
        rec = encode_record(payload)
        self._rec.write(rec)
        self._idx.write(f"{key}\t{self._pos}\n".encode())
        self._pos += len(rec)
        return len(rec)

    def add(self, class_index: int, img: bytes) -> int:
        cls = int(class_index)
        if self.ranges and cls < self.ranges[-1][0]:
            raise ValueError("RecordStreamWriter needs the images in class order")
        key = self.count + 1
        if key + len(self.ranges) + 1 >= self.MAX_KEY:
            raise ValueError("too many records for float32 RecordIO labels (2**24)")
        self._put(key, pack(cls, img))
        self.count = key
        if self.ranges and self.ranges[-1][0] == cls:
            self.ranges[-1][2] = key + 1
        else:
            self.ranges.append([cls, key, key + 1])
        return key

    def close(self, image_size: tuple[int, int] = (112, 112)) -> None:
        """Write the per-class records, the real header and ``property``; close the files."""
        try:
            first = self.count + 1
            for key, (_cls, a, b) in enumerate(self.ranges, first):
                self._put(key, pack([a, b], b""))
            header = encode_record(pack([first, first + len(self.ranges)], b""))
            if len(header) != self._header_len:  # pragma: no cover - positive floats never split
                raise RecordError("the header record changed size")
            self._rec.seek(0)
            self._rec.write(header)
        finally:
            self._rec.close()
            self._idx.close()
        self.rec_path.with_name("property").write_text(
            f"{len(self.ranges)},{image_size[0]},{image_size[1]}\n"
        )

    def abort(self) -> None:
        self._rec.close()
        self._idx.close()


# -- class list (identities.tsv beside an exported .rec) ----------------------------------------
# Appended apart from the reader above. A .rec labels images with class indices only; the
# export writes ``identities.tsv`` (header ``class<TAB>identity``, then one line per class) so
# the keys survive. A key is escaped so that every line is one class: a backslash is written
# ``\\``, tab ``\t``, newline ``\n``, carriage return ``\r``, and any other control character
# or line separator (U+0000-U+001F, U+007F-U+009F, U+2028, U+2029) ``\xHH`` or ``\uHHHH``.

CLASS_LIST_HEADER = b"class\tidentity\n"
_KEY_ESCAPES = {
    c: (
        {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}.get(chr(c))
        or (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}")
    )
    for c in (ord("\\"), *range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}
_KEY_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def escape_key(key: str) -> str:
    """A key as one field of one line of ``identities.tsv`` (see above)."""
    return key.translate(_KEY_ESCAPES)


def unescape_key(field: str) -> str:
    """The key :func:`escape_key` wrote (an unknown or cut escape is kept as written)."""
    if "\\" not in field:
        return field
    out: list[str] = []
    i, n = 0, len(field)
    while i < n:
        ch = field[i]
        nxt = field[i + 1 : i + 2]
        if ch != "\\" or not nxt:
            out.append(ch)
            i += 1
        elif nxt in _KEY_UNESCAPES:
            out.append(_KEY_UNESCAPES[nxt])
            i += 2
        else:
            width = {"x": 2, "u": 4}.get(nxt, 0)
            digits = field[i + 2 : i + 2 + width]
            if (
                width
                and len(digits) == width
                and all(d in "0123456789abcdefABCDEF" for d in digits)
            ):
                out.append(chr(int(digits, 16)))
                i += 2 + width
            else:
                out.append(ch)
                i += 1
    return "".join(out)


def class_line(class_index: int, key: str) -> bytes:
    """One line of ``identities.tsv``."""
    return f"{int(class_index)}\t{escape_key(key)}\n".encode()
