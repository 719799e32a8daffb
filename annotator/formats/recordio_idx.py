"""The ``.idx`` beside an InsightFace RecordIO ``.rec``: ``key<TAB>byte offset`` per line.

Read in blocks (NumPy for well-formed ones, line by line for the others, each bad line
reported with its line number); a key repeated on later lines keeps its first line and the
repeats are reported once with a count, so a damaged .idx of millions of duplicate lines costs
one pass and memory for its distinct keys only. Two keys at one offset (one record read as two
faces) keep the earlier line; the later ones are reported once, with a count. Part of the RecordIO format (``recordio.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from annotator.model import Rejected

IDX_BLOCK = 8 << 20  # bytes of .idx parsed at a time


def _idx_block_fast(block: bytes) -> np.ndarray | None:
    """The numbers of a block of complete ``key<TAB>offset<LF>`` lines, parsed in NumPy; None
    when the block is not exactly in that shape (the caller then parses it line by line)."""
    if not block or block.translate(None, b"0123456789\t\n"):
        return None
    u = np.frombuffer(block, dtype=np.uint8)
    seps = np.flatnonzero((u == 9) | (u == 10))
    # separators alternate TAB, LF, TAB, LF ...; every field between them has 1 to 18 digits
    # (so it fits an int64: NumPy would clamp a longer one silently)
    gaps = np.diff(seps)
    if len(seps) % 2 or not 0 < seps[0] <= 18 or np.any(gaps < 2) or np.any(gaps > 19):
        return None
    kinds = u[seps]
    if np.any(kinds[0::2] != 9) or np.any(kinds[1::2] != 10):
        return None
    try:
        vals = np.fromstring(block, dtype=np.int64, sep=" ")  # text mode: any whitespace
    except ValueError:  # e.g. a number too large for int64
        return None
    return vals if len(vals) == len(seps) else None


def _first_of_each_key(
    keys: np.ndarray, offs: np.ndarray, lines: np.ndarray | int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | int, int, int]:
    """Keep the first line of each key (in file order): (keys, offsets, line numbers, lines
    dropped, line number of the first dropped or 0). O(n) when keys increase (the usual case). ``lines``: the line numbers, or
    the first one of consecutive lines (made into an array only when a key repeats)."""
    if len(keys) < 2 or bool((keys[1:] > keys[:-1]).all()):
        return keys, offs, lines, 0, 0
    if isinstance(lines, int):
        lines = np.arange(lines, lines + len(keys), dtype=np.int64)
    _, first = np.unique(keys, return_index=True)
    first.sort()
    dropped = np.ones(len(keys), dtype=bool)
    dropped[first] = False
    n_dropped = len(keys) - len(first)
    first_dropped = int(lines[dropped].min()) if n_dropped else 0
    return keys[first], offs[first], lines[first], n_dropped, first_dropped


def read_idx(idx_path: str | Path) -> tuple[np.ndarray, np.ndarray, list[Rejected]]:
    """Parse a .idx: returns (keys, offsets) sorted by offset, plus rejected lines.

    Blocks of well-formed lines are parsed in NumPy (an MS1MV2 .idx of 5.8M lines in well
    under a second, ~16 bytes a record); other blocks line by line, reporting bad lines.
    A key on more than one line keeps its first line; the repeats are dropped block by block
    (memory bounded by the distinct keys) and reported once, with their count."""
    key_parts: list[np.ndarray] = []
    off_parts: list[np.ndarray] = []
    line_parts: list[np.ndarray | int] = []
    bad: list[Rejected] = []
    name = Path(idx_path).name
    line_no = 0  # lines before the current block
    n_dup, first_dup = 0, 0

    def keep(k: np.ndarray, o: np.ndarray, ln: np.ndarray | int) -> None:
        nonlocal n_dup, first_dup
        k, o, ln, n, first = _first_of_each_key(k, o, ln)
        if n:
            n_dup += n
            first_dup = first if not first_dup else min(first_dup, first)
        key_parts.append(k)
        off_parts.append(o)
        line_parts.append(ln)

    with open(idx_path, "rb") as f:
        rest = b""
        while True:
            chunk = f.read(IDX_BLOCK)
            data = rest + chunk
            if not chunk:
                if data and not data.endswith(b"\n"):
                    data += b"\n"
                block, rest = data, b""
            else:
                cut = data.rfind(b"\n") + 1
                block, rest = data[:cut], data[cut:]
            if block:
                vals = _idx_block_fast(block)
                if vals is not None:
                    n = len(vals) // 2
                    keep(vals[0::2].copy(), vals[1::2].copy(), line_no + 1)
                    line_no += n
                else:
                    keys: list[int] = []
                    offs: list[int] = []
                    lns: list[int] = []
                    for line in block.split(b"\n")[:-1]:
                        line_no += 1
                        parts = line.split()
                        if not parts:
                            continue
                        try:
                            if len(parts) != 2:
                                raise ValueError
                            k, o = int(parts[0]), int(parts[1])
                            if not (0 <= o < 1 << 63 and -(1 << 63) <= k < 1 << 63):
                                raise ValueError
                        except ValueError:
                            bad.append(
                                Rejected(
                                    f"{name}:{line_no}",
                                    "bad .idx line (expected key<TAB>offset)",
                                    line_no,
                                )
                            )
                            continue
                        keys.append(k)
                        offs.append(o)
                        lns.append(line_no)
                    keep(
                        np.asarray(keys, dtype=np.int64),
                        np.asarray(offs, dtype=np.int64),
                        np.asarray(lns, dtype=np.int64),
                    )
            if not chunk:
                break
    k_arr = np.concatenate(key_parts) if key_parts else np.zeros(0, dtype=np.int64)
    o_arr = np.concatenate(off_parts) if off_parts else np.zeros(0, dtype=np.int64)
    if len(k_arr) > 1 and not bool((k_arr[1:] > k_arr[:-1]).all()):  # across blocks
        l_arr = _line_numbers(key_parts, line_parts)
        k_arr, o_arr, _, n, first = _first_of_each_key(k_arr, o_arr, l_arr)
        del l_arr
    else:
        n = first = 0
    if n:
        n_dup += n
        first_dup = first if not first_dup else min(first_dup, first)
    if n_dup:
        bad.append(
            Rejected(
                f"{name}:{first_dup}",
                f"{n_dup} .idx line(s) repeat a key of an earlier line (skipped; the first "
                "line of each key is kept)",
                first_dup,
            )
        )
    if not (o_arr[1:] >= o_arr[:-1]).all():  # the usual case (file order) needs no sort
        order = np.argsort(o_arr, kind="stable")
        k_arr, o_arr = k_arr[order], o_arr[order]
    if len(o_arr) > 1 and bool((o_arr[1:] == o_arr[:-1]).any()):
        # two keys at one offset would read one record as two faces: the arrays are in file
        # order within an offset (stable sort of file-ordered lines), so keep the first
        first = np.ones(len(o_arr), dtype=bool)
        first[1:] = o_arr[1:] != o_arr[:-1]
        gone = k_arr[~first]
        k_arr, o_arr = k_arr[first], o_arr[first]
        line = _first_line_of(gone, key_parts, line_parts)
        bad.append(
            Rejected(
                f"{name}:{line}",
                f"{len(gone)} .idx line(s) give the offset of an earlier line's record (skipped:"
                " one record is one face; the first line at each offset is kept)",
                line,
            )
        )
    return k_arr, o_arr, bad


def _line_numbers(key_parts: list[np.ndarray], line_parts: list[np.ndarray | int]) -> np.ndarray:
    """The line number of every kept line of every block, as one array."""
    return np.concatenate(
        [
            ln if isinstance(ln, np.ndarray) else np.arange(ln, ln + len(k), dtype=np.int64)
            for k, ln in zip(key_parts, line_parts, strict=True)
        ]
    )


def _first_line_of(
    keys: np.ndarray, key_parts: list[np.ndarray], line_parts: list[np.ndarray | int]
) -> int:
    """The first line holding one of ``keys`` (block by block: only a damaged .idx asks)."""
    best = 0
    wanted = np.sort(keys)
    for k, ln in zip(key_parts, line_parts, strict=True):
        at_or_after = np.minimum(np.searchsorted(wanted, k), len(wanted) - 1)
        hit = np.flatnonzero(wanted[at_or_after] == k)
        if len(hit):
            at = int(ln[hit[0]]) if isinstance(ln, np.ndarray) else ln + int(hit[0])
            best = at if not best else min(best, at)
    return best
