"""Worker processes die with their parent (issue 13 item 8): kill -9 of `annotator scan` used
to leave its pool workers alive for good. Processes are read from /proc (Linux)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from annotator.formats import msceleb

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)"
)

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")  # a zombie has finished running


def _children(pid: int) -> set[int]:
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st is not None and st[1] == pid:
                out.add(int(d))
    return out


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        kids = _children(todo.pop())
        todo.extend(kids - out)
        out |= kids
    return out


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = {p for p in pids if _alive(p)}
        if not left:
            return left
        time.sleep(0.05)
    return {p for p in pids if _alive(p)}


def _kill_all(pids: set[int]) -> None:
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


_CHILD_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, sys, time
    from annotator.core.infra import workers

    def child(use_prctl):
        if not use_prctl:  # only the portable fallback: the thread polling getppid()
            workers._set_pdeathsig = lambda: False
        workers.die_with_parent(interval=0.1)
        print("ready", flush=True)
        time.sleep(120)

    if __name__ == "__main__":
        p = multiprocessing.get_context("spawn").Process(target=child, args=(sys.argv[1] == "1",))
        p.start()
        print(p.pid, flush=True)
        time.sleep(120)
    """
)


@pytest.mark.parametrize("use_prctl", [True, False], ids=["prctl", "poll-fallback"])
def test_die_with_parent(tmp_path, use_prctl: bool) -> None:
    script = tmp_path / "parent.py"
    script.write_text(_CHILD_SCRIPT)
    parent = subprocess.Popen(
        [sys.executable, str(script), "1" if use_prctl else "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    family: set[int] = set()
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "ready"
        family = _descendants(parent.pid)
        assert child in family
        parent.kill()  # SIGKILL: no clean-up code of the parent runs
        parent.wait()
        left = _wait_gone(family, 5)
        assert not left, f"still running after the parent was killed: {sorted(left)}"
    finally:
        parent.kill()
        _kill_all(family | _descendants(parent.pid))


def _photo(seed: int, size: int = 256) -> bytes:
    im = Image.new("RGB", (size, size), (seed * 37 % 256, 90, 160))
    d = ImageDraw.Draw(im)
    for k in range(12):
        x, y = (seed * 13 + k * 29) % size, (seed * 7 + k * 41) % size
        d.ellipse([x, y, x + 30 + k, y + 40], fill=((k * 20) % 256, 190 - seed % 90, 150))
    b = io.BytesIO()
    im.save(b, "JPEG", quality=90)
    return b.getvalue()


@pytest.mark.slow
def test_kill_9_of_scan_leaves_no_worker(tmp_path) -> None:
    """Enough faces that the two scan workers are busy hashing when the parent is killed."""
    photos = [_photo(i) for i in range(16)]
    tsv = tmp_path / "faces.tsv"
    with open(tsv, "wb") as f:
        for i in range(6000):
            msceleb.write_row(f, f"m.{i // 20}", i, None, None, None, None, photos[i % 16])
    db = tmp_path / "p.db"
    env = _env()
    subprocess.run(
        [sys.executable, "-m", "annotator", "import", "msceleb", str(tsv), "-p", str(db)],
        check=True,
        capture_output=True,
        env=env,
    )
    scan = subprocess.Popen(
        [sys.executable, "-m", "annotator", "scan", "-p", str(db), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    family: set[int] = set()
    try:
        # wait until both pool workers are running (and the first results are committed)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and scan.poll() is None:
            family = _descendants(scan.pid)
            workers = [p for p in family if b"spawn_main" in _cmdline(p)]
            if len(workers) >= 2 and _hashed(db) > 0:
                break
            time.sleep(0.05)
        assert scan.poll() is None, "the scan finished before it could be killed: more faces"
        assert len(workers) >= 2, f"no pool workers seen: {sorted(family)}"
        os.kill(scan.pid, signal.SIGKILL)
        scan.wait()
        left = _wait_gone(family | _descendants(scan.pid), 5)
        assert not left, f"still running 5 s after kill -9 of the scan: {sorted(left)}"
    finally:  # whatever the outcome, leave no process of ours behind
        scan.kill()
        _kill_all(family | _descendants(scan.pid))


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _hashed(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as c:
            return int(c.execute("SELECT count(*) FROM face_hashes").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_worker_killed_by_the_system_is_one_line_not_a_traceback():
    """Issue 20 finding 13: an OOM-killed worker gave "unexpected BrokenProcessPool"."""
    import os

    from annotator.core.infra.workers import process_pool, run_chunks
    from annotator.model import AnnotatorError

    with process_pool(1) as pool, pytest.raises(AnnotatorError, match="worker process died"):
        run_chunks(
            pool, [1], lambda _c: pool.submit(os._exit, 9), lambda _r: None, lambda: False, 1
        )
