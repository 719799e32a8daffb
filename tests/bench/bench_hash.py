"""Hashing speed: images/s of the scan's hashing (process pool, one worker per core) against a
plain single-process loop of ``imagehash.phash(Image.open(BytesIO(b)))``, on 112x112 and 250x250
JPEGs, with a check that every pHash is bit-identical.

Also measured in the same run, single process, CPU time per image:
* decode: ``Image.open(BytesIO(b)).load()`` + ``convert("L")`` — work any exact pipeline must do
  for every image, so ``cores * plain / decode`` bounds the achievable ratio;
* ours: the workers' own CPU time per image (what the ratio would be on an otherwise idle machine
  is ``cores * plain_cpu / ours_cpu``; the wall-clock ratio also reflects other load on the box).

``--against TREE`` (a checkout of another commit, e.g. ``git worktree add /tmp/old REV``) also
times that tree's ``annotator/core/dedup/hashing.py`` (loaded beside ours in the same worker
processes; the modules it imports come from this tree), each chunk hashed by both, in
alternating order, and prints a second table: CPU per image of both, each over the decode
floor, and new/old (below 1.00 = this tree is faster), and whether the two trees' hash stage
results (pHash, dHash, size, grayscale, sharpness) and verification thumbnails are identical
("-": a tree without thumbnails). Same processes, same chunks, interleaved: separate pools per
tree showed a bias of up to 10 % on this shared machine, depending on which pool ran where.

Each measurement is repeated (--rounds) and the best taken (the workers' CPU time: the best
round of each chunk, summed: a chunk slowed by other load in one round does not count).

    python3 tests/bench/bench_hash.py [--quick] [--workers N] [--rounds R] [--against TREE]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import imagehash  # noqa: E402
from PIL import Image  # noqa: E402

from annotator.core.dedup import hashing  # noqa: E402

CHUNK = 128
_TREES: dict[str, object] = {}  # worker: tree -> its hashing module


def _hashing(tree: str | None) -> object:
    if tree is None:
        return hashing
    if tree not in _TREES:
        path = os.path.join(tree, "annotator", "core", "dedup", "hashing.py")
        if not os.path.exists(path):  # before core/ had sub-packages
            path = os.path.join(tree, "annotator", "core", "hashing.py")
        spec = importlib.util.spec_from_file_location("bench_hashing_against", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up
        spec.loader.exec_module(mod)
        _TREES[tree] = mod
    return _TREES[tree]


def _work(chunk: list[bytes], tree: str | None = None) -> tuple[list[tuple[object, ...]], float]:
    """What a scan worker does with a chunk (rows as the scan stores them) + its CPU time;
    ``tree``: with that checkout's hashing module instead of ours."""
    hash_images = _hashing(tree).hash_images  # type: ignore[attr-defined]
    t = time.process_time()
    rows = [
        (r.face_id, r.sha256, r.phash, r.dhash, r.width, r.height, r.grayscale, r.sharpness)
        + ((getattr(r, "thumb", None),))
        for r in hash_images(range(len(chunk)), chunk)
    ]
    return rows, time.process_time() - t


def _work_either(task: tuple[list[bytes], str | None]) -> tuple[list[tuple[object, ...]], float]:
    return _work(*task)


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


def _same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> tuple[bool, str]:
    """(hash stage results equal, thumbnails equal: "yes", "no" or "-" when a tree has none)."""
    results = all(x[:8] == y[:8] for x, y in zip(a, b, strict=True))
    if any(x[8] is None or y[8] is None for x, y in zip(a, b, strict=True)):
        return results, "-"
    return results, "yes" if all(x[8] == y[8] for x, y in zip(a, b, strict=True)) else "no"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--against", metavar="TREE", help="also time this checkout's hash_images")
    a = ap.parse_args()
    from annotator.demo.dataset import jpeg_pool

    to_hex = hashing.to_hex

    n = 800 if a.quick else 2000
    imagehash.phash(Image.new("L", (40, 40)))  # warm up: imagehash imports scipy lazily
    print(
        f"{'size':>5} {'n':>5} {'plain/s':>8} {'ours/s':>8} {'ratio':>6} | us/img cpu: "
        f"{'plain':>6} {'decode':>6} {'ours':>6} | {'idle-ratio':>10} {'limit':>6} identical",
        flush=True,
    )
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # as the scan sets it for its workers
    ctx = multiprocessing.get_context("spawn")
    against = os.path.abspath(a.against) if a.against else None
    versus: list[str] = []
    with ProcessPoolExecutor(a.workers, mp_context=ctx) as pool:
        for size in (112, 250):
            blobs = jpeg_pool(n // 4, size=size, seed=size) * 4
            chunks = [blobs[i : i + CHUNK] for i in range(0, len(blobs), CHUNK)]
            warm = [(c, t) for c in chunks[: 2 * a.workers] for t in (None, against)]
            list(pool.map(_work_either, warm))  # warm up the workers (both modules)
            pw, pc, hashes = _best(
                lambda b=blobs: [imagehash.phash(Image.open(io.BytesIO(x))) for x in b], a.rounds
            )
            ref = [str(h) for h in hashes]  # type: ignore[union-attr]
            _, dc, _ = _best(
                lambda b=blobs: [Image.open(io.BytesIO(x)).convert("L") for x in b], a.rounds
            )
            ow = float("inf")
            oc = [float("inf")] * len(chunks)  # best per chunk
            ours: list[tuple[object, ...]] = []
            for _ in range(a.rounds):
                t = time.perf_counter()
                res = list(pool.map(_work, chunks))
                ow = min(ow, time.perf_counter() - t)
                oc = [min(b, c) for b, (_, c) in zip(oc, res, strict=True)]
                ours = [row for rs, _ in res for row in rs]
            same = all(to_hex(r[2]) == h for r, h in zip(ours, ref, strict=True))  # type: ignore[arg-type]
            us = 1e6 / n
            print(
                f"{size:>5} {n:>5} {n / pw:>8,.0f} {n / ow:>8,.0f} {pw / ow:>6.2f} | "
                f"{'':>11} {pc * us:>6.0f} {dc * us:>6.0f} {sum(oc) * us:>6.0f} | "
                f"{a.workers * pc / sum(oc):>10.2f} {a.workers * pc / dc:>6.2f} {same}",
                flush=True,
            )
            if against:
                versus.append(_versus(pool, chunks, against, a.rounds, size, dc * us, us))
    if against:
        print(f"\nhash stage CPU per image, this tree (new) against {against} (old):")
        print(
            f"{'size':>5} {'decode':>6} {'old':>6} {'new':>6} | {'old/dec':>7} {'new/dec':>7} | "
            f"{'new/old':>7} {'results':>7} {'thumbs':>6}  (identical)"
        )
        print("\n".join(versus))


def _versus(pool, chunks, against: str, rounds: int, size: int, dec: float, us: float) -> str:
    """Both trees on every chunk, in alternating order, rounds times; one line of the table."""
    cpu = {t: [float("inf")] * len(chunks) for t in (None, against)}
    rows: dict[str | None, list[tuple[object, ...]]] = {}
    for rnd in range(rounds):
        tasks = []
        for k, c in enumerate(chunks):
            order = (None, against) if (rnd + k) % 2 == 0 else (against, None)
            tasks += [(k, t, c) for t in order]
        res = list(pool.map(_work_either, [(c, t) for _, t, c in tasks]))
        for (k, t, _), (_, c) in zip(tasks, res, strict=True):
            cpu[t][k] = min(cpu[t][k], c)
        for t in cpu:
            rows[t] = [
                r for (_, tt, _), (rs, _) in zip(tasks, res, strict=True) if tt == t for r in rs
            ]
    new, old = sum(cpu[None]) * us, sum(cpu[against]) * us
    same_results, same_thumbs = _same(rows[None], rows[against])
    return (
        f"{size:>5} {dec:>6.0f} {old:>6.0f} {new:>6.0f} | {old / dec:>7.2f} {new / dec:>7.2f} | "
        f"{new / old:>7.3f} {same_results!s:>7} {same_thumbs:>6}"
    )


if __name__ == "__main__":
    main()
