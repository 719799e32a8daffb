"""Reviewer packages: split a project's review work across machines and merge it back.

``pack`` writes a self-contained project file (same schema, same migrations: the GUI, ``labels``
and every command work on it) with some identities, their faces, sources rows, hashes, the
flags and duplicate groups whose every face is inside, and their label history so far. Every id
is the home project's. A package record (random UUID, home project id, pack time, the last home
batch/event id, a digest of the packed content) is written into the package and remembered at
home. With ``with_images`` the faces' original bytes go inside (``face_blobs``) and
:mod:`annotator.core.infra.access` reads them from there first, so no source file is needed.

``merge`` brings home the package's batches made after the pack (with their reviewer, time and
kind), once each: ``merged_batches`` remembers them by (package id, package batch id), so a
second merge changes nothing. Per face: if home did not label or move it since the pack, the
package's events and state come home (label, and identity: moves inside a package are merged
like labels); if home changed it since to the same state, the events come home as history; if
home changed it differently (or another package's merge did), home keeps its label and the
face goes to the adjudication queue (a QA item of a ``merge`` pass: ``annotator qa queue``,
decided with ``annotator qa adjudicate``). Review marks of identities come home unless home
changed that identity's review state since the pack. A package of another project, one not
recorded here, one whose packed content changed (digest), or a file that is not a package is
refused with one line. Takedowns and QA passes are done at home: they do not travel back.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from annotator.core.review import package_purge as partial_files
from annotator.core.review.package_purge import refuse_in_package
from annotator.core.review.withdrawal import Ledger, scrubbing
from annotator.model import AnnotatorError, CancelledFn, ProgressFn, never_cancelled
from annotator.store import faces as faces_store
from annotator.store import packages as store
from annotator.store.db import Project, now, open_project

MERGE_CHUNK_EVENTS = 5_000  # events merged per home transaction (whole batches): ~0.3 s at 1M faces
BLOB_CHUNK = 256  # faces read per chunk for --with-images


# -- selection -----------------------------------------------------------------------------------


def read_identities_file(path: str | Path) -> list[str]:
    """Identity keys, one per line (blank lines and ``#`` comments ignored; first column of a
    tab/comma separated line)."""
    keys: list[str] = []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for line in f:
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
            if with_images:
                _embed(home, pkg, progress, cancelled)
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


def _files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def _embed(
    home: Project, pkg: Project, progress: ProgressFn | None, cancelled: CancelledFn
) -> None:
    from annotator.core.infra.access import FaceBytes, FaceReadError

    ids = store.packed_face_ids(pkg)
    if progress:
        progress(0, len(ids))
    with FaceBytes(home) as fb:
        for s in range(0, len(ids), BLOB_CHUNK):
            if cancelled():
                raise KeyboardInterrupt
            chunk = ids[s : s + BLOB_CHUNK]
            datas = fb.read_many(chunk, errors="return")
            for d in datas:
                if isinstance(d, FaceReadError):
                    raise AnnotatorError(f"cannot embed the faces' bytes: {d}")
            store.insert_blobs(pkg, list(zip(chunk, datas, strict=True)))  # type: ignore[arg-type]
            if progress:
                progress(s + len(chunk), len(ids))


# -- merge ---------------------------------------------------------------------------------------


@dataclass
class MergeResult:
    package_id: str
    batches: int = 0
    events: int = 0
    applied: int = 0
    agreed: int = 0
    gone: int = 0
    reviews: int = 0
    reviews_kept: int = 0
    withdrawn: int = 0  # notes that named a withdrawn person, cleared on the way home
    conflicts: list[dict[str, object]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.batches)

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["conflict_count"] = len(self.conflicts)
        return d


def check_package(home: Project, path: str | os.PathLike[str]) -> store.PackageInfo:
    """The package's record, after refusing (one line) a file that is not a package of this
    project, a package this project did not send out, or one whose packed content changed."""
    p = Path(path).expanduser().absolute()
    if p == home.path:
        raise AnnotatorError(f"{p} is the project itself, not a package of it")
    if not p.exists():
        raise AnnotatorError(f"no package file at {p}")
    try:
        pkg = open_project(p)
    except AnnotatorError as e:
        raise AnnotatorError(f"{p.name} is not a reviewer package ({e})") from None
    try:
        info = store.package_info(pkg)
        if info is None:
            raise AnnotatorError(
                f"{p.name} is an annotator project, not a reviewer package (no package record)"
            )
        home_id = store.project_id(home)
        if info.home_project_id != home_id:
            raise AnnotatorError(
                f"{p.name} is a package of another project (project {info.home_project_id[:8]},"
                f" packed from {info.home_path}), not of {home.path.name}"
            )
        rec = store.package_record(home, info.id)
        if rec is None:
            raise AnnotatorError(
                f"package {info.id[:8]} is not recorded in {home.path.name} (was it packed from"
                " a copy of this project?)"
            )
        digest = store.content_digest(pkg, info)
        if digest != rec.digest or digest != info.digest:
            raise AnnotatorError(
                f"{p.name} was changed since it was packed (its content digest differs): "
                "refusing to merge a tampered package"
            )
        return info
    finally:
        pkg.close()


def merge(
    home: Project,
    path: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    chunk_events: int = MERGE_CHUNK_EVENTS,
) -> MergeResult:
    """Bring the package's new work home (see the module docstring)."""
    cancelled = cancelled or never_cancelled
    info = check_package(home, path)
    res = MergeResult(info.id)
    ledger = Ledger.of(home)
    passes: dict[int, int] = {}
    pkg_path = str(Path(path).expanduser().absolute())
    with store.attached(home, pkg_path) as c:
        forked = store.forked_batches(c, info.id)
        if forked:
            raise AnnotatorError(
                f"{Path(pkg_path).name} holds {forked} step(s) under ids already merged from other"
                f" work of package {info.id[:8]} (two copies of the package were worked on?);"
                " merge refused: merge each copy's work through a package of its own"
            )
        todo = store.new_batches(c, info.id, info.base_batch)
        total = sum(n for _b, n in todo)
        done = 0
        if progress:
            progress(0, total)
        chunk: list[int] = []
        size = 0
        parts: list[tuple[list[int], int]] = []
        for b, n in todo:
            if chunk and size + n > chunk_events:
                parts.append((chunk, size))
                chunk, size = [], 0
            chunk.append(b)
            size += n
        if chunk:
            parts.append((chunk, size))
        conflicts: list[store.Conflict] = []
        for ids, n in parts:
            if cancelled():
                raise KeyboardInterrupt
            with home.tx(), scrubbing(home, ledger) as scrubbed:
                r = store.merge_chunk(home, info.id, pkg_path, info.home_base_event, ids, passes)
            res.withdrawn += scrubbed.count
            res.batches += r.batches
            res.events += r.events
            res.applied += r.applied
            res.agreed += r.agreed
            res.gone += r.gone
            res.reviews += r.reviews
            res.reviews_kept += r.reviews_kept
            conflicts += r.conflicts
            done += n
            if progress:
                progress(done, total)
    if res.batches:
        store.note_merge(home, info.id)
    origins = faces_store.face_origins(home, [x.face_id for x in conflicts])
    res.conflicts = [
        {
            "face_id": x.face_id,
            "origin": origins.get(x.face_id, "?"),
            "identity_id": x.identity_id,
            "home_label": x.home_label,
            "home_reviewer": x.home_reviewer,
            "package_label": x.package_label,
            "package_reviewer": x.package_reviewer,
            "package_identity_id": x.package_identity_id,
            "package_at": x.package_at,
            "pass": x.pass_id,
        }
        for x in conflicts
    ]
    return res


# -- info ----------------------------------------------------------------------------------------


def packages_summary(project: Project) -> dict[str, object]:
    """Packages out and merged (``annotator info``)."""
    return store.summary(project)
