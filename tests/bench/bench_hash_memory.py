"""Peak memory of hashing one large face (issue 20 #14): a scan worker's resident set while
``hash_image`` runs on a drawn JPEG of SIDE x SIDE pixels, against the same fresh process hashing
a 112x112 JPEG (the baseline: interpreter, NumPy, Pillow and the module). Each measurement is a
new process (``ru_maxrss`` is a high-water mark), the JPEG written beforehand into a temp dir.

``--against TREE`` (another checkout, e.g. ``git worktree add /tmp/old REV``) measures that
tree too, in the same run, and checks that both trees give the same hash results.

    python3 tests/bench/bench_hash_memory.py [--sides 1024,4096] [--against TREE]
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

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parents[2]
CHILD = """
import json, resource, sys
import annotator
assert annotator.__file__.startswith(sys.argv[2]), annotator.__file__
data = open(sys.argv[1], "rb").read()
from annotator.core.dedup.hashing import hash_image
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = hash_image(data)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base": base, "peak": peak, "r": [r.phash, r.dhash, r.sharpness, r.crop,
      r.grayscale, r.corrupt, r.thumb.hex() if r.thumb else None]}))
"""


def drawn_jpeg(side: int, path: Path) -> None:
    rng = np.random.default_rng(side)
    a = rng.integers(0, 256, (max(2, side // 16), max(2, side // 16), 3), dtype=np.uint8)
    b = io.BytesIO()
    Image.fromarray(a).resize((side, side), Image.Resampling.BILINEAR).save(b, "JPEG", quality=90)
    path.write_bytes(b.getvalue())


def measure(tree: Path, jpeg: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(jpeg), str(tree)],
        env=env,
        cwd=jpeg.parent,  # not this tree: "python -c" puts the working directory first
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sides", default="1024,2048,4096")
    ap.add_argument("--against", type=Path)
    a = ap.parse_args()
    trees = [("this", HERE)] + ([("against", a.against.resolve())] if a.against else [])
    with tempfile.TemporaryDirectory() as tmp:
        sides = [112] + [int(s) for s in a.sides.split(",")]
        files = {}
        for s in sides:
            files[s] = Path(tmp) / f"{s}.jpg"
            drawn_jpeg(s, files[s])
        print("| tree | side | JPEG KiB | peak RSS MiB | over the 112x112 run MiB | same results |")
        print("|---|---|---|---|---|---|")
        results: dict[int, list] = {}
        for name, tree in trees:
            base = None
            for s in sides:
                m = measure(tree, files[s])
                peak = m["peak"] / 1024
                base = peak if base is None else base
                same = results.setdefault(s, m["r"]) == m["r"]
                print(
                    f"| {name} | {s} | {files[s].stat().st_size >> 10} | {peak:.0f} | "
                    f"{peak - base:+.0f} | {'yes' if same else 'NO'} |"
                )


if __name__ == "__main__":
    main()
