"""A damaged ``.idx`` of N duplicate lines (issue 20 #14: 75M of them ran past 300 s): the time
to read a two-record ``.rec`` through ``read_rec`` whose ``.idx`` repeats an image's line N times,
and a ``.idx`` of N distinct keys all at that image's offset (one record, N keys), against
``read_idx`` of a well-formed ``.idx`` of N distinct lines (the baseline: the plain parse every
.idx of that size costs), both in this process, best of --rounds; with the peak
resident set of each in a fresh process. Files are written to a temp dir.

``--against TREE`` runs the duplicate case with that tree's code too (a subprocess with
--timeout seconds; "timeout" when it does not finish).

    python3 tests/bench/bench_idx_duplicates.py [--lines 5000000] [--against TREE]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parents[2]
CHILD = """
import json, resource, sys, time
import annotator
assert annotator.__file__.startswith(sys.argv[3]), annotator.__file__
from annotator.formats import recordio
from annotator.model import FaceRecord
best = None
for _ in range(int(sys.argv[4])):
    t = time.perf_counter()
    if sys.argv[1] == "rec":
        n = sum(isinstance(x, FaceRecord) for _, _, x in recordio.read_rec(sys.argv[2]))
    else:
        n = len(recordio.read_idx(sys.argv[2])[0])
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"s": best, "n": n, "rss": rss}))
"""


def run(tree: Path, kind: str, path: Path, rounds: int, timeout: float) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, kind, str(path), str(tree), str(rounds)],
            env=env,
            cwd=path.parent,  # not this tree: "python -c" puts the working directory first
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        ).stdout
    except subprocess.TimeoutExpired:
        return None
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=5_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--against", type=Path)
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from annotator.formats.recordio import RecordWriter

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        b = io.BytesIO()
        Image.new("RGB", (8, 8), (9, 9, 9)).save(b, "JPEG")
        rec = d / "dup" / "train.rec"
        rec.parent.mkdir()
        with RecordWriter(rec) as w:
            w.add(0, b.getvalue())
            w.add(1, b.getvalue())
        idx = rec.with_suffix(".idx")
        lines = idx.read_bytes().splitlines(keepends=True)
        with open(idx, "wb") as f:
            f.write(b"".join(lines))  # header, two images, two identity ranges
            rep = lines[1] * 100_000  # the first image's line, again and again
            for _ in range(a.lines // 100_000):
                f.write(rep)
        # N distinct keys all giving the first image's offset (one record, N keys)
        same = d / "same" / "train.rec"
        same.parent.mkdir()
        same.write_bytes(rec.read_bytes())
        off = lines[1].split(b"\t")[1]
        with open(same.with_suffix(".idx"), "wb") as f:
            f.write(b"".join(lines))
            for s in range(10, a.lines + 10, 100_000):
                f.write(b"".join(b"%d\t%s" % (k, off) for k in range(s, s + 100_000)))
        distinct = d / "base.idx"
        with open(distinct, "wb") as f:
            for s in range(0, a.lines, 100_000):
                f.write("".join(f"{k}\t{k * 1000}\n" for k in range(s, s + 100_000)).encode())
        base = run(HERE, "idx", distinct, a.rounds, a.timeout)
        assert base is not None
        rows = [("this", "read_idx, distinct lines (baseline)", base)]
        rows.append(
            ("this", "read_rec, duplicate lines", run(HERE, "rec", rec, a.rounds, a.timeout))
        )
        rows.append(
            ("this", "read_rec, keys at one offset", run(HERE, "rec", same, a.rounds, a.timeout))
        )
        if a.against:
            t = a.against.resolve()
            rows.append(
                (
                    "against",
                    "read_idx, distinct lines",
                    run(t, "idx", distinct, a.rounds, a.timeout),
                )
            )
            rows.append(("against", "read_rec, duplicate lines", run(t, "rec", rec, 1, a.timeout)))
            rows.append(
                ("against", "read_rec, keys at one offset", run(t, "rec", same, 1, a.timeout))
            )
        print(f"{a.lines:,} lines; {idx.stat().st_size >> 20} MiB duplicate .idx")
        print("| tree | case | seconds | / baseline | faces | peak RSS MiB |")
        print("|---|---|---|---|---|---|")
        for tree, case, m in rows:
            if m is None:
                print(f"| {tree} | {case} | timeout (>{a.timeout:g}) | - | - | - |")
            else:
                print(
                    f"| {tree} | {case} | {m['s']:.2f} | {m['s'] / base['s']:.2f} | {m['n']:,} "
                    f"| {m['rss'] / 1024:.0f} |"
                )


if __name__ == "__main__":
    main()
