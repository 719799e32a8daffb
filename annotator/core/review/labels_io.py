"""Label files in and out.

Import shapes (the delimiter is sniffed — tab, comma or semicolon, else whitespace — and a header
row is optional):

* **label table**: ``origin-or-face-id, label[, new identity key[, note]]``. ``origin`` is the
  import's origin string (``faces.tsv:17``, ``train.rec#42``, or a folder source's relative
  path); a bare integer is a face id. A new identity moves the face there (it becomes
  ``correct`` there unless the row gives another label than ``wrong_identity``).
* **clean list**: ``MID/rank-FaceId-0.jpg[<TAB>MID]`` — the listed faces (matched by the
  identity they were imported under, their rank and their MS-Celeb FaceID) are ``correct``.

With ``others`` (e.g. ``wrong_identity``), faces of the identities a file mentions that the file
does not list get that label. Bad lines and unknown faces are reported with their line number
and skipped; the rest is applied in chunked batches (one undo step per chunk and label).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from annotator.core.review import ops
from annotator.formats import physical_lines
from annotator.model import (
    LABELS,
    ORIGIN_IMPORT,
    AnnotatorError,
    CancelledFn,
    ProgressFn,
    check_label,
    label_problem,
)
from annotator.store import faces as store
from annotator.store import labels as labels_store
from annotator.store.db import Project, made_by

CHUNK = 5000
LOOKUP_IDENTITIES = 64  # identities whose faces a clean-list import keeps at hand

CLEAN_RE = re.compile(
    r"^(?P<key>[^/\\]+)[/\\](?P<rank>\d+)-(?P<ref>[^/\\]+?)\.(?:jpe?g|png|bmp)$", re.IGNORECASE
)
_REF_NAMES = {"origin", "face", "face_id", "faceid", "id", "file", "path", "image"}
_LABEL_NAMES = {"label", "verdict"}
_IDENTITY_NAMES = {"identity", "new_identity", "identity_key", "key", "mid", "move_to"}
_NOTE_NAMES = {"note", "notes", "comment"}


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    reason: str

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class LabelLine:
    line: int
    ref: str
    label: str | None
    identity: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CleanLine:
    line: int
    key: str
    rank: int
    face_ref: str


@dataclass
class ParsedFile:
    shape: str  # "labels" | "clean" | "empty"
    rows: list[LabelLine | CleanLine] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


@dataclass
class LabelImportResult:
    applied: int = 0
    unchanged: int = 0
    errors: list[LineError] = field(default_factory=list)
    shape: str = "labels"
    complete: bool = True

    def to_json(self) -> dict[str, object]:
        return {
            "applied": self.applied,
            "unchanged": self.unchanged,
            "errors": [e.to_json() for e in self.errors],
            "shape": self.shape,
            "complete": self.complete,
        }


# -- reading -----------------------------------------------------------------------------------


MAX_LINE = 1 << 16  # a label line longer than this is not one (e.g. a dataset TSV given)
SNIFF_LINES = 50  # lines looked at to choose the delimiter
GIVE_UP = 100  # this many bad lines before the first good one: not a label file


def _split_rows(path: Path, errors: list[LineError]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-empty line, streamed; bad lines go to ``errors``."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise AnnotatorError(f"cannot read {path}: {e.strerror or e}") from None
    with fh:
        lines = _texts(physical_lines(fh, MAX_LINE), errors, path.name)
        head = []
        for item in lines:
            head.append(item)
            if len(head) >= SNIFF_LINES:
                break
        sample = "\n".join(t for _n, t in head)
        delim = next((d for d in ("\t", ",", ";") if d in sample), None)
        for no, text in itertools.chain(head, lines):
            if delim is None:
                cells = text.split()
            else:
                try:
                    cells = next(csv.reader(io.StringIO(text), delimiter=delim))
                except (csv.Error, StopIteration):
                    errors.append(LineError(no, "cannot split the line into columns"))
                    continue
            yield no, [c.strip() for c in cells]


def _texts(
    lines: Iterable[tuple[int, bytes | None]], errors: list[LineError], name: str
) -> Iterator[tuple[int, str]]:
    some = False
    for no, raw in lines:
        if raw is None:
            errors.append(LineError(no, f"line longer than {MAX_LINE >> 10} KiB"))
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                errors.append(LineError(no, "not UTF-8 text"))
            else:
                if "\0" in text:
                    errors.append(LineError(no, "NUL byte in the line"))
                    if not some:
                        _give_up(name, errors)
                    continue
                if text.strip() and not text.lstrip().startswith("#"):
                    some = True
                    yield no, text
                continue
        if not some:
            _give_up(name, errors)


def _give_up(name: str, errors: list[LineError]) -> None:
    """Refuse the file when its first :data:`GIVE_UP` lines are all bad."""
    if len(errors) >= GIVE_UP:
        e = min(errors, key=lambda e: e.line)
        raise AnnotatorError(
            f"{name} is not a label file: its first {len(errors)} lines are all bad "
            f"(line {e.line}: {e.reason})"
        )


def _header_map(cells: Sequence[str]) -> dict[str, int] | None:
    low = [c.lower() for c in cells]
    if not (low and (low[0] in _REF_NAMES or any(c in _LABEL_NAMES for c in low))):
        return None
    cols: dict[str, int] = {}
    for i, c in enumerate(low):
        for name, names in (
            ("ref", _REF_NAMES),
            ("label", _LABEL_NAMES),
            ("identity", _IDENTITY_NAMES),
            ("note", _NOTE_NAMES),
        ):
            if c in names and name not in cols:
                cols[name] = i
    cols.setdefault("ref", 0)
    return cols


def read_label_file(path: str | Path) -> ParsedFile:
    """Parse a label file into rows of one shape plus the errors of its bad lines (streamed:
    what stays per line is the parsed row, not the text). A file whose first
    :data:`GIVE_UP` lines are all bad is refused as a whole (it is not a label file)."""
    errors: list[LineError] = []
    rows = _split_rows(Path(path), errors)
    first_row = next(rows, None)
    if first_row is None:
        return ParsedFile("empty", [], sorted(errors, key=lambda e: e.line))
    cols = _header_map(first_row[1])
    if cols is not None:
        first_row = next(rows, None)
        if first_row is None:
            return ParsedFile("empty", [], sorted(errors, key=lambda e: e.line))
    else:
        cols = {"ref": 0, "label": 1, "identity": 2, "note": 3}
    first = first_row[1]
    second = first[cols["label"]].lower() if "label" in cols and len(first) > cols["label"] else ""
    clean = bool(CLEAN_RE.match(first[cols["ref"]] if len(first) > cols["ref"] else "")) and (
        second not in LABELS
    )
    out = ParsedFile("clean" if clean else "labels", [], errors)
    for no, cells in itertools.chain([first_row], rows):
        if clean:
            _clean_row(out, no, cells)
        else:
            _label_row(out, no, cells, cols)
        if not out.rows:
            _give_up(Path(path).name, out.errors)
    out.errors.sort(key=lambda e: e.line)
    return out


def _cell(cells: Sequence[str], i: int | None) -> str:
    return cells[i] if i is not None and i < len(cells) else ""


def _clean_row(out: ParsedFile, no: int, cells: Sequence[str]) -> None:
    m = CLEAN_RE.match(cells[0])
    if not m:
        out.errors.append(
            LineError(no, f"not a clean-list entry MID/rank-FaceId.jpg: {cells[0]!r}")
        )
        return
    key = m["key"]
    if len(cells) > 1 and cells[1].startswith("m.") and cells[1] != key:
        out.errors.append(
            LineError(no, f"identity column {cells[1]!r} differs from the path's identity {key!r}")
        )
        return
    out.rows.append(CleanLine(no, key, int(m["rank"]), m["ref"]))


def _label_row(out: ParsedFile, no: int, cells: Sequence[str], cols: dict[str, int]) -> None:
    ref = _cell(cells, cols.get("ref"))
    label = _cell(cells, cols.get("label")).lower() or None
    identity = _cell(cells, cols.get("identity")) or None
    note = _cell(cells, cols.get("note")) or None
    if not ref:
        out.errors.append(LineError(no, "no face given (expected an origin or a face id)"))
    elif label is not None and (problem := label_problem(label)) is not None:
        out.errors.append(LineError(no, problem))
    elif label is None and identity is None:
        out.errors.append(LineError(no, "no label and no new identity"))
    else:
        out.rows.append(LabelLine(no, ref, label, identity, note))


# -- resolving ---------------------------------------------------------------------------------


FACE_ID_MAX = (1 << 63) - 1  # SQLite's int64
_ORIGIN_NUMBER = re.compile(r"^.+[:#](\d+)$")  # \d: any script's digits, checked below


def resolve_ref(resolver: store.FaceResolver, ref: str) -> tuple[int | None, str | None]:
    """(face id, None) or (None, reason) for an origin string or a face id.

    A face id is ASCII digits only (``٣`` or ``³`` are not 3) within SQLite's int64 range."""
    if "\0" in ref:
        return None, "NUL byte in the face reference"
    m = _ORIGIN_NUMBER.match(ref)
    if m and (not m[1].isascii() or int(m[1]) > FACE_ID_MAX):
        return None, f"unknown face {ref[:60]!r} (line or record number not ASCII digits in range)"
    if ref.isdigit() and not ref.isascii():
        return None, f"face id {ref!r} is not ASCII digits"
    if ref.isdigit():
        fid = int(ref)
        if fid > FACE_ID_MAX:
            found = resolver.by_origin(ref)  # a folder file named like a huge number
            if len(found) == 1:
                return found[0], None
            return None, f"face id {ref[:30]} is out of range"
        if resolver.face_exists(fid):
            return fid, None
        found = resolver.by_origin(ref)  # a folder file named like a number
        if len(found) == 1:
            return found[0], None
        return None, f"no face with id {fid}"
    found = resolver.by_origin(ref)
    if not found:
        return None, f"unknown face {ref!r}"
    if len(found) > 1:
        return None, f"ambiguous origin {ref!r}: {len(found)} sources have that name"
    return found[0], None


def face_id_of(project: Project, ref: str) -> int:
    """The face an origin string or face id names; :class:`AnnotatorError` when none (or more
    than one) does."""
    fid, reason = resolve_ref(store.FaceResolver(project), ref)
    if fid is None:
        raise AnnotatorError(reason or f"unknown face {ref!r}")
    return fid


# -- applying ----------------------------------------------------------------------------------


def _chunks(ids: Sequence[int], n: int) -> Iterable[list[int]]:
    for i in range(0, len(ids), n):
        yield list(ids[i : i + n])


def import_labels(
    project: Project,
    path: str | Path,
    reviewer: str,
    others: str | None = None,
    *,
    chunk: int = CHUNK,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> LabelImportResult:
    """Apply a label file (either shape) as ``reviewer``; see the module docstring. Every
    batch it writes records its provenance: imported from this file (by name)."""
    with made_by(ORIGIN_IMPORT, Path(path).name):
        return _import_labels(project, path, reviewer, others, chunk, progress, cancelled)


def _import_labels(
    project: Project,
    path: str | Path,
    reviewer: str,
    others: str | None,
    chunk: int,
    progress: ProgressFn | None,
    cancelled: CancelledFn | None,
) -> LabelImportResult:
    if others is not None:
        check_label(others, "for the other faces")
    parsed = read_label_file(path)
    res = LabelImportResult(shape=parsed.shape, errors=list(parsed.errors))
    labels: dict[int, str] = {}  # face -> label to give
    moves: dict[int, int] = {}  # face -> identity id to move to
    notes: dict[int, str] = {}
    seen: dict[int, tuple[int, str | None, int | None]] = {}  # face -> (line, label, move)
    mentioned: set[int] = set()  # identities the file talks about (for --others)

    def take(no: int, fid: int, label: str | None, move: int | None, note: str | None) -> None:
        prev = seen.get(fid)
        if prev is not None:
            if prev[1:] != (label, move):
                res.errors.append(
                    LineError(
                        no, f"face {fid} already given {prev[1] or 'a move'} on line {prev[0]}"
                    )
                )
            return
        seen[fid] = (no, label, move)
        if move is not None:
            moves[fid] = move
            if label not in (None, "wrong_identity", ops.MOVED_LABEL):
                labels[fid] = label
        elif label is not None:
            labels[fid] = label
        if note:
            notes[fid] = note

    if parsed.shape == "clean":
        keys = store.identity_ids_by_key(project, (r.key for r in parsed.rows))  # type: ignore[union-attr]
        # faces of the last few identities only (clean lists come grouped by identity): the
        # memory does not grow with the number of identities the file names
        lookup: dict[int, dict[tuple[int | None, str | None], list[int]]] = {}
        for row in parsed.rows:
            assert isinstance(row, CleanLine)
            ident = keys.get(row.key)
            if ident is None:
                res.errors.append(LineError(row.line, f"unknown identity {row.key!r}"))
                continue
            mentioned.add(ident)
            if ident not in lookup:
                if len(lookup) >= LOOKUP_IDENTITIES:
                    del lookup[next(iter(lookup))]
                lookup[ident] = store.faces_by_rank_ref(project, ident)
            fids = lookup[ident].get((row.rank, row.face_ref))
            if not fids:
                res.errors.append(
                    LineError(
                        row.line, f"unknown face: rank {row.rank} {row.face_ref} of {row.key}"
                    )
                )
                continue
            for fid in fids:
                take(row.line, fid, "correct", None, None)
    elif parsed.shape == "labels":
        resolver = store.FaceResolver(project)
        idents = store.identity_ids_by_key(
            project, (r.identity for r in parsed.rows if isinstance(r, LabelLine) and r.identity)
        )
        for row in parsed.rows:
            assert isinstance(row, LabelLine)
            fid, reason = resolve_ref(resolver, row.ref)
            if fid is None:
                res.errors.append(LineError(row.line, reason or "unknown face"))
                continue
            move = None
            if row.identity is not None:
                move = idents.get(row.identity)
                if move is None:
                    res.errors.append(LineError(row.line, f"unknown identity {row.identity!r}"))
                    continue
            take(row.line, fid, row.label, move, row.note)
        if others is not None and seen:
            state = labels_store.face_states(project, list(seen))
            mentioned = {ident for ident, _label in state.values()}
    res.errors.sort(key=lambda e: e.line)

    if others is not None:
        for ident in sorted(mentioned):
            for fid in store.resident_faces(project, ident):
                if fid not in seen:
                    labels[fid] = others
    targeted = set(labels) | set(moves)
    total = len(labels) + len(moves)
    done = 0
    changed: set[int] = set()
    report = progress or (lambda d, t: None)
    report(0, total)

    def stop() -> bool:
        if cancelled is not None and cancelled():
            res.complete = False
            return True
        return False

    by_target: dict[int, list[int]] = {}
    for fid, to in moves.items():
        by_target.setdefault(to, []).append(fid)
    for to in sorted(by_target):
        for ids in _chunks(sorted(by_target[to]), chunk):
            if stop():
                break
            mine = {f: notes[f] for f in ids if f in notes}
            ch = ops.move_faces(project, ids, to, reviewer, notes=mine, label=ops.MOVED_LABEL)
            changed |= ch.faces
            done += len(ids)
            report(done, total)
    by_label: dict[str, list[int]] = {}
    for fid, lab in labels.items():
        by_label.setdefault(lab, []).append(fid)
    for lab in LABELS:
        for ids in _chunks(sorted(by_label.get(lab, [])), chunk):
            if stop():
                break
            # a moved face's note is already on its move batch's events
            mine = {f: notes[f] for f in ids if f in notes and f not in moves}
            ch = ops.label_faces(project, ids, lab, reviewer, notes=mine)
            changed |= ch.faces
            done += len(ids)
            report(done, total)
    res.applied = len(changed)
    res.unchanged = len(targeted - changed) if res.complete else 0
    return res


# -- export ------------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "face_id",
    "origin",
    "identity",
    "label",
    "reviewer",
    "at",
    "note",
    "qa_verdict",
    "qa_reviewer",
    "adjudicated",
)


def export_rows(project: Project) -> Iterable[dict[str, object]]:
    """Every face's current label state, as dicts with :data:`EXPORT_COLUMNS` keys."""
    for r in labels_store.label_rows(project):
        yield {
            "face_id": r.face_id,
            "origin": r.origin,
            "identity": r.identity,
            "label": r.label,
            "reviewer": r.reviewer,
            "at": r.at,
            "note": r.note,
            "qa_verdict": r.qa_verdict,
            "qa_reviewer": r.qa_reviewer,
            "adjudicated": r.adjudicated,
        }


def write_csv(rows: Iterable[dict[str, object]], out: io.TextIOBase | object) -> int:
    """Write export rows as CSV (header first) to a text stream; returns the row count."""
    w = csv.writer(out, lineterminator="\n")  # type: ignore[arg-type]
    w.writerow(EXPORT_COLUMNS)
    n = 0
    for row in rows:
        w.writerow(["" if row[c] is None else row[c] for c in EXPORT_COLUMNS])
        n += 1
    return n
