"""The identity list's model: an id array for the current filter/sort/search, rows fetched
lazily in pages and kept in a small LRU, single rows refreshed from ops.Changes.

In a big project (:data:`ASYNC_SEARCH_ABOVE` identities) a search text or a new sort order
runs its query on a worker thread with its own read connection, so typing or clicking a column
header never waits for SQL: the list keeps its rows until the newest query's ids arrive
(``searching`` is True meanwhile, ``searched`` fires after), and a newer search or sort or any
synchronous reload interrupts and discards an older one.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont

from annotator.store import browse
from annotator.store.db import Project, open_project

COLUMNS = ("Key", "Name", "Faces", "Flags", "State")
SORT_OF_COLUMN = ("key", "name", "faces", "flags", "state")
PAGE = 256
MAX_PAGES = 64

IdRole = Qt.ItemDataRole.UserRole + 1
ASYNC_SEARCH_ABOVE = 20_000  # identities; smaller projects search on the GUI thread (a few ms)

_Index = QModelIndex | QPersistentModelIndex


class _SearchSignals(QObject):
    done = Signal(int, object)  # search generation, ids (None when interrupted or failed)


class _Searcher:
    """One worker thread with its own read connection to the project file."""

    def __init__(self, path) -> None:
        self.path = path
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(1)
        self.signals = _SearchSignals()
        self.lock = threading.Lock()
        self.reader: Project | None = None  # opened and used by the worker only
        self.running = False

    def interrupt(self) -> None:
        with self.lock:
            if self.running and self.reader is not None:
                self.reader.conn.interrupt()

    def close(self) -> None:
        self.interrupt()
        self.pool.waitForDone()
        if self.reader is not None:
            self.reader.conn.close()  # read-only use: no PRAGMA optimize
            self.reader = None


class _SearchJob(QRunnable):
    def __init__(self, searcher: _Searcher, generation: int, params: tuple):
        super().__init__()
        self.searcher, self.generation, self.params = searcher, generation, params

    def run(self) -> None:  # worker thread: SQL through store functions only, no widgets
        s = self.searcher
        ids = None
        try:
            if s.reader is None:
                s.reader = open_project(s.path)
            with s.lock:
                s.running = True
            try:
                ids = browse.identity_ids(s.reader, *self.params)
            finally:
                with s.lock:
                    s.running = False
        except (sqlite3.Error, OSError, ValueError):
            ids = None  # interrupted by a newer search (or failed: the GUI searches itself)
        except Exception:  # noqa: BLE001 - never let a worker exception reach Qt
            ids = None
        s.signals.done.emit(self.generation, ids)


class IdentityModel(QAbstractTableModel):
    searched = Signal()  # an asynchronous search's ids are in the list now

    def __init__(self, project: Project, parent=None):
        super().__init__(parent)
        self.project = project
        self.filter = "unreviewed"
        self.search = ""
        self.sort_key = "suspicion"
        self.descending = False
        self.ids: list[int] = []
        self.searching = False
        self.async_above = ASYNC_SEARCH_ABOVE
        self._population = browse.review_progress(project)[1]
        self._generation = 0
        self._searcher: _Searcher | None = None
        self._row_of: dict[int, int] | None = None
        self._pages: OrderedDict[int, dict[int, browse.IdentityRow]] = OrderedDict()
        self._bold = QFont()
        self._bold.setBold(True)

    # -- queries -------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-run the one id query (filter/search/sort changed, or after an import)."""
        self._cancel_search()
        self._set_ids(
            browse.identity_ids(
                self.project, self.filter, self.search, self.sort_key, self.descending
            )
        )
        if not self.search.strip():
            self._population = browse.review_progress(self.project)[1]

    def _set_ids(self, ids: list[int]) -> None:
        self.beginResetModel()
        self.ids = ids
        self._row_of = None
        self._pages.clear()
        self.endResetModel()

    def set_filter(self, f: str) -> None:
        if f != self.filter:
            self.filter = f
            self.reload()

    def set_search(self, text: str) -> None:
        """Search; in a big project the ids arrive later (``searching``, then ``searched``)."""
        if text == self.search:
            return
        self.search = text
        if not text.strip() or self._population < self.async_above:
            self.reload()
            return
        self._query_in_worker()

    def _query_in_worker(self) -> None:
        """Run the id query for the current filter/search/sort on the worker thread."""
        self._cancel_search()
        if self._searcher is None:
            self._searcher = _Searcher(self.project.path)
            self._searcher.signals.done.connect(self._search_done)
        self.searching = True
        params = (self.filter, self.search, self.sort_key, self.descending)
        self._searcher.pool.start(_SearchJob(self._searcher, self._generation, params))

    def _cancel_search(self) -> None:
        self._generation += 1
        self.searching = False
        if self._searcher is not None:
            self._searcher.interrupt()

    def _search_done(self, generation: int, ids: list[int] | None) -> None:
        if generation != self._generation:
            return  # an older search, or a reload came in between
        if ids is None:
            self.reload()  # the worker failed: search here instead
        else:
            self.searching = False
            self._set_ids(ids)
        self.searched.emit()

    def close(self) -> None:
        """Stop the search worker and close its connection (the project stays open)."""
        self._cancel_search()
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Re-sort; in a big project the ids arrive later (``searching``, then ``searched``)."""
        key = "suspicion" if column < 0 else SORT_OF_COLUMN[column]
        desc = order == Qt.SortOrder.DescendingOrder
        if (key, desc) != (self.sort_key, self.descending):
            self.sort_key, self.descending = key, desc
            if self._population >= self.async_above:
                self._query_in_worker()  # 0.05-0.2 s of SQL at 100k identities
                return
            self.layoutAboutToBeChanged.emit()
            self.reload()
            self.layoutChanged.emit()

    def next_unreviewed_row(self, start: int) -> int | None:
        """The first row after ``start`` (wrapping around, ``start`` itself last) whose identity
        is not reviewed, in the list's current order; None when every one is reviewed.

        The rows already loaded right after ``start`` are looked at first (usually the very
        next row is the answer); otherwise one query gives every unreviewed id and the id array
        is walked in memory, so a mostly reviewed list of 100k costs one query, not a page
        query per 256 rows."""
        n = len(self.ids)
        if n == 0:
            return None
        for k in range(1, min(n, PAGE) + 1):
            r = (start + k) % n
            page = self._pages.get(r // PAGE)
            if page is None:
                break
            row = page.get(self.ids[r])
            if row is not None and not row.reviewed:
                return r
        todo = browse.unreviewed_ids(self.project)
        if todo:
            ids = self.ids
            for r in itertools.chain(range(start + 1, n), range(0, min(start + 1, n))):
                if ids[r] in todo:
                    return r
        return None

    def row_of(self, identity_id: int) -> int | None:
        if self._row_of is None:
            self._row_of = {i: r for r, i in enumerate(self.ids)}
        return self._row_of.get(identity_id)

    def identity_row(self, row: int) -> browse.IdentityRow | None:
        if not 0 <= row < len(self.ids):
            return None
        page_no = row // PAGE
        page = self._pages.get(page_no)
        if page is None:
            page = browse.identity_rows(
                self.project, self.ids[page_no * PAGE : (page_no + 1) * PAGE]
            )
            self._pages[page_no] = page
            while len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        else:
            self._pages.move_to_end(page_no)
        return page.get(self.ids[row])

    def row_by_id(self, identity_id: int) -> browse.IdentityRow | None:
        r = self.row_of(identity_id)
        if r is not None:
            return self.identity_row(r)
        return browse.identity_rows(self.project, [identity_id]).get(identity_id)

    def refresh(self, identity_ids: Iterable[int]) -> None:
        """Re-read the given identities' rows (after an operation); the id list stays as it is
        so the reviewer's place in the list does not jump."""
        ids = [i for i in identity_ids if self.row_of(i) is not None]
        if not ids:
            return
        fresh = browse.identity_rows(self.project, ids)
        for i in ids:
            r = self.row_of(i)
            assert r is not None
            page = self._pages.get(r // PAGE)
            if page is not None and i in fresh:
                page[i] = fresh[i]
            self.dataChanged.emit(self.index(r, 0), self.index(r, len(COLUMNS) - 1))

    # -- Qt model API --------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.ids)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        if role == IdRole:
            return self.ids[index.row()]
        if role not in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.ForegroundRole,
            Qt.ItemDataRole.TextAlignmentRole,
            Qt.ItemDataRole.FontRole,
        ):
            return None
        row = self.identity_row(index.row())
        if row is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return row.key
            if col == 1:
                return row.name or ""
            if col == 2:
                return row.face_count
            if col == 3:
                return row.flagged_count or ""
            return (
                "✓"
                if row.reviewed
                else (f"{row.labeled_count}/{row.face_count}" if row.labeled_count else "")
            )
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"{row.key}  {row.name or ''}\n{row.face_count} faces, {row.labeled_count} labeled, "
                f"{row.flagged_count} flagged, suspicion {row.suspicion:.2f}"
                + ("\nreviewed" if row.reviewed else "")
            )
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 3, 4):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if row.reviewed:
                return QBrush(QColor("#3f8f4f"))
            if col == 3 and row.flagged_count:
                return QBrush(QColor("#c0392b"))
        if role == Qt.ItemDataRole.FontRole and col == 3 and row.flagged_count:
            return self._bold
        return None
