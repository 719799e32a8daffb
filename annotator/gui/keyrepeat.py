"""Which key press triggered a shortcut: a fresh one or a held key's auto-repeat.

A QAction's shortcut hides the key event that fired it, so :class:`RepeatWatch` (an event filter
on the application) notes ``isAutoRepeat()`` of every key press and shortcut-override event
just before Qt's shortcut map runs the action; the window then asks :attr:`repeating`. A key
release that is not part of a repeat, and any mouse press, end a repeat (so a menu click is
never taken for one).

On X11, Qt tells a held key's repeat from a fresh press by finding the repeat's KeyRelease and
KeyPress together in the event queue; when the GUI thread was busy (an Enter that wrote a
step) the pair can arrive split and the repeat looks fresh. X gives both events of a repeat
the same server time, while no hand releases and presses a key within a few milliseconds: a
press of the key just released, at (nearly) the release's timestamp, is a repeat too.
(Synthetic events without a timestamp, as in tests, are left to ``isAutoRepeat``.)
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QKeyEvent

_KEYS = (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride)
_ENDS = (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick)
SAME_INSTANT_MS = 8  # a release and a press of one key closer than this: one held key


class RepeatWatch(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.repeating = False
        self._released: tuple[int, int] | None = None  # (key, timestamp) of the last release

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        t = ev.type()
        if t in _KEYS and isinstance(ev, QKeyEvent):
            rep = ev.isAutoRepeat()
            if not rep and self._released is not None and ev.timestamp() > 0:
                key, at = self._released
                rep = ev.key() == key and 0 <= ev.timestamp() - at < SAME_INSTANT_MS
            self.repeating = rep
        elif t == QEvent.Type.KeyRelease and isinstance(ev, QKeyEvent):
            if not ev.isAutoRepeat():
                self.repeating = False
                self._released = (ev.key(), ev.timestamp())
        elif t in _ENDS:
            self.repeating = False
            self._released = None
        return False
