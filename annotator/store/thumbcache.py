"""The disposable thumbnail cache beside a project: small JPEGs keyed by (face id, size) in
one SQLite file (``<project>.cache/thumbs.sqlite``), deletable at any time (even while the
reviewer runs: the next read starts a new file). Used from the
GUI's thumbnail workers (one connection per thread); no Qt here.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path


class DiskCache:
    """Small JPEG thumbnails keyed by (face id, size) in one SQLite file; one connection per
    thread. Any failure (deleted file, read-only folder) just means a cache miss."""

    def __init__(self, path: Path | None):
        self.path = path
        self._local = threading.local()
        self.disabled = path is None

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
            try:
                assert self.path is not None
                self.path.parent.mkdir(parents=True, exist_ok=True)
                c = sqlite3.connect(str(self.path), timeout=5, isolation_level=None)
                c.execute("PRAGMA journal_mode = WAL")
                c.execute("PRAGMA synchronous = OFF")
                c.execute(
                    "CREATE TABLE IF NOT EXISTS thumbs (face_id INTEGER NOT NULL,"
                    " size INTEGER NOT NULL, key TEXT NOT NULL, jpeg BLOB NOT NULL,"
                    " PRIMARY KEY (face_id, size))"
                )
            except (sqlite3.Error, OSError):
                self.disabled = True
                return None
            self._local.conn = c
        return c

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
