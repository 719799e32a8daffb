"""Reviewer packages: split a project's review work across machines and merge it back.

``pack`` writes a self-contained project file (same schema, same migrations: the GUI, ``labels``
and every command work on it) with some identities, their faces, sources rows, hashes, the
flags and duplicate groups whose every face is inside, and their label history so far. Every id
is the home project's. A package record (random UUID, home project id, pack time, the last home
batch/event id, a digest of the packed content) is written into the package and remembered at
home. With ``with_images`` the faces' original bytes go inside (``face_blobs``) and
:mod:`annotator.core.infra.access` reads them from there first, so no source file is needed.

``merge`` (``core/review/merge.py``, its rules in ``merge_rules.py``) brings home the
package's batches made after the pack, once each, after checking every one of them as if a
user typed it; faces are found again by what they are (``package_faces``), identities by key.
Per face: home did not change it since the pack -> the package's work comes home; home
reached the same state -> history only; else a conflict for adjudication (``qa queue``).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from annotator.core.review import package_purge as partial_files
from annotator.core.review.package_purge import refuse_in_package
from annotator.core.review.withdrawal import Ledger
from annotator.formats import keylist
from annotator.model import AnnotatorError, CancelledFn, ProgressFn, never_cancelled
from annotator.store import faces as faces_store
from annotator.store import packages as store
from annotator.store.db import Project, now, open_project

BLOB_CHUNK = 256  # faces read per chunk for --with-images


# -- selection -----------------------------------------------------------------------------------


def read_identities_file(path: str | Path) -> list[str]:
    """Identity keys, one per line (blank lines and ``#`` comments ignored; first column of a
    tab/comma separated line)."""
    keys: list[str] = []
    for _n, line in keylist.read_lines(path):  # a line that is not UTF-8 refuses the file
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        for sep in ("\t", ","):
            s = s.split(sep)[0].strip()
        if s:
            keys.append(s)
    return keys


def select_identities(
    project: Project, keys: Sequence[str] | None = None, unreviewed: int | None = None
) -> list[int]:
    """Identity ids by key (every key must exist) or the ``unreviewed`` first unreviewed
    identities in review order that no package still out holds."""
    if (keys is None) == (unreviewed is None):
        raise AnnotatorError("give the identities to pack by key or --unreviewed N, one of them")
    if unreviewed is not None:
        if unreviewed < 1:
            raise AnnotatorError("--unreviewed must be at least 1")
        ids = store.unreviewed_identities(project, unreviewed)
        if not ids:
            raise AnnotatorError(
                "nothing to pack: no unreviewed identity with faces that is not already out "
                "in a package"
            )
        return ids
    assert keys is not None
    wanted = list(dict.fromkeys(k.strip() for k in keys if k.strip()))
    if not wanted:
        raise AnnotatorError("no identity key given")
    found = faces_store.identity_ids_by_key(project, wanted)
    missing = [k for k in wanted if k not in found]
    if missing:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise AnnotatorError(
            "unknown identity key(s): " + ", ".join(repr(k) for k in missing[:3]) + more
        )
    return [found[k] for k in wanted]


# -- pack ----------------------------------------------------------------------------------------


@dataclass
class PackResult:
    package_id: str
    out: str
    identities: int
    faces: int
    events: int
    flags: int
    with_images: bool
    digest: str
    withdrawn: int = 0  # faces and notes left out: the withdrawal ledger matched them

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def pack(
    home: Project,
    identity_ids: Sequence[int],
    out: str | os.PathLike[str],
    *,
    with_images: bool = False,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> PackResult:
    """Write a package of ``identity_ids`` to ``out`` (which must not exist) and record it."""
    cancelled = cancelled or never_cancelled
    out_p = Path(out).expanduser().absolute()
    if store.package_info(home) is not None:
        raise AnnotatorError(f"{home.path} is a reviewer package; pack from its home project")
    if out_p.exists():
        adopted = _adopt(home, out_p, identity_ids, with_images)
        if adopted is not None:
            return adopted
        raise AnnotatorError(f"{out_p} exists; give a new file name for the package")
    if not out_p.parent.is_dir():
        raise AnnotatorError(f"cannot write {out_p}: folder {out_p.parent} does not exist")
    if not identity_ids:
        raise AnnotatorError("nothing to pack")
    tmp = out_p.with_name(out_p.name + ".partial")
    for p in _files(tmp):
        p.unlink(missing_ok=True)
    partial_files.note(home, tmp)  # a killed pack leaves it: a takedown names it
    try:
        open_project(tmp, create=True).close()  # the schema, by the same migrations
        with store.attached(home, tmp) as c:
            counts = store.copy_into_package(c, identity_ids)
        pkg = open_project(tmp)
        try:
            refused = refuse_in_package(pkg, Ledger.of(home))
            _digest_faces(home, pkg, with_images, progress, cancelled)
            info = store.PackageInfo(
                id=str(uuid.uuid4()),
                home_project_id=store.project_id(home),
                home_path=str(home.path),
                packed_at=now(),
                home_base_batch=counts.home_base_batch,
                home_base_event=counts.home_base_event,
                base_batch=counts.base_batch,
                base_event=counts.base_event,
                with_images=with_images,
                digest="",
            )
            digest = store.content_digest(pkg, info)
            info = store.PackageInfo(**{**asdict(info), "digest": digest})
            store.write_package_info(pkg, info)
        finally:
            pkg.close()
        store.set_delete_journal(tmp)
        if out_p.exists():
            raise AnnotatorError(f"{out_p} appeared while packing; give a new file name")
        os.replace(tmp, out_p)
    except BaseException:
        for p in _files(tmp):
            p.unlink(missing_ok=True)
        partial_files.clear(home, tmp)
        raise
    partial_files.clear(home, tmp)
    try:
        store.record_package(
            home,
            store.PackageRecord(
                info.id,
                str(out_p),
                info.packed_at,
                counts.home_base_batch,
                counts.home_base_event,
                counts.identities,
                counts.faces,
                with_images,
                digest,
                0,
                None,
            ),
            identity_ids,
        )
    except BaseException:
        out_p.unlink(missing_ok=True)  # a package home does not know could never merge
        raise
    return PackResult(
        info.id,
        str(out_p),
        counts.identities,
        counts.faces,
        counts.events,
        counts.flags,
        with_images,
        digest,
        refused,
    )


def _adopt(
    home: Project, out_p: Path, identity_ids: Sequence[int], with_images: bool
) -> PackResult | None:
    """The same pack, killed after its file was complete and before home recorded it: a
    package of this project at ``out_p``, not recorded, intact (digest), of the same
    identities and kind. It is recorded now (else None: the file is not such a package)."""
    try:
        pkg = open_project(out_p)
    except AnnotatorError:
        return None
    try:
        info = store.package_info(pkg)
        if (
            info is None
            or info.home_project_id != store.project_id(home)
            or store.package_record(home, info.id) is not None
            or info.with_images != with_images
            or store.content_digest(pkg, info) != info.digest
        ):
            return None
        faces, events, flags, idents, packed = store.package_counts(pkg)
        wanted = set(identity_ids)
        if not (packed <= wanted <= idents):
            return None
    finally:
        pkg.close()
    rec = store.PackageRecord(
        info.id, str(out_p), info.packed_at, info.home_base_batch, info.home_base_event,
        len(wanted), faces, with_images, info.digest, 0, None,
    )  # fmt: skip
    store.record_package(home, rec, identity_ids)
    return PackResult(
        info.id, str(out_p), len(wanted), faces, events, flags, with_images, info.digest
    )


def _files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def _digest_faces(
    home: Project,
    pkg: Project,
    with_images: bool,
    progress: ProgressFn | None,
    cancelled: CancelledFn,
) -> None:
    """Record what each packed face is (its content sha256: the scan's, else of its bytes read
    now) and, ``with_images``, embed the bytes. A face whose bytes cannot be read is recorded
    without a digest (a merge then matches it by its unchanged source and locator), unless
    its bytes were to be embedded."""
    from annotator.core.infra.access import FaceBytes, FaceReadError

    ids = store.packed_face_ids(pkg) if with_images else store.faces_without_digest(pkg)
    if progress:
        progress(0, len(ids))
    digests: list[tuple[int, bytes]] = []
    with FaceBytes(home) as fb:
        for s in range(0, len(ids), BLOB_CHUNK):
            if cancelled():
                raise KeyboardInterrupt
            chunk = ids[s : s + BLOB_CHUNK]
            datas = fb.read_many(chunk, errors="return")
            for d in datas:
                if isinstance(d, FaceReadError) and with_images:
                    raise AnnotatorError(f"cannot embed the faces' bytes: {d}")
            got = [(f, d) for f, d in zip(chunk, datas, strict=True) if isinstance(d, bytes)]
            digests += [(f, hashlib.sha256(d).digest()) for f, d in got]
            if with_images:
                store.insert_blobs(pkg, got)
            if progress:
                progress(s + len(chunk), len(ids))
    store.record_face_digests(pkg, digests)


# -- info ----------------------------------------------------------------------------------------


def packages_summary(project: Project) -> dict[str, object]:
    """Packages out and merged (``annotator info``)."""
    return store.summary(project)
