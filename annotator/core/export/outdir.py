"""The output folder of an export: which folders may be written or replaced, the temporary
folder beside it, the atomic swap at the end, and the removal of leftovers of killed runs.

An export is written into ``.OUT.tmp-PID-RANDOM`` beside ``OUT`` and renamed into place at
the end; an earlier ``OUT`` is first renamed to ``.OUT.old-PID-RANDOM`` and deleted after the
swap. ``--force`` only ever replaces an earlier export of this tool, recognised by its
``manifest.json`` (every top-level entry of the folder must be one the manifest accounts for);
a home folder, the root, the project's folder and a source's folder are never replaced."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from annotator.core.export.manifest import MANIFEST, export_entries, export_files
from annotator.model import AnnotatorError
from annotator.store import export as store
from annotator.store.db import Project


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's process (or we cannot tell): leave its folder alone
    return True


def temp_name(out: Path, kind: str) -> Path:
    """``.OUT.tmp-PID-RANDOM`` / ``.OUT.old-PID-RANDOM`` beside ``out``."""
    return out.with_name(f".{out.name}.{kind}-{os.getpid()}-{os.urandom(4).hex()}")


def leftovers(out: Path) -> list[Path]:
    """Temporary folders that earlier, killed exports to ``out`` left beside it: named as
    :func:`temp_name` names them, real folders (not links), of a process that is gone, and
    holding what an export holds (a temp folder: nothing yet or its manifest.csv; an old one:
    an earlier export's manifest)."""
    pat = re.compile(rf"\.{re.escape(out.name)}\.(tmp|old)-(\d{{1,10}})-[0-9a-f]{{8}}")
    found = []
    try:
        with os.scandir(out.parent) as it:
            entries = list(it)
    except OSError:
        return []
    for e in entries:
        m = pat.fullmatch(e.name)
        if not m or not e.is_dir(follow_symlinks=False) or _pid_alive(int(m.group(2))):
            continue
        p = Path(e.path)
        if m.group(1) == "old":
            ours = export_entries(p) is not None
        else:
            try:
                with os.scandir(p) as it:
                    names = {x.name for x in it}
            except OSError:
                continue
            ours = not names or "manifest.csv" in names
        if ours:
            found.append(p)
    return sorted(found)


def remove_leftovers(out: Path) -> int:
    """Remove the :func:`leftovers` of ``out``; returns how many were removed."""
    n = 0
    for p in leftovers(out):
        shutil.rmtree(p, ignore_errors=True)
        n += not p.exists()
    return n


def check_out(project: Project, out: Path, force: bool) -> None:
    """Refuse an output folder the export must not write or replace (one-line AnnotatorError):
    a link or a file; the file system root, a home folder or a folder above one; a folder
    holding the project file, its cache or a source, or inside a folder source; a non-empty
    folder that is not an earlier export of this tool (even with ``force``), or one that is,
    without ``force`` or with files the export did not write."""
    if out.is_symlink():
        raise AnnotatorError(f"{out} is a symbolic link; give the folder it points to")
    if out.exists() and not out.is_dir():
        raise AnnotatorError(f"{out} exists and is not a folder")
    o = out.resolve()
    if o.parent == o:
        raise AnnotatorError(f"{out} is the root of the file system; choose another folder")
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError):  # no HOME and no passwd entry
        home = None
    if home is not None and (home == o or home.is_relative_to(o)):
        what = "your home folder" if home == o else f"a folder above your home folder {home}"
        raise AnnotatorError(f"{out} is {what}; choose another folder")
    _check_not_over_inputs(project, out, o)
    if not out.parent.is_dir():
        raise AnnotatorError(f"folder {out.parent} does not exist")
    if not out.is_dir() or not any(out.iterdir()):
        return
    entries = export_files(out)
    if entries is None:
        raise AnnotatorError(
            f"{out} is not empty and is not an earlier export (no {MANIFEST} of annotator); "
            "choose a new or empty folder"
        )
    if not force:
        raise AnnotatorError(f"{out} is not empty (use --force to replace it)")
    extra = _not_listed(out, entries)
    if extra:
        raise AnnotatorError(
            f"{out} holds {len(extra)} file(s) that are not part of the earlier export "
            f"(e.g. {extra[0]!r}); move them or choose another folder"
        )


def _not_listed(out: Path, files: set[str]) -> list[str]:
    """Files under ``out`` (at any depth; links count as files, never followed) that the
    earlier export's manifest does not list: ``--force`` must not delete a user's file."""
    extra: list[str] = []
    for dirpath, dirnames, filenames in os.walk(out):
        rel = Path(dirpath).relative_to(out)
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            r = (rel / name).as_posix()
            if r not in files:
                extra.append(r)
    return sorted(extra)


def _check_not_over_inputs(project: Project, out: Path, o: Path) -> None:
    """Refuse an output folder that holds the project file or a source (``--force`` would
    delete them when it replaces the folder), or that lies inside a folder source."""

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


def swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished temp folder to ``out``; an old ``out`` is renamed aside, then deleted."""
    old = None
    if out.exists():
        if any(out.iterdir()):
            old = temp_name(out, "old")
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
