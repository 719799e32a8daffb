"""Opening the project file: pragmas, ownership check, migrations, transactions.

All SQL of the project lives in ``annotator.store``; other packages call the named
functions of its modules with a :class:`Project`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlite_utils import Database

from annotator.model import AnnotatorError
from annotator.store.migrations import RENAMED, migrations

T = TypeVar("T")

APPLICATION_ID = 0x414E4E4F  # "ANNO"
BUSY_TIMEOUT_MS = 10_000
# Waiting for the write lock (Project.tx): SQLite's own busy handler backs off to 100 ms sleeps
# and so almost never sees the short gap between two batches of a long phase (measured: a
# writer starved for seconds behind back-to-back 50 ms transactions). tx() polls instead, and a
# connection that just committed leaves a gap before its next write transaction (a tenth of the
# time it held the lock, at most WRITER_GAP_S: back-to-back 50 ms batches lose ~6%, a burst of
# tiny transactions almost nothing), so a waiting writer (a reviewer's key, a CLI
# `labels import`) gets in within milliseconds.
POLL_S = 0.001  # between two tries for the lock in the first second of a wait
POLL_SLOW_S = 0.004  # after that
WRITER_GAP_S = 0.003


def is_busy(e: BaseException) -> bool:
    """An SQLite error that says another connection holds the lock (try again later)."""
    return isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e))


def chunks(seq: Sequence[T], n: int = 500) -> Iterator[Sequence[T]]:
    """``seq`` in slices of ``n``: the ids of one ``IN (?, ...)`` list (SQLite allows a few
    hundred parameters everywhere; a sorted id list walks the table's B-tree in order)."""
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def now() -> str:
    """UTC timestamp with milliseconds, ISO 8601 — the one time format in the project file."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Project:
    """An open project file. One connection; writes go through :meth:`tx`."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        # How long tx() waits for the write lock, in seconds (the GUI thread: a fraction of a
        # second, then the write is queued; see gui/tasks.WriteQueue). Set it for a block of
        # code with :meth:`waiting_at_most`.
        self.write_wait = BUSY_TIMEOUT_MS / 1000
        self._last_commit = 0.0
        self._gap = 0.0  # left after the last write transaction (see WRITER_GAP_S)

    # -- transactions -------------------------------------------------------------
    @contextlib.contextmanager
    def tx(self, timeout: float | None = None) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE). Waits up to ``timeout`` seconds
        (default :attr:`write_wait`) for the write lock, then raises ``sqlite3.OperationalError``
        ("database is locked"; :func:`is_busy` says so)."""
        if self.conn.in_transaction:  # nested use joins the outer transaction
            yield self.conn
            return
        self._begin(self.write_wait if timeout is None else timeout)
        began = time.monotonic()
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._last_commit = time.monotonic()
            self._gap = min(WRITER_GAP_S, 0.1 * (self._last_commit - began))

    def _begin(self, wait: float) -> None:
        since = time.monotonic() - self._last_commit
        if since < self._gap:  # back-to-back batches: let a waiting writer in between
            time.sleep(self._gap - since)
        start = time.monotonic()
        self.conn.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as e:
                    waited = time.monotonic() - start
                    if not is_busy(e) or waited >= wait:
                        raise
                    time.sleep(min(POLL_S if waited < 1 else POLL_SLOW_S, wait - waited))
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    @contextlib.contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator[None]:
        """Every tx() in the block waits at most ``seconds`` for the write lock (for callers of
        core functions that open their own transactions, e.g. core.ops)."""
        old = self.write_wait
        self.write_wait = seconds
        try:
            yield
        finally:
            self.write_wait = old

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def delete_meta(self, key: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM meta WHERE key = ?", (key,))

    @property
    def cache_dir(self) -> Path:
        """Disposable cache beside the project (thumbnails); safe to delete at any time."""
        return self.path.with_name(self.path.name + ".cache")

    def close(self) -> None:
        # only a connection that wrote refreshes the statistics: a read (or a failed command)
        # leaves the file as it was
        with contextlib.suppress(sqlite3.Error):
            if self.conn.total_changes:
                self.conn.execute("PRAGMA optimize")
        self.conn.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def open_project(path: str | os.PathLike[str], create: bool = False) -> Project:
    """Open (and migrate) a project file; with ``create`` make it when missing.

    Raises :class:`AnnotatorError` with one clear line when the file is missing, is not
    SQLite, or is an SQLite file of some other program.
    """
    p = Path(path).expanduser().absolute()
    exists = p.exists()
    if not exists and not create:
        raise AnnotatorError(f"no project file at {p} (create one with `annotator import ...`)")
    if exists and p.is_dir():
        raise AnnotatorError(f"{p} is a directory, not a project file")
    if not exists:
        if not p.parent.exists():
            raise AnnotatorError(f"folder {p.parent} does not exist")
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(p)
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as e:
        if conn is not None:
            conn.close()
        raise AnnotatorError(_unreadable(p, e)) from None
    if app_id != APPLICATION_ID:
        if tables:
            conn.close()
            raise AnnotatorError(
                f"{p} is an SQLite file of another program, not an annotator project"
            )
        if not create:  # an empty file: only a command that creates projects may fill it
            conn.close()
            raise AnnotatorError(
                f"{p} is empty, not an annotator project (create one with `annotator import ...`)"
            )
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    try:
        # WAL; where it is refused (e.g. a network file system) the default journal serves
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        rename_old_steps(conn)
        why = schema_problem(conn, partial=True)  # before migrating: nothing foreign runs
        if why is None:
            migrations.apply(Database(conn))
            why = schema_problem(conn, partial=False)
        if why is not None:
            conn.close()
            raise AnnotatorError(
                f"{p} is refused: its schema is not what annotator's migrations make ({why})"
            )
        project = Project(p, conn)
        if project.meta("app") is None:
            with project.tx() as c:
                c.execute("INSERT INTO meta(key, value) VALUES ('app', 'annotator')")
                c.execute("INSERT INTO meta(key, value) VALUES ('created_at', ?)", (now(),))
                # Salt for takedown digests, so a digest cannot be matched across projects.
                c.execute(
                    "INSERT INTO meta(key, value) VALUES ('salt', ?)", (secrets.token_hex(16),)
                )
        return project
    except sqlite3.DatabaseError as e:
        conn.close()
        if "malformed" in str(e):
            raise AnnotatorError(_unreadable(p, e)) from None
        raise AnnotatorError(f"cannot open project {p}: {e}") from None


def rename_old_steps(conn: sqlite3.Connection) -> None:
    """A project migrated before the steps were renamed into the order they apply records the
    old names; give them the new ones so no step runs twice."""
    if not conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlite_migrations'"
    ).fetchone():
        return
    marks = ", ".join("?" * len(RENAMED))
    if conn.execute(  # only then a write: opening must not wait for another writer's lock
        f"SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'annotator' AND name IN ({marks})",
        list(RENAMED),
    ).fetchone():
        conn.executemany(
            "UPDATE _sqlite_migrations SET name = ? WHERE migration_set = 'annotator' AND name = ?",
            [(new, old) for old, new in RENAMED.items()],
        )


def _unreadable(p: Path, e: sqlite3.DatabaseError) -> str:
    if "malformed" in str(e):  # our file (or an SQLite file) whose pages are damaged
        return f"{p} is damaged ({e}); restore it from a backup"
    if "unable to open" in str(e):
        return f"cannot open {p} ({e})"
    return f"{p} is not an annotator project ({e})"


# -- schema check --------------------------------------------------------------------------
# A project file is only opened when its schema is exactly what the migrations make: a crafted
# file could otherwise carry triggers or views that run on our writes (rewriting reviewers,
# deleting hashes). The expected schema is made once per process by running the migrations on
# an in-memory database.

_expected_schema: dict[str | None, dict[tuple[str, str], str]] = {}


def _schema_of(conn: sqlite3.Connection) -> dict[tuple[str, str], str]:
    """(type, name) -> normalised SQL of every schema object but SQLite's own."""
    return {
        (str(t), str(n)): " ".join(str(sql or "").split())
        for t, n, sql in conn.execute("SELECT type, name, sql FROM main.sqlite_master")
        if not str(n).startswith("sqlite_")
    }


def expected_schema(stop_before: str | None = None) -> dict[tuple[str, str], str]:
    """The schema the migrations make — all of them, or those before ``stop_before`` (the
    first step an older file has not had yet). Computed once per process for each."""
    if stop_before not in _expected_schema:
        mem = sqlite3.connect(":memory:", isolation_level=None)
        try:
            migrations.apply(Database(mem), stop_before=stop_before)
            _expected_schema[stop_before] = _schema_of(mem)
        finally:
            mem.close()
    return _expected_schema[stop_before]


def schema_problem(conn: sqlite3.Connection, partial: bool) -> str | None:
    """Why the file's schema is not the migrations' (None when it is). With ``partial`` (a file
    not migrated yet, e.g. made by an older version) objects may be missing, but every object
    present must be one the migrations make, with the same definition."""
    pending = migrations.pending(Database(conn)) if partial else []
    want = expected_schema(pending[0].name if pending else None)
    have = _schema_of(conn)
    for key in sorted(have):
        if key not in want:
            return f"foreign {key[0]} {key[1]!r}"
        if have[key] != want[key]:
            return f"{key[0]} {key[1]!r} is defined differently"
    if not partial:
        missing = sorted(set(want) - set(have))
        if missing:
            return f"{missing[0][0]} {missing[0][1]!r} is missing"
    return None
