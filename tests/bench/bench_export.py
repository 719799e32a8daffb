"""Benchmark: export a reviewed project (folder, msceleb, rec) and report the time ratio.

The baseline, measured in the same run on the same project: read every included face's bytes
with FaceBytes and write each to its own file (the least any folder export must do). The
ratio is export time / baseline time (lower is better; ~1-2 means selection, hashing, the
manifest and the datasheet cost little beyond the unavoidable I/O).

    python3 tests/bench/bench_export.py [--quick] [--faces N]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PIL import Image, ImageDraw  # noqa: E402

from annotator.core import ops  # noqa: E402
from annotator.core.export import export_dataset  # noqa: E402
from annotator.core.importer import import_source  # noqa: E402
from annotator.formats import msceleb  # noqa: E402
from annotator.formats.access import FaceBytes  # noqa: E402
from annotator.store.db import open_project  # noqa: E402


def jpeg(i: int) -> bytes:
    im = Image.new("RGB", (112, 112), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    ImageDraw.Draw(im).ellipse((10 + i % 20, 12, 90, 100), fill=((i * 13) % 256, 200, 100))
    b = io.BytesIO()
    im.save(b, "JPEG", quality=90)
    return b.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--faces", type=int, default=None)
    a = ap.parse_args()
    n = a.faces or (1000 if a.quick else 10000)
    per = 10
    tmp = Path(tempfile.mkdtemp(prefix="bench_export_"))
    try:
        imgs = [jpeg(i) for i in range(200)]
        with open(tmp / "src.tsv", "wb") as fh:
            for i in range(n):
                msceleb.write_row(
                    fh,
                    f"m.{i // per:06d}",
                    i % per + 1,
                    f"http://x/{i}",
                    "",
                    "0",
                    None,
                    imgs[i % 200],
                )
        p = open_project(tmp / "p.db", create=True)
        import_source(p, "msceleb", tmp / "src.tsv")
        ids = [r[0] for r in p.conn.execute("SELECT id FROM identities")]
        for i in ids:
            ops.review_identity(p, i, "bench")
        face_ids = [r[0] for r in p.conn.execute("SELECT id FROM faces ORDER BY id")]

        def baseline() -> float:
            d = tmp / "base"
            t = time.perf_counter()
            d.mkdir()
            with FaceBytes(p) as fb:
                for fid, data in zip(face_ids, fb.read_many(face_ids), strict=True):
                    (d / f"{fid}.jpg").write_bytes(data)
            el = time.perf_counter() - t
            shutil.rmtree(d)
            return el

        base = min(baseline() for _ in range(3))
        print(f"faces {n}, baseline (read + write each file) {base:.3f} s")
        for fmt in ("folder", "msceleb", "rec", "csv"):
            times = []
            for _ in range(3):
                t = time.perf_counter()
                export_dataset(p, tmp / f"out_{fmt}", fmt, pairs=100, force=True)
                times.append(time.perf_counter() - t)
            best = min(times)
            print(
                f"{fmt:>8}: {best:.3f} s, {n / best:,.0f} faces/s, ratio {best / base:.2f} x baseline"
            )
        p.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
