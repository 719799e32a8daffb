"""The identity list left of the faces: search box, filter, the sortable table, its info line.

A view: it owns its widgets and the project's :class:`IdentityModel`, redraws itself from an
op's ``Changes`` (:meth:`IdentityList.apply_changes`, connected to the window's
``op_executed``) and tells the window only which identity was chosen (``chosen``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from annotator.core.review import ops
from annotator.gui.identity_model import SORT_OF_COLUMN, IdentityModel
from annotator.store import browse
from annotator.store.db import Project

FILTER_TITLES = {
    "unreviewed": "Unreviewed",
    "flagged": "Flagged",
    "reviewed": "Reviewed",
    "all": "All identities",
}


def sort_of_column(col: int) -> str:
    return "suspicion" if col < 0 else SORT_OF_COLUMN[col]


class IdentityList(QWidget):
    chosen = Signal(int)  # an identity picked in the list (click, keys, Enter in the search)
    help_requested = Signal()  # `?` in the table (not a keyboard search)
    to_faces = Signal()  # Escape or Enter in the search box: the keys go back to the faces

    def __init__(self, current: Callable[[], int | None], parent: QWidget | None = None):
        super().__init__(parent)
        self._current = current  # the identity the faces show (the window's)
        self.project: Project | None = None
        self.model: IdentityModel | None = None
        self.reviewed = 0
        self.total = 0
        lv = QVBoxLayout(self)
        lv.setContentsMargins(6, 6, 0, 6)
        top = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search key or name  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.filter_box = QComboBox()
        for k, title in FILTER_TITLES.items():
            self.filter_box.addItem(title, k)
        top.addWidget(self.search, 1)
        top.addWidget(self.filter_box)
        lv.addLayout(top)
        self.table = t = QTableView()
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.verticalHeader().setVisible(False)
        t.verticalHeader().setDefaultSectionSize(24)
        t.setAlternatingRowColors(True)
        t.setShowGrid(False)
        t.setWordWrap(False)
        t.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        t.setSortingEnabled(False)  # we sort in SQL on header clicks
        t.horizontalHeader().setSectionsClickable(True)
        t.horizontalHeader().setSortIndicatorShown(True)
        t.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        t.horizontalHeader().sectionClicked.connect(self.header_clicked)
        t.installEventFilter(self)  # `?` is help, not a keyboard search
        self.search.installEventFilter(self)
        lv.addWidget(t, 1)
        self.info = QLabel()
        self.info.setStyleSheet("color:#666")
        lv.addWidget(self.info)
        self.filter_box.currentIndexChanged.connect(self._filter_changed)
        self.search_timer = QTimer(self, singleShot=True, interval=150)
        self.search_timer.timeout.connect(self._search_changed)
        self.search.textChanged.connect(lambda _t: self.search_timer.start())
        self.search.returnPressed.connect(self._search_enter)

    # -- the project ---------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        self.close_model()
        self.project = project
        self.model = IdentityModel(project, self)
        self.model.reload()
        self.model.searched.connect(self._after_list_change)
        self.table.setModel(self.model)
        self._size_columns()
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.reviewed, self.total = browse.review_progress(project)
        self._update_info()

    def close_model(self) -> None:
        if self.model is not None:
            self.model.close()

    def reload(self) -> None:
        """Everything again (an import or a scan finished); the current identity stays chosen."""
        if self.project is None or self.model is None:
            return
        keep = self._current()
        self.model.reload()
        self.reviewed, self.total = browse.review_progress(self.project)
        self._update_info()
        if keep is not None and self.model.row_of(keep) is not None:
            self.select_row(self.model.row_of(keep))
        elif self.model.ids:
            self.table.selectRow(0)

    def apply_changes(self, ch: ops.Changes, _follow: bool = False) -> None:
        """Redraw the rows of the identities an op touched and the reviewed count."""
        if self.model is None:
            return
        self.reviewed += sum(1 if rev else -1 for rev in ch.reviewed.values())
        self.model.refresh(ch.identities)
        if ch.identities:
            self._update_info()

    def _size_columns(self) -> None:
        """Key, counts and state as wide as their bold header and their content need (the
        Fusion style draws the sort arrow above the title); the name takes the rest."""
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        fm = self.table.fontMetrics()
        bold = QFont(hh.font())
        bold.setBold(True)
        hm = QFontMetrics(bold)
        samples = {0: "m.0m9etj4x", 2: "9999", 3: "999", 4: "99/999"}
        for c, sample in samples.items():
            head = str(self.model.headerData(c, Qt.Orientation.Horizontal)) if self.model else ""
            w = max(hm.horizontalAdvance(head), fm.horizontalAdvance(sample)) + 12
            self.table.setColumnWidth(c, w)

    # -- filter, search, sort --------------------------------------------------------------------
    def _update_info(self) -> None:
        if self.model is None:
            return
        m = self.model
        if m.sort_key == "suspicion":  # the review order, explained (a row's tooltip has its score)
            order = "most suspicious first (flags weighted by kind)"
        else:
            order = f"by {m.sort_key}, {'descending' if m.descending else 'ascending'}"
        self.info.setText(
            f"{len(m.ids):,} shown · {self.reviewed:,} of {self.total:,} reviewed\norder: {order}"
        )

    def set_filter(self, key: str) -> None:
        i = self.filter_box.findData(key)
        if i >= 0:
            self.filter_box.setCurrentIndex(i)

    def _filter_changed(self) -> None:
        if self.model is not None:
            self.model.set_filter(self.filter_box.currentData())
            self._after_list_change()

    def _search_changed(self) -> None:
        if self.model is not None and self.project is not None:
            self.model.set_search(self.search.text())
            if self.model.searching:  # a big project: the ids arrive with model.searched
                self.info.setText("Searching…")
            else:
                self._after_list_change()

    def _search_enter(self) -> None:
        """Enter in the search box: open the first match and go back to the faces."""
        if self.search_timer.isActive():
            self.search_timer.stop()
            self._search_changed()
        if self.model is not None and self.model.searching:
            self.model.reload()  # Enter wants the result now
            self._after_list_change()
        self.to_faces.emit()
        if self.model is not None and self.table.currentIndex().isValid():
            self._row_changed(self.table.currentIndex(), None)

    def header_clicked(self, col: int) -> None:
        if self.model is None:
            return
        hh = self.table.horizontalHeader()
        if self.model.sort_key == sort_of_column(col) and not self.model.descending:
            order = Qt.SortOrder.DescendingOrder
        elif self.model.sort_key == sort_of_column(col):
            col, order = -1, Qt.SortOrder.AscendingOrder  # third click: back to review order
        else:
            order = Qt.SortOrder.AscendingOrder
        hh.setSortIndicator(col, order)
        self.model.sort(col, order)
        if self.model.searching:  # a big project: the ids arrive with model.searched
            self.info.setText("Sorting…")
        else:
            self._after_list_change()

    def _after_list_change(self) -> None:
        assert self.model is not None
        self._update_info()
        cur = self._current()
        r = self.model.row_of(cur) if cur is not None else None
        if r is not None:
            self.select_row(r, reopen=False)
        elif self.model.ids:
            # While the reviewer types a search, only mark the first match (Enter opens it):
            # the faces do not flicker through every intermediate match.
            self.select_row(0, reopen=not self.search.hasFocus())

    # -- choosing ------------------------------------------------------------------------------
    def select_row(self, row: int, reopen: bool = True) -> None:
        """Make ``row`` current; with ``reopen`` the identity is chosen (``chosen``)."""
        assert self.model is not None
        ix = self.model.index(row, 0)
        sm = self.table.selectionModel()
        if not reopen:
            sm.blockSignals(True)
        sm.setCurrentIndex(
            ix,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        if not reopen:
            sm.blockSignals(False)
            self.table.viewport().update()
        self.table.scrollTo(ix)

    def select_identity(self, identity_id: int) -> None:
        """Mark an identity's row without choosing it again (when it is listed)."""
        r = self.model.row_of(identity_id) if self.model is not None else None
        if r is not None:
            self.select_row(r, reopen=False)

    def _row_changed(self, cur, _prev) -> None:
        if self.model is not None and cur.isValid():
            self.chosen.emit(self.model.ids[cur.row()])

    def next_needing_review(self) -> bool:
        """Choose the next identity not reviewed after the current one; False when none is."""
        assert self.model is not None
        cur = self._current()
        start = self.model.row_of(cur) if cur is not None else -1
        start = -1 if start is None else start
        r = self.model.next_unreviewed_row(start) if self.model.ids else None
        if r is None:
            return False
        self.select_row(r)
        return True

    def step(self, d: int) -> bool:
        """Choose the identity ``d`` rows away (clamped); False when the list is empty."""
        if self.model is None or not self.model.ids:
            return False
        cur = self._current()
        r = self.model.row_of(cur) if cur is not None else None
        r = 0 if r is None else max(0, min(len(self.model.ids) - 1, r + d))
        self.select_row(r)
        return True

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if obj is self.table and ev.type() == QEvent.Type.KeyPress and ev.text() == "?":  # type: ignore[attr-defined]
            self.help_requested.emit()
            return True
        # In the search box, Enter/Return and typed digits/letters are text, not shortcuts.
        if obj is self.search and ev.type() == QEvent.Type.ShortcutOverride:
            if ev.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape):  # type: ignore[attr-defined]
                ev.accept()
                return True
        if obj is self.search and ev.type() == QEvent.Type.KeyPress:
            if ev.key() == Qt.Key.Key_Escape:  # type: ignore[attr-defined]
                self.to_faces.emit()
                return True
            if ev.key() == Qt.Key.Key_Down:  # type: ignore[attr-defined]
                self.table.setFocus()
                return True
        return super().eventFilter(obj, ev)
