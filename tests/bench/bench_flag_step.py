"""The scan's flag step (``flags.compute_flags``, crop stage included) of one scanned project,
warm, with this tree and other checkouts: CPU time as ratios in the same run, and whether the
flags (kinds, faces, scores), groups and crop candidate count are the same.

    python3 tests/bench/bench_flag_step.py PROJECT.db --against TREE[=PROJECT] [--against ...]
        [--rounds 3] [--runs 5]

Each round runs every tree in its own process (``PYTHONPATH=TREE``), alternating the order;
a process loads the project's hashes once, runs the flag step once to warm up, then ``--runs``
times, and reports its least CPU time; the least over the rounds is kept. The project is only
read (the flags are computed, not stored). A project scanned by any of the trees works when
their schemas agree; ``TREE=PROJECT`` gives a tree its own (an older checkout refuses a newer
schema; ``bench_copies.py`` leaves one project per tree in its ``--work`` folder: p0, p1, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]

CHILD = r"""
import hashlib, inspect, json, sys, time
from annotator import settings
from annotator.core import scan
from annotator.core.dedup import flags
from annotator.store import hashes
from annotator.store.db import open_project

project = open_project(sys.argv[1])
values = settings.load(project)
data = hashes.load_hashes(project)
groups = hashes.sha256_group_arrays(project)


extra = {}
if "images_of" in inspect.signature(flags.compute_flags).parameters:  # (no crop stage before)
    extra["images_of"] = lambda ids: scan._photos(project, ids)


def run():
    return flags.compute_flags(
        data, groups, values.radius,
        thumbs_of=lambda ids: hashes.load_thumbs(project, ids), values=values, **extra,
    )


fs = run()
digest = hashlib.sha256()
for r in sorted(map(repr, fs.rows())) + sorted(repr([int(v) for v in g]) for g in fs.groups):
    digest.update(r.encode())
ts = []
for _ in range(int(sys.argv[2])):
    t = time.process_time()
    run()
    ts.append(time.process_time() - t)
print(json.dumps({"cpu": min(ts), "flags": len(fs), "crop_candidates": getattr(fs, "crop_pairs", None),
                  "digest": digest.hexdigest()}))
"""


def child(tree: Path, project: str, runs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    r = subprocess.run(
        [sys.executable, "-c", CHILD, project, str(runs)],
        env=env,
        capture_output=True,
        text=True,
        cwd="/",
    )
    if r.returncode:
        raise SystemExit(f"{tree}: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("project")
    ap.add_argument("--against", action="append", default=[], help="another checkout")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    if not Path(a.project).is_file():
        raise SystemExit(f"no project file {a.project}")
    trees = [HERE, *(Path(t.split("=", 1)[0]).resolve() for t in a.against)]
    own = {HERE: a.project}
    for t, spec in zip(trees[1:], a.against, strict=True):
        own[t] = spec.split("=", 1)[1] if "=" in spec else a.project
        if not Path(own[t]).is_file():
            raise SystemExit(f"no project file {own[t]}")
    got: dict[Path, list[dict]] = {t: [] for t in trees}
    for k in range(a.rounds):
        order = trees if k % 2 == 0 else trees[::-1]
        for t in order:
            got[t].append(child(t, own[t], a.runs))
    base = min(g["cpu"] for g in got[trees[0]])
    first = got[trees[0]][0]
    out = {"project": a.project}
    for t in trees:
        least = min(g["cpu"] for g in got[t])
        out[str(t)] = {
            "project": own[t],
            "flag step cpu s, least": round(least, 4),
            "every round": [round(g["cpu"], 4) for g in got[t]],
            "this tree / it": round(base / least, 3),
            "flags": got[t][0]["flags"],
            "crop candidates": got[t][0]["crop_candidates"],
            "same flags, scores, groups as this tree": got[t][0]["digest"] == first["digest"],
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
