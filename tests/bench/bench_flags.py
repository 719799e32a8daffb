"""Flag recompute at scale (``scan.update_flags``): time and peak memory against a baseline.

A project of N faces (N/8 identities, 1% corrupt, a few byte-identical copies) is built with
its hashes already stored; then, each in a fresh process (so ``ru_maxrss`` is its own peak):

* ``first``  — ``update_flags`` on a project with no flags (everything inserted);
* ``again``  — ``update_flags`` once more (nothing changes: the incremental path);
* ``base``   — the baseline, measured in the same run on the same machine: the pairs found by
  ``neighbors.pairs_within`` written with one ``executemany`` into a plain SQLite table
  ``(i, j, d)`` without indexes — the least it can cost to store the pairs at all. Its search
  time is reported separately; the baseline time is the write only.

Hash sets: ``real`` — clustered pHashes with small clusters (``alpha=2.5``: ~2.3 pairs per
face at R=6, a project with moderate duplication); ``stress`` — the default clustered hashes
(~13 pairs per face at R=6, heavy duplication as in the 10M/10^8 pairs projection), where
every candidate passes the cheap dHash test (the worst case for verification); ``mix`` — the
stress hashes with the demo's measured share of candidates passing the dHash test (18.5 %).

    python3 tests/bench/bench_flags.py                       # 100k and 1M, real and stress
    python3 tests/bench/bench_flags.py --n 100000 --kind stress
    python3 tests/bench/bench_flags.py --rules-only --n 10000000 --kind stress   # no SQLite
    PYTHONPATH=/some/other/tree python3 tests/bench/bench_flags.py   # compare a checkout
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402

KINDS = {"real": {"alpha": 2.5}, "stress": {}, "mix": {}}
# "mix": the stress hashes, but only a share of the faces have a dHash near their pHash
# cluster's (copies); the others' dHash is unrelated, as for two different photos whose pHashes
# collide. MIX_COPY = sqrt(0.185): 18.5 % of the candidates pass the cheap test, as measured on
# the demo (6,099 candidates within radius 8, 696 true copies, ~92 % of the others failing dHash).
MIX_COPY = 0.43


def _thumbs(h: np.ndarray) -> np.ndarray:
    """Synthetic verification thumbnails (448 bytes): each pHash bit paints a 2x2 block of the
    16x16 gray part, so copies a few bits apart verify and unrelated faces do not; the colour
    part is alike for all (only the gray test decides here)."""
    bits = np.unpackbits(np.asarray(h).astype(">i8").view(np.uint8).reshape(-1, 8), axis=1)
    base = (np.arange(256, dtype=np.uint8).reshape(16, 16) // 2)[None]
    gray = (base + np.kron(bits.reshape(-1, 8, 8), np.ones((2, 2), np.uint8)) * 120).reshape(
        len(h), 256
    )
    return np.concatenate([gray.astype(np.uint8), np.full((len(h), 192), 100, np.uint8)], 1)


def _dhash(h: np.ndarray, rng: np.random.Generator, kind: str = "stress") -> np.ndarray:
    """dHash = pHash with 0-3 more bits flipped (some candidates fail the cheap test); for
    ``mix``, an unrelated random hash for all but a MIX_COPY share of the faces."""
    noise = np.zeros(len(h), np.uint64)
    for _ in range(3):
        bit = np.uint64(1) << rng.integers(0, 64, len(h)).astype(np.uint64)
        noise |= np.where(rng.random(len(h)) < 0.5, bit, np.uint64(0))
    out = np.asarray(h).view(np.uint64) ^ noise
    if kind == "mix":
        other = rng.random(len(h)) >= MIX_COPY
        out[other] = rng.integers(0, 2**63, int(other.sum()), dtype=np.int64).view(np.uint64)
    return out.view(np.int64)


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kB


def build(path: str, n: int, kind: str) -> None:
    from annotator.core.dedup import neighbors as N
    from annotator.store import faces as faces_store
    from annotator.store import hashes as hashes_store
    from annotator.store.db import open_project

    p = open_project(path, create=True)
    src = faces_store.add_source(
        p, os.path.join(os.path.dirname(path), "x.tsv"), "msceleb", 0, 0.0, "x"
    )
    rng = np.random.default_rng(0)
    h = N.clustered_hashes(n, seed=1, **KINDS[kind]).view(np.int64)
    corrupt = rng.random(n) < 0.01
    # byte-identical copies: 2% of faces copy the bytes (and so the pHash) of another face
    sha = np.arange(n)
    cp = rng.choice(n, n // 50, replace=False)
    sha[cp] = rng.integers(0, n, len(cp))
    h[cp] = h[sha[cp]]
    side = rng.choice([40, 112, 250], n, p=[0.02, 0.5, 0.48])
    dh = _dhash(h, rng, kind)
    with p.tx():
        ids = faces_store.create_identities(p, [f"m.{k:07d}" for k in range(max(1, n // 8))])
        iid = np.array(list(ids.values()))[rng.integers(0, len(ids), n)]
        faces_store.insert_faces(
            p,
            ((int(iid[k]), src.id, k + 1) + (None,) * 11 for k in range(n)),  # type: ignore[arg-type]
        )

        def rows():
            for s in range(0, n, 100_000):  # thumbnails drawn a block at a time
                th = _thumbs(h[s : s + 100_000])
                for k in range(s, min(s + 100_000, n)):
                    yield (
                        k + 1,
                        int(sha[k]).to_bytes(32, "little"),
                        None if corrupt[k] else int(h[k]),
                        None if corrupt[k] else int(dh[k]),
                        int(side[k]),
                        int(side[k]),
                        0,
                        500.0,
                        "bad" if corrupt[k] else None,
                        None if corrupt[k] else th[k - s].tobytes(),
                    )

        hashes_store.insert_hashes(p, rows())
    p.close()


def run_flags(path: str) -> dict[str, float]:
    from annotator.core import scan as S
    from annotator.store.db import open_project

    times: dict[str, float] = {}

    def timed(mod, name: str, key: str):
        f = getattr(mod, name)

        def w(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                times[key] = times.get(key, 0.0) + time.perf_counter() - t

        setattr(mod, name, w)

    timed(S.flags_store, "load_hashes", "load")
    timed(S.flag_rules, "compute_flags", "rules")
    timed(S.flags_store, "replace_flags", "store")
    p = open_project(path)
    rss0 = _rss_gb()
    t, cpu = time.perf_counter(), time.process_time()
    res = S.update_flags(p)
    times["total"] = time.perf_counter() - t
    times["cpu"] = time.process_time() - cpu  # all threads: the machine is shared
    p.close()
    return {
        **times,
        "pairs": res.pairs,
        "flags": sum(res.flags.values()),
        "rss0": rss0,
        "rss": _rss_gb(),
    }


def run_base(path: str) -> dict[str, float]:
    import sqlite3

    from annotator.core.dedup.neighbors import pairs_within
    from annotator.store import hashes as hashes_store
    from annotator.store.db import open_project

    p = open_project(path)
    data = hashes_store.load_hashes(p)
    p.close()
    ok = np.flatnonzero(data["corrupt"] == 0)
    t = time.perf_counter()
    i, j, d = pairs_within(data["phash"][ok], 6)
    search = time.perf_counter() - t
    fi, fj = data["face_id"][ok][i], data["face_id"][ok][j]
    del data, i, j
    c = sqlite3.connect(path)
    c.execute("CREATE TABLE base_pairs (i INTEGER, j INTEGER, d INTEGER)")
    t = time.perf_counter()
    with c:
        for s in range(0, len(fi), 1_000_000):
            c.executemany(
                "INSERT INTO base_pairs VALUES (?, ?, ?)",
                zip(
                    fi[s : s + 1_000_000].tolist(),
                    fj[s : s + 1_000_000].tolist(),
                    d[s : s + 1_000_000].tolist(),
                    strict=True,
                ),
            )
    write = time.perf_counter() - t
    c.execute("DROP TABLE base_pairs")
    c.commit()
    c.close()
    return {"search": search, "write": write, "pairs": len(fi), "rss": _rss_gb()}


def _flip(h: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """``h`` with about ``bits`` random bits flipped (a crop hash: core/dedup/crops.py; on real
    faces a 0.95 crop's pHash is a median 6 bits from the face's own, a 0.90 crop's 12)."""
    out = np.asarray(h).view(np.uint64).copy()
    for _ in range(bits):
        out ^= np.uint64(1) << rng.integers(0, 64, len(out)).astype(np.uint64)
    return out.view(np.int64)


def run_rules(n: int, kind: str, crops: bool = False) -> dict[str, float]:
    """``compute_flags`` alone (no SQLite) on an in-memory array: for sizes whose project would
    take too long to build and store. ``crops``: with crop hashes (the crop stage runs: its
    search and the registered thumbnail test; no photos, so no pair reaches the fine test)."""
    from annotator.core.dedup import flags as F
    from annotator.core.dedup import neighbors as N
    from annotator.store.hashes import HASH_DTYPE

    rng = np.random.default_rng(0)
    data = np.zeros(n, HASH_DTYPE)
    data["face_id"] = np.arange(1, n + 1)
    data["identity_id"] = rng.integers(1, max(2, n // 8), n)
    data["phash"] = N.clustered_hashes(n, seed=1, **KINDS[kind]).view(np.int64)
    data["width"] = data["height"] = rng.choice([40, 112, 250], n, p=[0.02, 0.5, 0.48])
    data["sharpness"] = 500.0
    data["corrupt"] = rng.random(n) < 0.01
    cp = rng.choice(n, n // 50, replace=False)
    src = rng.integers(0, n, len(cp))
    data["phash"][cp] = data["phash"][src]
    data["dhash"] = _dhash(data["phash"], rng, kind)
    faces = np.r_[data["face_id"][cp], data["face_id"][src]]
    gid = np.r_[np.arange(len(cp)), np.arange(len(cp))]
    if crops:
        data["crop1"] = _flip(data["phash"], 6, rng)
        data["crop2"] = _flip(data["phash"], 12, rng)
        data["cdh1"] = _flip(data["dhash"], 3, rng)  # a crop's dHash near its face's own
        data["cdh2"] = _flip(data["dhash"], 5, rng)
    phash_of = data["phash"]  # face id k+1 at position k

    def thumbs_of(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _thumbs(phash_of[np.asarray(ids) - 1]), np.ones(len(ids), bool)

    rss0 = _rss_gb()
    t, cpu = time.perf_counter(), time.process_time()
    fs = F.compute_flags(
        data, (faces, gid), 6, thumbs_of=thumbs_of, images_of=lambda ids: [None] * len(ids)
    )
    total = time.perf_counter() - t
    cpu = time.process_time() - cpu
    return {
        "pairs": fs.pairs,
        "verified": fs.verified,
        "flags": len(fs),
        "crop_pairs": fs.crop_pairs,
        "total": total,
        "cpu": cpu,
        "rss0": rss0,
        "rss": _rss_gb(),
    }


def _child(fn, args, q) -> None:
    q.put(fn(*args))


def in_child(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    pr = ctx.Process(target=_child, args=(fn, args, q))
    pr.start()
    r = q.get()
    pr.join()
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, action="append", default=[])
    ap.add_argument("--kind", action="append", default=[], choices=sorted(KINDS))
    ap.add_argument("--dir", default=None, help="where to build projects (default: a temp dir)")
    ap.add_argument("--rules-only", action="store_true", help="compute_flags only, no project")
    ap.add_argument(
        "--crops", action="store_true", help="rules only: also with crop hashes, and the ratio"
    )
    ap.add_argument("--no-base", action="store_true", help="skip the baseline (10M: ~10^8 rows)")
    ap.add_argument("--runs", default="first,again", help="which runs (first,again)")
    a = ap.parse_args()
    sizes = a.n or [100_000, 1_000_000]
    kinds = a.kind or ["real", "stress"]
    import annotator

    print(f"code: {os.path.dirname(annotator.__file__)}", flush=True)
    if a.rules_only:
        for n in sizes:
            for kind in kinds:
                got = {}
                for crops in (False, True) if a.crops else (False,):
                    r = got[crops] = in_child(run_rules, n, kind, crops)
                    print(
                        f"rules only{' + crops' if crops else ''}: {n:,} {kind}: "
                        f"{r['pairs']:,} pairs, {r['crop_pairs']:,} crop pairs, {r['flags']:,} "
                        f"flags, {r['total']:.1f} s ({r['cpu']:.1f} s CPU), peak {r['rss']:.2f} GB "
                        f"(inputs {r['rss0']:.2f} GB)",
                        flush=True,
                    )
                if a.crops:
                    print(
                        f"  with crops / without: wall {got[True]['total'] / got[False]['total']:.2f}"
                        f", CPU {got[True]['cpu'] / got[False]['cpu']:.2f}, peak "
                        f"{got[True]['rss'] / got[False]['rss']:.2f}",
                        flush=True,
                    )
        return
    print(
        f"{'N':>9} {'kind':>6} {'run':>5} {'pairs':>11} {'flags':>11} {'total s':>8} {'load':>6} "
        f"{'rules':>6} {'store':>6} {'peak GB':>7} {'base s':>7} {'ratio':>6} {'base GB':>7}",
        flush=True,
    )
    for n in sizes:
        for kind in kinds:
            with tempfile.TemporaryDirectory(dir=a.dir) as d:
                path = os.path.join(d, "p.db")
                t = time.perf_counter()
                in_child(build, path, n, kind)
                built = time.perf_counter() - t
                base = (
                    {"write": float("nan"), "rss": float("nan"), "search": float("nan"), "pairs": 0}
                    if a.no_base
                    else in_child(run_base, path)
                )
                for run in a.runs.split(","):
                    r = in_child(run_flags, path)
                    print(
                        f"{n:>9,} {kind:>6} {run:>5} {r['pairs']:>11,} {r['flags']:>11,} "
                        f"{r['total']:>8.1f} {r.get('load', 0):>6.1f} {r.get('rules', 0):>6.1f} "
                        f"{r.get('store', 0):>6.1f} {r['rss']:>7.2f} {base['write']:>7.1f} "
                        f"{r['total'] / base['write']:>6.1f} {base['rss']:>7.2f}",
                        flush=True,
                    )
                print(
                    f"{'':>9} {'':>6} (built in {built:.0f} s; baseline search {base['search']:.1f} s, "
                    f"{base['pairs']:,} pairs)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
