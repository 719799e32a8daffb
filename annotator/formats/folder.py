"""A folder per identity (ImageFolder layout: CASIA-WebFace, VGGFace2, LFW).

``root/<identity>/<image>`` with .jpg .jpeg .png .webp .bmp (any case). The walk is
deterministic (sorted by name), so an interrupted import resumes by position. Files directly
under the root, non-image files, nested folders, unreadable entries and symlink loops are
reported as rejected entries and skipped; so is an identity folder whose name cannot be a key
(the TSV reader's key check, plus tab/CR/LF: one rejection naming the folder). The locator is
the path relative to the root (always with ``/``) plus the file's size and modification time
at import, so that reading a face back notices a file that was changed after the import
(:func:`file_changed`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from annotator.formats import IMAGE_EXTENSIONS, image_kind, shown, text_key_error
from annotator.model import AnnotatorError, FaceRecord, Locator, Rejected

Row = tuple[int, int, FaceRecord | Rejected]


def _sorted_entries(path: Path) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def layout_problem(root: str | Path) -> str | None:
    """Why ``root`` is clearly not a folder-per-identity tree (None when it may be one):
    it holds no sub-folder at all (e.g. the images are directly in it)."""
    n = 0
    with os.scandir(root) as it:
        for e in it:
            n += 1
            if _is_dir(e):
                return None
    if n == 0:
        return "the folder is empty"
    return (
        f"it holds {n} file(s) but no identity folder; the layout is ROOT/<identity>/<image> "
        "(give the folder above the identity folders)"
    )


def read_folder(
    root: str | Path, start_pos: int = 0, start_index: int = 0, follow_links: bool = False
) -> Iterator[Row]:
    """Walk ``root`` and yield ``(0, entries done, item)`` per image or rejected entry.

    ``start_index`` skips that many entries (images + rejected) of the sorted walk. Only
    regular files are read (a FIFO or device named like an image is rejected, never opened);
    a symlink (file or identity folder) that resolves outside the root is rejected unless
    ``follow_links``. A rejected entry's name is shown on one line (:func:`shown`).
    """
    for pos, n, item in _walk(root, start_index, follow_links):
        if isinstance(item, Rejected) and not item.origin.isprintable():
            item = Rejected(shown(item.origin), item.reason, item.record)
        yield pos, n, item


def _walk(root: str | Path, start_index: int, follow_links: bool) -> Iterator[Row]:
    root = Path(root)
    if not root.is_dir():
        raise AnnotatorError(f"{root} is not a folder")
    real_root = os.path.realpath(root)
    n = 0
    for ident in _sorted_entries(root):
        rel_dir = ident.name
        try:
            rel_dir.encode("utf-8")
        except UnicodeEncodeError:
            n += 1
            if n > start_index:
                as_text = rel_dir.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                yield 0, n, Rejected(as_text, "file or folder name is not valid UTF-8")
            continue
        if not _is_dir(ident):
            n += 1
            if n > start_index:
                yield (
                    0,
                    n,
                    _reject_file(
                        ident, rel_dir, "file directly under the root, not in an identity folder"
                    ),
                )
            continue
        why = text_key_error(rel_dir)  # the folder name is the identity key
        if why is not None:
            n += 1
            if n > start_index:
                yield 0, n, Rejected(rel_dir + "/", f"identity folder name: {why}")
            continue
        real = os.path.realpath(ident.path)
        if real == real_root or real_root.startswith(real.rstrip(os.sep) + os.sep):
            n += 1
            if n > start_index:
                yield (
                    0,
                    n,
                    Rejected(rel_dir + "/", "symlink loop (identity folder points at the root)"),
                )
            continue
        if not follow_links and not _inside(real, real_root):
            n += 1
            if n > start_index:
                yield (
                    0,
                    n,
                    Rejected(
                        rel_dir + "/", "symlink to a folder outside the root (--follow-links)"
                    ),
                )
            continue
        try:
            entries = _sorted_entries(Path(ident.path))
        except OSError as e:
            n += 1
            if n > start_index:
                yield 0, n, Rejected(rel_dir + "/", f"cannot list folder: {e.strerror or e}")
            continue
        for e in entries:
            n += 1
            if n <= start_index:
                continue
            rel = f"{rel_dir}/{e.name}"
            yield 0, n, _face_or_reject(e, ident.name, rel, None if follow_links else real_root)


def file_locator(rel: str, st: os.stat_result) -> Locator:
    """The locator of an image file: its relative path, plus its size (``length``) and
    modification time in nanoseconds (``offset``) at import, which
    :func:`file_changed` compares to tell that the file was changed after the import."""
    return Locator(offset=st.st_mtime_ns, length=st.st_size, relpath=rel)


# File systems and copy tools keep modification times at different precisions (ns, us, whole
# seconds for tar/zip, 2 s for FAT): a difference up to this is not taken as a change.
MTIME_SLACK_NS = 2_000_000_000


def file_changed(st: os.stat_result, mtime_ns: int | None, size: int | None) -> str | None:
    """Why a folder image differs from what was imported (None when it looks the same).

    ``mtime_ns``/``size`` come from the face's locator; None (projects imported before they
    were recorded) skips that check.
    """
    if size is not None and st.st_size != size:
        return f"file changed since import (size {st.st_size:,} bytes, was {size:,})"
    if mtime_ns is not None and abs(st.st_mtime_ns - mtime_ns) > MTIME_SLACK_NS:
        then = _stamp(mtime_ns)
        return f"file changed since import (modified {_stamp(st.st_mtime_ns)}, was {then})"
    return None


def _stamp(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _is_dir(e: os.DirEntry[str]) -> bool:
    try:
        return e.is_dir()
    except OSError:
        return False


def _reject_file(e: os.DirEntry[str], rel: str, reason: str) -> Rejected:
    try:
        os.stat(e.path)
    except OSError as err:
        if e.is_symlink():
            return Rejected(rel, f"broken symlink or symlink loop ({err.strerror or err})")
        return Rejected(rel, f"unreadable entry ({err.strerror or err})")
    return Rejected(rel, reason)


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _face_or_reject(
    e: os.DirEntry[str], identity: str, rel: str, real_root: str | None = None
) -> FaceRecord | Rejected:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return Rejected(
            rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
            "file or folder name is not valid UTF-8",
        )
    try:
        st = os.stat(e.path)
    except OSError as err:
        if e.is_symlink():
            return Rejected(rel, f"broken symlink or symlink loop ({err.strerror or err})")
        return Rejected(rel, f"unreadable entry ({err.strerror or err})")
    if _is_dir(e):
        return Rejected(rel + "/", "nested folder (only ROOT/<identity>/<image> is read)")
    if os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS:
        return Rejected(rel, "not an image file (extension)")
    if not stat.S_ISREG(st.st_mode):
        return Rejected(rel, "not a regular file (a FIFO, socket or device)")
    if real_root is not None and e.is_symlink():
        if not _inside(os.path.realpath(e.path), real_root):
            return Rejected(rel, "symlink to a file outside the root (--follow-links)")
    try:
        # O_NONBLOCK: a file swapped for a FIFO after the stat above cannot hang the walk
        fd = os.open(e.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return Rejected(rel, "not a regular file (a FIFO, socket or device)")
            head = f.read(16)
    except OSError as err:
        return Rejected(rel, f"unreadable file ({err.strerror or err})")
    if image_kind(head) is None:
        return Rejected(rel, "not an image (unknown magic bytes)")
    return FaceRecord(identity, file_locator(rel, st), None)


# -- writer (exports) -----------------------------------------------------------------------
# Appended apart from the reader above: the folder-per-identity layout written by `export`.

_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_O_NEW |= getattr(os, "O_NOFOLLOW", 0)


def write_new_file(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` (never overwrite, never follow a link)."""
    fd = os.open(path, _O_NEW, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


class FolderWriter:
    """Write ``root/<identity>/<image>`` into an existing folder ``root``: one new sub-folder
    per identity, one new file per image, the original bytes. Names are single path components
    the caller has made safe; one that would land outside ``root`` is refused (defence in
    depth), and no file is overwritten or written through a link."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def write_identity(self, dirname: str, images: list[tuple[str, bytes]]) -> None:
        """Make ``root/dirname`` and write each (file name, bytes) in it."""
        d = (self.root / dirname).resolve()
        if d.parent != self.root:
            raise AnnotatorError(f"refusing to write outside the export folder: {dirname!r}")
        d.mkdir()
        for name, data in images:
            if "/" in name or os.sep in name or name in ("", ".", ".."):
                raise AnnotatorError(f"refusing to write outside the export folder: {name!r}")
            write_new_file(d / name, data)
