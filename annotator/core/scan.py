"""`annotator scan`: hash every face not hashed yet, then recompute all flags.

Incremental and resumable: only faces without a face_hashes row are read, and each chunk's
results are committed in its own short transaction, so an interrupted scan loses at most the
chunks in flight. Hashing runs in a process pool ('spawn'-safe: workers get picklable read plans
and read the bytes themselves) with a bounded number of chunks in flight.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from annotator import settings
from annotator.core.dedup import flags as flag_rules
from annotator.core.dedup.hashing import HashResult, hash_planned
from annotator.core.identity import identity_check
from annotator.core.infra.access import FaceBytes
from annotator.core.infra.workers import process_pool, run_chunks, usable_cores
from annotator.model import AnnotatorError, CancelledFn, ProgressFn, never_cancelled
from annotator.store import faces as faces_store
from annotator.store import flags as flags_store
from annotator.store import hashes as hashes_store
from annotator.store.db import Project

if TYPE_CHECKING:
    from annotator.core.infra.cluster import Cluster

CHUNK = 256  # faces per worker task


@dataclass(slots=True)
class ScanResult:
    hashed: int = 0
    corrupt: int = 0
    read_errors: list[str] = field(default_factory=list)  # first few messages
    read_error_count: int = 0
    cancelled: bool = False
    radius: int = flag_rules.DEFAULT_RADIUS
    pairs: int = 0  # pHash candidates
    verified: int = 0  # candidates that passed verification
    flags: dict[str, int] = field(default_factory=dict)
    groups: int = 0
    hash_seconds: float = 0.0
    flag_seconds: float = 0.0
    settings: dict[str, int | float] = field(default_factory=dict)  # the values the flags used

    def as_dict(self) -> dict[str, object]:
        return {
            "hashed": self.hashed,
            "corrupt": self.corrupt,
            "read_errors": self.read_error_count,
            "read_error_examples": self.read_errors,
            "cancelled": self.cancelled,
            "radius": self.radius,
            "pairs": self.pairs,
            "verified_pairs": self.verified,
            "flags": self.flags,
            "dup_groups": self.groups,
            "hash_seconds": round(self.hash_seconds, 3),
            "flag_seconds": round(self.flag_seconds, 3),
            "settings": self.settings,
        }


def _rows(results: list[HashResult]) -> list[tuple[object, ...]]:
    return [
        (
            r.face_id,
            r.sha256,
            r.phash,
            r.dhash,
            r.width,
            r.height,
            None if r.grayscale is None else int(r.grayscale),
            r.sharpness,
            r.corrupt,
            r.thumb,
            *(r.crop or (None,) * 4),
        )
        for r in results
    ]


def _photos(project: Project, face_ids: np.ndarray) -> list[bytes | None]:
    """The photos of a few faces for the crop stage's fine test (None: cannot be read)."""
    with FaceBytes(project) as fb:
        got = fb.read_many([int(f) for f in face_ids], errors="return")
    return [g if isinstance(g, bytes) else None for g in got]


def _bad_sources(project: Project) -> dict[int, str]:
    """Sources that are missing or changed since import (their faces are skipped)."""
    bad = {}
    for src in faces_store.all_sources(project):
        why = FaceBytes.check_source(src)
        if why:
            bad[src.id] = why
    return bad


def hash_faces(
    project: Project,
    *,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    result: ScanResult | None = None,
    cluster: Cluster | None = None,
) -> ScanResult:
    """Hash every face that has no face_hashes row (commit per chunk). With ``cluster``
    (core/infra/cluster.py) the chunks run on its Dask workers, which check the sources."""
    res = result or ScanResult()
    cancelled = cancelled or never_cancelled
    t0 = time.perf_counter()
    todo = hashes_store.unhashed_face_ids(project)
    bad = _bad_sources(project) if cluster is None else {}
    if bad:
        skip: set[int] = set()
        for sid, why in bad.items():
            ids = hashes_store.face_ids_of_source(project, sid)
            skip |= ids
            n_skip = int(np.isin(todo, np.fromiter(ids, dtype=np.int64)).sum())
            if n_skip:
                res.read_error_count += n_skip
                res.read_errors.append(f"{n_skip} faces skipped: {why}")
        todo = todo[~np.isin(todo, np.fromiter(skip, dtype=np.int64))]
    total = len(todo)
    if progress:
        progress(0, total)
    if total == 0:
        return res
    workers = workers if workers is not None else usable_cores()
    fb = FaceBytes(project)
    chunks = (todo[s : s + CHUNK].tolist() for s in range(0, total, CHUNK))
    done = 0

    def commit(out: tuple[list[HashResult], list[tuple[int, str]]]) -> None:
        nonlocal done
        results, errors = out
        with project.tx():
            hashes_store.insert_hashes(project, _rows(results))
        res.hashed += len(results)
        res.corrupt += sum(1 for r in results if r.corrupt)
        res.read_error_count += len(errors)
        for _, msg in errors:
            if len(res.read_errors) < 10:
                res.read_errors.append(msg)
        done += len(results) + len(errors)
        if progress:
            progress(done, total)

    try:
        if cluster is None and (workers <= 1 or total <= CHUNK):
            for ids in chunks:
                if cancelled():
                    res.cancelled = True
                    break
                commit(hash_planned(fb.plan(ids, skip_missing=True)))
        else:
            # workers die with this process, ignore Ctrl-C, run one BLAS thread each
            with cluster.executor(project) if cluster else process_pool(workers) as pool:
                res.cancelled = run_chunks(
                    pool,
                    chunks,
                    lambda ids: pool.submit(hash_planned, fb.plan(ids, skip_missing=True)),
                    commit,
                    cancelled,
                    2 * workers,
                )
    finally:
        fb.close()
        res.hash_seconds = time.perf_counter() - t0
    return res


def update_flags(
    project: Project,
    radius: int | None = None,
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    result: ScanResult | None = None,
) -> ScanResult:
    """Recompute every flag, duplicate group and identity suspicion from the stored hashes,
    with the project's settings (``radius``, when given, in place of its radius); the values
    used are recorded in the project and in the result.

    ``progress(done, total)`` runs over 0..1000: loading 0-50, the flag rules (mostly the
    near-duplicate search) 50-800, storing 800-1000.
    """
    res = result or ScanResult()
    values = settings.load(project)
    r = values.radius if radius is None else radius
    if not 0 <= r <= 32:
        raise AnnotatorError(f"radius must be between 0 and 32 bits (got {r})")
    values = settings.Values({**values, "radius": r})
    res.radius = r
    t0 = time.perf_counter()

    def step(done: int) -> None:
        if progress:
            progress(done, 1000)

    step(0)
    data = hashes_store.load_hashes(project)
    groups = hashes_store.sha256_group_arrays(project)
    step(50)
    try:
        fs = flag_rules.compute_flags(
            data,
            groups,
            r,
            progress=lambda d, t: step(50 + 750 * d // max(t, 1)),
            cancelled=cancelled,
            thumbs_of=lambda ids: hashes_store.load_thumbs(project, ids),
            values=values,
            images_of=lambda ids: _photos(project, ids),
        )
    except InterruptedError:
        res.cancelled = True
        return res
    # the embeddings' suspect_identity flags join the set before it is stored
    identity_check.attach(project, fs, data["face_id"], data["identity_id"], values)
    del data
    # Computed outside any transaction; written in short batches (a reviewer's label waits
    # milliseconds). While they go in, flags_state says 'updating' (an export waits for
    # 'ready'); a scan killed in between leaves 'updating' until the next scan completes.
    flags_store.set_flags_state(project, "updating")
    flags_store.replace_flags(
        project,
        fs.rows(),
        progress=lambda d, t: step(800 + 150 * d // max(t, 1)),
        total=len(fs),
    )
    flags_store.replace_dup_groups(project, fs.groups)
    step(970)
    flags_store.set_suspicion(project, fs.suspicion)
    flags_store.set_flags_state(project, "ready")
    settings.record(project, settings.SCAN, values)
    res.settings = dict(values)
    res.pairs = fs.pairs
    res.verified = fs.verified
    res.flags = flags_store.counts_by_kind(project)
    res.groups = len(np.unique(fs.groups[:, 1])) if len(fs.groups) else 0
    res.flag_seconds = time.perf_counter() - t0
    step(1000)
    return res


def scan(
    project: Project,
    *,
    radius: int | None = None,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    cluster: Cluster | None = None,
) -> ScanResult:
    """Hash new faces (incremental, resumable), then recompute flags for the whole project.

    One ``progress(done, total)`` sequence covers both phases, counted in faces: the faces to
    hash, then every face once more for the flag recompute.
    """
    if radius is not None and not 0 <= radius <= 32:
        raise AnnotatorError(f"radius must be between 0 and 32 bits (got {radius})")
    flag_units = max(1, hashes_store.face_count(project))
    hashed = {"total": 0}

    def hash_progress(done: int, total: int) -> None:
        hashed["total"] = total
        if progress:
            progress(done, total + flag_units)

    def flag_progress(done: int, total: int) -> None:
        if progress:
            h = hashed["total"]
            progress(h + flag_units * done // max(total, 1), h + flag_units)

    res = hash_faces(
        project, workers=workers, progress=hash_progress, cancelled=cancelled, cluster=cluster
    )
    if res.cancelled:
        return res
    return update_flags(project, radius, progress=flag_progress, cancelled=cancelled, result=res)
