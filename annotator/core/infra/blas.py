"""One BLAS thread for small matrix products.

NumPy's bundled OpenBLAS splits every product over all cores. The products here (image
resizes in :mod:`annotator.core.dedup.hashing`, window sums in :mod:`annotator.core.dedup.verify`) are
many and small: split over threads they cost more CPU than they save — on this 2-core machine
the SSIM window sums ran 2-3x slower with OpenBLAS's default threads than with one — and the
parallelism of the scan is its worker processes. This is what threadpoolctl does, without the
dependency.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _blas_threads() -> tuple[object, object] | None:
    """(get, set) of the thread count of numpy's bundled OpenBLAS, or None (another BLAS)."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for stem in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                get = getattr(lib, f"{stem}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{stem}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    return get, put
    return None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the block with OpenBLAS on one thread, then restore its thread count."""
    api = _blas_threads()
    if api is None:
        yield
        return
    get, put = api
    old = int(get())  # type: ignore[operator]
    if old != 1:
        put(1)  # type: ignore[operator]
    try:
        yield
    finally:
        if old != 1:
            put(old)  # type: ignore[operator]
