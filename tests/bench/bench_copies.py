"""Near copies by crop/shift and the keeper rule, measured on real photos and on drawn faces.

    python3 tests/bench/bench_copies.py --photos ../shared/lfw [--sizes quick,small,large]
        [--against TREE ...] [--work /tmp/bench-copies] [--demo 40,400] [--drawn 60]

* ``--photos DIR``: a folder laid out like ``../shared/lfw`` (its ``make_noisy.py`` builds a
  noisy MS-Celeb TSV with truth.json into ``--work``; nothing is written into the project).
  For each size: import, ``annotator scan`` with this tree (and with ``--against TREE``, a
  checkout of another commit, on its own copy of the project: the scan's wall and CPU time,
  hash and flag phases, alternating which runs first), ``flags --json``, then
  - duplicates: precision over the face pairs inside duplicate flags (right when both are
    copies of one photo), recall per injected kind and near-copy transform (crop, rescale,
    brightness) — both trees;
  - keeper: for each injected cross-identity copy, the keeper ``flags --json`` marks (right
    when filed under the photo's true identity, wrong, or none: "not sure"); with the
    project's vectors when it has them, and always with the vectors shipped beside the photos
    (``vectors.npy``: 5 landmarks on the face box) fed to the same rule.
* ``--demo N,...``: the drawn demo (``annotator demo``) of N identities, duplicate precision
  and recall against its truth, both trees.
* ``--drawn K``: K drawn photos, each with a copy cut by 3-8 px a side (of 150) and another
  photo of the same person from the same event (background and light): copies found, other
  photos joined (this tree only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
SIZES = {
    "quick": ["--people", "40", "--max-photos", "20", "--seed", "1"],
    "small": ["--people", "50", "--min-photos", "8", "--seed", "7"],
    "large": ["--min-photos", "4", "--seed", "7"],
}
DUP = ("exact_dup", "near_dup", "cross_identity_dup")


def _run(tree: Path, *args: str) -> tuple[str, float, float]:
    """(stdout, wall s, CPU s of the child) of ``python -m annotator ARGS`` with ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # cwd: not a checkout (python -m puts the working directory before PYTHONPATH)
    r = subprocess.run(
        [sys.executable, "-m", "annotator", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd="/",
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        raise SystemExit(f"annotator {' '.join(args)} failed: {r.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return r.stdout, wall, cpu


def _line(origin: str) -> int:
    return int(str(origin).rsplit(":", 1)[-1])


def score_dups(flags: dict, truth: dict, lfw: bool) -> dict:
    """Duplicate precision over pairs inside duplicate flags and recall per truth kind."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    kinds = ("exact_dup", "near_dup", "cross_dup") if lfw else DUP
    for k in kinds:
        for p in truth[k]:
            parent[find(p[0])] = find(p[1])
    groups = [
        {_line(f["origin"]) for f in fl["faces"]} for fl in flags["flags"] if fl["kind"] in DUP
    ]
    pairs = [(a, b) for g in groups for a in g for b in g if a < b]
    wrong = [(a, b) for a, b in pairs if find(a) != find(b)]
    out = {
        "pairs": len(pairs),
        "wrong": len(wrong),
        "precision": round(1 - len(wrong) / len(pairs), 4) if pairs else None,
    }
    rec = {k: truth[k] for k in kinds}
    if lfw:
        rec |= {f"near_dup_{t}": truth[f"near_dup_{t}"] for t in ("crop", "rescale", "brightness")}
    for k, ps in rec.items():
        found = sum(1 for p in ps if any({p[0], p[1]} <= g for g in groups))
        out[k] = f"{found}/{len(ps)}"
    return out


def score_keeper(flags: dict, truth: dict) -> dict:
    """The keeper flags --json marks in each injected cross-identity copy's group."""
    right = wrong = unsure = missing = 0
    for orig, copy, key in truth["cross_dup"]:
        fl = [
            f
            for f in flags["flags"]
            if f["kind"] == "cross_identity_dup"
            and {orig, copy} <= {_line(x["origin"]) for x in f["faces"]}
        ]
        if not fl:
            missing += 1
            continue
        kept = [x for x in fl[0]["faces"] if x.get("keeper")]
        if not kept:
            unsure += 1
        elif kept[0]["identity"] == key:
            right += 1
        else:
            wrong += 1
    return dict(right=right, wrong=wrong, not_sure=unsure, group_not_found=missing)


def keeper_with_shipped_vectors(db: Path, photos: Path, truth: dict) -> dict:
    """The same rule fed with the vectors shipped beside the photos (one per crop)."""
    import sqlite3

    import numpy as np

    from annotator.core.review import keeper as K

    names = (photos / "vectors.txt").read_text().split()
    vecs = np.load(photos / "vectors.npy")
    index = {n: k for k, n in enumerate(names)}
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT f.id, f.record, f.identity_id, i.key FROM faces f"
        " JOIN identities i ON i.id = f.identity_id"
    ).fetchall()
    con.close()
    by_line = {r[1]: r for r in rows}
    from bench_real_faces import photo_paths  # this folder: the script's own

    photo = photo_paths(truth, photos)
    have = [r for r in rows if photo.get(str(r[1])) in index]
    faces = np.array([r[0] for r in have])
    idents = np.array([r[2] for r in have])
    V = np.stack([vecs[index[photo[str(r[1])]]] for r in have])
    right = wrong = unsure = 0
    margins = []
    for orig, copy, _key in truth["cross_dup"]:
        a, b = by_line[orig], by_line[copy]
        members = [K.Member(a[0], a[2], None, False), K.Member(b[0], b[2], None, True)]
        dist = K.photo_distances(members, faces, idents, V)
        p = K.propose(members, dist)
        if len(dist) == 2:
            margins.append(round(dist[b[2]] - dist[a[2]], 3))
        if p.face is None:
            unsure += 1
        elif p.face == a[0]:
            right += 1
        else:
            wrong += 1
    return dict(right=right, wrong=wrong, not_sure=unsure, min_margin=min(margins, default=None))


def lfw_size(size: str, a: argparse.Namespace, trees: list[Path]) -> None:
    work = Path(a.work) / size
    if not (work / "faces.tsv").exists():
        subprocess.run(
            [sys.executable, str(Path(a.photos) / "make_noisy.py"), str(work), *SIZES[size]],
            check=True,
            capture_output=True,
        )
    truth = json.loads((work / "truth.json").read_text())
    res: dict[str, dict] = {}
    for k, tree in enumerate(trees):
        db = work / f"p{k}.db"
        for f in work.glob(f"p{k}.db*"):
            f.unlink()
        _run(tree, "import", "msceleb", str(work / "faces.tsv"), "-p", str(db))
    timing: dict[int, list] = {k: [] for k in range(len(trees))}
    for r in range(a.rounds):
        order = list(range(len(trees)))
        if r % 2:
            order.reverse()
        for k in order:
            db = work / f"p{k}.db"
            if r:  # a scan from scratch each round: hashes and flags dropped
                _drop_scan(db)
            out, wall, cpu = _run(trees[k], "scan", "-p", str(db), "--json")
            s = json.loads(out)
            timing[k].append((wall, cpu, s.get("hash_seconds"), s.get("flag_seconds")))
    for k, tree in enumerate(trees):
        out, _w, _c = _run(tree, "flags", "-p", str(work / f"p{k}.db"), "--json")
        flags = json.loads(out)
        best = min(timing[k], key=lambda t: t[1])
        res[str(tree)] = {
            "scan wall/cpu/hash/flag s": [round(v, 2) for v in best],
            "scan cpu s, every round": [round(t[1], 2) for t in timing[k]],
            "dups": score_dups(flags, truth, lfw=True),
            "keeper (flags --json)": score_keeper(flags, truth),
        }
    res["keeper (shipped box-landmark vectors)"] = keeper_with_shipped_vectors(
        work / "p0.db", Path(a.photos), truth
    )
    rows = truth["params"]["rows"]
    print(json.dumps({"set": size, "rows": rows, "people": truth["identities"]} | res, indent=1))


def _drop_scan(db: Path) -> None:
    """Forget a project's scan (hashes, flags, groups) so the next scan starts from scratch."""
    import sqlite3

    con = sqlite3.connect(db)
    con.executescript(
        "DELETE FROM flag_faces; DELETE FROM flags; DELETE FROM dup_groups;"
        " DELETE FROM face_hashes;"
    )
    con.commit()
    con.close()


def demo(n: int, a: argparse.Namespace, trees: list[Path]) -> None:
    work = Path(a.work) / f"demo{n}"
    if not (work / "truth.json").exists():
        _run(trees[0], "demo", str(work), "--identities", str(n), "--seed", "3")
    truth = json.loads((work / "truth.json").read_text())
    res = {}
    for k, tree in enumerate(trees):
        db = work / f"p{k}.db"  # each tree imports the demo's TSV itself (its own schema)
        for f in work.glob(f"p{k}.db*"):
            f.unlink()
        _run(tree, "import", "msceleb", str(work / "faces.tsv"), "-p", str(db))
    timing: dict[int, list] = {k: [] for k in range(len(trees))}
    for r in range(a.rounds):  # as lfw_size: from scratch, alternating, the least CPU kept
        order = list(range(len(trees)))
        if r % 2:
            order.reverse()
        for k in order:
            db = work / f"p{k}.db"
            if r:
                _drop_scan(db)
            _out, wall, cpu = _run(trees[k], "scan", "-p", str(db), "--json")
            timing[k].append((wall, cpu))
    for k, tree in enumerate(trees):
        out, _w, _c = _run(tree, "flags", "-p", str(work / f"p{k}.db"), "--json")
        best = min(timing[k], key=lambda t: t[1])
        res[str(tree)] = {
            "scan wall/cpu s": [round(v, 2) for v in best],
            "scan cpu s, every round": [round(t[1], 2) for t in timing[k]],
        } | score_dups(json.loads(out), truth, lfw=False)
    print(json.dumps({"demo identities": n} | res, indent=1))


def drawn(k: int) -> None:
    sys.path.insert(0, str(HERE / "tests" / "core"))
    import numpy as np
    import test_crops as T

    rng = np.random.default_rng(5)
    found = joined = 0
    for seed in range(k):
        orig, other = T._photos(5000 + seed)
        box = tuple(int(v) for v in rng.integers(3, 9, 4))
        g = T._groups(T._flags([orig, T._cut(orig, box), other]))
        found += any({1, 2} <= x for x in g)
        joined += any(3 in x for x in g)
    print(
        json.dumps({"drawn crops 3-8 px of 150": k, "found": found, "other photo joined": joined})
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", help="a folder like ../shared/lfw (make_noisy.py, vectors)")
    ap.add_argument("--sizes", default="quick,small")
    ap.add_argument(
        "--against", action="append", default=[], help="another checkout to compare (repeatable)"
    )
    ap.add_argument("--work", default="/tmp/bench-copies")
    ap.add_argument("--rounds", type=int, default=1, help="scans per tree (from scratch)")
    ap.add_argument("--demo", default="", help="demo sizes (identities), e.g. 40,400")
    ap.add_argument("--drawn", type=int, default=0)
    a = ap.parse_args()
    trees = [HERE] + [Path(t).resolve() for t in a.against]
    Path(a.work).mkdir(parents=True, exist_ok=True)
    if a.photos:
        for size in a.sizes.split(","):
            lfw_size(size, a, trees)
    for n in filter(None, a.demo.split(",")):
        demo(int(n), a, trees)
    if a.drawn:
        drawn(a.drawn)


if __name__ == "__main__":
    main()
