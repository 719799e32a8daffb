"""Thumbnails decoded in a thread pool, cached in memory (LRU by bytes) and on disk.

The GUI thread resolves locators (one query per identity) and hands workers plain tuples;
workers never touch the project's sqlite connection. A worker reads the face's bytes with
:func:`annotator.core.infra.access.read_planned`, decodes and shrinks it with Pillow, stores a
small JPEG in the disk cache (``<project>.cache/thumbs.sqlite``, deletable at any time) and
emits a QImage. QPixmaps are made only in the GUI thread.
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from annotator.core.infra.access import ReadItem, read_planned
from annotator.core.infra.decode import open_image
from annotator.store.thumbcache import DiskCache

# Thumbnails are decoded at one of these sizes (the smallest >= the tile size) and scaled
# when painted, so Ctrl+wheel zoom does not re-decode everything.
BUCKETS = (128, 256)
Locator = tuple  # (face id, source path, format, offset, length, relpath, origin)


def bucket_for(size: int) -> int:
    for b in BUCKETS:
        if size <= b:
            return b
    return BUCKETS[-1]


def _cache_key(loc: Locator) -> str:
    """Identifies the face's bytes, so a re-imported project never shows a stale thumbnail."""
    _fid, path, fmt, offset, length, relpath, _origin = loc
    return f"{path}|{fmt}|{offset}|{length}|{relpath}"


def decode_thumbnail(data: bytes, size: int) -> tuple[QImage, bytes]:
    """Decode image bytes, shrink to fit ``size``; returns the QImage and a small JPEG."""
    with open_image(data, fit=(size, size)) as im:  # the pixel budget (core/infra/decode.py)
        im.draft("RGB", (size, size))
        im = im.convert("RGB")
        im.thumbnail((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=88)
    return _qimage(im), buf.getvalue()


def _qimage(im: Image.Image) -> QImage:
    raw = im.tobytes("raw", "RGB")
    q = QImage(raw, im.width, im.height, im.width * 3, QImage.Format.Format_RGB888)
    return q.copy()  # own the pixels (raw goes away)


def _from_jpeg(jpeg: bytes) -> QImage:
    with Image.open(io.BytesIO(jpeg)) as im:
        return _qimage(im.convert("RGB"))


class _Signals(QObject):
    # epoch, face id, size, QImage or None, error text
    done = Signal(int, int, int, object, str)


class _Job(QRunnable):
    def __init__(self, loader: ThumbnailLoader, loc: Locator, size: int, generation: int):
        super().__init__()
        self.loader, self.loc, self.size, self.generation = loader, loc, size, generation
        # the project's cache and epoch when asked: a job still running after another project
        # was opened neither writes to the new project's cache nor shows its image there
        self.disk, self.epoch = loader.disk, loader.epoch
        self.setAutoDelete(True)

    def run(self) -> None:  # worker thread: no widgets, no project connection
        ld = self.loader
        fid = self.loc[0]
        ep = self.epoch
        if ld.stale(self.generation, fid, self.size):
            ld.signals.done.emit(ep, fid, self.size, None, "")  # dropped; lets pending drain
            return
        key = _cache_key(self.loc)
        try:
            jpeg = self.disk.get(fid, self.size, key)
            if jpeg is not None:
                img = _from_jpeg(jpeg)
            elif not self.disk.current():  # a takedown since: the window reloads first
                raise RuntimeError("the project changed (a takedown); reloading")
            else:
                data = read_planned([ReadItem(*self.loc)], errors="return")[0]
                if isinstance(data, Exception):
                    raise data
                img, jpeg = decode_thumbnail(data, self.size)
                self.disk.put(fid, self.size, key, jpeg)
            _emit(ld, ep, fid, self.size, img, "")
        except Exception as e:  # noqa: BLE001 - any decode/read problem is shown on the tile
            _emit(ld, ep, fid, self.size, None, str(e) or type(e).__name__)


def _emit(ld: ThumbnailLoader, *args: object) -> None:
    """Hand a result to the loader; nothing when the loader is gone (a job still running as
    the program exits without closing its window: Qt deleted the signal's source first)."""
    try:
        ld.signals.done.emit(*args)
    except RuntimeError:
        pass


class ThumbnailLoader(QObject):
    """Asynchronous thumbnails. ``request`` returns a pixmap at once when cached, else None and
    ``ready(face_id)`` fires when it arrives (or ``failed(face_id, reason)``)."""

    ready = Signal(int)
    failed = Signal(int, str)
    idle = Signal()

    def __init__(
        self,
        cache_file: Path | None = None,
        max_bytes: int = 192 << 20,
        threads: int | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        if threads:
            self.pool.setMaxThreadCount(threads)
        self.disk = DiskCache(cache_file)
        self.signals = _Signals()
        self.signals.done.connect(self._on_done)
        self.max_bytes = max_bytes
        self._mem: OrderedDict[tuple[int, int], QPixmap] = OrderedDict()
        self._mem_bytes = 0
        self._errors: dict[int, str] = {}
        self._pending: set[tuple[int, int]] = set()
        self._wanted: set[tuple[int, int]] = set()
        self._lock = threading.Lock()
        self.generation = 0
        self.epoch = 0  # bumped by set_cache: results of older jobs are dropped

    # -- called from workers ---------------------------------------------------------------
    def stale(self, generation: int, face_id: int, size: int) -> bool:
        with self._lock:
            return generation != self.generation and (face_id, size) not in self._wanted

    # -- GUI thread ------------------------------------------------------------------------
    def pixmap(self, face_id: int, size: int) -> QPixmap | None:
        key = (face_id, bucket_for(size))
        pm = self._mem.get(key)
        if pm is not None:
            self._mem.move_to_end(key)
        return pm

    def error(self, face_id: int) -> str | None:
        return self._errors.get(face_id)

    def request(self, loc: Locator, size: int) -> QPixmap | None:
        fid = loc[0]
        b = bucket_for(size)
        pm = self.pixmap(fid, size)
        if pm is not None or fid in self._errors:
            return pm
        key = (fid, b)
        with self._lock:
            self._wanted.add(key)
            if key in self._pending:
                return None
            self._pending.add(key)
        self.pool.start(_Job(self, loc, b, self.generation))
        return None

    def set_cache(self, cache_file: Path | None) -> None:
        """Another project: its disk cache, and nothing kept from the previous one (face ids
        start at 1 in every project, so a cached pixmap would show another project's face)."""
        with self._lock:
            self.epoch += 1
            self.generation += 1
            self._wanted.clear()
            self._pending.clear()
        self.disk = DiskCache(cache_file)
        self._mem.clear()
        self._mem_bytes = 0
        self._errors.clear()

    def new_generation(self) -> None:
        """Forget queued work (e.g. another identity is shown): jobs not started yet that
        nobody asks for again return at once when the pool reaches them."""
        with self._lock:
            self.generation += 1
            self._wanted.clear()

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def _on_done(self, epoch: int, face_id: int, size: int, img: QImage | None, err: str) -> None:
        if epoch != self.epoch:
            return  # asked for by the previous project
        key = (face_id, size)
        self._pending.discard(key)
        with self._lock:
            self._wanted.discard(key)
        if img is not None:
            pm = QPixmap.fromImage(img)
            nbytes = pm.width() * pm.height() * 4
            old = self._mem.pop(key, None)
            if old is not None:
                self._mem_bytes -= old.width() * old.height() * 4
            self._mem[key] = pm
            self._mem_bytes += nbytes
            while self._mem_bytes > self.max_bytes and len(self._mem) > 1:
                _k, ev = self._mem.popitem(last=False)
                self._mem_bytes -= ev.width() * ev.height() * 4
            self.ready.emit(face_id)
        elif err:
            self._errors[face_id] = err
            self.failed.emit(face_id, err)
        if not self._pending:
            self.idle.emit()

    @property
    def memory_bytes(self) -> int:
        return self._mem_bytes

    def shutdown(self) -> None:
        with self._lock:
            self.generation += 1
            self._wanted.clear()
        self.pool.waitForDone(5000)
