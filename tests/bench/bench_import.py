"""Benchmark: import a generated MS-Celeb 7-column TSV (>= 200 MB) and report MB/s.

The baseline, measured in the same run on the same file: a plain Python loop that reads,
splits and base64-decodes each line (the least any importer that looks at the images does).
Goal (issue 2): >= 100 MB/s and at or above the baseline.

    python3 tests/bench/bench_import.py [--quick] [--mb N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PIL import Image, ImageDraw  # noqa: E402

from annotator.core.importer import import_source  # noqa: E402
from annotator.formats import msceleb  # noqa: E402
from annotator.store.db import open_project  # noqa: E402

FULL_SIZE_GB = 89.0  # FaceImageCroppedWithAlignment.tsv
FULL_LINES = 8_456_240


def jpeg_pool(n: int, rng: random.Random) -> list[bytes]:
    """Synthetic "faces" (random ellipses), ~7-8 KB JPEGs: ~10 KB base64 rows, like the real
    aligned file (89 GB / 8,456,240 lines = 10.5 KB per line)."""
    out = []
    for _ in range(n):
        im = Image.new("RGB", (128, 128), tuple(rng.randrange(256) for _ in range(3)))
        d = ImageDraw.Draw(im)
        for _ in range(40):
            x, y = rng.randrange(128), rng.randrange(128)
            d.ellipse(
                (x, y, x + rng.randrange(4, 40), y + rng.randrange(4, 40)),
                fill=tuple(rng.randrange(256) for _ in range(3)),
            )
        b = io.BytesIO()
        im.save(b, "JPEG", quality=rng.randrange(80, 95))
        out.append(b.getvalue())
    return out


def make_tsv(path: Path, mb: int, seed: int = 1) -> tuple[int, int]:
    rng = random.Random(seed)
    pool = jpeg_pool(64, rng)
    target = mb * 1_000_000
    lines = 0
    with open(path, "wb", buffering=8 << 20) as f:
        while f.tell() < target:
            ident = lines // 100
            msceleb.write_row(
                f,
                f"m.{ident:07x}",
                lines % 100,
                f"http://img.example/{lines}.jpg",
                f"http://page.example/{ident}",
                f"FaceId-{lines}",
                (0.1, 0.12, 0.9, 0.93),
                pool[lines % len(pool)],
            )
            lines += 1
    return path.stat().st_size, lines


def baseline(path: Path) -> float:
    """Plain loop: read, split, base64-decode each line. Returns seconds."""
    t = time.perf_counter()
    n = 0
    with open(path, "rb") as f:
        for line in f:
            fields = line.rstrip(b"\n").split(b"\t")
            n += len(base64.b64decode(fields[6]))
    return time.perf_counter() - t


def run_import(path: Path, workdir: Path) -> tuple[float, int]:
    db = workdir / "bench.db"
    for p in workdir.glob("bench.db*"):
        p.unlink()
    with open_project(db, create=True) as project:  # creating the schema is not timed
        t = time.perf_counter()
        r = import_source(project, "msceleb", path)
        return time.perf_counter() - t, r.imported


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 MB instead of 220 MB")
    ap.add_argument("--mb", type=int, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="work in DIR and keep the files")
    args = ap.parse_args()
    mb = args.mb or (60 if args.quick else 220)
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_import_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        tsv = work / "faces.tsv"
        if not (args.keep and tsv.exists() and tsv.stat().st_size >= mb * 1_000_000):
            make_tsv(tsv, mb)
        size = tsv.stat().st_size
        with open(tsv, "rb") as f:  # warm the page cache for both contenders
            while f.read(16 << 20):
                pass
        # interleave: baseline, import, baseline, import; best of each
        tb, ti = [], []
        imported = 0
        for _ in range(3):
            tb.append(baseline(tsv))
            t, imported = run_import(tsv, work)
            ti.append(t)
        mb_s_base = size / min(tb) / 1e6
        mb_s_imp = size / min(ti) / 1e6
        rows = imported
        print(
            f"file: {size / 1e6:.1f} MB, {rows:,} rows ({size / rows / 1e3:.1f} KB/row), {os.cpu_count()} CPUs"
        )
        print(f"baseline (read+split+b64decode): {mb_s_base:7.1f} MB/s  ({min(tb):.2f} s)")
        print(
            f"annotator import msceleb:        {mb_s_imp:7.1f} MB/s  ({min(ti):.2f} s, {rows / min(ti):,.0f} rows/s)"
        )
        print(f"RATIO import/baseline: {mb_s_imp / mb_s_base:.2f}  (goal >= 1.0 and >= 100 MB/s)")
        proj_s = FULL_SIZE_GB * 1e9 / (mb_s_imp * 1e6)
        proj_rows = FULL_LINES / (rows / min(ti))
        print(
            f"projected for the 89 GB aligned TSV: {proj_s / 60:.0f} min by bytes "
            f"({proj_rows / 60:.0f} min by rows at this row rate; real rows are ~10.5 KB)"
        )
        ok = mb_s_imp >= 100 and mb_s_imp >= mb_s_base
        print("GOAL", "MET" if ok else "NOT MET")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
