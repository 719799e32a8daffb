"""Scan and embed on a real Dask cluster (core/infra/cluster.py): two worker processes on 127.0.0.1,
compared with a local run of a copy of the same project."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from annotator.core import scan as scan_mod
from annotator.core.importer import import_source
from annotator.core.infra import cluster as cluster_mod
from annotator.core.infra.cluster import PathMap, connect
from annotator.core.scan import scan
from annotator.demo.dataset import generate_demo
from annotator.model import AnnotatorError
from annotator.store.db import open_project

distributed = pytest.importorskip("distributed")

HASH_COLS = "face_id, sha256, phash, dhash, width, height, grayscale, sharpness, corrupt, thumb"


@pytest.fixture(scope="module")
def dask_cluster():
    """A scheduler and two single-threaded worker processes (nanny-restarted when killed)."""
    lc = distributed.LocalCluster(
        processes=True,
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=":0",
    )
    try:
        yield lc
    finally:
        lc.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A tiny imported, unscanned demo (faces.tsv + p.db)."""
    d = tmp_path_factory.mktemp("cluster_demo")
    r = generate_demo(d, identities=4, faces_per_identity=(10, 16), seed=5)
    with open_project(d / "p.db", create=True) as p:
        import_source(p, "msceleb", r.faces_tsv)
    return d


@pytest.fixture(scope="module")
def local_scan(demo, tmp_path_factory) -> dict:
    """Rows and flags of a local scan (the process pool) of a copy."""
    db = tmp_path_factory.mktemp("local") / "p.db"
    shutil.copy(demo / "p.db", db)
    with open_project(db) as p:
        scan(p, workers=2)
        return snapshot(p)


def snapshot(p) -> dict:
    return {
        "hashes": p.conn.execute(
            f"SELECT {HASH_COLS} FROM face_hashes ORDER BY face_id"
        ).fetchall(),
        "flags": p.conn.execute(
            "SELECT kind, distance, similarity, score FROM flags ORDER BY kind, score, distance"
        ).fetchall(),
        "flag_faces": p.conn.execute(
            "SELECT f.kind, ff.face_id FROM flags f JOIN flag_faces ff ON ff.flag_id = f.id "
            "ORDER BY 1, 2"
        ).fetchall(),
        "suspicion": p.conn.execute("SELECT id, suspicion FROM identities ORDER BY id").fetchall(),
    }


def copy_project(demo: Path, tmp_path: Path) -> Path:
    db = tmp_path / "p.db"
    shutil.copy(demo / "p.db", db)
    return db


def test_scan_on_the_cluster_equals_a_local_scan(dask_cluster, demo, local_scan, tmp_path):
    db = copy_project(demo, tmp_path)
    with connect(dask_cluster.scheduler_address) as c, open_project(db) as p:
        res = scan(p, cluster=c)
        assert c.workers() == 2
        assert c.status().startswith(f"{c.done}/{c.submitted} tasks, 2 workers, ")
        got = snapshot(p)
    assert res.hashed == len(local_scan["hashes"]) and res.read_error_count == 0
    assert got == local_scan
    assert any(k == "near_dup" for k, *_ in got["flags"])  # the comparison covers real flags


def test_path_map_reads_moved_sources_and_a_missing_source_is_a_read_error(
    dask_cluster, demo, local_scan, tmp_path, monkeypatch
):
    db = copy_project(demo, tmp_path)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(demo / "faces.tsv", moved / "faces.tsv")  # a new mtime: the fingerprint decides
    monkeypatch.setattr(scan_mod, "CHUNK", 16)
    # a map to a folder without the source: every face is a read error naming its origin
    with connect(
        dask_cluster.scheduler_address, PathMap.parse([f"{demo}={tmp_path / 'nope'}"])
    ) as c:
        with open_project(db) as p:
            res = scan(p, cluster=c)
            assert res.hashed == 0 and res.corrupt == 0
            assert (
                res.read_error_count == p.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
            )
            assert res.read_errors[0].startswith("faces.tsv:")
            assert "is missing" in res.read_errors[0]
            assert p.conn.execute("SELECT count(*) FROM face_hashes").fetchone()[0] == 0
    # the right map: the moved copy is read, results as local
    with connect(dask_cluster.scheduler_address, PathMap.parse([f"{demo}/={moved}"])) as c:
        with open_project(db) as p:
            res = scan(p, cluster=c)
            assert res.read_error_count == 0
            assert snapshot(p) == local_scan


def test_a_killed_worker_loses_nothing(dask_cluster, demo, local_scan, tmp_path, monkeypatch):
    db = copy_project(demo, tmp_path)
    monkeypatch.setattr(scan_mod, "CHUNK", 4)
    with connect(dask_cluster.scheduler_address) as c:
        pids = c.client.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed = []

        def progress(done: int, total: int) -> None:
            if done and not killed:  # the first chunk is in: others are running on both
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        with open_project(db) as p:
            res = scan(p, cluster=c, progress=progress)
            assert killed and res.read_error_count == 0 and not res.cancelled
            assert snapshot(p) == local_scan
        c.client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests


def test_cancel_keeps_the_chunks_done_and_a_rerun_resumes(
    dask_cluster, demo, local_scan, tmp_path, monkeypatch
):
    db = copy_project(demo, tmp_path)
    monkeypatch.setattr(scan_mod, "CHUNK", 4)
    stop = []
    with connect(dask_cluster.scheduler_address) as c, open_project(db) as p:
        res = scan(p, cluster=c, progress=lambda d, t: stop.append(d) if d else None,
                   cancelled=lambda: bool(stop))  # fmt: skip
        assert res.cancelled and 0 < res.hashed < len(local_scan["hashes"])
        kept = p.conn.execute("SELECT count(*) FROM face_hashes").fetchone()[0]
        assert kept == res.hashed
        res = scan(p, cluster=c)  # the rerun hashes the rest only
        assert res.hashed == len(local_scan["hashes"]) - kept
        assert snapshot(p) == local_scan


def test_a_cluster_without_workers_is_one_error(demo, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(cluster_mod, "WAIT_WORKERS", 0.5)
    db = copy_project(demo, tmp_path)
    with distributed.LocalCluster(
        processes=True, n_workers=0, host="127.0.0.1", dashboard_address=":0"
    ) as lc:
        with connect(lc.scheduler_address) as c, open_project(db) as p:
            with pytest.raises(AnnotatorError, match="has no workers"):
                scan(p, cluster=c)
            assert p.conn.execute("SELECT count(*) FROM face_hashes").fetchone()[0] == 0


def test_an_unreachable_scheduler_is_one_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    with pytest.raises(AnnotatorError, match=r"cannot reach the Dask scheduler at tcp://127"):
        connect(f"tcp://127.0.0.1:{port}", timeout=1)


def test_path_map_parsing() -> None:
    pm = PathMap.parse(["/data=/mnt/d", "/data/big/=/fast"])
    assert pm("/data/x.tsv") == "/mnt/d/x.tsv"
    assert pm("/data/big/y.rec") == "/fast/y.rec"  # the longest prefix wins
    assert pm("/database/x") == "/database/x"  # whole components only
    assert pm("/data") == "/mnt/d"
    for bad in ["nodelimiter", "=/x", "/x=", "/a=/b,/a=/c"]:
        with pytest.raises(AnnotatorError, match="bad --path-map"):
            PathMap.parse(bad.split(","))


def test_embed_on_the_cluster_equals_local(dask_cluster, tmp_path_factory) -> None:
    pytest.importorskip("dlib")
    from annotator.core.identity import embed as E

    d = tmp_path_factory.mktemp("embed_cluster")
    r = generate_demo(d, identities=3, faces_per_identity=(4, 6), seed=3)
    with open_project(d / "a.db", create=True) as p:
        import_source(p, "msceleb", r.faces_tsv)
        scan(p, workers=1)
    shutil.copy(d / "a.db", d / "b.db")
    q = "SELECT face_id, model, status, reason, vector FROM face_embeddings ORDER BY face_id"
    with open_project(d / "a.db") as p:
        key = p.conn.execute("SELECT key FROM identities ORDER BY id LIMIT 1").fetchone()[0]
        E.embed(p, workers=1, identity_keys=[key])
        local = p.conn.execute(q).fetchall()
    with connect(dask_cluster.scheduler_address) as c, open_project(d / "b.db") as p:
        res = E.embed(p, cluster=c, chunk=2, identity_keys=[key])
        remote = p.conn.execute(q).fetchall()
    assert res.embedded == len(local) > 0 and res.read_error_count == 0
    assert remote == local


def test_a_non_dask_endpoint_is_one_line_without_a_traceback(tmp_path) -> None:
    """A server that answers bytes that are not the Dask protocol (issue 20 #13): distributed
    reads a huge length from them; one error line, no traceback from the failed client at exit
    (a subprocess, so the interpreter's exit is seen)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c, contextlib.suppress(OSError):
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)

    threading.Thread(target=answer, daemon=True).start()
    code = (
        "from annotator.core.infra.cluster import connect\n"
        "from annotator.model import AnnotatorError\n"
        "try:\n"
        f"    connect('tcp://127.0.0.1:{port}', timeout=3)\n"
        "except AnnotatorError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    try:
        r = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
        )
    finally:
        srv.close()
    assert "not in the Dask protocol" in r.stdout and len(r.stdout.splitlines()) == 1
    assert "Traceback" not in r.stderr and "EiB" not in r.stdout + r.stderr, r.stderr
