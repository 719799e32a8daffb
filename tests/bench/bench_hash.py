"""Hashing speed: images/s of the scan's hashing (process pool) vs a plain single-process loop of
imagehash.phash(Image.open(BytesIO(b))), on 112x112 and 250x250 JPEGs; checks bit-identity.

    python3 tests/bench/bench_hash.py [--quick] [--workers N]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import imagehash  # noqa: E402
from PIL import Image  # noqa: E402

from annotator.core.hashing import hash_images, to_hex  # noqa: E402


def _work(chunk: list[bytes]) -> list[int | None]:
    return [r.phash for r in hash_images(range(len(chunk)), chunk)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    from annotator.core.demo import jpeg_pool

    n = 600 if a.quick else 2000
    print(f"{'size':>5} {'n':>6} {'plain img/s':>12} {'ours img/s':>11} {'ratio':>6} identical")
    for size in (112, 250):
        blobs = jpeg_pool(n // 4, size=size, seed=size) * 4
        t = time.perf_counter()
        ref = [str(imagehash.phash(Image.open(io.BytesIO(b)))) for b in blobs]
        plain = time.perf_counter() - t
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        chunks = [blobs[i : i + 256] for i in range(0, len(blobs), 256)]
        with ProcessPoolExecutor(
            a.workers, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            list(pool.map(_work, chunks[: a.workers]))  # warm up the workers
            t = time.perf_counter()
            ours = [h for part in pool.map(_work, chunks) for h in part]
            fast = time.perf_counter() - t
        same = all(to_hex(h) == r for h, r in zip(ours, ref, strict=True))  # type: ignore[arg-type]
        print(
            f"{size:>5} {n:>6} {n / plain:>12,.0f} {n / fast:>11,.0f} {plain / fast:>6.2f} {same}"
        )


if __name__ == "__main__":
    main()
