"""Issue 20 finding 12: a `pack --with-images` killed (kill -9) leaves OUT.partial (home notes
it, a takedown names it); the same pack run again removes it and finishes. A pack killed after
its file was complete but before home recorded it: the same pack again records that file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from annotator.core.review import pack as core
from annotator.model import AnnotatorError
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
    with open_project(db) as p:  # the same pack again
        core.pack(p, core.select_identities(p, ["a"]), out, with_images=True)
        assert not partial.exists() and out.exists()
        assert p.conn.execute("SELECT count(*) FROM packages").fetchone() == (1,)


KILLED_BEFORE_RECORD = """
import os, signal, sys
from annotator.core.review import pack as core
from annotator.store import packages
from annotator.store.db import open_project

def die(*a, **kw):
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9: the file is complete, home has no record
packages.record_package = die
with open_project(sys.argv[1]) as p:
    core.pack(p, core.select_identities(p, unreviewed=2), sys.argv[2])
"""


def test_the_rerun_of_a_pack_killed_before_home_recorded_it_records_it(tmp_path):
    db = make_home(tmp_path)
    out = tmp_path / "pk.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-c", KILLED_BEFORE_RECORD, str(db), str(out)], env=env)
    assert r.returncode == -9 and out.exists()
    with open_project(db) as p:
        ids = core.select_identities(p, unreviewed=2)
        res = core.pack(p, ids, out)  # the same command again
        assert res.faces == 6 and core.store.package_record(p, res.package_id) is not None
        with pytest.raises(AnnotatorError, match="exists"):
            core.pack(p, core.select_identities(p, unreviewed=2), out)  # other identities now
