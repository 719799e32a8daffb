"""Hashing speed: images/s of the scan's hashing (process pool, one worker per core) against a
plain single-process loop of ``imagehash.phash(Image.open(BytesIO(b)))``, on 112x112 and 250x250
JPEGs, with a check that every pHash is bit-identical.

Also measured in the same run, single process, CPU time per image:
* decode: ``Image.open(BytesIO(b)).load()`` + ``convert("L")`` — work any exact pipeline must do
  for every image, so ``cores * plain / decode`` bounds the achievable ratio;
* ours: the workers' own CPU time per image (what the ratio would be on an otherwise idle machine
  is ``cores * plain_cpu / ours_cpu``; the wall-clock ratio also reflects other load on the box).

Each measurement is repeated (--rounds) and the best taken.

    python3 tests/bench/bench_hash.py [--quick] [--workers N] [--rounds R]
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

CHUNK = 128


def _work(chunk: list[bytes]) -> tuple[list[tuple[object, ...]], float]:
    """What a scan worker does with a chunk (rows as the scan stores them) + its CPU time."""
    t = time.process_time()
    rows = [
        (r.face_id, r.sha256, r.phash, r.dhash, r.width, r.height, r.grayscale, r.sharpness)
        for r in hash_images(range(len(chunk)), chunk)
    ]
    return rows, time.process_time() - t


def _best(f, rounds: int) -> tuple[float, float, object]:
    """(best wall seconds, best cpu seconds, last result) of ``rounds`` runs of f()."""
    wall = cpu = float("inf")
    out = None
    for _ in range(rounds):
        t, c = time.perf_counter(), time.process_time()
        out = f()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    from annotator.core.demo import jpeg_pool

    n = 800 if a.quick else 2000
    imagehash.phash(Image.new("L", (40, 40)))  # warm up: imagehash imports scipy lazily
    print(
        f"{'size':>5} {'n':>5} {'plain/s':>8} {'ours/s':>8} {'ratio':>6} | us/img cpu: "
        f"{'plain':>6} {'decode':>6} {'ours':>6} | {'idle-ratio':>10} {'limit':>6} identical",
        flush=True,
    )
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # as the scan sets it for its workers
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(a.workers, mp_context=ctx) as pool:
        for size in (112, 250):
            blobs = jpeg_pool(n // 4, size=size, seed=size) * 4
            chunks = [blobs[i : i + CHUNK] for i in range(0, len(blobs), CHUNK)]
            list(pool.map(_work, chunks[: 2 * a.workers]))  # warm up the workers
            pw, pc, hashes = _best(
                lambda b=blobs: [imagehash.phash(Image.open(io.BytesIO(x))) for x in b], a.rounds
            )
            ref = [str(h) for h in hashes]  # type: ignore[union-attr]
            _, dc, _ = _best(
                lambda b=blobs: [Image.open(io.BytesIO(x)).convert("L") for x in b], a.rounds
            )
            ow = oc = float("inf")
            ours: list[tuple[object, ...]] = []
            for _ in range(a.rounds):
                t = time.perf_counter()
                res = list(pool.map(_work, chunks))
                ow = min(ow, time.perf_counter() - t)
                oc = min(oc, sum(c for _, c in res))
                ours = [row for rows, _ in res for row in rows]
            same = all(to_hex(r[2]) == h for r, h in zip(ours, ref, strict=True))  # type: ignore[arg-type]
            us = 1e6 / n
            print(
                f"{size:>5} {n:>5} {n / pw:>8,.0f} {n / ow:>8,.0f} {pw / ow:>6.2f} | "
                f"{'':>11} {pc * us:>6.0f} {dc * us:>6.0f} {oc * us:>6.0f} | "
                f"{a.workers * pc / oc:>10.2f} {a.workers * pc / dc:>6.2f} {same}",
                flush=True,
            )


if __name__ == "__main__":
    main()
