"""Work-arounds for PySide6 bugs met by the reviewer.

PySide6 6.12.0: ``SignalInstance.emit()`` returns ``True`` without taking a reference, so
every emit from Python drops one reference to ``True``; after a few thousand emits (one
or two per thumbnail) CPython aborts with "bool_dealloc: deallocating True or False"
(at the latest at exit). :func:`emit` emits and gives the reference back. The bug is
detected once at import, so a fixed PySide6 needs no change here.

PySide6 6.12.0 also loses a reference to None on every call of a Python slot by a signal that
Qt emits (see :data:`SLOT_CALL_DROPS_NONE`); when the probe finds it, None, True and False get
a reference count that cannot run out (what CPython 3.12 does for them anyway).
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


def _slot_call_drops_none() -> bool:
    """PySide6 6.12.0 also drops one reference to None each time a signal emitted by Qt (a
    timer, a key, a model) calls a Python slot: a reviewer's few thousand keystrokes end in
    "Fatal Python error: none_dealloc". Probe it with objectNameChanged (emitted by C++)."""
    probe = QObject()
    seen: list[str] = []
    probe.objectNameChanged.connect(seen.append)
    before = sys.getrefcount(None)
    for i in range(16):
        probe.setObjectName(f"p{i}")
    lost = before - sys.getrefcount(None)
    for _ in range(max(lost, 0)):
        _incref(None)  # repair the probe's own damage
    return lost >= 16


def _make_immortal(obj: object) -> bool:
    """Give a singleton (None, True, False) a reference count no leak can use up, as CPython
    3.12 does for them itself. Only done when the count read in memory is the one Python
    reports (a standard, non-trace-refs build of CPython < 3.12)."""
    if sys.version_info >= (3, 12) or not hasattr(sys, "getrefcount"):
        return False
    cell = ctypes.c_ssize_t.from_address(id(obj))
    if abs(cell.value - (sys.getrefcount(obj) - 1)) > 4:
        return False
    cell.value += 1 << 40
    return True


SLOT_CALL_DROPS_NONE = _slot_call_drops_none()
if SLOT_CALL_DROPS_NONE:
    for _singleton in (None, True, False):
        _make_immortal(_singleton)


def emit(signal, *args) -> None:  # noqa: ANN001 - a bound SignalInstance
    """``signal.emit(*args)``, without PySide6 6.12's lost reference to True."""
    result = signal.emit(*args)
    if EMIT_DROPS_TRUE and result is True:
        _incref(True)
