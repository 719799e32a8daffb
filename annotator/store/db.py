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
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlite_utils import Database

from annotator.model import ORIGIN_CLI, AnnotatorError
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


# The channel a write goes through (batches.origin): the Project's ``origin`` ("cli" unless the
# desktop program sets "gui" on the projects it opens), or, inside a ``made_by`` block of a core
# function (a label file read: "import" and the file), that block's. A ContextVar: the block
# holds for its own thread only.
_origin: ContextVar[tuple[str, str | None] | None] = ContextVar("annotator_origin", default=None)


def current_origin(project: Project) -> tuple[str, str | None]:
    """(channel, detail) a batch written now through ``project`` records."""
    return _origin.get() or (project.origin, None)


@contextlib.contextmanager
def made_by(kind: str, detail: str | None = None) -> Iterator[None]:
    """Batches written in the block record ``kind`` (and ``detail``, e.g. the label file)."""
    token = _origin.set((kind, detail))
    try:
        yield
    finally:
        _origin.reset(token)


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

    def __init__(self, path: Path, conn: sqlite3.Connection, read_only: bool = False):
        self.path = path
        self.conn = conn
        # opened for reading only (the file or its folder is not writable): tx() refuses
        self.read_only = read_only
        # How long tx() waits for the write lock, in seconds (the GUI thread: a fraction of a
        # second, then the write is queued; see gui/tasks.WriteQueue). Set it for a block of
        # code with :meth:`waiting_at_most`.
        self.write_wait = BUSY_TIMEOUT_MS / 1000
        self._last_commit = 0.0
        self._gap = 0.0  # left after the last write transaction (see WRITER_GAP_S)
        self.origin = ORIGIN_CLI  # the channel its writes record (see current_origin)

    # -- transactions -------------------------------------------------------------
    @contextlib.contextmanager
    def tx(self, timeout: float | None = None) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE). Waits up to ``timeout`` seconds
        (default :attr:`write_wait`) for the write lock, then raises ``sqlite3.OperationalError``
        ("database is locked"; :func:`is_busy` says so)."""
        if self.read_only:
            raise ReadOnlyProject(
                f"{self.path} is read-only here (the file or its folder cannot be written): "
                "it was opened for reading; copy it somewhere writable to change it"
            )
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


class ReadOnlyProject(AnnotatorError):
    """A write asked of a project opened for reading only."""


def writable(path: Path) -> bool:
    """Whether SQLite may write the project file and create its -wal/-shm files beside it."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _connect(path: Path, mode: str | None = None) -> sqlite3.Connection:
    """``mode``: None (read-write), "ro" (read-only; WAL needs its -shm file beside it, which a
    read-only folder may not let SQLite create) or "immutable" (no locks, no -wal/-shm: for a
    read-only folder or mount; changes someone else makes meanwhile are not seen)."""
    target: str = str(path)
    if mode is not None:
        q = "immutable=1" if mode == "immutable" else "mode=ro"
        target = f"{path.as_uri()}?{q}"
    conn = sqlite3.connect(
        target,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
        uri=mode is not None,
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
    if exists and not writable(p):
        return _open_read_only(p)
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(p)
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
        if conn is not None:
            conn.close()
        if not exists and "unable to open" in str(e):
            raise AnnotatorError(f"cannot create {p}: folder {p.parent} is not writable") from None
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
    except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
        conn.close()
        if "malformed" in str(e):
            raise AnnotatorError(_unreadable(p, e)) from None
        raise AnnotatorError(f"cannot open project {p}: {one_line(e)}") from None


def _open_read_only(p: Path) -> Project:
    """A project whose file or folder cannot be written (a shared folder, a read-only mount):
    opened for reading — every command that only reads works; a write gives one line. Read-only
    mode first; when SQLite cannot open it so (WAL without a -shm file it may create), immutable
    (no locks: changes someone else makes while it is open are not seen)."""
    last: sqlite3.DatabaseError | None = None
    for mode in ("ro", "immutable"):
        conn: sqlite3.Connection | None = None
        try:
            conn = _connect(p, mode)
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            if conn is not None:
                conn.close()
            last = e
            if "unable to open" in str(e) or "readonly" in str(e):
                continue
            raise AnnotatorError(_unreadable(p, e)) from None
        try:
            if app_id != APPLICATION_ID:
                raise AnnotatorError(
                    f"{p} is an SQLite file of another program, not an annotator project"
                    if tables
                    else f"{p} is empty, not an annotator project"
                )
            old = (
                conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlite_migrations'"
                ).fetchone()
                and conn.execute(
                    "SELECT 1 FROM _sqlite_migrations WHERE migration_set = 'annotator' AND name IN"
                    f" ({','.join('?' * len(RENAMED))})",
                    list(RENAMED),
                ).fetchone()
            )
            if old or migrations.pending(Database(conn)):
                raise AnnotatorError(
                    f"{p} is read-only here and was made by an older annotator: open it once "
                    "where it can be written (or a writable copy) to bring it up to date"
                )
            why = schema_problem(conn, partial=False)
            if why is not None:
                raise AnnotatorError(
                    f"{p} is refused: its schema is not what annotator's migrations make ({why})"
                )
        except AnnotatorError:
            conn.close()
            raise
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
            conn.close()
            raise AnnotatorError(_unreadable(p, e)) from None
        return Project(p, conn, read_only=True)
    assert last is not None
    raise AnnotatorError(f"cannot open {p} read-only ({last})")


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


def one_line(e: BaseException, limit: int = 200) -> str:
    """An SQLite message as one short line (a damaged schema's message quotes its SQL)."""
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unreadable(p: Path, e: sqlite3.DatabaseError | UnicodeDecodeError) -> str:
    e = sqlite3.DatabaseError(one_line(e))
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

_expected_schema: dict[frozenset[str], dict[tuple[str, str], str]] = {}


# SQLite's own tables, by exact name and definition (ANALYZE / PRAGMA optimize and
# AUTOINCREMENT make them); anything else named ``sqlite_...`` is compared like any object.
_SQLITE_OWN = {
    ("table", "sqlite_sequence"): "CREATE TABLE sqlite_sequence(name,seq)",
    ("table", "sqlite_stat1"): "CREATE TABLE sqlite_stat1(tbl,idx,stat)",
    ("table", "sqlite_stat4"): "CREATE TABLE sqlite_stat4(tbl,idx,neq,nlt,ndlt,sample)",
}


def _schema_of(conn: sqlite3.Connection) -> dict[tuple[str, str], str]:
    """(type, name) -> normalised SQL (with the table it belongs to) of every schema object
    but SQLite's own statistics and sequence tables (which must have their exact definition:
    a crafted ``sqlite_stat1`` differs)."""
    out: dict[tuple[str, str], str] = {}
    for t, n, tbl, sql in conn.execute("SELECT type, name, tbl_name, sql FROM main.sqlite_schema"):
        key = (str(t), str(n))
        text = " ".join(str(sql or "").split())
        own = _SQLITE_OWN.get(key)
        if own is not None and text == own:
            continue
        out[key] = f"{tbl}: {text}"
    return out


def expected_schema(skip: frozenset[str] = frozenset()) -> dict[tuple[str, str], str]:
    """The schema the migrations make — all of them, or all but the steps in ``skip`` (those
    an older file has not had yet; not always the last ones: a step numbered for one branch
    may reach a file after a later-numbered step of another). Computed once per process for
    each."""
    if skip not in _expected_schema:
        mem = sqlite3.connect(":memory:", isolation_level=None)
        try:
            db = Database(mem)
            migrations.ensure_migrations_table(db)
            for step in migrations._migrations:
                if step.name in skip:
                    continue
                if step.transactional:
                    with db.atomic():
                        step.fn(db)
                else:
                    step.fn(db)
            _expected_schema[skip] = _schema_of(mem)
        finally:
            mem.close()
    return _expected_schema[skip]


def schema_problem(conn: sqlite3.Connection, partial: bool) -> str | None:
    """Why the file's schema is not the migrations' (None when it is). With ``partial`` (a file
    not migrated yet, e.g. made by an older version) objects may be missing, but every object
    present must be one the migrations make, with the same definition."""
    pending = migrations.pending(Database(conn)) if partial else []
    want = expected_schema(frozenset(m.name for m in pending))
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
