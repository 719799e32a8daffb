"""The centre of the window: the header, the face grid and the legend under it.

A view: it owns its widgets, shows one identity's faces (or a mode's, e.g. a QA sample) and
redraws itself from an op's ``Changes`` (:meth:`FaceView.apply_changes`, connected to the
window's ``op_executed``): labels, faces moved in or away, and after an undo the cursor on
the first face it changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QLabel, QSizePolicy, QVBoxLayout, QWidget

from annotator.core.review import ops
from annotator.gui.face_grid import FaceGridModel, FaceGridView
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.store import browse
from annotator.store.db import Project


class FaceView(QWidget):
    def __init__(
        self,
        loader: ThumbnailLoader,
        settings: QSettings,
        header: Callable[[], str],
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.loader = loader
        self._header = header  # the mode's header (key, name, counts)
        self.project: Project | None = None
        self.identity_id: int | None = None  # the identity whose faces are shown
        cv = QVBoxLayout(self)
        cv.setContentsMargins(0, 6, 0, 6)
        self.title = QLabel()
        self.title.setObjectName("identityTitle")
        self.title.setTextFormat(Qt.TextFormat.RichText)
        # never widens the centre: when key, name and counts do not fit on one line, the
        # counts and review state wrap to a second line (a too long name is cut at the right)
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setWordWrap(True)
        self.title.setText(
            "<span style='font-size:13pt'><i>No project open</i></span>&nbsp;&nbsp;"
            "<span style='color:#666'>Ctrl+O open · Ctrl+N new · File &gt; Import…</span>"
        )
        cv.addWidget(self.title)
        self.grid_model = FaceGridModel(loader, self)
        self.grid = FaceGridView(self.grid_model)
        self.grid.set_thumb_size(int(settings.value("thumb_size", 112)))  # MS-Celeb: 112 px
        self.grid.zoomed.connect(lambda s: settings.setValue("thumb_size", s))
        cv.addWidget(self.grid, 1)
        self.legend = QLabel()
        self.legend.setStyleSheet("color:#555")
        self.legend.setWordWrap(True)  # else its one long line is the centre's minimum width
        cv.addWidget(self.legend)

    def refresh_header(self) -> None:
        self.title.setText(self._header())

    def show_faces(self, identity_id: int | None) -> None:
        """An identity's faces (one query; thumbnails load in the pool), cursor on the first."""
        self.identity_id = identity_id
        self.loader.new_generation()
        if identity_id is None or self.project is None:
            self.grid_model.set_faces(None, [])
            self.refresh_header()
            return
        self.grid_model.set_faces(identity_id, browse.faces_of_identity(self.project, identity_id))
        self.refresh_header()
        self.grid.scrollToTop()
        self.grid.set_current_row(0)

    def apply_changes(self, ch: ops.Changes, follow: bool = False) -> None:
        """New labels, faces moved away or in; with ``follow`` (undo/redo) the cursor goes to
        the first face the change relabelled."""
        self.grid_model.set_labels(ch.labels)
        cur = self.identity_id
        away = [f for f, (_a, to) in ch.moved.items() if to != cur]
        into = [f for f, (_a, to) in ch.moved.items() if to == cur]
        if away:
            self.grid_model.remove_faces(away)
        if into and self.project is not None:
            self.grid_model.add_faces(browse.face_tiles(self.project, into).values())
        if follow:
            rows = [r for f in ch.labels if (r := self.grid_model.row_of(f)) is not None]
            if rows:
                self.grid.set_current_row(min(rows))

    def wait_painted(self, timeout: float = 15.0) -> bool:
        """Process events until the visible tiles have their thumbnails (for --screenshot)."""
        app = QApplication.instance()
        assert app is not None
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
        vp = self.grid.viewport().rect()
        for r, t in enumerate(self.grid_model.tiles):
            if not self.grid.visualRect(self.grid_model.index(r)).intersects(vp):
                continue
            if (
                self.loader.pixmap(t.id, self.grid.thumb_size) is None
                and self.loader.error(t.id) is None
            ):
                return False
        return True
