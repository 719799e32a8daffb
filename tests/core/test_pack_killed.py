"""Issue 20 finding 12: a `pack --with-images` killed (kill -9) leaves OUT.partial; the next
pack from the same home removes it."""

from __future__ import annotations

import os
import subprocess
import sys

from annotator.core.review import pack as core
from annotator.store.db import open_project
from tests.core.test_pack import make_home

KILLED_PACK = """
import os, signal, sys
from annotator.core.review import pack as core
from annotator.store import packages
from annotator.store.db import open_project

real = packages.insert_blobs
def insert_then_die(*a, **kw):
    real(*a, **kw)
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 with face bytes written
packages.insert_blobs = insert_then_die
with open_project(sys.argv[1]) as p:
    core.pack(p, core.select_identities(p, ["a"]), sys.argv[2], with_images=True)
"""


def test_a_killed_pack_leaves_nothing_after_the_next_pack(tmp_path):
    db = make_home(tmp_path)
    out = tmp_path / "pk.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-c", KILLED_PACK, str(db), str(out)], env=env)
    assert r.returncode == -9
    partial = tmp_path / "pk.db.partial"
    assert partial.exists() and not out.exists()
    with open_project(db) as p:
        core.pack(p, core.select_identities(p, ["b"]), tmp_path / "other.db")
        assert not partial.exists()
        assert core.store.partials(p) == []
        assert p.conn.execute("SELECT count(*) FROM packages").fetchone() == (1,)
