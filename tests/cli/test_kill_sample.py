"""A small sample of the kill -9 harness (tests/bench/bench_kill.py runs 200+ kills over
every command): `merge` killed at seeded moments, then integrity ok and the rerun ends where an
uninterrupted merge ends."""

from __future__ import annotations

import random

from annotator.core.review import ops
from annotator.core.review import pack as core
from annotator.store.db import open_project
from tests.bench.bench_kill import Step, kill_once, reference, sig_merge
from tests.core.test_pack import ids_of, make_home


def test_merge_killed_at_random_moments_reruns_to_the_same_end(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    make_home(base, "p.db")
    with open_project(base / "p.db") as p:
        core.pack(p, core.select_identities(p, ["a", "b", "c"]), base / "pk.db")
    with open_project(base / "pk.db") as k:
        for key in ("a", "b", "c"):
            for f in ids_of(k, key):
                ops.label_faces(k, [f], "correct", "bob")  # many small batches
    step = Step("merge", "base", ["merge", "pk.db", "-p", "p.db"], sig_merge)
    work = tmp_path / "work"
    work.mkdir()
    want, took = reference(step, base, work)
    rng = random.Random(20)
    for _ in range(2):
        _hit, problem = kill_once(step, base, work, rng.uniform(0.05, took), want)
        assert problem == ""
