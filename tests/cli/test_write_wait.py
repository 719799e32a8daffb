"""Short writes get in while a long phase writes: `labels import` and core.ops between the
batches of another connection, a waiting CLI write waits (the busy timeout), never refused.

SQLite's own busy handler backs off to 100 ms sleeps and almost never sees the gap between two
back-to-back batches (a writer starved for seconds in a measurement), so Project.tx() polls for
the lock and a connection leaves WRITER_GAP_S between two of its own write transactions.
"""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from annotator.core.importer import import_source
from annotator.core.review import ops
from annotator.formats import msceleb
from annotator.store.db import open_project

ROOT = Path(__file__).resolve().parents[2]


def jpeg(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (10, 10), (i * 30 % 256, 0, 0)).save(b, "JPEG")
    return b.getvalue()


@pytest.fixture
def project(tmp_path) -> Path:
    with open(tmp_path / "faces.tsv", "wb") as f:
        for i in range(20):
            msceleb.write_row(f, f"m.{i % 4}", i, None, None, None, None, jpeg(i))
    db = tmp_path / "p.db"
    with open_project(db, create=True) as p:
        import_source(p, "msceleb", tmp_path / "faces.tsv")
    return db


class BatchWriter:
    """Another connection writing back-to-back batches of ``hold`` seconds through
    Project.tx(), like a long phase that writes in short batches."""

    def __init__(self, path: Path, hold: float = 0.05):
        self.hold = hold
        self.stop = threading.Event()
        self.batches = 0
        self.thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self.thread.start()

    def _run(self, path: Path) -> None:
        with open_project(path) as p:
            while not self.stop.is_set():
                with p.tx():
                    p.conn.execute("UPDATE meta SET value = value WHERE key = 'app'")
                    time.sleep(self.hold)  # the lock is held, the GIL is not
                self.batches += 1

    def end(self) -> None:
        self.stop.set()
        self.thread.join(5)


def test_ops_get_in_between_short_batches(project):
    hog = BatchWriter(project)
    lat = []
    try:
        time.sleep(0.2)
        with open_project(project) as p:
            faces = [r[0] for r in p.conn.execute("SELECT id FROM faces ORDER BY id")]
            for f in faces[:15]:
                t = time.perf_counter()
                ops.label_faces(p, [f], "correct", "rev")  # the default wait: 10 s
                lat.append(time.perf_counter() - t)
                time.sleep(0.02)
    finally:
        hog.end()
    assert hog.batches > 10
    lat.sort()
    # one batch of the other writer (50 ms) plus the poll, not seconds of starvation
    assert lat[len(lat) // 2] < 0.5 and lat[-1] < 2.0, lat


def test_labels_import_waits_for_a_held_lock_and_succeeds(project, tmp_path):
    (tmp_path / "l.csv").write_text("face_id,label\n1,correct\n2,unusable\n")
    holder = sqlite3.connect(project, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "annotator", "labels", "import", str(tmp_path / "l.csv")]
        + ["-p", str(project), "-r", "cli", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(1.5)  # well into the import's wait
    assert proc.poll() is None  # waiting, not refused
    holder.execute("COMMIT")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["applied"] == 2


def test_labels_import_gets_in_between_a_long_phase_batches(project, tmp_path):
    (tmp_path / "l.csv").write_text(
        "face_id,label\n" + "".join(f"{i},unsure\n" for i in range(1, 21))
    )
    hog = BatchWriter(project)
    try:
        time.sleep(0.2)
        env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
        t = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-m", "annotator", "labels", "import", str(tmp_path / "l.csv")]
            + ["-p", str(project), "-r", "cli", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        took = time.perf_counter() - t
        running = hog.thread.is_alive()
    finally:
        hog.end()
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["applied"] == 20
    assert running and took < 10  # got in while the other connection kept writing


def test_a_lock_held_past_the_wait_is_one_clear_error(project):
    holder = sqlite3.connect(project, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with open_project(project) as p:
            t = time.perf_counter()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                with p.tx(timeout=0.3):
                    pass
            assert 0.25 < time.perf_counter() - t < 2
            with p.waiting_at_most(0.1), pytest.raises(sqlite3.OperationalError):
                ops.label_faces(p, [1], "correct", "rev")
            assert p.write_wait == 10  # restored
    finally:
        holder.execute("ROLLBACK")
