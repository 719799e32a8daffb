"""Hashing speed: images/s of the scan's hashing (process pool, one worker per core) against a
plain single-process loop of ``imagehash.phash(Image.open(BytesIO(b)))``, on 112x112 and 250x250
JPEGs, with a check that every pHash is bit-identical.

Also measured in the same run, single process, CPU time per image:
* decode: ``Image.open(BytesIO(b)).load()`` + ``convert("L")`` — work any exact pipeline must do
  for every image, so ``cores * plain / decode`` bounds the achievable ratio;
* ours: the workers' own CPU time per image (what the ratio would be on an otherwise idle machine
  is ``cores * plain_cpu / ours_cpu``; the wall-clock ratio also reflects other load on the box).

``--against TREE`` (a checkout of another commit, e.g. ``git worktree add /tmp/old REV``) also
times that tree's ``hash_images`` in its own worker pool, rounds interleaved with ours, and
prints a second table: CPU per image of both trees, each over the decode floor, and
new/old (below 1.00 = this tree is faster). Every hash stage result (pHash, dHash, size,
grayscale, sharpness) must then be equal between the trees, and the thumbnails too when both
trees store them.

Each measurement is repeated (--rounds) and the best taken (the workers' CPU time: the best
round of each chunk, summed: a chunk slowed by other load in one round does not count).

    python3 tests/bench/bench_hash.py [--quick] [--workers N] [--rounds R] [--against TREE]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

HERE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, HERE)

import imagehash  # noqa: E402
from PIL import Image  # noqa: E402

CHUNK = 128


def _init(tree: str) -> None:
    """Worker initializer: import ``annotator`` from ``tree`` (before anything imports it)."""
    sys.path.insert(0, tree)


def _work(chunk: list[bytes]) -> tuple[list[tuple[object, ...]], float]:
    """What a scan worker does with a chunk (rows as the scan stores them) + its CPU time."""
    from annotator.core.hashing import hash_images

    t = time.process_time()
    rows = [
        (r.face_id, r.sha256, r.phash, r.dhash, r.width, r.height, r.grayscale, r.sharpness)
        + ((getattr(r, "thumb", None),))
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


def _same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    """Equal hash stage results; thumbnails compared only when both trees store them."""
    for x, y in zip(a, b, strict=True):
        if x[:8] != y[:8]:
            return False
        if x[8] is not None and y[8] is not None and x[8] != y[8]:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--against", metavar="TREE", help="also time this checkout's hash_images")
    a = ap.parse_args()
    from annotator.core.demo import jpeg_pool
    from annotator.core.hashing import to_hex

    n = 800 if a.quick else 2000
    imagehash.phash(Image.new("L", (40, 40)))  # warm up: imagehash imports scipy lazily
    print(
        f"{'size':>5} {'n':>5} {'plain/s':>8} {'ours/s':>8} {'ratio':>6} | us/img cpu: "
        f"{'plain':>6} {'decode':>6} {'ours':>6} | {'idle-ratio':>10} {'limit':>6} identical",
        flush=True,
    )
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # as the scan sets it for its workers
    ctx = multiprocessing.get_context("spawn")
    trees = [HERE] + ([os.path.abspath(a.against)] if a.against else [])
    pools = [
        ProcessPoolExecutor(a.workers, mp_context=ctx, initializer=_init, initargs=(t,))
        for t in trees
    ]
    versus: list[str] = []
    try:
        for size in (112, 250):
            blobs = jpeg_pool(n // 4, size=size, seed=size) * 4
            chunks = [blobs[i : i + CHUNK] for i in range(0, len(blobs), CHUNK)]
            for pool in pools:
                list(pool.map(_work, chunks[: 2 * a.workers]))  # warm up the workers
            pw, pc, hashes = _best(
                lambda b=blobs: [imagehash.phash(Image.open(io.BytesIO(x))) for x in b], a.rounds
            )
            ref = [str(h) for h in hashes]  # type: ignore[union-attr]
            _, dc, _ = _best(
                lambda b=blobs: [Image.open(io.BytesIO(x)).convert("L") for x in b], a.rounds
            )
            wall = [float("inf")] * len(pools)
            cpu = [[float("inf")] * len(chunks) for _ in pools]  # best per chunk and tree
            rows: list[list[tuple[object, ...]]] = [[] for _ in pools]
            for rnd in range(a.rounds):
                # interleaved, the first tree alternating: the same load for both trees
                order = range(len(pools)) if rnd % 2 == 0 else reversed(range(len(pools)))
                for k in order:
                    t = time.perf_counter()
                    res = list(pools[k].map(_work, chunks))
                    wall[k] = min(wall[k], time.perf_counter() - t)
                    cpu[k] = [min(b, c) for b, (_, c) in zip(cpu[k], res, strict=True)]
                    rows[k] = [row for rs, _ in res for row in rs]
            tc = [sum(c) for c in cpu]
            ow, oc, ours = wall[0], tc[0], rows[0]
            same = all(to_hex(r[2]) == h for r, h in zip(ours, ref, strict=True))  # type: ignore[arg-type]
            us = 1e6 / n
            print(
                f"{size:>5} {n:>5} {n / pw:>8,.0f} {n / ow:>8,.0f} {pw / ow:>6.2f} | "
                f"{'':>11} {pc * us:>6.0f} {dc * us:>6.0f} {oc * us:>6.0f} | "
                f"{a.workers * pc / oc:>10.2f} {a.workers * pc / dc:>6.2f} {same}",
                flush=True,
            )
            if a.against:
                versus.append(
                    f"{size:>5} {dc * us:>6.0f} {tc[1] * us:>6.0f} {oc * us:>6.0f} | "
                    f"{tc[1] / dc:>7.2f} {oc / dc:>7.2f} | {oc / tc[1]:>7.3f} "
                    f"{_same(rows[0], rows[1])}"
                )
    finally:
        for pool in pools:
            pool.shutdown()
    if a.against:
        print(f"\nhash stage CPU per image, this tree (new) against {trees[1]} (old):")
        print(
            f"{'size':>5} {'decode':>6} {'old':>6} {'new':>6} | {'old/dec':>7} {'new/dec':>7} | "
            f"{'new/old':>7} identical"
        )
        print("\n".join(versus))


if __name__ == "__main__":
    main()
