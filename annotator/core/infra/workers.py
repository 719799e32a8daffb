"""Worker process pools that never outlive their parent.

A ``ProcessPoolExecutor`` worker blocks on its task queue, whose pipe it holds both ends of, so
when the parent is killed (``kill -9``, an OOM kill, a crash) the worker never sees end-of-file
and stays alive for good. :func:`process_pool` starts workers ('spawn') that

* die with their parent: on Linux the kernel sends them SIGKILL when the parent goes
  (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon thread polls ``os.getppid()`` twice a
  second and exits the worker when it changes (the parent died and the worker was re-parented);
* ignore Ctrl-C: SIGINT is the parent's business (it cancels and commits what is done);
* run one BLAS thread each (the pool's parallelism is its processes).

Note ``PR_SET_PDEATHSIG`` fires when the *thread* that started the worker exits, so create and
use the pool in one thread (as a ``with`` block does); the pool's own threads do not start
workers unless ``max_tasks_per_child`` is set.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from annotator.model import AnnotatorError

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.5
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _set_pdeathsig() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            os._exit(1)  # the parent is gone: nothing of ours should run any more


def die_with_parent(parent: int | None = None, interval: float = POLL_SECONDS) -> None:
    """Make this (worker) process exit when its parent process dies. Call it once, first
    thing in a worker. ``parent``: the pid the worker was started by (when the caller knows
    it, a parent that died before this call is caught too); default: the current parent."""
    parent = os.getppid() if parent is None else parent
    _set_pdeathsig()
    if os.getppid() != parent:  # the parent died before we asked: we were re-parented
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent, interval), name="parent-watch", daemon=True
    ).start()


def _start_worker(parent: int, init: Callable[..., Any] | None, args: tuple[Any, ...]) -> None:
    """Every pool worker's initializer: parent death, Ctrl-C, then the caller's own."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if init is not None:
        init(*args)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or taskset's
    share, where the OS reports it; else every core)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def single_blas_thread() -> Iterator[None]:
    """Within the block, processes started inherit one BLAS/OpenMP thread each."""
    old = {k: os.environ.get(k) for k in BLAS_ENV}
    for k in old:
        os.environ[k] = "1"
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def process_pool(
    workers: int,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[ProcessPoolExecutor]:
    """A 'spawn' process pool whose workers die with this process and ignore Ctrl-C.

    ``initializer(*initargs)`` (a module-level function: it is pickled) runs once in each
    worker after that set-up, e.g. to load a model once per worker.
    """
    ctx = multiprocessing.get_context("spawn")
    with single_blas_thread():
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=ctx,
            initializer=_start_worker,
            initargs=(os.getpid(), initializer, initargs),
        ) as pool:
            yield pool


def run_chunks(
    pool: object,
    chunks: Iterable[object],
    submit: Callable[[object], Future],
    commit: Callable[[object], None],
    cancelled: Callable[[], bool],
    default_width: int,
) -> bool:
    """Feed ``chunks`` to ``pool`` through ``submit``, at most ``pool.width`` (a cluster's
    changes as workers come and go) or ``default_width`` in flight, and ``commit`` each result
    as it completes. Stops submitting once ``cancelled()``; what is in flight still commits.
    Returns True when it stopped with chunks left."""
    it = iter(chunks)
    inflight: set[Future] = set()
    exhausted = stopped = False
    while True:
        width = getattr(pool, "width", default_width)
        while not exhausted and len(inflight) < width and not cancelled():
            part = next(it, None)
            if part is None:
                exhausted = True
                break
            inflight.add(submit(part))
        if not inflight:
            return stopped
        fin, inflight = wait(inflight, return_when=FIRST_COMPLETED)
        for f in fin:
            try:
                out = f.result()
            except BrokenProcessPool:
                raise AnnotatorError(
                    "a worker process died (killed by the system, e.g. out of memory); what "
                    "was done is saved: run the command again to go on (with fewer --workers "
                    "if memory is short)"
                ) from None
            commit(out)
        if cancelled() and not exhausted:
            stopped = exhausted = True
