"""Benchmark: export a reviewed project in each format and report time ratios and memory.

Each format is compared with its own baseline, measured in the same run on the same project:
the least any exporter of that format must do with the same bytes —

* folder:  read every included face's bytes (FaceBytes, in file order) and write each to its
           own file in its identity's folder (one mkdir per identity);
* msceleb: read, base64-encode and write the rows of one TSV;
* rec:     read and write one .rec (dmlc framing) + .idx;
* csv:     read and SHA-256 every face (the manifest needs the hashes).

ratio = export time / baseline time (lower is better; ~1 means selection, naming, hashing,
the manifest and the datasheet cost little beyond the unavoidable I/O). Baseline and export
runs are interleaved and each ratio is the median of the per-round ratios, because the machine
is shared and file-system timings drift. Each export goes to a fresh folder (deleting the last
one is not timed, as for the baseline).

Image sizes (the rec export's ``property``, for faces the scan has not measured): reading each
header with Pillow, and through the export's table of headers already seen, as ratios to the
SHA-256 of the same bytes (work every export does per face anyway); JPEGs with standard Huffman
tables (one shared header) and with optimised ones (a header of their own each).

Memory: the Python heap peak (tracemalloc) of one export at N and at 4N faces; image bytes are
streamed, so the peak must not grow with N beyond the small per-face metadata.

    python3 tests/bench/bench_export.py [--quick] [--faces N] [--rounds R] [--pairs P] [--no-memory]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PIL import Image, ImageDraw  # noqa: E402

from annotator.core.export.run import export_dataset  # noqa: E402
from annotator.core.export.selection import ImageSizes, image_size  # noqa: E402
from annotator.core.export.sinks import EXPORT_FORMATS  # noqa: E402
from annotator.core.importer import import_source  # noqa: E402
from annotator.core.infra.access import FaceBytes  # noqa: E402
from annotator.core.review import ops  # noqa: E402
from annotator.formats import msceleb, recordio  # noqa: E402
from annotator.store.db import Project, open_project  # noqa: E402

PER = 10  # faces per identity


def jpeg(i: int, optimize: bool = False) -> bytes:
    im = Image.new("RGB", (112, 112), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    ImageDraw.Draw(im).ellipse((10 + i % 20, 12, 90, 100), fill=((i * 13) % 256, 200, 100))
    b = io.BytesIO()
    im.save(b, "JPEG", quality=90, optimize=optimize)
    return b.getvalue()


def make_project(tmp: Path, n: int) -> Project:
    imgs = [jpeg(i) for i in range(200)]
    with open(tmp / "src.tsv", "wb") as fh:
        for i in range(n):
            msceleb.write_row(
                fh, f"m.{i // PER:06d}", i % PER + 1, f"http://x/{i}", "", "0", None, imgs[i % 200]
            )
    p = open_project(tmp / "p.db", create=True)
    import_source(p, "msceleb", tmp / "src.tsv")
    for (i,) in p.conn.execute("SELECT id FROM identities").fetchall():
        ops.review_identity(p, i, "bench")
    return p


def faces_by_identity(p: Project) -> list[tuple[str, list[int]]]:
    out: dict[str, list[int]] = {}
    for key, fid in p.conn.execute(
        "SELECT i.key, f.id FROM faces f JOIN identities i ON i.id = f.identity_id ORDER BY i.key, f.id"
    ):
        out.setdefault(key, []).append(fid)
    return list(out.items())


def read_all(p: Project, groups: list[tuple[str, list[int]]]):
    """(identity key, face id, bytes), reading 256 faces per FaceBytes call."""
    with FaceBytes(p) as fb:
        flat = [(k, f) for k, fs in groups for f in fs]
        for i in range(0, len(flat), 256):
            chunk = flat[i : i + 256]
            for (k, f), data in zip(chunk, fb.read_many([f for _k, f in chunk]), strict=True):
                yield k, f, data


def baselines(p: Project, groups: list[tuple[str, list[int]]]) -> dict[str, Callable[[Path], None]]:
    def folder(d: Path) -> None:
        d.mkdir()
        made = set()
        for k, f, data in read_all(p, groups):
            if k not in made:
                (d / k).mkdir()
                made.add(k)
            (d / k / f"{f}.jpg").write_bytes(data)

    def tsv(d: Path) -> None:
        d.mkdir()
        with open(d / "faces.tsv", "wb", buffering=1 << 20) as fh:
            for k, f, data in read_all(p, groups):
                fh.write(f"{k}\t{f}\t\t\t\t\t".encode() + base64.b64encode(data) + b"\n")

    def rec(d: Path) -> None:
        d.mkdir()
        classes = {k: i for i, (k, _fs) in enumerate(groups)}
        with open(d / "train.rec", "wb", buffering=1 << 20) as r, open(d / "train.idx", "wb") as x:
            for key, (k, _f, data) in enumerate(read_all(p, groups), 1):
                x.write(f"{key}\t{r.tell()}\n".encode())
                r.write(recordio.encode_record(recordio.pack(classes[k], data)))

    def csv(d: Path) -> None:
        d.mkdir()
        for _k, _f, data in read_all(p, groups):
            hashlib.sha256(data).digest()

    return {"folder": folder, "msceleb": tsv, "rec": rec, "csv": csv}


def timed(fn: Callable[[Path], None], d: Path) -> float:
    t = time.perf_counter()
    fn(d)
    el = time.perf_counter() - t
    shutil.rmtree(d)
    return el


def run_speed(p: Project, tmp: Path, rounds: int, n: int, pairs: int) -> None:
    base = baselines(p, faces_by_identity(p))
    print(f"faces {n}, {n // PER} identities, {rounds} rounds, pairs={pairs} (not in baselines)")
    for fmt in EXPORT_FORMATS:
        ratios, bt, et = [], [], []
        for r in range(rounds):
            b = timed(base[fmt], tmp / f"base_{fmt}_{r}")
            e = timed(
                lambda d, fmt=fmt: export_dataset(p, d, fmt, pairs=pairs), tmp / f"out_{fmt}_{r}"
            )
            bt.append(b)
            et.append(e)
            ratios.append(e / b)
        print(
            f"{fmt:>8}: export {min(et):.3f} s ({n / min(et):,.0f} faces/s), baseline "
            f"{min(bt):.3f} s, ratio median {statistics.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
        )


def run_sizes(n: int, rounds: int) -> None:
    for label, optimize in (("standard tables", False), ("optimised tables", True)):
        imgs = [jpeg(i, optimize) for i in range(200)] * (n // 200 or 1)
        t: dict[str, list[float]] = {"sha256": [], "pillow": [], "table": []}
        for _r in range(rounds):
            table = ImageSizes()  # a fresh table each round, as each export starts with
            for name, fn in (
                ("sha256", lambda d: hashlib.sha256(d).digest()),
                ("pillow", lambda d: image_size(d, "jpeg")),
                ("table", lambda d, table=table: table(d, "jpeg")),
            ):
                start = time.perf_counter()
                for d in imgs:
                    fn(d)
                t[name].append(time.perf_counter() - start)
        base = statistics.median(t["sha256"])
        print(
            f"image sizes, {label}, {len(imgs)} faces: sha256 {base / len(imgs) * 1e6:.1f} us a face; "
            f"Pillow {statistics.median(t['pillow']) / base:.1f}x, "
            f"table {statistics.median(t['table']) / base:.1f}x that"
        )


def run_memory(tmp: Path, n: int) -> None:
    for size in (n, 4 * n):
        d = tmp / f"mem{size}"
        d.mkdir()
        p = make_project(d, size)
        peaks = []
        for fmt in EXPORT_FORMATS:
            tracemalloc.start()
            export_dataset(p, d / f"out_{fmt}", fmt, pairs=100)
            peaks.append(f"{fmt} {tracemalloc.get_traced_memory()[1] / 1e6:.1f} MB")
            tracemalloc.stop()
        data = sum(len(b) for _k, _f, b in read_all(p, faces_by_identity(p)))
        print(f"faces {size} ({data / 1e6:.0f} MB of images): heap peak " + ", ".join(peaks))
        p.close()
        shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--faces", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--pairs", type=int, default=0)
    ap.add_argument("--no-memory", action="store_true")
    a = ap.parse_args()
    n = a.faces or (1000 if a.quick else 10000)
    rounds = a.rounds or (3 if a.quick else 5)
    tmp = Path(tempfile.mkdtemp(prefix="bench_export_"))
    try:
        p = make_project(tmp, n)
        run_speed(p, tmp, rounds, n, a.pairs)
        p.close()
        run_sizes(n, rounds)
        if not a.no_memory:
            run_memory(tmp, max(n // 4, 500))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
