"""The main window: a shell holding three views, one mode, the dialogs and the write path.

Views own their widgets and redraw themselves from the ``Changes`` of each op, which the
window emits as ``op_executed`` (Anki's ``operation_did_execute``): the identity list
(:mod:`identity_list`), the faces (:mod:`face_view`), the status bar (:mod:`status_view`).
Every mutation goes through :meth:`MainWindow.run_op` (one :mod:`annotator.core.review.ops`
call through the project's :class:`annotator.gui.tasks.WriteQueue`); undo/redo only call
ops.undo/ops.redo (the history lives in the project file). Dialogs open through
:class:`annotator.gui.window_dialogs.Dialogs`; :meth:`MainWindow.teardown` is the one end.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QWidget,
)

from annotator.core.infra import access
from annotator.core.review import ops
from annotator.gui import actions, window_state
from annotator.gui.face_view import FaceView
from annotator.gui.identity_list import IdentityList
from annotator.gui.keyrepeat import RepeatWatch
from annotator.gui.modes import Mode, ReviewMode
from annotator.gui.op_runner import OpRunner
from annotator.gui.qa_mode import QaMode
from annotator.gui.status_view import StatusView
from annotator.gui.tasks import WriteQueue
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.gui.window_dialogs import Dialogs
from annotator.model import AnnotatorError
from annotator.store import browse
from annotator.store.db import Project, open_project


class MainWindow(QMainWindow):
    op_executed = Signal(object, bool)  # (ops.Changes, follow): every view redraws from it

    def __init__(self, settings: QSettings, reviewer: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings
        self.reviewer = reviewer
        self.project: Project | None = None
        self._tasks: list[object] = []
        self._review_sizes: list[int] = []  # the splitter while another mode is shown
        self.setWindowTitle("annotator")
        self.resize(1400, 860)
        self._repeat = RepeatWatch(self)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self._repeat)
            app.aboutToQuit.connect(lambda: self.runner.stop())  # SIGTERM: unsaved ones are said
        self.loader: ThumbnailLoader | None = ThumbnailLoader(parent=self)
        self.dialogs = Dialogs(self, self)
        self.identities = IdentityList(lambda: self.current_identity)
        self.faces = FaceView(self.loader, settings, lambda: self.mode.header_html())
        self.grid, self.grid_model = self.faces.grid, self.faces.grid_model
        # The window holds one mode and calls it (modes.py); review mode is the default.
        self.review = ReviewMode(self)
        self.mode: Mode = self.review
        self.inspector = self.review.inspector
        self.faces.legend.setText(self.mode.legend_html())
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for i, w in enumerate((self.identities, self.faces, self.mode.panel)):
            self.splitter.addWidget(w)
            self.splitter.setStretchFactor(i, 1 if i == 1 else 0)
        self.setCentralWidget(self.splitter)
        self.status = StatusView(self.statusBar(), reviewer, self.progress)
        self.runner = OpRunner(self, self.grid_model, self.status, self.apply_changes)
        self.identities.chosen.connect(lambda i: self.mode.identity_chosen(i))
        self.identities.help_requested.connect(self.dialogs.show_shortcuts)
        self.identities.to_faces.connect(self.grid.setFocus)
        self.grid.selectionModel().currentChanged.connect(self._face_changed)
        # the views in the order they redraw: rows and counts, faces, then the status bar
        self.op_executed.connect(self.identities.apply_changes)
        self.op_executed.connect(self.faces.apply_changes)
        self.op_executed.connect(self._after_op)
        self.op_executed.connect(self.status.apply_changes)
        self.actions_by_name, menus = actions.build(self, self, self._repeat)
        menus["Edit"].aboutToShow.connect(lambda: actions.undo_texts(self))
        actions.enable_for(self.actions_by_name, self.mode.name)
        self._default_split = not window_state.restore_layout(self, self.splitter, settings)

    # -- what views, modes and dialogs read -------------------------------------------------------
    @property
    def current_identity(self) -> int | None:
        return self.faces.identity_id

    @property
    def model(self):
        return self.identities.model

    @property
    def session_count(self) -> int:
        return self.status.session_count

    def progress(self) -> tuple[int, int]:
        return self.identities.reviewed, self.identities.total

    def identity_row(self, identity_id: int) -> browse.IdentityRow | None:
        return self.model.row_by_id(identity_id) if self.model is not None else None

    def refresh_header(self) -> None:
        self.faces.refresh_header()

    def show_message(self, text: str, ms: int = 5000) -> None:
        self.statusBar().showMessage(text, ms)

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
        self.identities.setVisible(mode.shows_list)
        if mode.status is not None:
            self.statusBar().addPermanentWidget(mode.status)
            mode.status.show()
        self.faces.legend.setText(mode.legend_html())
        actions.enable_for(self.actions_by_name, mode.name)
        window_state.size_panel(self.splitter, mode, self._review_sizes)
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

    # -- the write path (modes.ModeHost) ----------------------------------------------------------
    @property
    def writes(self) -> WriteQueue | None:
        return self.runner.writes

    def run_op(self, op, **kw):
        """One user action through the write path (:meth:`OpRunner.run_op`)."""
        return self.runner.run_op(op, **kw)

    def run_write(self, fn, **kw):
        return self.runner.run_write(fn, **kw)

    def guard(self, fn) -> None:
        self.runner.guard(fn)

    def apply_changes(self, ch: ops.Changes, follow: bool = False) -> None:
        """Every view redraws what an operation changed. With ``follow`` (undo/redo), the
        identity the change happened in is shown first when it is not the current one."""
        if self.project is None or self.model is None:
            return
        if follow and ch.identities and self.current_identity not in ch.identities:
            target = min(ch.identities)
            for _f, (_frm, to) in ch.moved.items():
                target = to  # where the moved faces are now, so the cursor can show them
            self.open_identity(target)
        self.op_executed.emit(ch, follow)

    def _after_op(self, ch: ops.Changes, _follow: bool) -> None:
        if ch.identities:
            self.refresh_header()
        fid = self.grid.current_face_id()
        if fid is not None and fid in ch.faces:
            self.mode.face_changed(fid)

    # -- project -----------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        if self.writes is not None and self.writes.pending and not self.writes.flush(2.0):
            project.close()
            raise AnnotatorError(
                f"{len(self.writes.pending)} change(s) of this project are not saved yet "
                "(another process is writing it); open the other project when they are"
            )
        self.set_mode(self.review)
        window_state.remember_place(self)
        self.identities.close_model()
        self.runner.stop()
        if self.project is not None:
            self.project.close()
        self.project = self.identities.project = self.faces.project = project
        self.runner.start(project)
        # Identity and face ids start at 1 in every project: nothing of the previous project
        # may stay on screen (its identity 1 is not this one's), nor in the session counts.
        self.faces.identity_id = None
        self.grid_model.set_faces(None, [])
        self.status.new_session()
        assert self.loader is not None
        self.loader.set_cache(project.cache_dir / "thumbs.sqlite")
        access.use_embedded(project)  # a package made --with-images: its bytes are inside
        self.settings.setValue("last_project", str(project.path))
        self.setWindowTitle(f"annotator — {project.path.name}")
        self.identities.set_project(project)
        self.statusBar().clearMessage()
        last, face = window_state.remembered_place(self.settings, project)
        if last is not None:
            self.open_identity(last)
            if face is not None and (row := self.grid_model.row_of(face)) is not None:
                self.grid.set_current_row(row)
        elif self.model.ids:
            self.identities.table.selectRow(0)
        else:
            self.show_identity(None)
        self.status.update()
        self.grid.setFocus()
        if browse.never_scanned(project):
            self.show_message(
                "Not scanned yet: File > Scan finds duplicates, outliers and broken images.", 0
            )

    def showEvent(self, e) -> None:
        super().showEvent(e)
        window_state.fit_splitter(self.splitter, self._default_split)
        self._default_split = False

    def open_path(self, path: str | Path) -> None:
        self.set_project(open_project(path))

    def new_project(self) -> None:
        p, _ = QFileDialog.getSaveFileName(self, "New project", "project.db", "Projects (*.db)")
        if p:
            self.guard(lambda: self.set_project(open_project(p, create=True)))

    def open_project_dialog(self) -> None:
        p, _ = QFileDialog.getOpenFileName(
            self, "Open project", "", "Projects (*.db);;All files (*)"
        )
        if p:
            self.guard(lambda: self.open_path(p))

    def scan(self) -> None:
        from annotator.gui.tasks import scan_fn

        if self.project is not None:
            self.run_task("Scanning: hashes and flags", scan_fn())

    def run_task(self, title: str, fn, show_dialog: bool = True):
        from annotator.gui.tasks import Task, summary

        assert self.project is not None
        task = Task(self, title, self.project.path, fn, show_dialog=show_dialog)
        self._tasks.append(task)

        def done(result: object, error: str) -> None:
            self._tasks.remove(task)
            if error:
                QMessageBox.warning(self, title, error)
            else:
                self.show_message(summary(title, result, task.cancelled), 15000)
            self.reload_list()
            self.mode.reload()  # new faces or flags (badges) in what the grid shows

        task.done.connect(done)
        return task

    def reload_list(self) -> None:
        if self.project is None:
            return
        self.identities.reload()
        self.status.update()

    # -- identities and faces ----------------------------------------------------------------------
    def open_identity(self, identity_id: int, face_id: int | None = None) -> None:
        """Show an identity (selecting it in the list when it is listed)."""
        self.identities.select_identity(identity_id)
        if identity_id != self.current_identity:
            self.show_identity(identity_id)
        if face_id is not None:
            self.grid.select_face(face_id)

    def open_face(self, identity_id: int, face_id: int) -> None:
        self.open_identity(identity_id, face_id)

    def show_identity(self, identity_id: int | None) -> None:
        """Fill the grid with an identity's faces (one query), thumbnails load in the pool."""
        self.faces.show_faces(identity_id)
        if identity_id is None or self.project is None or self.grid_model.rowCount() == 0:
            self.mode.face_changed(None)

    def _face_changed(self, _cur, _prev) -> None:
        if self.project is not None:
            self.mode.face_changed(self.grid.current_face_id())

    def back_to_grid(self) -> None:
        """After a dialog: the window and its grid take the keys again (without a window
        manager, X leaves the focus nowhere when a dialog closes)."""
        self.activateWindow()
        self.grid.setFocus()

    # -- the shortcut table's handlers (shortcuts.py; the label keys call label) ----------------
    def label(self, label: str | None) -> None:
        if self.project is not None:
            self.mode.label(label)

    def review_identity(self) -> None:
        if self.project is not None:
            self.mode.accept()

    def next_needing_review(self) -> None:
        if not self.identities.next_needing_review():
            self.show_message("Every identity in this list is reviewed.", 8000)

    def next_identity(self) -> None:
        if self.identities.step(1):
            self.grid.setFocus()

    def prev_identity(self) -> None:
        if self.identities.step(-1):
            self.grid.setFocus()

    def undo(self) -> None:
        if self.project is not None:
            self.mode.undo()

    def redo(self) -> None:
        if self.project is not None:
            self.mode.redo()

    def set_filter(self, key: str) -> None:
        self.identities.set_filter(key)

    def wait_painted(self, timeout: float = 15.0) -> bool:
        return self.faces.wait_painted(timeout)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        # `?` is Shift+/ on most layouts; where the platform does not map that to the `?`
        # shortcut (e.g. the offscreen platform), the unhandled key arrives here.
        if e.text() == "?":
            self.dialogs.show_shortcuts()
            e.accept()
            return
        super().keyPressEvent(e)

    # -- the end ----------------------------------------------------------------------------------
    def closeEvent(self, e: QCloseEvent) -> None:
        # Every label is committed or queued: queued ones get a few seconds to land; when the
        # lock is still held the close is refused once (the status bar says why) and the next
        # close quits without them (listed on stderr).
        w = self.writes
        if w is not None and w.pending and not self.status.close_anyway and not w.flush(3.0):
            self.status.close_anyway = True
            self.show_message(
                f"{len(w.pending)} change(s) are not saved yet: the project is locked by "
                "another process. Wait for them, or close again to quit without them.",
                0,
            )
            QApplication.beep()
            e.ignore()
            return
        self.teardown()
        super().closeEvent(e)

    def teardown(self) -> None:
        """The one end: remember the place and layout, close the dialogs, stop the workers (a
        cancelled import or scan commits what it has done), close the file."""
        self.runner.stop()
        window_state.remember_place(self)
        window_state.save_layout(self, self.splitter, self.settings)
        self.settings.sync()
        self.identities.search_timer.stop()
        self.status.timer.stop()
        self.dialogs.close_all()
        for t in list(self._tasks):
            t.cancel()  # type: ignore[attr-defined]
        for t in list(self._tasks):
            t.wait(30_000)  # type: ignore[attr-defined]
        self.identities.close_model()
        if self.loader is not None:
            self.loader.shutdown()
        if self.project is not None:
            self.project.close()
            self.project = self.identities.project = self.faces.project = None
