"""Work-arounds for PySide6 bugs met by the reviewer.

PySide6 6.12.0: ``SignalInstance.emit()`` returns ``True`` without taking a reference, so
every emit from Python drops one reference to ``True``; after a few thousand emits (one
or two per thumbnail) CPython aborts with "bool_dealloc: deallocating True or False"
(at the latest at exit). :func:`emit` emits and gives the reference back. The bug is
detected once at import, so a fixed PySide6 needs no change here.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


class _Probe(QObject):
    sig = Signal(int)


def _emit_drops_true() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.sig.emit(0)
    lost = before - sys.getrefcount(True)
    for _ in range(max(lost, 0)):
        _incref(True)  # repair the probe's own damage
    return lost >= 8


EMIT_DROPS_TRUE = _emit_drops_true()


def emit(signal, *args) -> None:  # noqa: ANN001 - a bound SignalInstance
    """``signal.emit(*args)``, without PySide6 6.12's lost reference to True."""
    result = signal.emit(*args)
    if EMIT_DROPS_TRUE and result is True:
        _incref(True)
