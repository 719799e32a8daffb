"""Which key press triggered a shortcut: a fresh one or a held key's auto-repeat.

A QAction's shortcut hides the key event that fired it, so :class:`RepeatWatch` (an event filter
on the application) notes ``isAutoRepeat()`` of every key press and shortcut-override event
just before Qt's shortcut map runs the action; the window then asks :attr:`repeating`. A key
release that is not part of a repeat, and any mouse press, end a repeat (so a menu click is
never taken for one).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QKeyEvent

_KEYS = (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride)
_ENDS = (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick)


class RepeatWatch(QObject):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.repeating = False

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:
        t = ev.type()
        if t in _KEYS and isinstance(ev, QKeyEvent):
            self.repeating = ev.isAutoRepeat()
        elif t == QEvent.Type.KeyRelease and isinstance(ev, QKeyEvent):
            if not ev.isAutoRepeat():
                self.repeating = False
        elif t in _ENDS:
            self.repeating = False
        return False
