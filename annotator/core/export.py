"""Export the verified faces as a clean test set: folder, msceleb TSV, InsightFace rec, or csv.

Selection (see :func:`select_faces`): a face is included when its current label is ``correct``,
it is not corrupt (scan) and its bytes are an image, it is the one kept of its duplicate group,
(with ``require_qa``) its identity passed QA, and its identity keeps at least ``min_faces`` faces
after these filters. Withdrawn identities are deleted from the project by a takedown, so they
cannot be exported. The identity is the face's current identity (after moves).

Duplicate groups: the face marked keeper by the scan is kept when it is labeled ``correct``;
otherwise (the reviewer chose another keeper, which makes the old one ``duplicate``) the
lowest-id ``correct`` face of the group is kept. A group never contributes two faces.

Output is deterministic: the same project and arguments give byte-identical files (stable
ordering, no timestamps, seeded pairs). Writing happens in a temporary folder beside ``out``
that is renamed into place at the end.

Streaming: candidates come from one SQL cursor in identity order; bytes are read a few hundred
faces (whole identities, at most ``READ_BYTES`` of locator length) per call, sorted by source
and offset, hashed once and handed to the format writer, which writes them at once (the .rec
header record is a fixed-size placeholder rewritten at the end; the per-image entries of
manifest.json go to a part file). What stays per face is ~60 bytes of arrays (face id, source,
offset, SHA-256) for the pairs; the heap does not grow with the images.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
import shutil
import unicodedata
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from annotator import __version__
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

if TYPE_CHECKING:
    from annotator.core.access import FaceBytes

EXPORT_FORMATS: tuple[str, ...] = ("folder", "msceleb", "rec", "csv")
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "gif": ".gif"}
MAX_NAME_BYTES = 96
TSV_NAME = "faces.tsv"
REC_NAME = "train.rec"

_BAD_CHARS = frozenset('/\\:*?"<>|')
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in (*range(10), "¹", "²", "³")
}


_PLAIN = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-~]*")


class ExportCancelled(AnnotatorError):
    """The export was cancelled; nothing was written to the output folder."""


# -- file names -----------------------------------------------------------------------------


def safe_component(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """One safe path component: no separators, no '..', no control or whitespace characters,
    no leading dot, not a Windows device name, at most ``max_bytes`` UTF-8 bytes, never empty."""
    if (
        len(name) <= max_bytes
        and _PLAIN.fullmatch(name)
        and ".." not in name
        and not name.endswith(".")
        and name.split(".")[0].upper() not in _RESERVED
    ):
        return name  # the common case (MIDs, rank-FaceId): nothing to change
    name = unicodedata.normalize("NFC", name)
    chars = []
    for ch in name:
        cat = unicodedata.category(ch)
        if ch in _BAD_CHARS or ch.isspace() or cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            chars.append("_")
        else:
            chars.append(ch)
    s = re.sub(r"\.{2,}", "_", "".join(chars))
    s = s.lstrip(".").rstrip(".")
    if s.split(".")[0].upper() in _RESERVED:
        s = "_" + s
    b = s.encode("utf-8")
    if len(b) > max_bytes:
        s = b[:max_bytes].decode("utf-8", "ignore").rstrip(".")
    return s or "_"


class Namer:
    """Unique names within one folder, compared case-insensitively (Windows/macOS file systems)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, stem: str, ext: str = "") -> str:
        base = safe_component(stem, MAX_NAME_BYTES - len(ext.encode()) - 8)
        name, n = base + ext, 1
        while name.casefold() in self._used:
            n += 1
            name = f"{base}~{n}{ext}"
        self._used.add(name.casefold())
        return name


# -- selection ------------------------------------------------------------------------------

# Faces read per FaceBytes call: whole identities, until READ_CHUNK faces or READ_BYTES of
# locator length (folder files count FOLDER_GUESS each); bounds the bytes held at once.
READ_CHUNK = 256
READ_BYTES = 8 << 20
FOLDER_GUESS = 64 << 10
PAIR_CHUNK = 64  # faces read at a time for pairs.bin

QA_REASONS = {
    None: "never sampled",
    "pending": "verdicts pending",
    "disagreement": "unresolved disagreement",
}


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


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's SOF marker, or None (not a JPEG / no SOF found)."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 9 <= n:
        if data[i] != 0xFF:
            return None
        m = data[i + 1]
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m in _SOF:
            h = int.from_bytes(data[i + 5 : i + 7], "big")
            return h, int.from_bytes(data[i + 7 : i + 9], "big")
        if m == 0x01 or 0xD0 <= m <= 0xD7:  # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def _image_size(c: store.Candidate, data: bytes) -> tuple[int, int] | None:
    if isinstance(c.width, int) and isinstance(c.height, int) and c.width > 0 and c.height > 0:
        return c.height, c.width  # (a crafted project file may hold other types: not trusted)
    size = jpeg_size(data)
    if size is not None and size[0] and size[1]:
        return size
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:  # reads the header only
            w, h = im.size
        return h, w
    except Exception:  # noqa: BLE001 - a size we cannot tell is just not counted
        return None


def _read_order(c: store.Candidate) -> tuple[int, int, str, int]:
    return (c.source_id, c.offset if c.offset is not None else -1, c.relpath or "", c.face_id)


def _stem(c: store.Candidate, origin: str) -> str:
    if c.source_format == "folder" and c.relpath:
        return Path(c.relpath).stem
    if c.rank is not None and c.face_ref:
        return f"{c.rank}-{c.face_ref}"
    return origin


class _Sink:
    """Receives each included identity with its faces' bytes (in export order)."""

    need_size = False  # wants ExportFace.size (image height, width)
    need_names = True  # wants ExportFace.rel (the folder-layout file names)

    def identity(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        """Write one identity's faces; set each ExportFace.file."""


def select_faces(
    project: Project,
    require_qa: bool = False,
    min_faces: int = 1,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    sink: _Sink | None = None,
) -> Selection:
    """Apply the export filters while streaming: candidates come from the project one identity
    at a time, their bytes are read (a few hundred faces per call, in file order) and handed to
    ``sink`` with the identity, then dropped. Memory does not grow with the export's bytes;
    per face only the compact arrays of :class:`Selection` stay."""
    from annotator.core.access import FaceBytes

    sink = sink or _Sink()
    excluded: Counter[str] = Counter()
    excl_ident: Counter[str] = Counter()
    for lab, n in store.label_counts(project).items():
        if lab != "correct":
            excluded[f"label {lab}"] += n
    keep_of_group = store.dup_group_keepers(project)
    qa_states = _qa_states(project) if require_qa else None
    failed_qa: dict[int, str | None] = {}  # identity id -> QA state, for identities left out
    total = store.correct_count(project)
    seen = 0  # candidates looked at (progress counts the excluded ones too)
    sel = Selection([], {}, {}, {})
    dirs = Namer()
    fingerprint = hashlib.sha256()
    reviewers: Counter[str] = Counter()
    src_names: dict[int, str] = {}

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
            if sink.need_size:
                ef.size = _image_size(c, b)
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


def _qa_states(project: Project) -> dict[int, str]:
    from annotator.core import qa

    return qa.identity_qa_states(project)


# -- pairs ------------------------------------------------------------------------------------

Pair = tuple[int, int, int, int]  # identity index a, face index a, identity index b, face index b


def make_pairs(sizes: list[int], n: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """``n`` distinct genuine and ``n`` distinct impostor pairs over identities of ``sizes`` faces."""
    rng = random.Random(seed)
    multi = [i for i, s in enumerate(sizes) if s >= 2]
    max_gen = sum(s * (s - 1) // 2 for s in sizes)
    tot = sum(sizes)
    max_imp = (tot * tot - sum(s * s for s in sizes)) // 2
    if n > max_gen:
        raise AnnotatorError(f"--pairs {n}: only {max_gen} genuine pairs are possible in this set")
    if n > max_imp:
        raise AnnotatorError(f"--pairs {n}: only {max_imp} impostor pairs are possible in this set")

    def gen() -> Pair:
        i = rng.choice(multi)
        a, b = sorted(rng.sample(range(sizes[i]), 2))
        return (i, a, i, b)

    def imp() -> Pair:
        i, j = sorted(rng.sample(range(len(sizes)), 2))
        return (i, rng.randrange(sizes[i]), j, rng.randrange(sizes[j]))

    def all_gen() -> list[Pair]:
        return [
            (i, a, i, b) for i in multi for a in range(sizes[i]) for b in range(a + 1, sizes[i])
        ]

    def all_imp() -> list[Pair]:
        k = len(sizes)
        return [
            (i, a, j, b)
            for i in range(k)
            for j in range(i + 1, k)
            for a in range(sizes[i])
            for b in range(sizes[j])
        ]

    def draw(fn, everything) -> list[Pair]:  # noqa: ANN001
        seen: set[Pair] = set()
        out: list[Pair] = []
        attempts = 0
        while len(out) < n and attempts < 20 * n + 100:
            attempts += 1
            p = fn()
            if p not in seen:
                seen.add(p)
                out.append(p)
        if len(out) < n:  # nearly every possible pair is wanted: draw from the rest
            rest = [p for p in everything() if p not in seen]
            rng.shuffle(rest)
            out += rest[: n - len(out)]
        return out

    genuine = draw(gen, all_gen) if n else []
    impostor = draw(imp, all_imp) if n else []
    return genuine, impostor


def pair_folds(n: int) -> int:
    """LFW layout: 10 folds when n is a multiple of 10, else one."""
    return 10 if n >= 10 and n % 10 == 0 else 1


def ordered_pairs(genuine: list[Pair], impostor: list[Pair]) -> list[tuple[Pair, bool]]:
    """LFW order: per fold, its genuine pairs then its impostor pairs."""
    n = len(genuine)
    folds = pair_folds(n) if n else 1
    per = n // folds if n else 0
    out: list[tuple[Pair, bool]] = []
    for k in range(folds):
        out += [(p, True) for p in genuine[k * per : (k + 1) * per]]
        out += [(p, False) for p in impostor[k * per : (k + 1) * per]]
    return out


# -- writing ------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    out: str
    format: str
    faces: int
    identities: int
    pairs: int
    excluded: dict[str, int]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 (not images)
    manifest_sha256: str = ""
    export_id: int = 0
    image_files: int = 0  # one file per face (folder exports), listed in manifest.json only

    def to_json(self) -> dict[str, object]:
        return {
            "out": self.out,
            "format": self.format,
            "faces": self.faces,
            "identities": self.identities,
            "pairs": self.pairs,
            "excluded": self.excluded,
            "files": len(self.files) + self.image_files,
            "manifest_sha256": self.manifest_sha256,
            "export_id": self.export_id,
        }


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _HashingFile:
    """A new file written through a buffer, hashed while written (no re-read)."""

    def __init__(self, path: Path):
        self._fh = open(path, "xb", buffering=1 << 18)  # noqa: SIM115 - closed by close()
        self._h = hashlib.sha256()

    def write(self, b: bytes) -> int:
        self._h.update(b)
        return self._fh.write(b)

    def close(self) -> str:
        if not self._fh.closed:
            self._fh.close()
        return self._h.hexdigest()


_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_O_NEW |= getattr(os, "O_NOFOLLOW", 0)


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` (never overwrite, never follow a link)."""
    fd = os.open(path, _O_NEW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _inside(root: Path, rel: str) -> Path:
    p = (root / rel).resolve()
    if not p.is_relative_to(root):  # defence in depth: sanitising should prevent this
        raise AnnotatorError(f"refusing to write outside the export folder: {rel!r}")
    return p


FILE_LIST = ".manifest-files.part"  # image entries of manifest.json, written as they come


class _Writer(_Sink):
    """Writes ``manifest.csv`` (origin, identity, file, sha256) for every face; the format
    writers below add the images. ``files``: relative path -> sha256 of the other files; the
    per-image entries of folder exports go to :data:`FILE_LIST` (manifest.json text) instead,
    so nothing per face stays in memory."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.root = tmp.resolve()
        self.files: dict[str, str] = {}
        self.image_files = 0
        self._list: _HashingFile | None = None
        self._csv = _HashingFile(tmp / "manifest.csv")
        self._csv.write(b"origin,identity,file,sha256\n")

    def identity(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        self.write_images(key, dirname, faces)
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        for f, _b in faces:
            w.writerow([f.origin, f.identity_key, f.file or f.rel, f.sha256])
        self._csv.write(buf.getvalue().encode("utf-8"))

    def write_images(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        for f, _b in faces:  # csv: the manifest names the folder-layout path
            f.file = f.rel

    def list_image(self, rel: str, sha: str) -> None:
        if self._list is None:
            self._list = _HashingFile(self.tmp / FILE_LIST)
        sep = b",\n" if self.image_files else b""
        self._list.write(sep + f'    {json.dumps(rel, ensure_ascii=False)}: "{sha}"'.encode())
        self.image_files += 1

    def finish(self) -> None:
        self.files["manifest.csv"] = self._csv.close()
        if self._list is not None:
            self._list.close()

    def abort(self) -> None:
        self._csv.close()
        if self._list is not None:
            self._list.close()

    def write_manifest(self, manifest: dict[str, object]) -> str:
        """manifest.json (sorted keys, indent 2) with "files": the image entries in export
        order, then the other files sorted by name. Returns its sha256."""
        text = json.dumps(
            {**manifest, "files": "\0FILES\0"}, sort_keys=True, indent=2, ensure_ascii=False
        )
        head, _sep, tail = text.partition('"\\u0000FILES\\u0000"')
        entries = [
            f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v)}".encode()
            for k, v in sorted(self.files.items())
        ]
        part = self.tmp / FILE_LIST
        out = _HashingFile(self.tmp / "manifest.json")
        try:
            out.write(head.encode() + b"{\n")
            if self.image_files:
                with open(part, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        out.write(block)
                out.write(b",\n" if entries else b"")
            out.write(b",\n".join(entries) + b"\n  }" + tail.encode() + b"\n")
        finally:
            sha = out.close()
        if self.image_files:
            part.unlink()
        return sha


class _FolderWriter(_Writer):
    def write_images(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        d = _inside(self.root, dirname)
        d.mkdir()
        for f, b in faces:
            _write_new(d / f.rel.partition("/")[2], b)
            f.file = f.rel
            self.list_image(f.rel, f.sha256)  # hashed when read


class _MscelebWriter(_Writer):
    need_names = False

    def __init__(self, tmp: Path):
        super().__init__(tmp)
        self._tsv = _HashingFile(tmp / TSV_NAME)
        self._line = 0

    def write_images(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        from annotator.formats import msceleb

        for f, b in faces:
            c = f.cand
            # Faces from rec/folder sources have no URL or FaceID: the origin stands in for the
            # URL and "0" for the FaceID so every row has a unique (ImageURL, FaceID) key.
            url, ref = (c.image_url, c.face_ref) if c.image_url else (f.origin, c.face_ref or "0")
            msceleb.write_row(self._tsv, f.identity_key, c.rank, url, c.page_url, ref, c.rect, b)  # type: ignore[arg-type]
            self._line += 1
            f.file = f"{TSV_NAME}:{self._line}"

    def finish(self) -> None:
        self.files[TSV_NAME] = self._tsv.close()
        super().finish()

    def abort(self) -> None:
        self._tsv.close()
        super().abort()


class _RecWriter(_Writer):
    need_size = True
    need_names = False

    def __init__(self, tmp: Path):
        from annotator.formats.recordio import RecordStreamWriter

        super().__init__(tmp)
        self._rec = RecordStreamWriter(tmp / REC_NAME)
        self._classes = _HashingFile(tmp / "identities.tsv")
        self._classes.write(b"class\tidentity\n")
        self._n = 0
        self.sizes: Counter[tuple[int, int]] = Counter()
        self.image_size: tuple[int, int] = (112, 112)

    def write_images(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        cls = self._n
        self._n += 1
        self._classes.write(f"{cls}\t{key}\n".encode())
        for f, b in faces:
            try:
                k = self._rec.add(cls, b)
            except ValueError as e:
                raise AnnotatorError(f"cannot write {REC_NAME}: {e}") from None
            f.file = f"{REC_NAME}#{k}"
            if f.size is not None:
                self.sizes[f.size] += 1

    def finish(self) -> None:
        if self.sizes:
            self.image_size = max(self.sizes.items(), key=lambda kv: (kv[1], kv[0]))[0]
        self._rec.close(self.image_size)
        # the header record is rewritten at the end, so the .rec is hashed once written
        for name in (REC_NAME, "train.idx", "property"):
            self.files[name] = _sha(self.tmp / name)
        self.files["identities.tsv"] = self._classes.close()
        super().finish()

    def abort(self) -> None:
        self._rec.abort()
        self._classes.close()
        super().abort()


WRITERS: dict[str, type[_Writer]] = {
    "folder": _FolderWriter,
    "msceleb": _MscelebWriter,
    "rec": _RecWriter,
    "csv": _Writer,
}


def _write_pairs(
    tmp: Path, sel: Selection, n: int, seed: int, fb: FaceBytes, files: dict[str, str]
) -> list[tuple[Pair, bool]]:
    """pairs.txt (LFW layout) and pairs.bin (InsightFace verification pickle), streamed: the
    paired faces' bytes are read again from the sources, a chunk of pairs at a time, and checked
    against the SHA-256 taken during the export."""
    from annotator.formats.insightface_bin import write_bin_stream

    idents = sel.idents
    genuine, impostor = make_pairs([i.count for i in idents], n, seed)
    pairs = ordered_pairs(genuine, impostor)
    folds = pair_folds(n)
    lines = [f"{folds}\t{n // folds}"]
    order: list[int] = []  # index into the selection's arrays, two per pair
    for (i, a, j, b), same in pairs:
        if same:
            lines.append(f"{idents[i].dirname}\t{a + 1}\t{b + 1}")
        else:
            lines.append(f"{idents[i].dirname}\t{a + 1}\t{idents[j].dirname}\t{b + 1}")
        order += [idents[i].start + a, idents[j].start + b]
    txt = ("\n".join(lines) + "\n").encode("utf-8")
    (tmp / "pairs.txt").write_bytes(txt)
    files["pairs.txt"] = hashlib.sha256(txt).hexdigest()

    def images() -> Iterator[bytes]:
        for k in range(0, len(order), PAIR_CHUNK):
            chunk = order[k : k + PAIR_CHUNK]
            want = sorted(set(chunk), key=lambda g: (sel.source_ids[g], sel.offsets[g], g))
            ids = [sel.face_ids[g] for g in want]
            data = dict(zip(want, fb.read_many(ids), strict=True))
            for g in chunk:
                b = data[g]
                if hashlib.sha256(b).digest() != sel.digests[32 * g : 32 * g + 32]:
                    raise AnnotatorError(
                        f"face {sel.face_ids[g]}: its source changed during the export"
                    )
                yield b

    out = _HashingFile(tmp / "pairs.bin")
    try:
        write_bin_stream(out, images(), [same for _p, same in pairs])  # type: ignore[arg-type]
    finally:
        files["pairs.bin"] = out.close()
    return pairs


def _readme(
    fmt: str,
    sel: Selection,
    params: dict[str, object],
    labels: dict[str, int],
    totals: dict[str, int],
    sources: dict[str, int],
    qa: dict[str, object],
    npairs: int,
    image_size: tuple[int, int] | None,
) -> str:
    per = [i.count for i in sel.idents]
    n, k = len(sel), len(per)
    L: list[str] = []
    add = L.append
    add("# Verified face-identity test set — datasheet\n")
    add("## What this is\n")
    add(
        f"{n} face images of {k} identities, exported by annotator {__version__} in the "
        f"`{fmt}` format. Every face was looked at by a human reviewer and labeled `correct` "
        "(it shows the identity it is filed under). Images are the original bytes of the source "
        "data set, never re-encoded.\n"
    )
    if per:
        add(
            f"Faces per identity: min {min(per)}, median {sorted(per)[len(per) // 2]}, max {max(per)}.\n"
        )
    add("## How it was made\n")
    src = ", ".join(f"{v} {fmt_} file(s)" for fmt_, v in sorted(sources.items())) or "none"
    add(
        f"- Sources imported into the project: {src}. The project held "
        f"{totals['faces']} faces of {totals['identities']} identities; "
        f"{totals['reviewed_identities']} identities were marked reviewed.\n"
        "- Near-duplicate and corrupt images were found by a perceptual-hash scan; reviewers "
        "labeled faces `correct`, `wrong_identity`, `duplicate`, `unusable` or `unsure`, and "
        "moved misfiled faces to their identity.\n"
        f"- Export filters: {json.dumps(params, sort_keys=True)}.\n"
    )
    add("## Label statistics (whole project)\n")
    add("| label | faces |\n|---|---|")
    for lab, c in sorted(labels.items()):
        add(f"| {lab} | {c} |")
    add("")
    if sel.reviewers:
        add("Included faces by the reviewer who gave their label:\n")
        add("| reviewer | faces |\n|---|---|")
        for r, c in sel.reviewers.items():
            add(f"| {r} | {c} |")
        add("")
    add("## Quality assurance\n")
    if qa.get("items"):
        agreed, judged = int(qa.get("agreed", 0)), int(qa.get("judged", 0))  # type: ignore[call-overload]
        pct = f"{100 * agreed / judged:.1f}%" if judged else "n/a"
        add(
            f"A second reviewer re-labeled a blind sample of {qa['items']} faces; {judged} were "
            f"judged, {agreed} agreed with the original label ({pct}); "
            f"{qa.get('adjudicated', 0)} disagreements were adjudicated.\n"
        )
    else:
        add("No QA pass was run on this project.\n")
    if sel.qa:
        why = sel.qa.get("not_passed_why") or {}
        detail = "; ".join(f"{r}: {c}" for r, c in why.items())  # type: ignore[union-attr]
        add(
            "Only identities that passed QA are included (every sampled face of the identity "
            "agreed with its label, or the disagreement was adjudicated). Included: "
            f"{sel.qa['identities_passed']}; left out: {sel.qa['identities_not_passed']}"
            + (f" ({detail})" if detail else "")
            + ".\n"
        )
    add("## What was excluded and why (counts only)\n")
    add("| reason | faces |\n|---|---|")
    for r, c in sel.excluded.items():
        add(f"| {r} | {c} |")
    add("")
    for r, c in sel.excluded_identities.items():
        add(f"- identities left out ({r}): {c}")
    add(
        f"- identities withdrawn at their request (privacy takedown): {totals['withdrawn_identities']}\n"
    )
    add("## Files\n")
    if fmt == "folder":
        add("- `<identity>/<name>.<ext>`: one folder per identity (names made file-system safe).")
    elif fmt == "msceleb":
        add(
            f"- `{TSV_NAME}`: MS-Celeb-1M aligned format, 7 tab-separated columns "
            "(MID, rank, ImageURL, PageURL, FaceID, FaceRectangle, base64 FaceData)."
        )
    elif fmt == "rec":
        h, w = image_size or (112, 112)
        add(
            f"- `{REC_NAME}`, `train.idx`, `property`: InsightFace RecordIO (header record 0, "
            "image records, one range record per identity); `property` says "
            f"`{k},{h},{w}`.\n- `identities.tsv`: class index -> identity key."
        )
    else:
        add("- Only the manifest: no images are copied.")
    add(
        "- `manifest.csv`: origin, identity, file, sha256 of every face (for `csv`, `file` is the "
        "path the face would have in a `folder` export)."
    )
    if npairs:
        add(
            f"- `pairs.txt` (LFW layout: `folds<TAB>pairs per fold`, then per fold the genuine "
            f"pairs `name n1 n2` and impostor pairs `name1 n1 name2 n2`; n is the 1-based position "
            f"of the face within its identity in `manifest.csv`) and `pairs.bin` (InsightFace "
            f"verification pickle (list of image bytes, list of is-same)); {npairs} genuine and "
            f"{npairs} impostor pairs."
        )
    add(
        "- `manifest.json`: tool version, project fingerprint, filters, counts, SHA-256 of every file.\n"
    )
    add("## Known limitations\n")
    add(
        "- Labels are human judgements from face crops; look-alikes and very young/old photos "
        "of the same person can be mislabeled. QA figures above estimate how often.\n"
        "- Faces never scanned are only excluded as corrupt if their bytes are not an image.\n"
        "- Only faces of identities present in the source are included; the set inherits the "
        "demographic skew of the web-scraped source and should not be read as representative.\n"
        "- Identity keys are the source's keys (e.g. Freebase MIDs); no names are included."
    )
    return "\n".join(L) + "\n"


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise AnnotatorError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise AnnotatorError(f"{out} is not empty (use --force to replace it)")
    if not out.parent.is_dir():
        raise AnnotatorError(f"folder {out.parent} does not exist")


def _check_not_over_inputs(project: Project, out: Path) -> None:
    """Refuse an output folder that holds the project file or a source (``--force`` would
    delete them when it replaces the folder), or that lies inside a folder source."""
    o = out.resolve()

    def holds(p: Path) -> bool:
        return p == o or p.is_relative_to(o)

    project_file = Path(project.path).resolve()
    if holds(project_file) or holds(project.cache_dir.resolve()):
        raise AnnotatorError(f"{out} holds the project file {project_file}; choose another folder")
    for path, fmt in store.source_paths(project):
        src = Path(path).resolve()
        if holds(src) or (fmt == "folder" and o.is_relative_to(src)):
            raise AnnotatorError(
                f"{out} {'holds' if holds(src) else 'is inside'} the source {src}; "
                "choose another folder"
            )


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished temp folder to ``out``; an old ``out`` is renamed aside, then deleted."""
    old = None
    if out.exists():
        if any(out.iterdir()):
            old = out.with_name(f".{out.name}.old-{os.getpid()}-{os.urandom(4).hex()}")
            os.rename(out, old)
        else:
            out.rmdir()
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)  # put the previous export back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_dataset(
    project: Project,
    out: str | os.PathLike[str],
    fmt: str,
    *,
    require_qa: bool = False,
    min_faces: int = 1,
    pairs: int = 0,
    seed: int = 0,
    force: bool = False,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> ExportResult:
    """Write the export; see the module docstring. Raises AnnotatorError on bad arguments."""
    from annotator.core.access import FaceBytes

    if fmt not in EXPORT_FORMATS:
        raise AnnotatorError(
            f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})"
        )
    if min_faces < 1:
        raise AnnotatorError("--min-faces must be at least 1")
    if pairs < 0:
        raise AnnotatorError("--pairs must not be negative")
    outp = Path(out).expanduser().absolute()
    _check_not_over_inputs(project, outp)
    _prepare_out(outp, force)
    params: dict[str, object] = {
        "format": fmt,
        "require_qa": require_qa,
        "min_faces": min_faces,
        "pairs": pairs,
        "seed": seed,
    }
    tmp = outp.with_name(f".{outp.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    tmp.mkdir()
    writer: _Writer | None = None
    try:
        writer = WRITERS[fmt](tmp)
        sel = select_faces(project, require_qa, min_faces, progress, cancelled, sink=writer)
        if not len(sel):
            raise AnnotatorError(
                "nothing to export: no face passes the filters (label faces `correct` first)"
            )
        writer.finish()
        files = writer.files
        image_size = writer.image_size if isinstance(writer, _RecWriter) else None
        if cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
        if pairs:
            with FaceBytes(project) as fb:
                _write_pairs(tmp, sel, pairs, seed, fb, files)
        labels = store.label_counts(project)
        totals = store.project_totals(project)
        qa = store.qa_agreement(project)
        readme = _readme(
            fmt, sel, params, labels, totals, store.source_formats(project), qa, pairs, image_size
        ).encode("utf-8")
        (tmp / "README.md").write_bytes(readme)
        files["README.md"] = hashlib.sha256(readme).hexdigest()
        per_identity = {i.key: i.count for i in sel.idents}
        manifest = {
            "tool": "annotator",
            "version": __version__,
            "project_fingerprint": sel.fingerprint,
            "filters": params,
            "counts": {
                "faces": len(sel),
                "identities": len(per_identity),
                "pairs": {"genuine": pairs, "impostor": pairs},
                "per_identity": per_identity,
                "project_labels": labels,
                "project": totals,
            },
            "excluded": {"faces": sel.excluded, "identities": sel.excluded_identities},
            "reviewers": sel.reviewers,
            "qa": {**qa, **(sel.qa or {})},
            "image_size": list(image_size) if image_size else None,
        }
        msha = writer.write_manifest(manifest)
        if cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
        _swap_in(tmp, outp)
    except BaseException:
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files["manifest.json"] = msha
    eid = store.record_export(project, fmt, str(outp), params, len(sel), len(per_identity), msha)
    return ExportResult(
        str(outp),
        fmt,
        len(sel),
        len(per_identity),
        pairs,
        sel.excluded,
        files,
        msha,
        eid,
        writer.image_files,
    )
