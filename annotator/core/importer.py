"""The import pipeline: stream a source through its format reader into the project file.

* Rows are written in batches (``batch_rows`` rows or ``batch_bytes`` of source, whichever
  comes first), each batch in one transaction together with the source's resume position, so
  Ctrl-C or a kill leaves a consistent project and running the import again continues where the
  last committed batch ended.
* Importing a complete, unchanged source again adds nothing. A source that changed since its
  (partial) import is refused with a clear error.
* Identities are created on first sight; ``identities.face_count`` is recounted for every
  identity a batch touched. Identities that were taken down (privacy) are skipped: their rows
  count as skipped and nothing about them is stored.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from annotator.core.review import withdrawal
from annotator.core.review.privacy import key_digest
from annotator.formats import (
    check_format,
    fingerprint,
    image_kind,
    looks_binary,
    msceleb,
    recordio,
    source_stat,
)
from annotator.formats import folder as folder_fmt
from annotator.model import (
    AnnotatorError,
    CancelledFn,
    FaceRecord,
    NameRecord,
    ProgressFn,
    Rejected,
)
from annotator.store import discard as discard_store
from annotator.store import faces as store
from annotator.store.db import Project

Reader = Callable[[Path, int, int], Iterator[tuple[int, int, object]]]

READERS: dict[str, Reader] = {
    "msceleb": msceleb.read_aligned,  # type: ignore[dict-item]
    "devset": msceleb.read_devset,  # type: ignore[dict-item]
    "names": msceleb.read_names,  # type: ignore[dict-item]
    "rec": recordio.read_rec,  # type: ignore[dict-item]
    "folder": folder_fmt.read_folder,  # type: ignore[dict-item]
}

BATCH_ROWS = 1_000  # ~0.1 s of writing a transaction: a reviewer's label waits no longer
DISCARD_CHUNK = 2_000  # faces deleted per transaction by a restart
BATCH_BYTES = 128 << 20
CANCEL_CHECK_ROWS = 500
_NO_RECT = (None, None, None, None)


@dataclass
class ImportResult:
    imported: int = 0  # faces (or names, for a names list) added by this run
    skipped: int = 0  # rows already present, or of a withdrawn identity
    withdrawn: int = 0  # of those, rows refused by the withdrawal ledger (key or photo)
    rejected: list[Rejected] = field(default_factory=list)  # bad rows met by this run
    identities: int = 0  # identities created by this run
    complete: bool = False  # False when cancelled before the end of the source
    source_id: int | None = None

    def to_json(self) -> dict[str, object]:
        """The `annotator import --json` object."""
        return {
            "imported": self.imported,
            "skipped": self.skipped,
            "rejected": [{"origin": r.origin, "reason": r.reason} for r in self.rejected],
            "identities": self.identities,
            "withdrawn": self.withdrawn,
        }


def resolve_path(fmt: str, path: str | Path) -> Path:
    """Absolute source path; checks that it exists and has the right kind."""
    p = Path(path).expanduser().absolute()
    if fmt == "rec" and p.is_dir() and (p / "train.rec").exists():
        p = p / "train.rec"
    if not p.exists():
        raise AnnotatorError(f"no such file or folder: {p}")
    if fmt == "folder":
        if not p.is_dir():
            raise AnnotatorError(
                f"{p} is not a folder (format 'folder' expects ROOT/<identity>/<image>)"
            )
    elif p.is_dir():
        raise AnnotatorError(f"{p} is a folder; format {fmt!r} expects a file")
    elif not p.is_file():  # a FIFO or device would block the first read
        raise AnnotatorError(f"{p} is not a regular file (a FIFO, socket or device)")
    return p


TEXT_COLUMNS = {"msceleb": 7, "devset": 6, "names": 2}
_SNIFF_MIN_LINES = 3  # fewer sampled lines than this never refuse a file


def preflight(fmt: str, path: str | Path) -> Path:
    """Check a source before anything is written: known format, the path exists and has the
    right kind, and its first bytes do not plainly belong to another format. Returns the
    absolute source path; raises :class:`AnnotatorError` with one clear line otherwise."""
    check_format(fmt)
    p = resolve_path(fmt, path)
    try:
        why = format_mismatch(fmt, p)
    except OSError as e:
        raise AnnotatorError(f"cannot read {p}: {e.strerror or e}") from None
    if why:
        raise AnnotatorError(f"{p} is not a {fmt!r} source: {why}")
    return p


def format_mismatch(fmt: str, p: Path) -> str | None:
    """Why ``p`` is plainly not a ``fmt`` source (None when it may be one).

    Only clear cases are refused — the wrong one of the three TSV shapes, a RecordIO file
    given as a TSV or the reverse, an image or binary file given as text, a folder without
    identity folders. A file that merely has bad rows is imported and its bad rows reported.
    """
    if fmt == "folder":
        return folder_fmt.layout_problem(p)
    with open(p, "rb") as f:
        head = f.read(msceleb.SNIFF_BYTES)
        whole = len(head) < msceleb.SNIFF_BYTES or not f.read(1)
    is_rec = head[:4] == recordio.MAGIC_BYTES
    if fmt == "rec":
        if head and not is_rec:
            guess = _tsv_guess(head, whole)
            hint = (
                f"; it looks like a {guess!r} file (use `annotator import {guess}`)"
                if guess
                else ""
            )
            return f"it does not start with a RecordIO record (magic 0xced7230a){hint}"
        idx = recordio.idx_path_for(p)
        return None if idx.is_file() else f"its index file {idx.name} is not beside it"
    if not head:
        return None  # an empty file imports nothing
    if is_rec:
        return "it is an InsightFace RecordIO file (use `annotator import rec`)"
    if image_kind(head[:16]) is not None:
        return "it is an image file, not a text file"
    if looks_binary(head[:65536]):
        return "it is a binary file, not a text file"
    counts = msceleb.column_counts(head, whole)
    want = TEXT_COLUMNS[fmt]
    if len(counts) < _SNIFF_MIN_LINES:
        return None
    guess = _tsv_guess(head, whole)
    if guess and guess != fmt:
        n = sum(c == TEXT_COLUMNS[guess] for c in counts)
        return (
            f"{n} of its first {len(counts)} lines have {TEXT_COLUMNS[guess]} tab-separated "
            f"columns, not {want}, like a {guess!r} file (use `annotator import {guess}`)"
        )
    if len(set(counts)) == 1 and counts[0] != want:
        return f"its first {len(counts)} lines all have {counts[0]} tab-separated column(s), not {want}"
    return None


def _tsv_guess(head: bytes, whole: bool) -> str | None:
    """The TSV format that at least 80% of the first lines fit by column count, if any."""
    counts = msceleb.column_counts(head, whole)
    if len(counts) < _SNIFF_MIN_LINES:
        return None
    for other, n in TEXT_COLUMNS.items():
        if sum(c == n for c in counts) * 5 >= len(counts) * 4:
            return other
    return None


def import_source(
    project: Project,
    fmt: str,
    path: str | Path,
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    batch_rows: int = BATCH_ROWS,
    batch_bytes: int = BATCH_BYTES,
    restart: bool = False,
    follow_links: bool = False,
) -> ImportResult:
    """Import (or continue importing) one source into ``project``.

    ``progress(done, total)`` gets rows done by this run and an estimate of the rows this run
    will do (0 when unknown); ``cancelled()`` is polled every few hundred rows and stops the
    import after committing what was read (the result then has ``complete=False``).

    ``restart`` first discards what an earlier (partial or complete) import of the same path
    stored — its faces, in short transactions, and the identities left empty — then imports
    from the start; it is refused when any of those faces carries review work.
    ``follow_links`` (folder sources) also imports symlinks that point outside the root.
    """
    check_format(fmt)
    p = resolve_path(fmt, path)
    try:
        size, mtime = source_stat(p)
        fp = fingerprint(p)
    except OSError as e:
        raise AnnotatorError(f"cannot read {p}: {e.strerror or e}") from None
    src = store.get_source(project, str(p), fmt)
    if src is not None and restart:
        discard_source(project, src)
        src = None
    if src is not None:
        if src.fingerprint != fp:
            state = "imported" if src.complete else "partially imported"
            raise AnnotatorError(
                f"{p} changed since it was {state} (size or content differs); "
                "restore the original file, or discard the earlier import and start again "
                "with `--restart`"
            )
        if not _resume_ok(fmt, src, size):
            raise AnnotatorError(
                f"the project's resume position for {p} is out of range (a damaged or crafted "
                "project file); discard the earlier import and start again with `--restart`"
            )
        if (src.size, src.mtime) != (size, mtime):
            store.update_source_stat(project, src.id, size, mtime)
        if src.complete:
            return _already_complete(project, src)
    else:
        why = format_mismatch(fmt, p)
        if why:
            raise AnnotatorError(f"{p} is not a {fmt!r} source: {why}")
        src = store.add_source(project, str(p), fmt, size, mtime, fp)
    return _run(
        project, fmt, p, src, size, progress, cancelled, batch_rows, batch_bytes, follow_links
    )


def _resume_ok(fmt: str, src: store.Source, size: int) -> bool:
    pos, rec = src.resume_pos, src.resume_record
    if not isinstance(pos, int) or not isinstance(rec, int) or rec < 0:
        return False
    # RecordIO and folders resume by index (rec keeps -1 after its last record)
    return fmt in ("rec", "folder") or 0 <= pos <= size


def discard_source(project: Project, src: store.Source, chunk: int | None = None) -> int:
    """Remove what importing ``src`` stored: its faces (``chunk`` per transaction), its import
    runs and rejected rows, and the identities left with no face, name or history. Refused
    (nothing removed) when one of its faces carries review work. Returns the faces removed."""
    worked = discard_store.reviewed_faces(project, src.id)
    if worked:
        raise AnnotatorError(
            f"cannot restart the import of {src.path}: {worked} of its faces carry review work "
            "(labels, history or QA); a restart would lose it"
        )
    removed = 0
    touched: set[int] = set()
    while True:
        n, ids = discard_store.discard_faces_chunk(project, src.id, chunk or DISCARD_CHUNK)
        if not n:
            break
        removed += n
        touched |= ids
    discard_store.discard_source(project, src.id, touched)
    return removed


def _already_complete(project: Project, src: store.Source) -> ImportResult:
    if src.format == "names":
        present = store.source_run_imported(project, src.id)
    else:
        present = store.source_face_count(project, src.id)
    return ImportResult(
        imported=0,
        skipped=present,
        rejected=store.rejected_of_source(project, src.id),
        identities=0,
        complete=True,
        source_id=src.id,
    )


class _Batch:
    __slots__ = ("faces", "names", "rejected", "keys", "nbytes")

    def __init__(self) -> None:
        self.faces: list[FaceRecord] = []
        self.names: list[tuple[str, str, str]] = []  # key, lang, name
        self.rejected: list[Rejected] = []
        self.keys: dict[str, None] = {}  # first-seen order
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self.faces) + len(self.names) + len(self.rejected)


def _run(
    project: Project,
    fmt: str,
    p: Path,
    src: store.Source,
    size: int,
    progress: ProgressFn | None,
    cancelled: CancelledFn | None,
    batch_rows: int,
    batch_bytes: int,
    follow_links: bool = False,
) -> ImportResult:
    result = ImportResult(source_id=src.id)
    ids = store.identity_ids(project)
    digests = store.takedown_digests(project)
    salt = project.meta("salt") or ""
    withdrawn: set[str] = set()
    ledger = withdrawal.Ledger.of(project)
    run_id = store.start_run(project, src.id)
    if fmt == "folder":
        reader = folder_fmt.read_folder(
            p, src.resume_pos, src.resume_record, follow_links=follow_links
        )
    else:
        reader = READERS[fmt](p, src.resume_pos, src.resume_record)
    start_pos = src.resume_pos
    by_bytes = fmt in ("msceleb", "devset", "names", "rec") and size > 0

    def is_withdrawn(key: str) -> bool:
        if key in ids:
            return False
        if key in withdrawn:
            return True
        if (digests and key_digest(salt, key) in digests) or ledger.key(key):
            withdrawn.add(key)
            return True
        return False

    def refuse_photos(b: _Batch) -> _Batch:
        """Faces whose photo the ledger holds leave the batch (counted)."""
        nonlocal withdrawn_skipped
        drop = withdrawal.withdrawn_photos(ledger, str(p), fmt, b.faces)
        if drop:
            b.faces = [f for i, f in enumerate(b.faces) if i not in drop]
            withdrawn_skipped += len(drop)
        return b

    withdrawn_skipped = 0  # counted by the reading thread; the writer counts the rest
    n_rejected = 0

    def flush(batch: _Batch, pos: int, rec_no: int, complete: bool) -> None:
        nonlocal n_rejected
        with project.tx():
            new = [k for k in batch.keys if k not in ids]
            if new:
                ids.update(store.create_identities(project, new))
                result.identities += len(new)
            if batch.faces:
                rows = []
                sid = src.id
                for f in batch.faces:
                    loc = f.locator
                    r = f.rect or _NO_RECT
                    rows.append(
                        (
                            ids[f.identity_key],
                            sid,
                            f.record,
                            loc.relpath,
                            loc.offset,
                            loc.length,
                            f.rank,
                            f.image_url,
                            f.page_url,
                            f.face_ref,
                            r[0],
                            r[1],
                            r[2],
                            r[3],
                        )
                    )
                n = store.insert_faces(project, rows)  # type: ignore[arg-type]
                result.imported += n
                result.skipped += len(rows) - n
                store.refresh_face_counts(project, {ids[f.identity_key] for f in batch.faces})
            if batch.names:
                uniq = {(ids[k], lang): name for k, lang, name in reversed(batch.names)}
                n = store.insert_names(
                    project, [(i, lang, name) for (i, lang), name in uniq.items()]
                )
                if fmt == "names":
                    result.imported += n
                    result.skipped += len(batch.names) - n
            if batch.rejected:
                store.insert_rejected(project, src.id, batch.rejected)
            store.set_resume(project, src.id, pos, rec_no, complete)
            n_rejected += len(batch.rejected)
            store.update_run(
                project, run_id, result.imported, result.skipped + withdrawn_skipped, n_rejected
            )

    batch = _Batch()
    pos, rec_no = src.resume_pos, src.resume_record
    rows_run = 0
    status = "failed"
    writer = _Writer(flush)
    try:
        for pos, rec_no, item in reader:
            rows_run += 1
            if isinstance(item, FaceRecord):
                key = item.identity_key
                if is_withdrawn(key):
                    withdrawn_skipped += 1
                else:
                    batch.faces.append(item)
                    batch.keys[key] = None
                    if item.locator.length:
                        batch.nbytes += item.locator.length
                    for lang, name in item.names.items():
                        batch.names.append((key, lang, name))
            elif isinstance(item, NameRecord):
                if is_withdrawn(item.identity_key):
                    withdrawn_skipped += 1
                else:
                    batch.names.append((item.identity_key, item.lang, item.name))
                    batch.keys[item.identity_key] = None
            elif isinstance(item, Rejected):
                batch.rejected.append(item)
                result.rejected.append(item)
            if rows_run % CANCEL_CHECK_ROWS == 0:
                stop = cancelled is not None and cancelled()
                if stop or len(batch) >= batch_rows or batch.nbytes >= batch_bytes:
                    writer.submit((refuse_photos(batch), pos, rec_no, False))
                    batch = _Batch()
                    if progress is not None:
                        progress(
                            rows_run, _estimate(rows_run, start_pos, pos, size) if by_bytes else 0
                        )
                    if stop:
                        writer.close()
                        status = "cancelled"
                        return result
        # end of source
        if fmt == "rec":
            pos = size
        writer.submit((refuse_photos(batch), pos, rec_no, True))
        writer.close()
        result.complete = True
        status = "done"
        if progress is not None:
            progress(rows_run, rows_run)
        return result
    except KeyboardInterrupt:
        status = "cancelled"
        raise
    finally:
        writer.close(raise_error=False)  # commits the batches already handed over
        result.skipped += withdrawn_skipped
        result.withdrawn += withdrawn_skipped
        withdrawn_skipped = 0
        try:
            store.finish_run(project, run_id, status, result.imported, result.skipped, n_rejected)
        except Exception:  # noqa: BLE001 - never mask the original error
            pass


class _Writer:
    """Commits batches on a second thread: SQLite releases the GIL while it works, so the
    inserts overlap with parsing the next batch. At most two batches wait in the queue."""

    def __init__(self, flush: Callable[..., None]):
        self._flush = flush
        self._q: queue.Queue[tuple | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="import-writer", daemon=True)
        self._thread.start()
        self._closed = False

    def _loop(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            if self.error is not None:
                continue  # drain without writing after a failure
            try:
                self._flush(*job)
            except BaseException as e:  # noqa: BLE001 - re-raised in the reading thread
                self.error = e

    def submit(self, job: tuple) -> None:
        if self.error is not None:
            raise self.error
        self._q.put(job)

    def close(self, raise_error: bool = True) -> None:
        if not self._closed:
            self._closed = True
            self._q.put(None)
            self._thread.join()
        if raise_error and self.error is not None:
            raise self.error


def _estimate(rows: int, start: int, pos: int, size: int) -> int:
    if pos <= start or pos < 0:
        return 0
    return max(rows, round(rows * (size - start) / (pos - start)))
