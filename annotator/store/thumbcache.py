"""The disposable thumbnail cache beside a project: small JPEGs keyed by (face id, size) in
one SQLite file (``<project>.cache/thumbs.sqlite``), deletable at any time (even while the
reviewer runs: the next read starts a new file). Used from the
GUI's thumbnail workers (one connection per thread); no Qt here.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

CACHE_SUFFIX = ".cache"  # <project>.cache/thumbs.sqlite (store.db.Project.cache_dir)
_SETUP = threading.Lock()  # a new connection's setup, one thread of this process at a time
SETUP_WAIT = 0.5  # s a connection's setup waits for another process's lock ...
SETUP_RETRY = 2.0  # ... then the cache is a miss for this long before it tries again
BUSY_WAIT = 5.0  # s a read or write waits for another connection's lock


class DiskCache:
    """Small JPEG thumbnails keyed by (face id, size) in one SQLite file; one connection per
    thread. Any failure (deleted file, read-only folder) just means a cache miss.

    A takedown bumps the project's data version (meta ``data_version``). The cache remembers the
    version it was made under and checks it (a read-only look at the project file beside it)
    before a thumbnail is read from a source or written: once another process has withdrawn
    someone, this cache writes nothing and :meth:`current` is False, so a window that still
    holds the removed faces' locators cannot rebuild their thumbnails; it must reload (a new
    cache) and so learns that they are gone."""

    def __init__(self, path: Path | None):
        self.path = path
        self._local = threading.local()
        self.disabled = path is None
        self._retry_at = 0.0  # a setup that found the file locked: a miss until then
        self.project_file = _project_of(path)
        self.version = self._project_version()

    def _conn(self) -> sqlite3.Connection | None:
        if self.disabled:
            return None
        c = getattr(self._local, "conn", None)
        if c is not None and self.path is not None and not self.path.exists():
            # The cache was deleted while open: start a new file (the old connection only
            # reaches the deleted one).
            c.close()
            c = self._local.conn = None
        if c is None:
            if not self.current():  # a takedown since this cache was made: no new file
                self.disabled = True
                return None
            c = self._open()
            if c is None:
                return None
            self._local.conn = c
        return c

    def _open(self) -> sqlite3.Connection | None:
        """A new connection to the cache file, set up (WAL, the table). Two connections
        setting up a new file at once can fail at once (SQLite will not wait where waiting
        could deadlock), which used to disable the cache for the session. So this process's
        threads set it up one at a time; a file another process holds locked is a miss for
        SETUP_RETRY seconds, then tried again; any other failure (a read-only folder, not a
        database) disables the cache."""
        assert self.path is not None
        if time.monotonic() < self._retry_at:
            return None
        c = None
        with _SETUP:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                c = sqlite3.connect(str(self.path), timeout=SETUP_WAIT, isolation_level=None)
                c.execute("PRAGMA journal_mode = WAL")
                c.execute("PRAGMA synchronous = OFF")
                c.execute(
                    "CREATE TABLE IF NOT EXISTS thumbs (face_id INTEGER NOT NULL,"
                    " size INTEGER NOT NULL, key TEXT NOT NULL, jpeg BLOB NOT NULL,"
                    " PRIMARY KEY (face_id, size))"
                )
                c.execute(f"PRAGMA busy_timeout = {int(BUSY_WAIT * 1000)}")
                return c
            except sqlite3.OperationalError as e:
                if c is not None:
                    c.close()
                if (e.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    self._retry_at = time.monotonic() + SETUP_RETRY
                else:
                    self.disabled = True
                return None
            except (sqlite3.Error, OSError):
                if c is not None:
                    c.close()
                self.disabled = True
                return None

    def _project_version(self) -> int | None:
        """The project's data version now; None when there is no project file to ask. A
        short read-only connection each time: one kept per worker thread would keep the
        project's -wal file after the window closes."""
        if self.project_file is None or not self.project_file.exists():
            return None
        try:
            c = sqlite3.connect(f"file:{self.project_file}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return None
        try:
            row = c.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
            return int(row[0]) if row else 0
        except (sqlite3.Error, ValueError):
            return None
        finally:
            c.close()

    def current(self) -> bool:
        """False once the project's data changed under this cache (a takedown)."""
        v = self._project_version()
        return v is None or self.version is None or v == self.version

    def get(self, face_id: int, size: int, key: str) -> bytes | None:
        c = self._conn()
        if c is None:
            return None
        try:
            r = c.execute(
                "SELECT jpeg, key FROM thumbs WHERE face_id = ? AND size = ?", (face_id, size)
            ).fetchone()
        except sqlite3.Error:
            return None
        return r[0] if r and r[1] == key else None

    def put(self, face_id: int, size: int, key: str, jpeg: bytes) -> None:
        if not self.current():
            self.disabled = True  # withdrawn faces' thumbnails are never written back
            return
        c = self._conn()
        if c is None:
            return
        try:
            c.execute(
                "INSERT OR REPLACE INTO thumbs(face_id, size, key, jpeg) VALUES (?, ?, ?, ?)",
                (face_id, size, key, jpeg),
            )
        except sqlite3.Error:
            pass


def _project_of(cache_file: Path | None) -> Path | None:
    """The project file a cache file belongs to (``P.db.cache/thumbs.sqlite`` -> ``P.db``)."""
    if cache_file is None or not cache_file.parent.name.endswith(CACHE_SUFFIX):
        return None
    return cache_file.parent.with_name(cache_file.parent.name[: -len(CACHE_SUFFIX)])


def purge_thumb_cache(cache_file: Path, face_ids: Sequence[int]) -> bool:
    """Delete the thumbnails of ``face_ids`` from a thumbnail cache file (store/thumbcache.py:
    table ``thumbs`` keyed by face id), then VACUUM it and truncate its WAL so the deleted
    bytes leave the files. True when done; False when the file cannot be changed."""
    try:
        conn = sqlite3.connect(str(cache_file), timeout=5, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        conn.execute("PRAGMA secure_delete = ON")
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'thumbs'"
        ).fetchone()
        if has:
            ids = list(face_ids)
            conn.execute("BEGIN IMMEDIATE")
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                conn.execute(
                    f"DELETE FROM thumbs WHERE face_id IN ({','.join('?' * len(chunk))})", chunk
                )
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not (busy and busy[0])
    except sqlite3.Error:
        return False
    finally:
        conn.close()
