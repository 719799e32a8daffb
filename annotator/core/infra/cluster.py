"""Scan and embed on a Dask cluster (the optional ``[distributed]`` extra).

``annotator scan|embed --scheduler tcp://HOST:PORT [--path-map OLD=NEW ...]`` hands the per-face
work to a running Dask cluster instead of the local process pool. The work is the same: the
same worker entry points (``core.hashing.hash_planned``, ``core.embed.embed_planned``) run on
the same picklable read plans (:class:`~annotator.core.infra.access.ReadItem`), chunk by chunk, so
the results are the same bytes as a local run. What this module adds:

* :func:`connect` -- a :class:`Cluster` (a ``distributed.Client`` and a :class:`PathMap`),
  with a short connect timeout; an unreachable scheduler is one :class:`AnnotatorError` line
  and nothing has been written. dask is imported here and only here, only when connecting.
* :meth:`Cluster.executor` -- an executor-like object (``submit(fn, items, *args)`` returns a
  ``concurrent.futures.Future``, ``width`` the number of chunks to keep in flight) that scan
  and embed use in place of :func:`annotator.core.infra.workers.process_pool`. Each submit rewrites
  the plans' source paths through the path map and wraps the call in :func:`run_on_worker`,
  which checks each source on the worker (missing, changed since import: the same check a
  local scan makes before it starts) and turns the faces of a bad source into read errors
  naming their origin (never corrupt; they stay unhashed for a rerun), and runs an optional
  initializer once per worker thread (embed loads the dlib models once, a worker-side cache).
* Only the client writes the project file: scan and embed commit each finished chunk in its
  own short transaction, so a lost worker (the scheduler re-runs its chunks elsewhere), a
  Ctrl-C or a lost client loses at most the chunks in flight, and a rerun resumes.
* :meth:`Cluster.status` -- tasks done, workers and faces/s, for the progress bar's label.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from annotator.core.infra.access import EMBEDDED, FaceBytes, ReadItem
from annotator.formats import source_stat
from annotator.model import AnnotatorError
from annotator.store import faces as faces_store
from annotator.store.db import Project

INSTALL_HINT = (
    "--scheduler needs the optional extra: pip install -e '.[distributed]' "
    "(installs dask.distributed)"
)
CONNECT_TIMEOUT = 5.0  # seconds to reach the scheduler
RETRIES = 2  # a chunk whose task raised is tried this many more times (a lost worker's chunks
# are re-run by the scheduler itself, up to distributed.scheduler.allowed-failures times)
INFLIGHT_PER_THREAD = 2  # chunks in flight per worker thread (one running, one queued)
INFO_SECONDS = 1.0  # how long the workers' count is trusted
WAIT_WORKERS = 60.0  # seconds a run waits for a first worker to join an empty cluster


# -- path maps ----------------------------------------------------------------------------------
class PathMap:
    """Source path prefixes rewritten for the workers: ``OLD=NEW`` pairs, longest OLD first.

    A prefix matches whole path components (``/data`` maps ``/data/x.tsv``, not
    ``/database``)."""

    def __init__(self, pairs: Sequence[tuple[str, str]] = ()):
        self.pairs = sorted(pairs, key=lambda p: len(p[0]), reverse=True)

    @classmethod
    def parse(cls, specs: Sequence[str]) -> PathMap:
        pairs = []
        for spec in specs:
            old, sep, new = spec.partition("=")
            old, new = old.strip(), new.strip()
            if not sep or not old or not new or "\0" in spec:
                raise AnnotatorError(
                    f"bad --path-map {spec!r}: expected OLD=NEW (two non-empty path prefixes)"
                )
            if len(old) > 1:
                old = old.rstrip("/")
            if len(new) > 1:
                new = new.rstrip("/")
            if any(o == old for o, _ in pairs):
                raise AnnotatorError(f"bad --path-map {spec!r}: {old} is mapped twice")
            pairs.append((old, new))
        return cls(pairs)

    def __call__(self, path: str) -> str:
        for old, new in self.pairs:
            if path == old:
                return new
            prefix = old if old.endswith("/") else old + "/"
            if path.startswith(prefix):
                return new.rstrip("/") + "/" + path[len(prefix) :]
        return path

    def __bool__(self) -> bool:
        return bool(self.pairs)


# -- on a worker ----------------------------------------------------------------------------------
class SourceInfo(NamedTuple):
    """What :meth:`FaceBytes.check_source` needs of a source (picklable; path as mapped)."""

    path: str
    format: str
    size: int
    mtime: float
    fingerprint: str


_checked: dict[tuple[SourceInfo, tuple[int, float]], str | None] = {}
_checked_lock = threading.Lock()
_thread_inits = threading.local()


def check_source(src: SourceInfo) -> str | None:
    """Why ``src`` cannot be read on this worker, or None; remembered per process while the
    file's size and mtime stay the same (the content fingerprint reads 2 MiB)."""
    if src.format == "folder":  # only has to be a folder; each file is checked when read
        return FaceBytes.check_source(src)  # type: ignore[arg-type]
    try:
        key = (src, source_stat(src.path))
    except OSError:  # missing or unreadable: asked again next time (it may come back)
        return FaceBytes.check_source(src)  # type: ignore[arg-type]
    with _checked_lock:
        if key in _checked:
            return _checked[key]
    why = FaceBytes.check_source(src)  # type: ignore[arg-type]
    with _checked_lock:
        if len(_checked) > 10_000:
            _checked.clear()
        _checked[key] = why
    return why


def run_on_worker(
    fn: Callable[..., tuple[list[Any], list[tuple[int, str]]]],
    init: Callable[[], None] | None,
    items: Sequence[ReadItem],
    sources: dict[str, SourceInfo],
    args: tuple[Any, ...],
) -> tuple[list[Any], list[tuple[int, str]]]:
    """One chunk on a Dask worker: ``fn(good_items, *args)`` -> (rows, read errors), with the
    faces of sources that are missing or changed here added to the read errors (origin and
    reason) and ``init()`` run once per worker thread before the first call."""
    if init is not None:
        done = getattr(_thread_inits, "done", None)
        if done is None:
            done = _thread_inits.done = set()
        name = f"{init.__module__}.{init.__qualname__}"
        if name not in done:
            init()
            done.add(name)
    bad = {}
    for path, src in sources.items():
        why = check_source(src)
        if why:
            bad[path] = why
    good = [it for it in items if it.source_path not in bad]
    errors = [
        (it.face_id, f"{it.origin}: {bad[it.source_path]}") for it in items if it.source_path in bad
    ]
    rows, more = fn(good, *args) if good else ([], [])
    return rows, list(more) + errors


# -- on the client ----------------------------------------------------------------------------------
class ClusterExecutor:
    """What scan and embed submit chunks to when a scheduler is given (see the module doc)."""

    def __init__(
        self,
        cluster: Cluster,
        sources: dict[str, SourceInfo],
        initializer: Callable[[], None] | None = None,
    ):
        self.cluster = cluster
        self.sources = sources  # original path -> info with the mapped path
        self.initializer = initializer
        self._futures: set[Any] = set()
        self._lock = threading.Lock()

    @property
    def width(self) -> int:
        """Chunks to keep in flight: two per worker thread (asked each time: workers come and
        go), at least two."""
        return max(2, INFLIGHT_PER_THREAD * self.cluster.threads())

    def submit(self, fn: Callable[..., Any], items: Sequence[ReadItem], *args: Any) -> Any:
        pm = self.cluster.path_map
        mapped, srcs = [], {}
        for it in items:
            if it.fmt != EMBEDDED and it.source_path in self.sources:
                info = self.sources[it.source_path]
                srcs[info.path] = info
                mapped.append(it._replace(source_path=info.path))
            else:
                mapped.append(it._replace(source_path=pm(it.source_path)))
        fut = self.cluster.client.submit(
            run_on_worker, fn, self.initializer, mapped, srcs, args, pure=False, retries=RETRIES
        )
        with self._lock:
            self._futures.add(fut)
        self.cluster.submitted += 1
        out: concurrent.futures.Future = concurrent.futures.Future()
        n = len(items)

        def done(f: Any) -> None:  # runs in a client thread when the task ends
            with self._lock:
                self._futures.discard(f)
            try:
                r = f.result()
            except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
                out.set_exception(
                    AnnotatorError(f"a chunk of {n} faces failed on the Dask cluster: {e}")
                )
                return
            self.cluster.finished(n)
            out.set_result(r)

        fut.add_done_callback(done)
        return out

    def cancel(self) -> None:
        """Forget the chunks still in flight (their results would not be committed)."""
        with self._lock:
            futs = list(self._futures)
            self._futures.clear()
        if futs:
            with contextlib.suppress(Exception):
                self.cluster.client.cancel(futs)


class Cluster:
    """A connection to a Dask scheduler and the path map for its workers."""

    def __init__(self, client: Any, address: str, path_map: PathMap):
        self.client = client
        self.address = address
        self.path_map = path_map
        self.submitted = 0
        self.done = 0
        self.faces = 0
        self.start = time.monotonic()
        self._lock = threading.Lock()
        self._info: tuple[float, tuple[int, int]] | None = None

    def finished(self, faces: int) -> None:
        with self._lock:
            self.done += 1
            self.faces += faces

    def _counts(self) -> tuple[int, int]:
        """(workers, worker threads), asked of the scheduler at most every
        :data:`INFO_SECONDS` (a synchronous client's ``scheduler_info()`` is a round trip)."""
        now = time.monotonic()
        with self._lock:
            if self._info is not None and now - self._info[0] < INFO_SECONDS:
                return self._info[1]
        try:
            ws = list(self.client.scheduler_info().get("workers", {}).values())
            counts = (len(ws), sum(int(w.get("nthreads", 1)) for w in ws))
        except Exception:  # noqa: BLE001 - a status line must not fail a run
            counts = (0, 0)
        with self._lock:
            self._info = (now, counts)
        return counts

    def workers(self) -> int:
        return self._counts()[0]

    def threads(self) -> int:
        return self._counts()[1]

    def status(self) -> str:
        """``12/40 tasks, 2 workers, 3,120 faces/s`` (faces of finished chunks per second)."""
        rate = self.faces / max(time.monotonic() - self.start, 1e-9)
        w = self.workers()
        return (
            f"{self.done:,}/{self.submitted:,} tasks, {w} worker{'s' * (w != 1)}, "
            f"{rate:,.0f} faces/s"
        )

    @contextlib.contextmanager
    def executor(
        self, project: Project, initializer: Callable[[], None] | None = None
    ) -> Iterator[ClusterExecutor]:
        """An executor for one run over ``project``'s faces (chunks still in flight when the
        block ends, e.g. on Ctrl-C, are cancelled). A cluster without workers is given
        :data:`WAIT_WORKERS` seconds to get one, then it is one error line."""
        if self.workers() == 0:
            try:
                self.client.wait_for_workers(1, timeout=WAIT_WORKERS)
            except Exception:  # noqa: BLE001 - TimeoutError, a lost scheduler
                raise AnnotatorError(
                    f"the Dask scheduler at {self.address} has no workers "
                    f"(start some with: dask worker {self.address})"
                ) from None
            self._info = None
        sources = {
            s.path: SourceInfo(self.path_map(s.path), s.format, s.size, s.mtime, s.fingerprint)
            for s in faces_store.all_sources(project)
        }
        self.start = time.monotonic()
        ex = ClusterExecutor(self, sources, initializer)
        try:
            yield ex
        finally:
            ex.cancel()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _discard(client: Any) -> None:
    """Stop a client whose start failed, without the close handshake (nothing to close)."""
    with contextlib.suppress(Exception):
        client.status = "closed"  # Client.close (and __del__) return at once
    with contextlib.suppress(Exception):
        client._loop_runner.stop()


def connect(address: str, path_map: PathMap | None = None, timeout: float | None = None) -> Cluster:
    """Connect to the scheduler at ``address``; one-line :class:`AnnotatorError` when the
    extra is not installed or the scheduler cannot be reached within ``timeout`` seconds."""
    try:
        import distributed
    except ImportError:
        raise AnnotatorError(INSTALL_HINT) from None
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    addr = address.strip()
    if not addr:
        raise AnnotatorError("--scheduler needs an address such as tcp://HOST:8786")
    # built in two steps so that a failed start can be shut down here, quietly: left to
    # Client.__del__ it closes against a dead connection and prints a traceback at exit
    client = distributed.Client.__new__(distributed.Client)
    try:
        client.__init__(addr, timeout=timeout, set_as_default=False, direct_to_workers=False)
    except Exception as e:  # noqa: BLE001 - OSError, TimeoutError, ValueError (bad address)
        _discard(client)
        if isinstance(e, MemoryError):  # a length prefix read from something else's bytes
            why = "it answered, but not in the Dask protocol: is it a Dask scheduler?"
        else:
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise AnnotatorError(
            f"cannot reach the Dask scheduler at {addr} within {timeout:g}s ({why[:200]})"
        ) from None
    return Cluster(client, addr, path_map or PathMap())
