"""The disk thumbnail cache (store/thumbcache.py) under the GUI's worker threads: two threads
that open a new cache file at once both write (two connections setting a new file up at once
can fail at once; a lost race used to disable the cache for the whole session), and a file
another process holds locked is a short miss, not a disabled cache."""

from __future__ import annotations

import sqlite3
import threading
import time

from annotator.store import thumbcache
from annotator.store.thumbcache import DiskCache


def test_two_threads_opening_a_new_cache_at_once_both_write(tmp_path) -> None:
    lost = 0
    for trial in range(100):
        cache = DiskCache(tmp_path / f"c{trial}" / "thumbs.sqlite")
        start = threading.Barrier(2)

        def put(face: int, cache: DiskCache = cache, start: threading.Barrier = start) -> None:
            start.wait()
            cache.put(face, 128, "k", b"x" * 5000)

        threads = [threading.Thread(target=put, args=(f,)) for f in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lost += cache.disabled or any(cache.get(f, 128, "k") is None for f in (1, 2))
    assert lost == 0


def test_a_cache_in_a_folder_it_cannot_create_is_a_miss_not_an_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = DiskCache(blocker / "sub" / "thumbs.sqlite")
    cache.put(1, 128, "k", b"x")
    assert cache.get(1, 128, "k") is None and cache.disabled


def test_a_cache_file_another_process_holds_is_a_short_miss_then_used(
    tmp_path, monkeypatch
) -> None:
    path = tmp_path / "c" / "thumbs.sqlite"
    path.parent.mkdir()
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process creating the file
    cache = DiskCache(path)
    t0 = time.monotonic()
    assert cache.get(1, 128, "k") is None
    assert cache.get(1, 128, "k") is None  # within SETUP_RETRY: no second wait
    assert time.monotonic() - t0 < thumbcache.SETUP_WAIT + 1.0
    assert not cache.disabled
    other.execute("COMMIT")
    other.close()
    monkeypatch.setattr(cache, "_retry_at", 0.0)
    cache.put(1, 128, "k", b"x")
    assert cache.get(1, 128, "k") == b"x"
