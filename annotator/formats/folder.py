"""A folder per identity (ImageFolder layout: CASIA-WebFace, VGGFace2, LFW).

``root/<identity>/<image>`` with .jpg .jpeg .png .webp .bmp (any case). The walk is
deterministic (sorted by name), so an interrupted import resumes by position. Files directly
under the root, non-image files, nested folders, unreadable entries and symlink loops are
reported as rejected entries and skipped. The locator is the path relative to the root
(always with ``/``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from annotator.core.models import AnnotatorError, FaceRecord, Locator, Rejected
from annotator.formats import IMAGE_EXTENSIONS, image_kind

Row = tuple[int, int, FaceRecord | Rejected]


def _sorted_entries(path: Path) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def read_folder(root: str | Path, start_pos: int = 0, start_index: int = 0) -> Iterator[Row]:
    """Walk ``root`` and yield ``(0, entries done, item)`` per image or rejected entry.

    ``start_index`` skips that many entries (images + rejected) of the sorted walk.
    """
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
                shown = rel_dir.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                yield 0, n, Rejected(shown, "file or folder name is not valid UTF-8")
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
            yield 0, n, _face_or_reject(e, ident.name, rel)


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


def _face_or_reject(e: os.DirEntry[str], identity: str, rel: str) -> FaceRecord | Rejected:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return Rejected(
            rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
            "file or folder name is not valid UTF-8",
        )
    try:
        os.stat(e.path)
    except OSError as err:
        if e.is_symlink():
            return Rejected(rel, f"broken symlink or symlink loop ({err.strerror or err})")
        return Rejected(rel, f"unreadable entry ({err.strerror or err})")
    if _is_dir(e):
        return Rejected(rel + "/", "nested folder (only ROOT/<identity>/<image> is read)")
    if os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS:
        return Rejected(rel, "not an image file (extension)")
    try:
        with open(e.path, "rb") as f:
            head = f.read(16)
    except OSError as err:
        return Rejected(rel, f"unreadable file ({err.strerror or err})")
    if image_kind(head) is None:
        return Rejected(rel, "not an image (unknown magic bytes)")
    return FaceRecord(identity, Locator(relpath=rel), None)
