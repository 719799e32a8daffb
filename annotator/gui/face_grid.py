"""The face grid: a list model of the current identity's faces and an icon-mode QListView.

Arrow keys move the current face without selecting it; Space toggles the selection;
Shift+arrows, Ctrl/Shift+click, rubber band and Ctrl+A select as in a file manager.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QKeyEvent, QWheelEvent
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle

from annotator.gui.delegates import BADGE_HELP, ErrorRole, FaceDelegate, PixmapRole, TileRole
from annotator.gui.thumbnails import ThumbnailLoader
from annotator.store.browse import FaceTile

_Index = QModelIndex | QPersistentModelIndex
MIN_SIZE, MAX_SIZE = 64, 320


class FaceGridModel(QAbstractListModel):
    def __init__(self, loader: ThumbnailLoader, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.tiles: list[FaceTile] = []
        self.identity_id: int | None = None
        self.thumb_size = 128
        # QA pass: tiles carry the QA reviewer's own verdict as their label, never the original
        self.blind = False
        self._row_of: dict[int, int] = {}
        loader.ready.connect(self._thumb_changed)
        loader.failed.connect(lambda fid, _e: self._thumb_changed(fid))

    def set_faces(self, identity_id: int | None, tiles: Sequence[FaceTile]) -> None:
        self.beginResetModel()
        self.identity_id = identity_id
        self.tiles = list(tiles)
        self._row_of = {t.id: r for r, t in enumerate(self.tiles)}
        self.endResetModel()

    def row_of(self, face_id: int) -> int | None:
        return self._row_of.get(face_id)

    def tiles_of(self, face_ids: Iterable[int]) -> dict[int, FaceTile]:
        """The shown tiles of ``face_ids`` (faces not shown are left out)."""
        return {f: self.tiles[r] for f in face_ids if (r := self._row_of.get(f)) is not None}

    def set_labels(self, labels: dict[int, str | None]) -> None:
        for fid, label in labels.items():
            r = self._row_of.get(fid)
            if r is not None:
                self.tiles[r].label = label
                ix = self.index(r)
                self.dataChanged.emit(ix, ix)

    def remove_faces(self, face_ids: Iterable[int]) -> None:
        rows = sorted((self._row_of[f] for f in face_ids if f in self._row_of), reverse=True)
        for r in rows:
            self.beginRemoveRows(QModelIndex(), r, r)
            del self.tiles[r]
            self.endRemoveRows()
        if rows:
            self._row_of = {t.id: r for r, t in enumerate(self.tiles)}

    def add_faces(self, tiles: Iterable[FaceTile]) -> None:
        new = [t for t in tiles if t.id not in self._row_of]
        for t in sorted(new, key=lambda t: t.id):
            pos = sum(1 for x in self.tiles if x.id < t.id)
            self.beginInsertRows(QModelIndex(), pos, pos)
            self.tiles.insert(pos, t)
            self.endInsertRows()
            self._row_of = {t.id: r for r, t in enumerate(self.tiles)}

    def _thumb_changed(self, face_id: int) -> None:
        r = self._row_of.get(face_id)
        if r is not None:
            ix = self.index(r)
            self.dataChanged.emit(ix, ix, [PixmapRole])

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.tiles)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.tiles):
            return None
        t = self.tiles[index.row()]
        if role == TileRole:
            return t
        if role == PixmapRole:
            return self.loader.request(t.locator(), self.thumb_size)
        if role == ErrorRole:
            return self.loader.error(t.id)
        if role == Qt.ItemDataRole.ToolTipRole:
            what = "your QA verdict" if self.blind else "label"
            lines = [t.origin, f"{what}: {t.label or ('none yet' if self.blind else 'unlabeled')}"]
            lines += [f"[{b}] {BADGE_HELP.get(b, b)}" for b in t.badges]
            err = self.loader.error(t.id)
            if err:
                lines.append(err)
            return "\n".join(lines)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            if self.blind:
                return f"QA item {t.origin}, your verdict {t.label or 'none yet'}"
            return f"face {t.origin}, {t.label or 'unlabeled'}"
        return None


_NAV_KEYS = {
    Qt.Key.Key_Left,
    Qt.Key.Key_Right,
    Qt.Key.Key_Up,
    Qt.Key.Key_Down,
    Qt.Key.Key_Home,
    Qt.Key.Key_End,
}


class FaceGridView(QListView):
    zoomed = Signal(int)  # new thumbnail size

    def __init__(self, model: FaceGridModel, parent=None):
        super().__init__(parent)
        self.setModel(model)
        self.grid_model = model
        self.delegate = FaceDelegate(self)
        self.setItemDelegate(self.delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionRectVisible(True)
        self.setSpacing(2)
        self.setWrapping(True)
        self.setMouseTracking(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.set_thumb_size(128)

    def set_thumb_size(self, size: int) -> None:
        size = max(MIN_SIZE, min(MAX_SIZE, int(size)))
        self.delegate.thumb_size = size
        self.grid_model.thumb_size = size
        self._fit_grid()
        self.doItemsLayout()
        self.viewport().update()
        self.zoomed.emit(size)

    def _fit_grid(self) -> None:
        """Spread the columns over the whole width: no empty strip right of the tiles."""
        s = self.delegate.sizeHint(None, QModelIndex())  # type: ignore[arg-type]
        cell = s.width() + 2
        # QListView lays items out in the viewport's largest size minus a vertical scroll
        # bar's width (reserved so the bar cannot make the columns blink), not in the current
        # viewport: spreading over viewport().width() left one column too few.
        avail = self.maximumViewportSize().width() - 2 * self.spacing() - 1
        if self.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAsNeeded:
            avail -= self.style().pixelMetric(
                QStyle.PixelMetric.PM_ScrollBarExtent, None, self.verticalScrollBar()
            )
        cols = max(1, avail // cell)
        grid = QSize(max(cell, avail // cols), s.height() + 2)
        if grid != self.gridSize():
            self.setGridSize(grid)

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        self._fit_grid()

    @property
    def thumb_size(self) -> int:
        return self.delegate.thumb_size

    def zoom(self, steps: int) -> None:
        self.set_thumb_size(self.thumb_size + 16 * steps)

    # -- selection behaviour -------------------------------------------------------------
    def selectionCommand(self, index: _Index, event: QEvent | None = None):
        if (
            isinstance(event, QKeyEvent)
            and event.type() == QEvent.Type.KeyPress
            and Qt.Key(event.key()) in _NAV_KEYS
            and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            return QItemSelectionModel.SelectionFlag.NoUpdate
        return super().selectionCommand(index, event)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        if e.text() == "?":  # not a keyboard search: the window shows the shortcut sheet
            e.ignore()
            return
        if e.key() == Qt.Key.Key_Space and not e.modifiers():
            cur = self.currentIndex()
            if cur.isValid():
                self.selectionModel().select(cur, QItemSelectionModel.SelectionFlag.Toggle)
            e.accept()
            return
        super().keyPressEvent(e)

    def wheelEvent(self, e: QWheelEvent) -> None:
        if e.modifiers() & Qt.KeyboardModifier.ControlModifier:
            dy = e.angleDelta().y()
            if dy:
                self.zoom(1 if dy > 0 else -1)
            e.accept()
            return
        super().wheelEvent(e)

    # -- helpers for the window ----------------------------------------------------------
    def selected_face_ids(self) -> list[int]:
        rows = sorted(ix.row() for ix in self.selectionModel().selectedIndexes())
        return [self.grid_model.tiles[r].id for r in rows if r < len(self.grid_model.tiles)]

    def target_face_ids(self) -> tuple[list[int], bool]:
        """What a key acts on: the selected faces, else the current face; and whether they
        came from the selection."""
        sel = self.selected_face_ids()
        if sel:
            return sel, True
        cur = self.current_face_id()
        return ([cur] if cur is not None else []), False

    def current_face_id(self) -> int | None:
        ix = self.currentIndex()
        if not ix.isValid() or ix.row() >= len(self.grid_model.tiles):
            return None
        return self.grid_model.tiles[ix.row()].id

    def set_current_row(self, row: int) -> None:
        n = self.grid_model.rowCount()
        if n == 0:
            return
        row = max(0, min(n - 1, row))
        ix = self.grid_model.index(row)
        self.selectionModel().setCurrentIndex(ix, QItemSelectionModel.SelectionFlag.NoUpdate)
        self.scrollTo(ix)

    def select_face(self, face_id: int, add: bool = False) -> None:
        """Make a face current and selected (``add``: select it too, nothing else changes)."""
        r = self.grid_model.row_of(face_id)
        if r is not None:
            ix = self.grid_model.index(r)
            if add:
                self.selectionModel().select(ix, QItemSelectionModel.SelectionFlag.Select)
                return
            self.selectionModel().setCurrentIndex(
                ix, QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
            self.scrollTo(ix)
