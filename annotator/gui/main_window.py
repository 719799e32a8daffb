"""The main window: a thin shell wiring the identity list, the face grid and the inspector.

Every mutation goes through :mod:`annotator.core.review.ops`; the views refresh from the returned
``Changes``. Undo/redo only call ops.undo/ops.redo (the history lives in the project file).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QFont, QFontMetrics, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from annotator import __version__
from annotator.core.infra import access
from annotator.core.review import keeper as keeper_rule
from annotator.core.review import ops
from annotator.gui import shortcuts
from annotator.gui.face_grid import FaceGridModel, FaceGridView
from annotator.gui.identity_model import IdentityModel
from annotator.gui.keyrepeat import RepeatWatch
from annotator.gui.modes import Mode, ReviewMode
from annotator.gui.qa_mode import QaMode
from annotator.gui.tasks import Queued, WriteQueue
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.model import LABELS, AnnotatorError
from annotator.store import browse
from annotator.store.db import Project, open_project

FILTER_TITLES = {
    "unreviewed": "Unreviewed",
    "flagged": "Flagged",
    "reviewed": "Reviewed",
    "all": "All identities",
}


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings, reviewer: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.reviewer = reviewer
        self.project: Project | None = None
        self.writes: WriteQueue | None = None  # the write path of the open project (run_op)
        self._close_anyway = False  # a close refused for unsaved changes: the next one quits
        self._write_failed = False  # a queued write failed since the queue was last empty
        self.model: IdentityModel | None = None
        self.current_identity: int | None = None
        self.loader: ThumbnailLoader | None = None
        self._tasks: list[object] = []
        self._session: dict[int, str | None] = {}  # face id -> label given this session
        self._session_start: float | None = None
        self._reviewed = 0
        self._total = 0
        self._dialog: QWidget | None = None  # the open G / M dialog (tests reach it here)
        self._help: QWidget | None = None  # the shortcut sheet (not modal)
        self._stats_dialog = None  # the statistics dashboard (not modal, kept)
        self._review_sizes: list[int] = []  # the splitter while another mode is shown
        self.setWindowTitle("annotator")
        self.resize(1400, 860)
        self._repeat = RepeatWatch(self)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self._repeat)
            app.aboutToQuit.connect(self._stop_writes)  # e.g. SIGTERM: unsaved ones are said
        self._build()
        self._make_actions()
        self._restore_layout()
        self.title.setText(
            "<span style='font-size:13pt'><i>No project open</i></span>&nbsp;&nbsp;"
            "<span style='color:#666'>Ctrl+O open · Ctrl+N new · File &gt; Import…</span>"
        )
        self._status_timer = QTimer(self, interval=5000)
        self._status_timer.timeout.connect(self._update_status)
        self._status_timer.start()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.loader = ThumbnailLoader(parent=self)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(6, 6, 0, 6)
        top = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search key or name  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.installEventFilter(self)
        self.filter_box = QComboBox()
        for k, title in FILTER_TITLES.items():
            self.filter_box.addItem(title, k)
        top.addWidget(self.search, 1)
        top.addWidget(self.filter_box)
        lv.addLayout(top)
        self.table = QTableView()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setSortingEnabled(False)  # we sort in SQL on header clicks
        self.table.horizontalHeader().setSectionsClickable(True)
        self.table.horizontalHeader().setSortIndicatorShown(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.horizontalHeader().sectionClicked.connect(self._header_clicked)
        self.table.installEventFilter(self)  # `?` is help, not a keyboard search
        lv.addWidget(self.table, 1)
        self.list_info = QLabel()
        self.list_info.setStyleSheet("color:#666")
        lv.addWidget(self.list_info)

        centre = QWidget()
        cv = QVBoxLayout(centre)
        cv.setContentsMargins(0, 6, 0, 6)
        self.title = QLabel()
        self.title.setObjectName("identityTitle")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        # never widens the centre: when key, name and counts do not fit on one line, the
        # counts and review state wrap to a second line (a too long name is cut at the right)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setWordWrap(True)
        cv.addWidget(self.title)
        self.grid_model = FaceGridModel(self.loader, self)
        self.grid = FaceGridView(self.grid_model)
        size = int(self.settings.value("thumb_size", 112))  # MS-Celeb crops are 112 px
        self.grid.set_thumb_size(size)
        self.grid.zoomed.connect(lambda s: self.settings.setValue("thumb_size", s))
        cv.addWidget(self.grid, 1)
        self.legend = QLabel()
        self.legend.setStyleSheet("color:#555")
        self.legend.setWordWrap(True)  # else its one long line is the centre's minimum width
        cv.addWidget(self.legend)

        # The window holds one mode and calls it (modes.py); review mode is the default.
        self.review = ReviewMode(self)
        self.mode: Mode = self.review
        self.inspector = self.review.inspector
        self.legend.setText(self.mode.legend_html())

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(self.mode.panel)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self._default_split = True  # until a saved layout is restored
        self.setCentralWidget(self.splitter)

        self.filter_box.currentIndexChanged.connect(self._filter_changed)
        self._search_timer = QTimer(self, singleShot=True, interval=150)
        self._search_timer.timeout.connect(self._search_changed)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.search.returnPressed.connect(self._search_enter)
        self.grid.selectionModel().currentChanged.connect(self._face_changed)

        sb = self.statusBar()
        self.st_reviewer = QLabel()
        self.st_progress = QLabel()
        self.st_session = QLabel()
        self.st_writes = QLabel()  # changes queued behind another process's write lock
        self.st_writes.setObjectName("writesStatus")
        self.st_writes.hide()
        for w in (self.st_writes, self.st_reviewer, self.st_progress, self.st_session):
            w.setContentsMargins(8, 0, 8, 0)
            sb.addPermanentWidget(w)

    def _make_actions(self) -> None:
        self.actions_by_name: dict[str, QAction] = {}
        menus = {
            name: self.menuBar().addMenu(f"&{name}")
            for name in ("File", "Edit", "View", "Review", "Help")
        }
        file_items = [
            ("&New project…", QKeySequence.StandardKey.New, self.new_project),
            ("&Open project…", QKeySequence.StandardKey.Open, self.open_project_dialog),
            ("&Import…", None, self.import_dialog),
            ("&Scan (hashes and flags)…", None, self.scan),
        ]
        for text, key, fn in file_items:
            a = QAction(text, self)
            if key is not None:
                a.setShortcut(key)
            a.triggered.connect(fn)
            menus["File"].addAction(a)
        menus["File"].addSeparator()
        view = menus["View"]
        for k, title in FILTER_TITLES.items():
            a = QAction(f"Show {title.lower()}", self)
            a.triggered.connect(lambda _c=False, k=k: self.set_filter(k))
            view.addAction(a)
        view.addSeparator()
        for s in shortcuts.SHORTCUTS:
            if s.handler is None:
                continue
            a = QAction(s.menu_text, self)
            a.setObjectName(s.name)
            a.setShortcuts([QKeySequence(k) for k in s.keys])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.setToolTip(s.description)
            handler = getattr(self, s.handler)
            a.triggered.connect(lambda _c=False, s=s, h=handler: self._key_action(s, h))
            self.addAction(a)
            self.actions_by_name[s.name] = a
            if s.menu:
                if s.section:
                    menus[s.menu].addSeparator()
                menus[s.menu].addAction(a)
        about = QAction("&About annotator", self)
        about.triggered.connect(self.about)
        menus["Help"].addAction(about)
        menus["Edit"].aboutToShow.connect(self._update_undo_text)
        self._enable_actions()

    def _key_action(self, s: shortcuts.Shortcut, handler) -> None:
        """Run a shortcut's handler, unless a held key's auto-repeat fired it and the table says
        a repeat may not (Enter, G, M…; a label key on a selection of faces)."""
        if self._repeat.repeating and (
            s.repeat == "no" or (s.repeat == "one" and self.grid.selected_face_ids())
        ):
            return
        self._guard(handler)

    def _enable_actions(self) -> None:
        """The actions of the current mode on, the others off (the shortcut table says which)."""
        for s in shortcuts.SHORTCUTS:
            a = self.actions_by_name.get(s.name)
            if a is not None:
                a.setEnabled(self.mode.name in s.modes)

    # -- modes -------------------------------------------------------------------------------
    def set_mode(self, mode: Mode) -> None:
        """Show ``mode``: its side panel, the identity list or not, its header, legend and
        actions; the old mode leaves first."""
        old = self.mode
        if mode is old:
            return
        old.leave()
        if old is self.review:
            self._review_sizes = self.splitter.sizes()
        if old.status is not None:
            self.statusBar().removeWidget(old.status)
        old.panel.hide()
        self.splitter.replaceWidget(2, mode.panel)
        mode.panel.show()
        if old is not self.review:
            old.panel.setParent(None)
            old.panel.deleteLater()
        self.mode = mode
        self.splitter.widget(0).setVisible(mode.shows_list)
        if mode.status is not None:
            self.statusBar().addPermanentWidget(mode.status)
            mode.status.show()
        self.legend.setText(mode.legend_html())
        self._enable_actions()
        if mode.panel_width is not None:
            sizes = self.splitter.sizes()
            centre = max(sum(sizes) - mode.panel_width, 400)
            self.splitter.setSizes(
                [0 if not mode.shows_list else sizes[0], centre, mode.panel_width]
            )
        elif self._review_sizes:
            self.splitter.setSizes(self._review_sizes)
        mode.enter()
        self.refresh_header()
        if mode is self.review and self.project is not None:
            self.reload_list()
        self.grid.setFocus()

    def enter_qa(self, pass_id: int) -> QaMode:
        """Show QA pass ``pass_id`` of this reviewer blind in the grid."""
        self.set_mode(self.review)
        mode = QaMode.open(self, pass_id)
        self.set_mode(mode)
        return mode

    def leave_qa(self) -> None:
        self.set_mode(self.review)

    def start_qa_pass(self) -> None:
        """Review > QA pass…: resume a pass or draw a new one, then show it."""
        from annotator.gui.dialogs.qa_start_dialog import QaStartDialog

        if self.project is None:
            raise AnnotatorError("open a project first")
        d = QaStartDialog(self.project, self.reviewer, self)

        def finished(ok: int) -> None:
            self._dialog = None
            if ok and d.pass_id is not None:
                if d.started is not None:
                    s = d.started
                    self.show_message(
                        f"QA pass {s.pass_id}: {s.items} of {s.eligible} eligible faces "
                        f"(seed {s.seed})",
                        10000,
                    )
                pid = d.pass_id
                self._guard(lambda: self.enter_qa(pid))
            d.deleteLater()

        d.finished.connect(finished)
        self._dialog = d
        d.open()

    def open_adjudication(self):
        from annotator.gui.dialogs.adjudicate_dialog import AdjudicateDialog

        if self.project is None:
            raise AnnotatorError("open a project first")
        assert self.loader is not None
        d = AdjudicateDialog(self.project, self.reviewer, self.loader, self)
        d.decided.connect(self.apply_changes)

        def finished(_r: int) -> None:
            self._dialog = None
            d.deleteLater()

        d.finished.connect(finished)
        self._dialog = d
        d.open()
        return d

    def open_statistics(self):
        from annotator.gui.dialogs.stats_dialog import StatsDialog

        if self.project is None:
            raise AnnotatorError("open a project first")
        d = self._stats_dialog
        if d is None or d.project_path != self.project.path:
            if d is not None:
                d.close()
                d.deleteLater()
            d = StatsDialog(self.project.path, self)
            self._stats_dialog = d
        else:
            d.refresh()
        d.show()
        d.raise_()
        return d

    # -- what a mode may use (modes.ModeHost) ------------------------------------------------
    def show_message(self, text: str, ms: int = 5000) -> None:
        self.statusBar().showMessage(text, ms)

    def run_op(
        self,
        op,
        *,
        follow: bool = False,
        message=None,
        nothing: str = "",
        what: str = "change",
        pending: dict[int, str | None] | None = None,
    ):
        """One user action: ``op(project)`` (one transaction in core.ops) through the write
        path (:class:`annotator.gui.tasks.WriteQueue`), its error in the status bar, the views
        refreshed from the returned Changes, a status line saying what it did
        (``message(changes)``), or ``nothing`` when op returned None.

        When another process holds the write lock, the op is queued behind the earlier ones
        and a :class:`Queued` (empty Changes, not None) is returned: the grid shows
        ``pending`` (face id -> label) at once, the status bar says the change is being saved,
        and the refresh and message follow when it lands (without ``follow``: a late undo
        never moves the view under the reviewer's keys)."""
        before = {f: t.label for f, t in self._tiles_of(pending or {}).items()}
        ch = self.run_write(
            op,
            what=what,
            done=lambda ch: self._op_done(ch, False, message, nothing),
            failed=lambda: self.grid_model.set_labels(before),  # pending labels did not happen
        )
        if ch is None:
            return None
        if isinstance(ch, Queued):
            if pending:
                self.grid_model.set_labels(pending)
            return ch
        return self._op_done(ch, follow, message, nothing)

    def run_write(self, fn, *, what: str = "change", done=None, failed=None):
        """``fn(project)`` through the write path: its result, a :class:`Queued` when it waits
        behind another process's write lock (then ``done(result)`` follows on landing), or None
        after an error, which the status bar shows (``failed()`` undoes what the caller showed
        for a queued write that then fails)."""
        if self.project is None or self.writes is None:
            return None

        def dropped(text: str) -> None:
            self._write_failed = True  # the end of the queue is not "every change is saved"
            if failed is not None:
                failed()
            self.show_message(f"Not saved: {what}: {text}", 15000)
            QApplication.beep()

        try:
            return self.writes.submit(fn, what, done=done, failed=dropped)
        except (AnnotatorError, sqlite3.DatabaseError) as e:
            self.show_message(_error_text(e), 8000)
            QApplication.beep()
            return None

    def _op_done(self, ch, follow: bool, message, nothing: str):
        if ch is None:
            if nothing:
                self.show_message(nothing, 4000)
            return None
        if message is not None:
            self.show_message(message(ch), 6000)
        self.apply_changes(ch, follow=follow)
        return ch

    def _tiles_of(self, labels: dict[int, str | None]) -> dict:
        tiles = self.grid_model.tiles
        return {f: tiles[r] for f in labels if (r := self.grid_model.row_of(f)) is not None}

    def _stop_writes(self) -> None:
        if self.writes is not None:
            self.writes.close()  # lists what is still queued on stderr
            self.writes = None

    def _writes_changed(self) -> None:
        """The status bar's saving indicator: hidden when every change is saved."""
        w = self.writes
        n = len(w.pending) if w is not None else 0
        if w is None or not n:
            if not self.st_writes.isHidden():  # it was shown: say that they are saved now
                self.st_writes.hide()
                if not self._write_failed:
                    self.show_message("Every change is saved.", 4000)
            self._write_failed = False
            self._close_anyway = False
            return
        changes = f"{n} change{'s' if n != 1 else ''}"
        if w.failing:
            text = (
                f"⚠ {changes} NOT saved yet: another process has held the project's write "
                f"lock for {w.waited:.0f} s ({w.reason}). Retrying — keep the window open."
            )
            style = "color:white; background:#c62828; font-weight:bold; padding:1px 6px"
            if "NOT saved" not in self.st_writes.text():
                self.show_message(text, 0)
                QApplication.beep()
        else:
            text = f"Saving {changes}… (another process is writing the project)"
            style = "color:#8a4b00; background:#ffe9b3; padding:1px 6px"
        self.st_writes.setText(text)
        self.st_writes.setStyleSheet(style)
        self.st_writes.setToolTip("\n".join(x.what for x in w.pending))
        self.st_writes.show()

    def identity_row(self, identity_id: int) -> browse.IdentityRow | None:
        return self.model.row_by_id(identity_id) if self.model is not None else None

    def refresh_header(self) -> None:
        self.title.setText(self.mode.header_html())

    # -- project -----------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        if self.writes is not None and self.writes.pending and not self.writes.flush(2.0):
            project.close()
            raise AnnotatorError(
                f"{len(self.writes.pending)} change(s) of this project are not saved yet "
                "(another process is writing it); open the other project when they are"
            )
        self.set_mode(self.review)
        self._remember_place()
        if self.model is not None:
            self.model.close()
        if self.writes is not None:
            self.writes.close()
        if self.project is not None:
            self.project.close()
        self.project = project
        self.writes = WriteQueue(project, self)
        self.writes.changed.connect(self._writes_changed)
        self._writes_changed()
        # Identity and face ids start at 1 in every project: nothing of the previous project
        # may stay on screen (its identity 1 is not this one's), nor in the session counts.
        self.current_identity = None
        self.grid_model.set_faces(None, [])
        self._session = {}
        self._session_start = None
        assert self.loader is not None
        self.loader.set_cache(project.cache_dir / "thumbs.sqlite")
        access.use_embedded(project)  # a package made --with-images: its bytes are inside
        self.settings.setValue("last_project", str(project.path))
        self.setWindowTitle(f"annotator — {project.path.name}")
        self.model = IdentityModel(project, self)
        self.model.reload()
        self.model.searched.connect(self._after_list_change)
        self.table.setModel(self.model)
        self._size_columns()
        self.table.selectionModel().currentRowChanged.connect(self._list_row_changed)
        self._reviewed, self._total = browse.review_progress(project)
        self._update_list_info()
        self.statusBar().clearMessage()
        last, face = self._remembered_place(project)
        if last is not None:
            self.open_identity(last)
            row = self.grid_model.row_of(face) if face is not None else None
            if row is not None:
                self.grid.set_current_row(row)
        elif self.model.ids:
            self.table.selectRow(0)
        else:
            self.show_identity(None)
        self._update_status()
        self.grid.setFocus()
        if browse.never_scanned(project):
            self.statusBar().showMessage(
                "Not scanned yet: File > Scan finds duplicates, outliers and broken images."
            )

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

    def _remember_place(self) -> None:
        """Remember the project's current identity and face (reopened with the project)."""
        if self.project is not None and self.current_identity is not None:
            face = self.grid.current_face_id()
            self.settings.setValue(
                "last_place",
                f"{self.project.path}\t{self.current_identity}\t{face if face else ''}",
            )

    def _remembered_place(self, project: Project) -> tuple[int | None, int | None]:
        path, ident, face = (
            str(self.settings.value("last_place", "") or "").split("\t") + ["", ""]
        )[:3]
        if path != str(project.path) or not ident.isdigit():
            return None, None
        if not browse.identity_rows(project, [int(ident)]):
            return None, None
        return int(ident), int(face) if face.isdigit() else None

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry:
            self.restoreGeometry(geometry)
        splitter = self.settings.value("window/splitter")
        if splitter and self.splitter.restoreState(splitter):
            self._default_split = False

    def showEvent(self, e) -> None:
        super().showEvent(e)
        w = self.splitter.width()
        left, centre, right = self.splitter.sizes()
        if self._default_split:  # first start: room for the names, the inspector at its best
            self._default_split = False
            # the faces get the most: 5 columns of 112 px faces at 1280 px (a 21-face identity fits)
            left, right = max(300, min(420, int(w * 0.28))), (250 if w >= 1400 else 230)
        # A layout saved on a bigger screen: the faces keep at least a third of the width.
        want = min(420, int(w * 0.35))
        if w - left - right < want:
            left = max(220, w - right - want)
        self.splitter.setSizes([left, max(0, w - left - right), right])

    def _save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())

    def open_path(self, path: str | Path) -> None:
        self.set_project(open_project(path))

    def new_project(self) -> None:
        p, _ = QFileDialog.getSaveFileName(self, "New project", "project.db", "Projects (*.db)")
        if p:
            self._guard(lambda: self.set_project(open_project(p, create=True)))

    def open_project_dialog(self) -> None:
        p, _ = QFileDialog.getOpenFileName(
            self, "Open project", "", "Projects (*.db);;All files (*)"
        )
        if p:
            self._guard(lambda: self.open_path(p))

    def import_dialog(self) -> None:
        from annotator.gui.dialogs.import_dialog import ImportDialog

        if self.project is None:
            self.new_project()
            if self.project is None:
                return
        d = ImportDialog(self)

        def finished(ok: int) -> None:
            self._dialog = None
            if ok and self.project is not None:
                fmt, path = d.chosen()
                self.run_task(f"Importing {Path(path).name}", _import_fn(fmt, path))
            d.deleteLater()

        d.finished.connect(finished)
        self._dialog = d
        d.open()

    def scan(self) -> None:
        from annotator.gui.tasks import scan_fn

        if self.project is not None:
            self.run_task("Scanning: hashes and flags", scan_fn())

    def run_task(self, title: str, fn, show_dialog: bool = True):
        from annotator.gui.tasks import Task

        assert self.project is not None
        task = Task(self, title, self.project.path, fn, show_dialog=show_dialog)
        self._tasks.append(task)

        def done(result: object, error: str) -> None:
            from annotator.gui.tasks import summary

            self._tasks.remove(task)
            if error:
                QMessageBox.warning(self, title, error)
            else:
                self.statusBar().showMessage(summary(title, result, task.cancelled), 15000)
            self.reload_list()
            self.mode.reload()  # new faces or flags (badges) in what the grid shows

        task.done.connect(done)
        return task

    def reload_list(self) -> None:
        if self.project is None or self.model is None:
            return
        keep = self.current_identity
        self.model.reload()
        self._reviewed, self._total = browse.review_progress(self.project)
        self._update_list_info()
        self._update_status()
        if keep is not None and self.model.row_of(keep) is not None:
            self._select_list_row(self.model.row_of(keep))
        elif self.model.ids:
            self.table.selectRow(0)

    # -- identity list -----------------------------------------------------------------------
    def _update_list_info(self) -> None:
        if self.model is not None:
            m = self.model
            if (
                m.sort_key == "suspicion"
            ):  # the review order, explained (a row's tooltip has its score)
                order = "most suspicious first (flags weighted by kind)"
            else:
                order = f"by {m.sort_key}, {'descending' if m.descending else 'ascending'}"
            self.list_info.setText(
                f"{len(m.ids):,} shown · {self._reviewed:,} of {self._total:,} reviewed"
                f"\norder: {order}"
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
                self.list_info.setText("Searching…")
            else:
                self._after_list_change()

    def _search_enter(self) -> None:
        """Enter in the search box: open the first match and go back to the faces."""
        if self._search_timer.isActive():
            self._search_timer.stop()
            self._search_changed()
        if self.model is not None and self.model.searching:
            self.model.reload()  # Enter wants the result now
            self._after_list_change()
        self.grid.setFocus()
        if self.model is not None and self.table.currentIndex().isValid():
            self._list_row_changed(self.table.currentIndex(), None)

    def _header_clicked(self, col: int) -> None:
        if self.model is None:
            return
        hh = self.table.horizontalHeader()
        if self.model.sort_key == shortcuts_sort(col) and not self.model.descending:
            order = Qt.SortOrder.DescendingOrder
        elif self.model.sort_key == shortcuts_sort(col):
            col, order = -1, Qt.SortOrder.AscendingOrder  # third click: back to review order
        else:
            order = Qt.SortOrder.AscendingOrder
        hh.setSortIndicator(col, order)
        self.model.sort(col, order)
        if self.model.searching:  # a big project: the ids arrive with model.searched
            self.list_info.setText("Sorting…")
        else:
            self._after_list_change()

    def _after_list_change(self) -> None:
        assert self.model is not None
        self._update_list_info()
        r = self.model.row_of(self.current_identity) if self.current_identity is not None else None
        if r is not None:
            self._select_list_row(r, reopen=False)
        elif self.model.ids:
            # While the reviewer types a search, only mark the first match (Enter opens it):
            # the faces do not flicker through every intermediate match.
            self._select_list_row(0, reopen=not self.search.hasFocus())

    def _select_list_row(self, row: int, reopen: bool = True) -> None:
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

    def _list_row_changed(self, cur, _prev) -> None:
        if self.model is not None and cur.isValid():
            self.mode.identity_chosen(self.model.ids[cur.row()])

    def open_identity(self, identity_id: int, face_id: int | None = None) -> None:
        """Show an identity (selecting it in the list when it is listed)."""
        assert self.model is not None
        r = self.model.row_of(identity_id)
        if r is not None:
            self._select_list_row(r, reopen=False)
        if identity_id != self.current_identity:
            self.show_identity(identity_id)
        if face_id is not None:
            self.grid.select_face(face_id)

    def open_face(self, identity_id: int, face_id: int) -> None:
        self.open_identity(identity_id, face_id)

    def show_identity(self, identity_id: int | None) -> None:
        """Fill the grid with an identity's faces (one query), thumbnails load in the pool."""
        assert self.loader is not None
        self.current_identity = identity_id
        self.loader.new_generation()
        if identity_id is None or self.project is None:
            self.grid_model.set_faces(None, [])
            self.refresh_header()
            self.mode.face_changed(None)
            return
        self.grid_model.set_faces(identity_id, browse.faces_of_identity(self.project, identity_id))
        self.refresh_header()
        self.grid.scrollToTop()
        self.grid.set_current_row(0)
        if self.grid_model.rowCount() == 0:
            self.mode.face_changed(None)

    def _face_changed(self, cur, _prev) -> None:
        if self.project is not None:
            self.mode.face_changed(self.grid.current_face_id())

    # -- operations --------------------------------------------------------------------------
    def _guard(self, fn) -> None:
        try:
            fn()
        except (AnnotatorError, sqlite3.DatabaseError) as e:
            self.statusBar().showMessage(_error_text(e), 8000)
            QApplication.beep()

    def label(self, label: str | None) -> None:
        if self.project is not None:
            self.mode.label(label)

    def label_correct(self) -> None:
        self.label(LABELS[0])

    def label_wrong_identity(self) -> None:
        self.label(LABELS[1])

    def label_duplicate(self) -> None:
        self.label(LABELS[2])

    def label_unusable(self) -> None:
        self.label(LABELS[3])

    def label_unsure(self) -> None:
        self.label(LABELS[4])

    def label_clear(self) -> None:
        self.label(None)

    def review_identity(self) -> None:
        if self.project is not None:
            self.mode.accept()

    def next_needing_review(self) -> None:
        assert self.model is not None
        n = len(self.model.ids)
        start = (
            self.model.row_of(self.current_identity) if self.current_identity is not None else -1
        )
        start = -1 if start is None else start
        r = self.model.next_unreviewed_row(start) if n else None
        if r is not None:
            self._select_list_row(r)
            return
        self.statusBar().showMessage("Every identity in this list is reviewed.", 8000)

    def _step_identity(self, d: int) -> None:
        if self.model is None or not self.model.ids:
            return
        r = self.model.row_of(self.current_identity) if self.current_identity is not None else None
        r = 0 if r is None else max(0, min(len(self.model.ids) - 1, r + d))
        self._select_list_row(r)
        self.grid.setFocus()

    def next_identity(self) -> None:
        self._step_identity(1)

    def prev_identity(self) -> None:
        self._step_identity(-1)

    def undo(self) -> None:
        if self.project is not None:
            self.mode.undo()

    def redo(self) -> None:
        if self.project is not None:
            self.mode.redo()

    def _update_undo_text(self) -> None:
        if self.project is None:
            return
        if self.writes is not None and self.writes.pending:  # an undo waits behind them
            self.actions_by_name["undo"].setText("Undo (after the changes being saved)")
            self.actions_by_name["redo"].setText("Redo (after the changes being saved)")
            return
        u = ops.can_undo(self.project, self.reviewer)
        r = ops.can_redo(self.project, self.reviewer)
        self.actions_by_name["undo"].setText(f"Undo {u}" if u else "Undo")
        self.actions_by_name["redo"].setText(f"Redo {r}" if r else "Redo")

    def duplicate_group(self) -> None:
        from annotator.gui.dialogs.dup_dialog import DupGroupDialog, IdentityContext

        fid = self.grid.current_face_id()
        if self.project is None or fid is None:
            return
        group = browse.dup_group(self.project, fid)
        if len(group) < 2:
            self.statusBar().showMessage("This face is in no duplicate group.", 5000)
            return
        assert self.loader is not None
        idents = {p.identity_id for p in group}
        proposal = keeper_rule.propose_for_group(
            self.project,
            [keeper_rule.Member(p.face_id, p.identity_id, p.label, p.keeper) for p in group],
        )
        context: dict[int, IdentityContext] = {}
        if len(idents) > 1:  # a cross-identity group: show whom each copy is filed as
            rows = browse.identity_rows(self.project, sorted(idents))
            members = {p.face_id for p in group}
            for i, row in rows.items():
                others = [
                    t for t in browse.faces_of_identity(self.project, i) if t.id not in members
                ]
                context[i] = IdentityContext(row.key, row.name, row.face_count, others[:6])
        d = DupGroupDialog(group, fid, self.loader, self, proposal.face, context, proposal.why)
        ids = [p.face_id for p in group]

        def finished(ok: int) -> None:
            self._dialog = None
            if ok and d.keeper is not None:
                keeper = d.keeper
                self.run_op(
                    lambda p: ops.choose_keeper(p, ids, keeper, self.reviewer),
                    message=lambda ch: _keeper_message(ch, keeper),
                )
            self._back_to_grid()
            d.deleteLater()

        d.finished.connect(finished)
        self._dialog = d
        d.open()

    def _back_to_grid(self) -> None:
        """After a dialog: the window and its grid take the keys again (without a window
        manager, X leaves the focus nowhere when a dialog closes)."""
        self.activateWindow()
        self.grid.setFocus()

    def move_faces(self) -> None:
        from annotator.gui.dialogs.move_dialog import MoveDialog

        ids, _sel = self.grid.target_face_ids()
        if self.project is None or not ids:
            return
        d = MoveDialog(self.project, len(ids), self.current_identity, self, self.loader)

        def finished(ok: int) -> None:
            self._dialog = None
            if ok and d.chosen is not None:
                to, to_key = d.chosen, d.chosen_key
                self.run_op(
                    lambda p: ops.move_faces(p, ids, to, self.reviewer),
                    message=lambda ch: ops.move_summary(ch, to_key) + ". Ctrl+Z undoes it.",
                )
            self._back_to_grid()
            d.deleteLater()

        d.finished.connect(finished)
        self._dialog = d
        d.open()

    def apply_changes(self, ch: ops.Changes, follow: bool = False) -> None:
        """Refresh only what an operation changed. With ``follow`` (undo/redo), show the
        identity the change happened in when it is not the current one."""
        if self.project is None or self.model is None:
            return
        if follow and ch.identities and self.current_identity not in ch.identities:
            target = min(ch.identities)
            for _f, (_frm, to) in ch.moved.items():
                target = to  # where the moved faces are now, so the cursor can show them
            self.open_identity(target)
        cur = self.current_identity
        self.grid_model.set_labels(ch.labels)
        away = [f for f, (_a, to) in ch.moved.items() if to != cur]
        into = [f for f, (_a, to) in ch.moved.items() if to == cur]
        if away:
            self.grid_model.remove_faces(away)
        if into:
            self.grid_model.add_faces(browse.face_tiles(self.project, into).values())
        for ident, rev in ch.reviewed.items():
            self._reviewed += 1 if rev else -1
            _ = ident
        self.model.refresh(ch.identities)
        for f, lab in ch.labels.items():
            self._session[f] = lab
        if ch.labels and self._session_start is None:
            self._session_start = time.monotonic()
        if ch.identities:
            self.refresh_header()
            self._update_list_info()
        if follow:  # undo/redo: the cursor goes to the first face it changed
            rows = [r for f in ch.labels if (r := self.grid_model.row_of(f)) is not None]
            if rows:
                self.grid.set_current_row(min(rows))
        fid = self.grid.current_face_id()
        if fid is not None and fid in ch.faces:
            self.mode.face_changed(fid)
        self._update_status()

    # -- misc --------------------------------------------------------------------------------
    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def select_all_faces(self) -> None:
        self.grid.selectAll()

    def zoom_in(self) -> None:
        self.grid.zoom(1)

    def zoom_out(self) -> None:
        self.grid.zoom(-1)

    def show_shortcuts(self) -> None:
        from annotator.gui.dialogs.simple import ShortcutsDialog

        if self._help is None:
            self._help = ShortcutsDialog(self)
        self._help.show()
        self._help.raise_()
        self._help.activateWindow()

    def keyPressEvent(self, e: QKeyEvent) -> None:
        # `?` is Shift+/ on most layouts; where the platform does not map that to the `?`
        # shortcut (e.g. the offscreen platform), the unhandled key arrives here.
        if e.text() == "?":
            self.show_shortcuts()
            e.accept()
            return
        super().keyPressEvent(e)

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About annotator",
            f"<b>annotator {__version__}</b><br>Turn a noisy web-scraped face-identity dataset "
            "into a small, manually verified test set.<br>Every label is saved the moment you "
            "give it.",
        )

    @property
    def session_count(self) -> int:
        return sum(1 for v in self._session.values() if v is not None)

    def _update_status(self) -> None:
        self.st_reviewer.setText(f"Reviewer: <b>{self.reviewer}</b>")
        self.st_progress.setText(f"Identities reviewed: {self._reviewed:,} / {self._total:,}")
        n = self.session_count
        rate = ""
        if self._session_start is not None and n:
            minutes = max((time.monotonic() - self._session_start) / 60, 0.25)
            rate = f" · {n / minutes:,.0f} faces/min"
        self.st_session.setText(f"Labeled this session: {n:,}{rate}")

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        if (
            obj is getattr(self, "table", None)
            and ev.type() == QEvent.Type.KeyPress
            and ev.text() == "?"  # type: ignore[attr-defined]
        ):
            self.show_shortcuts()
            return True
        # In the search box, Enter/Return and typed digits/letters are text, not shortcuts.
        if obj is self.search and ev.type() == QEvent.Type.ShortcutOverride:
            if ev.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape):  # type: ignore[attr-defined]
                ev.accept()
                return True
        if obj is self.search and ev.type() == QEvent.Type.KeyPress:
            if ev.key() == Qt.Key.Key_Escape:  # type: ignore[attr-defined]
                self.grid.setFocus()
                return True
            if ev.key() in (Qt.Key.Key_Down,):  # type: ignore[attr-defined]
                self.table.setFocus()
                return True
        return super().eventFilter(obj, ev)

    def wait_painted(self, timeout: float = 15.0) -> bool:
        """Process events until the visible tiles have their thumbnails (for --screenshot)."""
        app = QApplication.instance()
        assert app is not None and self.loader is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            app.processEvents()
            self.grid.viewport().repaint()
            app.processEvents()
            if not self.loader.busy and self._visible_tiles_ready():
                return True
            time.sleep(0.01)
        return False

    def _visible_tiles_ready(self) -> bool:
        assert self.loader is not None
        vp = self.grid.viewport().rect()
        for r, t in enumerate(self.grid_model.tiles):
            rect = self.grid.visualRect(self.grid_model.index(r))
            if not rect.intersects(vp):
                continue
            if (
                self.loader.pixmap(t.id, self.grid.thumb_size) is None
                and self.loader.error(t.id) is None
            ):
                return False
        return True

    def closeEvent(self, e: QCloseEvent) -> None:
        # Every label is committed or queued: queued ones get a few seconds to land; when the
        # lock is still held the close is refused once (the status bar says why) and the next
        # close quits without them (listed on stderr). Then remember the place, stop workers
        # (a cancelled import or scan commits what it has done), close the file.
        w = self.writes
        if w is not None and w.pending and not self._close_anyway and not w.flush(3.0):
            self._close_anyway = True
            self.show_message(
                f"{len(w.pending)} change(s) are not saved yet: the project is locked by "
                "another process. Wait for them, or close again to quit without them.",
                0,
            )
            QApplication.beep()
            e.ignore()
            return
        self._stop_writes()
        self._remember_place()
        self._save_layout()
        self.settings.sync()
        self._search_timer.stop()
        self._status_timer.stop()
        if self._dialog is not None:
            self._dialog.close()
        if self._help is not None:
            self._help.close()
        for t in list(self._tasks):
            t.cancel()  # type: ignore[attr-defined]
        for t in list(self._tasks):
            t.wait(30_000)  # type: ignore[attr-defined]
        if self.model is not None:
            self.model.close()
        if self.loader is not None:
            self.loader.shutdown()
        if self.project is not None:
            self.project.close()
            self.project = None
        super().closeEvent(e)


def shortcuts_sort(col: int) -> str:
    from annotator.gui.identity_model import SORT_OF_COLUMN

    return "suspicion" if col < 0 else SORT_OF_COLUMN[col]


def _import_fn(fmt: str, path: str):
    from annotator.gui.tasks import import_fn

    return import_fn(fmt, path)


def _error_text(e: BaseException) -> str:
    """One status line for an error of a write (an SQLite error is named as one)."""
    if isinstance(e, AnnotatorError):
        return str(e)
    if isinstance(e, sqlite3.OperationalError) and ("locked" in str(e) or "busy" in str(e)):
        return f"Not saved: the project is busy (another process is writing it): {e}"
    return f"Not saved: database error: {e}"


def _keeper_message(ch: ops.Changes, keeper: int) -> str:
    dup = sum(1 for f, lab in ch.labels.items() if f != keeper and lab == "duplicate")
    wrong = sum(1 for f, lab in ch.labels.items() if f != keeper and lab == "wrong_identity")
    text = (
        f"Duplicate group: kept face {keeper}, {dup} other cop"
        f"{'y' if dup == 1 else 'ies'} labeled duplicate"
    )
    if wrong:
        text += f", {wrong} filed under another identity labeled wrong_identity"
    if ch.left:
        text += (
            f"; {len(ch.left)} already labeled kept {'its' if len(ch.left) == 1 else 'their'} label"
        )
    return text + ". Ctrl+Z undoes it."
