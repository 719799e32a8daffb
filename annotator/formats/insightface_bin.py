"""InsightFace verification pairs (``lfw.bin``, ``cfp_fp.bin``, ...): a pickle of
``(bins, issame)`` — ``bins`` a list of 2 * n encoded images (bytes), pair k being
``bins[2k]``, ``bins[2k + 1]``; ``issame`` a list of n booleans. InsightFace's
``verification.load_bin`` opens it with ``pickle.load(f, encoding='bytes')``.

:func:`write_bin` writes the pickle opcodes itself (protocol 4: lists filled with APPENDS in
batches), one image at a time, so the images are never all in memory; ``pickle.load`` reads the
result like any other pickle. No Qt, no SQL.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

_BATCH = 1000  # items per MARK ... APPENDS (the pickle module uses the same)


def _bytes_op(b: bytes) -> bytes:
    n = len(b)
    if n < 256:
        return pickle.SHORT_BINBYTES + bytes((n,))
    if n < 1 << 32:
        return pickle.BINBYTES + struct.pack("<I", n)
    return pickle.BINBYTES8 + struct.pack("<Q", n)


def write_bin_stream(fh: BinaryIO, images: Iterable[bytes], issame: Sequence[bool]) -> int:
    """Write the pickle to an open binary file; ``images`` yields 2 * len(issame) byte strings.
    Returns the number of images written."""
    fh.write(pickle.PROTO + bytes((4,)))
    fh.write(pickle.EMPTY_LIST)
    n = 0
    in_batch = 0
    for img in images:
        if in_batch == 0:
            fh.write(pickle.MARK)
        fh.write(_bytes_op(img))
        fh.write(img)
        n += 1
        in_batch += 1
        if in_batch == _BATCH:
            fh.write(pickle.APPENDS)
            in_batch = 0
    if in_batch:
        fh.write(pickle.APPENDS)
    if n != 2 * len(issame):
        raise ValueError(f"{n} images for {len(issame)} pairs (expected {2 * len(issame)})")
    fh.write(pickle.EMPTY_LIST)
    for i in range(0, len(issame), _BATCH):
        fh.write(pickle.MARK)
        fh.write(b"".join(pickle.NEWTRUE if s else pickle.NEWFALSE for s in issame[i : i + _BATCH]))
        fh.write(pickle.APPENDS)
    fh.write(pickle.TUPLE2 + pickle.STOP)
    return n


def write_bin(path: str | Path, images: Iterable[bytes], issame: Sequence[bool]) -> int:
    with open(path, "wb", buffering=1 << 20) as fh:
        return write_bin_stream(fh, images, issame)
