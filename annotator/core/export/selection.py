"""Which faces an export includes, streamed with their bytes to a sink.

A face is included when its current label is ``correct``, it is not corrupt (scan) and its
bytes are an image, it is the one kept of its duplicate group, (with ``require_qa``) its
identity passed QA, and its identity keeps at least ``min_faces`` faces after these filters.
Withdrawn identities are deleted from the project by a takedown, so they cannot be exported.
The identity is the face's current identity (after moves).

Duplicate groups: the face marked keeper by the scan is kept when it is labeled ``correct``;
otherwise (the reviewer chose another keeper, which makes the old one ``duplicate``) the
lowest-id ``correct`` face of the group is kept. A group never contributes two faces.

Streaming: candidates come from one SQL cursor in identity order; bytes are read a few hundred
faces (whole identities, at most ``READ_BYTES`` of locator length) per call, sorted by source
and offset, hashed once and handed to the sink. What stays per face is ~60 bytes of arrays
(face id, source, offset, SHA-256) for the pairs; the heap does not grow with the images.
"""

from __future__ import annotations

import hashlib
import io
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from annotator.core.export.names import OWN_FILES, Namer
from annotator.core.infra.access import FaceBytes
from annotator.core.review import qa
from annotator.formats import image_kind
from annotator.model import (
    AnnotatorError,
    CancelledFn,
    ProgressFn,
    never_cancelled,
    no_progress,
    origin_of,
)
from annotator.store import export as store
from annotator.store.db import Project

EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "gif": ".gif"}
_PIL_FORMATS = {"jpeg": ["JPEG"], "png": ["PNG"], "webp": ["WEBP"], "bmp": ["BMP"], "gif": ["GIF"]}

# Faces read per FaceBytes call: whole identities, until READ_CHUNK faces or READ_BYTES of
# locator length (folder files count FOLDER_GUESS each); bounds the bytes held at once.
READ_CHUNK = 256
READ_BYTES = 8 << 20
FOLDER_GUESS = 64 << 10

QA_REASONS = {
    None: "never sampled",
    "pending": "verdicts pending",
    "disagreement": "unresolved disagreement",
}


class ExportCancelled(AnnotatorError):
    """The export was cancelled; nothing was written to the output folder."""


@dataclass(slots=True)
class ExportFace:
    """A face of the identity being written (its bytes travel beside it, once)."""

    face_id: int
    identity_key: str
    origin: str
    ext: str
    cand: store.Candidate
    sha256: str = ""
    file: str = ""  # path (or tsv:line / rec#key) in the export, for manifest.csv
    rel: str = ""  # folder-layout relative path (identity dir / name)
    size: tuple[int, int] | None = None  # (height, width) when known


class SelectedFace(NamedTuple):
    face_id: int
    identity_key: str
    sha256: str


@dataclass(slots=True)
class SelectedIdentity:
    key: str
    dirname: str  # folder-layout directory name (sanitised, unique)
    start: int  # index of its first face in the Selection's arrays
    count: int


@dataclass
class Selection:
    """The included faces, compactly: per identity a range of the face arrays (face id, source,
    offset, SHA-256) — ~60 bytes a face, never the images."""

    idents: list[SelectedIdentity]
    excluded: dict[str, int]  # reason -> faces
    excluded_identities: dict[str, int]  # reason -> identities
    reviewers: dict[str, int]  # reviewer -> included faces labeled by them
    qa: dict[str, object] | None = None
    # (provenance, detail) -> included faces whose label was made that way (model.PROVENANCE)
    provenance: dict[tuple[str, str | None], int] = field(default_factory=dict)
    fingerprint: str = ""  # sha256 over (face, identity, source fingerprint, bytes sha256)
    face_ids: array = field(default_factory=lambda: array("q"))
    source_ids: array = field(default_factory=lambda: array("q"))
    offsets: array = field(default_factory=lambda: array("q"))  # -1 for folder sources
    digests: bytearray = field(default_factory=bytearray)  # 32 bytes a face

    def __len__(self) -> int:
        return len(self.face_ids)

    @property
    def dirs(self) -> dict[str, str]:
        return {i.key: i.dirname for i in self.idents}

    def sha256(self, g: int) -> str:
        return self.digests[32 * g : 32 * g + 32].hex()

    @property
    def faces(self) -> list[SelectedFace]:
        """Every included face in export order (built on demand: O(faces) objects)."""
        return [
            SelectedFace(self.face_ids[g], i.key, self.sha256(g))
            for i in self.idents
            for g in range(i.start, i.start + i.count)
        ]

    @property
    def identities(self) -> dict[str, list[SelectedFace]]:
        out: dict[str, list[SelectedFace]] = {}
        for f in self.faces:
            out.setdefault(f.identity_key, []).append(f)
        return out


class Sink:
    """Receives each included identity with its faces' bytes (in export order)."""

    need_size = False  # wants ExportFace.size (image height, width)
    need_names = True  # wants ExportFace.rel (the folder-layout file names)

    def identity(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        """Write one identity's faces; set each ExportFace.file."""


def image_size(data: bytes, kind: str | None = None) -> tuple[int, int] | None:
    """(height, width) of an encoded image from its header (Pillow reads no pixels), or None.
    ``kind`` (from :func:`annotator.formats.image_kind`) limits which decoders are tried."""
    return _image_header(data, kind)[0]


def _image_header(data: bytes, kind: str | None) -> tuple[tuple[int, int] | None, int]:
    """(size or None, how many bytes of a plain JPEG Pillow read to tell it, else 0)."""
    fh = io.BytesIO(data)
    try:
        with Image.open(fh, formats=_PIL_FORMATS.get(kind or "")) as im:
            w, h = im.size
            used = fh.tell() if im.format == "JPEG" else 0  # (an MPO seeks to other frames)
    except Exception:  # noqa: BLE001 - a size we cannot tell is just not counted
        return None, 0
    return ((h, w) if w and h else None), used


class ImageSizes:
    """:func:`image_size` for many faces. Pillow reads a JPEG's markers up to its start of
    scan byte by byte in Python (~0.1 ms a face: a rec export of unscanned faces took 1.6x as
    long as with no size reading, tests/bench/bench_export.py). JPEGs
    written by one encoder at one size and quality share those header bytes exactly, and the
    size depends on nothing else, so a header seen before is answered from a small table
    keyed by the very bytes Pillow read; any other image is read by Pillow."""

    MAX_HEADERS = 64  # distinct headers remembered
    MAX_LENGTHS = 8  # distinct header lengths tried per image

    def __init__(self) -> None:
        self._known: dict[bytes, tuple[int, int]] = {}
        self._lengths: list[int] = []
        self._hits = 0
        self._look = True  # False once the table is full and has not paid for itself

    def __call__(self, data: bytes, kind: str | None) -> tuple[int, int] | None:
        if kind == "jpeg" and self._look:
            for n in self._lengths:
                size = self._known.get(data[:n])
                if size is not None:
                    self._hits += 1
                    return size
        size, used = _image_header(data, kind)
        if size is None or not used or kind != "jpeg" or not self._look:
            return size
        if len(self._known) >= self.MAX_HEADERS:
            self._look = self._hits >= len(self._known)  # (every face its own header: stop)
        elif used in self._lengths or len(self._lengths) < self.MAX_LENGTHS:
            if used not in self._lengths:
                self._lengths.append(used)
            self._known[data[:used]] = size
        return size


def _read_order(c: store.Candidate) -> tuple[int, int, str, int]:
    return (c.source_id, c.offset if c.offset is not None else -1, c.relpath or "", c.face_id)


def _stem(c: store.Candidate, origin: str) -> str:
    if c.source_format == "folder" and c.relpath:
        return Path(c.relpath).stem
    if c.rank is not None and c.face_ref:
        return f"{c.rank}-{c.face_ref}"
    return origin


def select_faces(
    project: Project,
    require_qa: bool = False,
    min_faces: int = 1,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    sink: Sink | None = None,
) -> Selection:
    """Apply the export filters while streaming: candidates come from the project one identity
    at a time, their bytes are read (a few hundred faces per call, in file order) and handed to
    ``sink`` with the identity, then dropped. Memory does not grow with the export's bytes;
    per face only the compact arrays of :class:`Selection` stay."""
    sink = sink or Sink()
    excluded: Counter[str] = Counter()
    excl_ident: Counter[str] = Counter()
    for lab, n in store.label_counts(project).items():
        if lab != "correct":
            excluded[f"label {lab}"] += n
    keep_of_group = store.dup_group_keepers(project)
    qa_states = qa.identity_qa_states(project) if require_qa else None
    failed_qa: dict[int, str | None] = {}  # identity id -> QA state, for identities left out
    total = store.correct_count(project)
    seen = 0  # candidates looked at (progress counts the excluded ones too)
    sel = Selection([], {}, {}, {})
    dirs = Namer(reserved=OWN_FILES)
    fingerprint = hashlib.sha256()
    reviewers: Counter[str] = Counter()
    made: Counter[tuple[str, str | None]] = Counter()
    src_names: dict[int, str] = {}
    sizes = ImageSizes()

    def finish_identity(g: list[store.Candidate], data: dict[int, bytes]) -> None:
        good: list[tuple[ExportFace, bytes]] = []
        for c in g:
            b = data.pop(c.face_id)
            kind = image_kind(b[:16])
            if kind is None:
                excluded["not an image"] += 1
                continue
            name = src_names.get(c.source_id)
            if name is None:
                name = src_names[c.source_id] = Path(c.source_path).name
            origin = origin_of(name, c.source_format, c.record, c.relpath)
            ef = ExportFace(
                c.face_id,
                c.identity_key,
                origin,
                EXTENSIONS[kind],
                c,
                hashlib.sha256(b).hexdigest(),
            )
            if sink.need_size:  # measured by the scan, else read from the header
                ef.size = (
                    (c.height, c.width)  # a crafted project file may hold other types
                    if isinstance(c.width, int)
                    and isinstance(c.height, int)
                    and c.width > 0
                    and c.height > 0
                    else sizes(b, kind)
                )
            good.append((ef, b))
        if not good:
            return
        if len(good) < min_faces:
            excluded[f"identity with fewer than {min_faces} faces"] += len(good)
            excl_ident[f"fewer than {min_faces} faces"] += 1
            return
        key = g[0].identity_key
        d = dirs.take(key)
        if sink.need_names:
            names = Namer()
            for ef, _b in good:
                ef.rel = f"{d}/{names.take(_stem(ef.cand, ef.origin), ef.ext)}"
        sink.identity(key, d, good)
        sel.idents.append(SelectedIdentity(key, d, len(sel.face_ids), len(good)))
        for ef, _b in good:
            c = ef.cand
            sel.face_ids.append(c.face_id)
            sel.source_ids.append(c.source_id)
            sel.offsets.append(c.offset if c.offset is not None else -1)
            sel.digests += bytes.fromhex(ef.sha256)
            fingerprint.update(
                f"{c.face_id}\t{key}\tcorrect\t{c.source_fingerprint}\t{ef.sha256}\n".encode()
            )
            reviewers[c.reviewer or "?"] += 1
            made[c.provenance] += 1

    def flush(fb: FaceBytes, groups: list[list[store.Candidate]]) -> None:
        if cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
        batch = sorted((c for g in groups for c in g), key=_read_order)
        data = dict(
            zip((c.face_id for c in batch), fb.read_many([c.face_id for c in batch]), strict=True)
        )
        for g in groups:
            finish_identity(g, data)
        progress(seen, total)

    with FaceBytes(project) as fb:
        pending: list[list[store.Candidate]] = []
        n_pending = b_pending = 0
        cands = store.iter_correct_faces(project)
        for c in cands:
            seen += 1
            if c.corrupt is not None:
                excluded["corrupt"] += 1
                continue
            if c.dup_group is not None and keep_of_group.get(c.dup_group) != c.face_id:
                excluded["duplicate (not the keeper of its group)"] += 1
                continue
            if qa_states is not None and qa_states.get(c.identity_id) != "passed":
                st = qa_states.get(c.identity_id)
                excluded[f"identity did not pass QA ({QA_REASONS[st]})"] += 1
                failed_qa[c.identity_id] = st
                continue
            if pending and pending[-1][0].identity_id == c.identity_id:
                pending[-1].append(c)
            else:
                if n_pending >= READ_CHUNK or b_pending >= READ_BYTES:  # whole identities only
                    flush(fb, pending)
                    pending, n_pending, b_pending = [], 0, 0
                pending.append([c])
            n_pending += 1
            b_pending += c.length if c.length is not None else FOLDER_GUESS
        cands.close()  # (an exception leaves it to the garbage collector, at once in CPython)
        if pending:
            flush(fb, pending)
    progress(total, total)
    for st in failed_qa.values():
        excl_ident[f"did not pass QA ({QA_REASONS[st]})"] += 1
    sel.excluded = dict(sorted(excluded.items()))
    sel.excluded_identities = dict(sorted(excl_ident.items()))
    sel.reviewers = dict(sorted(reviewers.items()))
    sel.provenance = dict(sorted(made.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")))
    sel.fingerprint = fingerprint.hexdigest()
    if qa_states is not None:
        sel.qa = {
            "identities_passed": len(sel.idents),
            "identities_not_passed": len(failed_qa),
            "not_passed_why": dict(
                sorted(Counter(QA_REASONS[st] for st in failed_qa.values()).items())
            ),
        }
    return sel
