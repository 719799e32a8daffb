"""Random access to a face's original image bytes, through its locator.

* TSV sources (msceleb, devset): base64-decode the FaceData field at offset/length.
* RecordIO: the image part of the record at offset (payload length = length).
* Folders: the file at root/relpath; its size and mtime must still be those recorded at import
  (``length`` and ``offset`` of a folder face's locator), else :class:`FaceReadError` says so.

:class:`FaceBytes` is the API the scanner, the GUI thumbnails and the exports use. It keeps one
file descriptor per source open and reads with ``os.pread`` (thread-safe, no shared seek
position). Before the first read of a source it checks that the source is still the file that
was imported (size, and the content fingerprint when the mtime differs) and raises
:class:`FaceReadError` — which names the face's origin — when it is missing or changed.

For worker processes use :meth:`FaceBytes.plan` to get small picklable :class:`ReadItem`
tuples and :func:`read_planned` in the worker.

A reviewer package made with ``--with-images`` holds its faces' bytes (``face_blobs``): every
read checks there first, so such a package needs no source file. :meth:`FaceBytes.plan` names
them with format :data:`EMBEDDED`; plain locators (the GUI's thumbnails) find them through
:func:`use_embedded`.
"""

from __future__ import annotations

import binascii
import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple, Protocol, overload

from annotator.formats import fingerprint, source_stat
from annotator.formats.folder import file_changed
from annotator.formats.recordio import RecordError, image_of, read_record_with
from annotator.model import AnnotatorError, origin_of
from annotator.store import faces as store
from annotator.store import packages as packages_store
from annotator.store.db import Project

# ReadItem.fmt of a face whose bytes are embedded in a project file (source_path is that file)
EMBEDDED = "embedded"
# source path -> project file with embedded bytes of its faces (the project set by use_embedded)
_embedded_sources: dict[str, str] = {}


def use_embedded(project: Project | None) -> None:
    """Reads of plain locators (:func:`read_planned`) of ``project``'s sources look in its
    embedded bytes first; call it when a project is opened (another project, or None, replaces
    it)."""
    _embedded_sources.clear()
    if project is not None and packages_store.has_blobs(project):
        _embedded_sources.update(
            (p, str(project.path)) for p in packages_store.source_paths(project)
        )


class FaceReadError(AnnotatorError):
    """A face's bytes cannot be read: its source is missing or changed, or the data is bad."""


class SourceLike(Protocol):
    path: str
    format: str


class ReadItem(NamedTuple):
    """Everything needed to read one face's bytes, without the project (picklable)."""

    face_id: int
    source_path: str
    fmt: str
    offset: int | None
    length: int | None
    relpath: str | None
    origin: str


def _pread_exact(fd: int, n: int, offset: int) -> bytes:
    data = os.pread(fd, n, offset)
    while len(data) < n:  # pread may return short reads on some file systems
        more = os.pread(fd, n - len(data), offset + len(data))
        if not more:
            break
        data += more
    return data


def _read_rec_payload(fd: int, offset: int) -> bytes:
    pos = offset

    def read(n: int) -> bytes:
        nonlocal pos
        data = _pread_exact(fd, n, pos)
        pos += len(data)
        return data

    try:
        return read_record_with(read)
    except RecordError as e:
        raise RecordError(f"{e} (record at offset {offset})") from None


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def locator_problem(item: ReadItem, source_size: int | None) -> str | None:
    """Why a face's locator (read from the project file, which may be crafted) cannot be
    right, checked before any read: wrong types, negative values, a range past the end of the
    source (so a huge ``length`` never allocates), a folder path that leaves the root."""
    if item.fmt == "folder":
        rel = item.relpath
        if not isinstance(rel, str) or not rel or "\0" in rel:
            return f"bad relative path {rel!r} in the project file"
        parts = rel.replace("\\", "/").split("/")
        if rel.startswith("/") or ".." in parts:
            return f"relative path {rel!r} in the project file leaves the source folder"
        for v in (item.offset, item.length):
            if v is not None and not _int(v):
                return f"bad locator in the project file ({v!r} is not an integer)"
        return None
    off, n = item.offset, item.length
    if not _int(off) or not _int(n):
        return f"bad locator in the project file (offset {off!r}, length {n!r})"
    if off < 0 or n <= 0:  # type: ignore[operator]
        return f"bad locator in the project file (offset {off}, length {n})"
    if source_size is not None and off + n > source_size:  # type: ignore[operator]
        return (
            f"locator (offset {off:,}, length {n:,}) runs past the end of the source "
            f"({source_size:,} bytes)"
        )
    return None


def _read_fd(fd: int | None, item: ReadItem) -> bytes:
    """Read with an open fd of the source (None for folder sources)."""
    try:
        why = locator_problem(item, None if fd is None else os.fstat(fd).st_size)
        if why:
            raise FaceReadError(f"{item.origin}: {why}")
        if item.fmt == "folder":
            path = os.path.join(item.source_path, item.relpath or "")
            # O_NONBLOCK + S_ISREG: a FIFO or device put in place of an image cannot hang a read
            f = open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb")  # noqa: SIM115
            with f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise FaceReadError(f"{item.origin}: not a regular file any more")
                why = file_changed(st, item.offset, item.length)
                if why:
                    raise FaceReadError(f"{item.origin}: {why}")
                return f.read()
        assert fd is not None and item.offset is not None and item.length is not None
        if item.fmt == "rec":
            payload = _read_rec_payload(fd, item.offset)
            if len(payload) != item.length:
                raise RecordError(f"record payload is {len(payload)} bytes, expected {item.length}")
            return image_of(payload)
        field = _pread_exact(fd, item.length, item.offset)
        if len(field) != item.length:
            raise FaceReadError(f"{item.origin}: source file is shorter than the face's locator")
        return binascii.a2b_base64(field, strict_mode=True)
    except FaceReadError:
        raise
    except FileNotFoundError:
        raise FaceReadError(f"{item.origin}: file not found under {item.source_path}") from None
    except (OSError, RecordError, binascii.Error, ValueError) as e:
        raise FaceReadError(f"{item.origin}: cannot read face bytes ({e})") from None


def read_locator(
    source_row: SourceLike | tuple[str, str],
    offset: int | None,
    length: int | None,
    relpath: str | None,
) -> bytes:
    """Read one face's bytes from ``source_row`` (a Source, or a (path, format) tuple)."""
    path, fmt = (
        source_row if isinstance(source_row, tuple) else (source_row.path, source_row.format)
    )
    item = ReadItem(
        -1, path, fmt, offset, length, relpath, origin_of(Path(path).name, fmt, None, relpath)
    )
    return read_planned([item])[0]  # type: ignore[return-value]


@overload
def read_planned(items: Sequence[ReadItem], errors: Literal["raise"] = ...) -> list[bytes]: ...
@overload
def read_planned(
    items: Sequence[ReadItem], errors: Literal["return"]
) -> list[bytes | FaceReadError]: ...
def read_planned(items: Sequence[ReadItem], errors: str = "raise") -> list:  # type: ignore[misc]
    """Read planned items (e.g. in a worker process); opens and closes the sources itself.

    With ``errors="return"`` a failed read yields its :class:`FaceReadError` in the list.
    """
    fds: dict[str, int] = {}
    out: list[bytes | FaceReadError] = []
    try:
        for item in items:
            try:
                db = (
                    item.source_path
                    if item.fmt == EMBEDDED
                    else _embedded_sources.get(item.source_path)
                )
                if db is not None:  # embedded bytes first
                    data = packages_store.blobs_in_file(db, [item.face_id]).get(item.face_id)
                    if data is not None:
                        out.append(data)
                        continue
                    if item.fmt == EMBEDDED:
                        raise FaceReadError(f"{item.origin}: its bytes are not in {db}")
                fd = None
                if item.fmt != "folder":
                    fd = fds.get(item.source_path)
                    if fd is None:
                        try:
                            fd = fds[item.source_path] = os.open(item.source_path, os.O_RDONLY)
                        except OSError as e:
                            raise FaceReadError(
                                f"{item.origin}: cannot open source {item.source_path} ({e.strerror})"
                            ) from None
                out.append(_read_fd(fd, item))
            except FaceReadError as e:
                if errors == "raise":
                    raise
                out.append(e)
    finally:
        for fd in fds.values():
            os.close(fd)
    return out


class FaceBytes:
    """Read faces' original bytes by face id. Thread-safe; call :meth:`close` when done."""

    def __init__(self, project: Project):
        self.project = project
        self._sources: dict[int, store.Source] = {}
        self._names: dict[int, str] = {}  # source id -> its file name (origins of its faces)
        self._fds: dict[int, int | None] = {}  # source id -> fd (None for folders)
        self._bad: dict[int, str] = {}  # source id -> why it cannot be read
        self._lock = threading.Lock()
        self._has_blobs: bool | None = None

    def _embedded(self, face_ids: Sequence[int]) -> dict[int, bytes]:
        """Embedded bytes of those faces that have them (a package made --with-images)."""
        if self._has_blobs is None:
            self._has_blobs = packages_store.has_blobs(self.project)
        return packages_store.blobs(self.project, face_ids) if self._has_blobs else {}

    def _embedded_ids(self, face_ids: Sequence[int]) -> set[int]:
        if self._has_blobs is None:
            self._has_blobs = packages_store.has_blobs(self.project)
        return packages_store.embedded_ids(self.project, face_ids) if self._has_blobs else set()

    # -- sources --------------------------------------------------------------------------
    def _source(self, source_id: int) -> store.Source:
        src = self._sources.get(source_id)
        if src is None:
            src = store.source_by_id(self.project, source_id)
            if src is None:
                raise FaceReadError(f"source {source_id} is not in the project")
            self._sources[source_id] = src
        return src

    def _name(self, src: store.Source) -> str:
        """The source's file name, as origins name it (once per source, not per face)."""
        name = self._names.get(src.id)
        if name is None:
            name = self._names[src.id] = Path(src.path).name
        return name

    def _open(self, src: store.Source, origin: str) -> int | None:
        """The fd of a checked source (opened on first use)."""
        if src.id in self._fds:
            return self._fds[src.id]
        if src.id in self._bad:
            raise FaceReadError(f"{origin}: {self._bad[src.id]}")
        with self._lock:
            if src.id in self._fds:
                return self._fds[src.id]
            why = self.check_source(src)
            if why:
                self._bad[src.id] = why
                raise FaceReadError(f"{origin}: {why}")
            fd = None if src.format == "folder" else os.open(src.path, os.O_RDONLY)
            self._fds[src.id] = fd
            return fd

    @staticmethod
    def check_source(src: store.Source) -> str | None:
        """Why ``src`` cannot be read any more (missing, or changed since import), or None.

        A file source is compared by size, and by content fingerprint when its mtime differs.
        A folder source only has to be a folder still: each image file is checked (size and
        mtime recorded at import) when it is read, and the error names the face's origin.
        """
        p = Path(src.path)
        if not p.exists():
            return f"source {src.path} is missing"
        if src.format == "folder":
            return None if p.is_dir() else f"source {src.path} is not a folder any more"
        if not p.is_file():
            return f"source {src.path} is not a file any more"
        try:
            size, mtime = source_stat(p)
            if size != src.size:
                return f"source {src.path} changed since import (size {size}, was {src.size})"
            if mtime != src.mtime and fingerprint(p) != src.fingerprint:
                return f"source {src.path} changed since import (content differs)"
        except OSError as e:
            return f"source {src.path} cannot be read ({e.strerror or e})"
        return None

    _check = check_source  # old private name, kept for callers not yet moved to check_source

    # -- reading --------------------------------------------------------------------------
    def plan(self, face_ids: Sequence[int], skip_missing: bool = False) -> list[ReadItem]:
        """Picklable read plans for ``face_ids`` (same order); raises for unknown ids, or
        with ``skip_missing`` leaves them out (a takedown while a scan runs)."""
        locs = store.face_locations(self.project, face_ids)
        embedded = self._embedded_ids(face_ids)
        out = []
        for fid in face_ids:
            loc = locs.get(fid)
            if loc is None:
                if skip_missing:
                    continue
                raise FaceReadError(f"no face with id {fid} in the project")
            src = self._source(loc.source_id)
            origin = origin_of(self._name(src), src.format, loc.record, loc.relpath)
            if fid in embedded:
                out.append(
                    ReadItem(fid, str(self.project.path), EMBEDDED, None, None, None, origin)
                )
                continue
            out.append(
                ReadItem(fid, src.path, src.format, loc.offset, loc.length, loc.relpath, origin)
            )
        return out

    def _read_item(self, item: ReadItem, source_id: int) -> bytes:
        src = self._source(source_id)
        fd = self._open(src, item.origin)
        return _read_fd(fd, item)

    def read(self, face_id: int) -> bytes:
        """The original JPEG/PNG/... bytes of one face."""
        return self.read_many([face_id])[0]

    @overload
    def read_many(self, face_ids: Sequence[int], errors: Literal["raise"] = ...) -> list[bytes]: ...
    @overload
    def read_many(
        self, face_ids: Sequence[int], errors: Literal["return"]
    ) -> list[bytes | FaceReadError]: ...
    def read_many(self, face_ids: Sequence[int], errors: str = "raise") -> list:  # type: ignore[misc]
        """Bytes of several faces, in order. With ``errors="return"`` a face that cannot be
        read gets its :class:`FaceReadError` in the list instead of raising."""
        locs = store.face_locations(self.project, face_ids)
        embedded = self._embedded(face_ids)
        out: list[bytes | FaceReadError] = []
        for fid in face_ids:
            if fid in embedded:
                out.append(embedded[fid])
                continue
            try:
                loc = locs.get(fid)
                if loc is None:
                    raise FaceReadError(f"no face with id {fid} in the project")
                src = self._source(loc.source_id)
                origin = origin_of(self._name(src), src.format, loc.record, loc.relpath)
                item = ReadItem(
                    fid, src.path, src.format, loc.offset, loc.length, loc.relpath, origin
                )
                out.append(self._read_item(item, loc.source_id))
            except FaceReadError as e:
                if errors == "raise":
                    raise
                out.append(e)
        return out

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                if fd is not None:
                    os.close(fd)
            self._fds.clear()
            self._bad.clear()
            self._sources.clear()
            self._names.clear()

    def __enter__(self) -> FaceBytes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
