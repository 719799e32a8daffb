"""Import pipeline: idempotence, resume after an interruption, takedowns, changed sources."""

import io
import re

import pytest
from PIL import Image

from annotator.core.importer import import_source
from annotator.core.review.privacy import key_digest
from annotator.formats import msceleb
from annotator.model import AnnotatorError
from annotator.store.db import now, open_project


def jpeg(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (12, 12), (i % 256, (i * 7) % 256, 0)).save(b, "JPEG")
    return b.getvalue()


def write_tsv(path, n=60, ids=6, bad_every=0):
    with open(path, "wb") as f:
        for i in range(n):
            if bad_every and i % bad_every == bad_every - 1:
                f.write(b"broken\trow\n")
                continue
            msceleb.write_row(
                f, f"m.{i % ids:02d}", i, f"http://i/{i}", None, f"F{i}", (0, 0, 1, 1), jpeg(i)
            )


def counts(pr):
    c = pr.conn
    return (
        c.execute("SELECT count(*) FROM faces").fetchone()[0],
        c.execute("SELECT count(*) FROM identities").fetchone()[0],
        c.execute("SELECT count(*) FROM rejected_rows").fetchone()[0],
        dict(c.execute("SELECT key, face_count FROM identities")),
    )


def test_import_twice_adds_nothing(tmp_path):
    write_tsv(tmp_path / "f.tsv", n=60, bad_every=10)
    with open_project(tmp_path / "p.db", create=True) as pr:
        calls = []
        r1 = import_source(
            pr, "msceleb", tmp_path / "f.tsv", progress=lambda d, t: calls.append((d, t))
        )
        assert (r1.imported, r1.skipped, len(r1.rejected), r1.identities) == (54, 0, 6, 6)
        assert calls[-1] == (60, 60)
        assert r1.rejected[0].origin == "f.tsv:10"
        before = counts(pr)
        r2 = import_source(pr, "msceleb", tmp_path / "f.tsv")
        assert (r2.imported, r2.skipped, r2.identities) == (0, 54, 0)
        assert counts(pr) == before
        # face_count matches the faces table
        actual = dict(
            pr.conn.execute(
                "SELECT i.key, count(f.id) FROM identities i LEFT JOIN faces f ON f.identity_id = i.id GROUP BY i.id"
            )
        )
        assert before[3] == actual
        assert sum(actual.values()) == 54


def test_resume_after_cancel(tmp_path):
    write_tsv(tmp_path / "f.tsv", n=3000, ids=30, bad_every=500)
    with open_project(tmp_path / "ref.db", create=True) as ref:
        import_source(ref, "msceleb", tmp_path / "f.tsv")
        expected = counts(ref)
        ref_rows = list(
            ref.conn.execute("SELECT record, offset, length FROM faces ORDER BY record")
        )
    calls = {"n": 0}

    def cancel_soon():
        calls["n"] += 1
        return calls["n"] >= 3  # stop after ~1500 rows

    with open_project(tmp_path / "p.db", create=True) as pr:
        r1 = import_source(pr, "msceleb", tmp_path / "f.tsv", cancelled=cancel_soon, batch_rows=400)
        assert not r1.complete
        partial = counts(pr)[0]
        assert 0 < partial < expected[0]
        status = pr.conn.execute("SELECT status FROM import_runs").fetchall()
        assert status == [("cancelled",)]
        r2 = import_source(pr, "msceleb", tmp_path / "f.tsv")
        assert r2.complete
        assert r1.imported + r2.imported == expected[0]
        assert r2.skipped == 0  # resumed exactly, nothing read twice
        assert counts(pr) == expected
        assert (
            list(pr.conn.execute("SELECT record, offset, length FROM faces ORDER BY record"))
            == ref_rows
        )


def test_interrupt_by_exception_leaves_consistent_project(tmp_path):
    write_tsv(tmp_path / "f.tsv", n=2000, ids=20)
    seen = {"n": 0}

    def boom():
        seen["n"] += 1
        if seen["n"] == 3:
            raise KeyboardInterrupt
        return False

    with open_project(tmp_path / "p.db", create=True) as pr:
        with pytest.raises(KeyboardInterrupt):
            import_source(pr, "msceleb", tmp_path / "f.tsv", cancelled=boom, batch_rows=500)
        n, _, _, fc = counts(pr)
        assert sum(fc.values()) == n  # counters agree with rows
        r = import_source(pr, "msceleb", tmp_path / "f.tsv")
        assert n + r.imported == 2000 and counts(pr)[0] == 2000


def test_changed_source_is_refused(tmp_path):
    write_tsv(tmp_path / "f.tsv", n=1200)
    write_tsv(tmp_path / "g.tsv", n=10)
    with open_project(tmp_path / "p.db", create=True) as pr:
        r = import_source(pr, "msceleb", tmp_path / "f.tsv", cancelled=lambda: True)
        assert not r.complete and r.imported == 500
        import_source(pr, "msceleb", tmp_path / "g.tsv")
        for name in ("f.tsv", "g.tsv"):
            with open(tmp_path / name, "ab") as f:
                f.write(b"more\n")
        with pytest.raises(AnnotatorError, match="changed since it was partially imported"):
            import_source(pr, "msceleb", tmp_path / "f.tsv")
        with pytest.raises(AnnotatorError, match="changed since it was imported"):
            import_source(pr, "msceleb", tmp_path / "g.tsv")


def test_takedown_identities_are_skipped(tmp_path):
    write_tsv(tmp_path / "f.tsv", n=30, ids=3)
    with open_project(tmp_path / "p.db", create=True) as pr:
        salt = pr.meta("salt")
        with pr.tx() as c:
            c.execute(
                "INSERT INTO takedowns(at, key_digest, faces_removed) VALUES (?, ?, 0)",
                (now(), key_digest(salt, "m.01")),
            )
        r = import_source(pr, "msceleb", tmp_path / "f.tsv")
        assert (r.imported, r.skipped, r.identities) == (20, 10, 2)
        keys = {k for (k,) in pr.conn.execute("SELECT key FROM identities")}
        assert keys == {"m.00", "m.02"}


def test_key_digest_pinned():
    assert (
        key_digest("salt", "m.01")
        == "d8ccfc8084f16ee2c4c99195f8eb039e1142d4b157b164a8422972e013b1e963"
    )


def test_names_and_devset(tmp_path):
    p = tmp_path / "names.tsv"
    p.write_text(
        'm.00\t"Alpha"@en\nm.00\t"Альфа"@ru\nm.99\t"Nobody"@en\nbad line\n', encoding="utf-8"
    )
    write_tsv(tmp_path / "f.tsv", n=4, ids=2)
    with open(tmp_path / "dev.tsv", "wb") as f:
        msceleb.write_devset_row(f, "m.01", "Beta", "en", None, "F", None, jpeg(1))
    with open_project(tmp_path / "p.db", create=True) as pr:
        r = import_source(pr, "names", p)
        assert (r.imported, r.identities, len(r.rejected)) == (3, 2, 1)
        import_source(pr, "msceleb", tmp_path / "f.tsv")
        rd = import_source(pr, "devset", tmp_path / "dev.tsv")
        assert rd.imported == 1
        names = set(
            pr.conn.execute(
                "SELECT i.key, n.lang, n.name FROM identity_names n JOIN identities i ON i.id = n.identity_id"
            )
        )
        assert names == {
            ("m.00", "en", "Alpha"),
            ("m.00", "ru", "Альфа"),
            ("m.99", "en", "Nobody"),
            ("m.01", "en", "Beta"),
        }
        fc = dict(pr.conn.execute("SELECT key, face_count FROM identities"))
        assert fc == {"m.00": 2, "m.99": 0, "m.01": 3}
        again = import_source(pr, "names", p)
        assert (again.imported, again.skipped) == (0, 3)


def test_errors(tmp_path):
    with open_project(tmp_path / "p.db", create=True) as pr:
        with pytest.raises(AnnotatorError, match="no such file"):
            import_source(pr, "msceleb", tmp_path / "missing.tsv")
        with pytest.raises(AnnotatorError, match="unknown format"):
            import_source(pr, "csv", tmp_path / "missing.tsv")
        with pytest.raises(AnnotatorError, match="is not a folder"):
            (tmp_path / "x.tsv").write_text("")
            import_source(pr, "folder", tmp_path / "x.tsv")


# -- every format: idempotent, resumable after a cancel or a hard kill ------------------------

FORMAT_ROWS = {"msceleb": 40, "devset": 20, "names": 30, "rec": 36, "folder": 30}


def make_source(tmp_path, fmt):
    """A small source of ``fmt`` with a few bad rows; returns its path."""
    from annotator.formats.recordio import RecordWriter

    if fmt == "msceleb":
        write_tsv(tmp_path / "f.tsv", n=44, ids=5, bad_every=11)  # 40 faces + 4 bad rows
        return tmp_path / "f.tsv"
    if fmt == "devset":
        with open(tmp_path / "dev.tsv", "wb") as f:
            for i in range(20):
                msceleb.write_devset_row(
                    f, f"m.{i % 3}", f"N{i % 3}", "en", None, "F", None, jpeg(i)
                )
            f.write(b"m.x\tbroken\n")
        return tmp_path / "dev.tsv"
    if fmt == "names":
        lines = [f'm.{i // 3:02d}\t"Name {i}"@l{i % 3}\n' for i in range(30)]
        (tmp_path / "names.tsv").write_text("".join(lines) + "m.99\n", encoding="utf-8")
        return tmp_path / "names.tsv"
    if fmt == "rec":
        with RecordWriter(tmp_path / "train.rec") as w:  # with the header record
            for i in range(36):
                w.add(i % 4, jpeg(i))
        with open(tmp_path / "train.idx", "ab") as f:
            f.write(b"garbage line\n")
        return tmp_path / "train.rec"
    root = tmp_path / "folder"
    for i in range(30):
        d = root / f"person{i % 4}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:03d}.jpg").write_bytes(jpeg(i))
    (root / "person0" / "notes.txt").write_text("not an image")
    return root


def snapshot(pr):
    """Everything an import writes, without ids and times."""
    c = pr.conn
    return {
        "faces": sorted(
            c.execute(
                "SELECT i.key, f.record, f.relpath, f.offset, f.length, f.rank, f.image_url,"
                " f.face_ref FROM faces f JOIN identities i ON i.id = f.identity_id"
            ).fetchall(),
            key=repr,
        ),
        "identities": sorted(c.execute("SELECT key, face_count FROM identities").fetchall()),
        "names": sorted(
            c.execute(
                "SELECT i.key, n.lang, n.name FROM identity_names n"
                " JOIN identities i ON i.id = n.identity_id"
            ).fetchall()
        ),
        "rejected": sorted(c.execute("SELECT record, origin, reason FROM rejected_rows")),
        "sources": c.execute("SELECT path, format, complete FROM sources").fetchall(),
    }


def assert_consistent(pr):
    """Denormalised counters agree with the rows; SQLite finds no damage."""
    c = pr.conn
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert c.execute("PRAGMA foreign_key_check").fetchall() == []
    bad = c.execute(
        "SELECT i.key FROM identities i WHERE i.face_count !="
        " (SELECT count(*) FROM faces f WHERE f.identity_id = i.id)"
    ).fetchall()
    assert bad == []


@pytest.mark.parametrize("fmt", list(FORMAT_ROWS))
def test_same_source_twice_adds_nothing(tmp_path, fmt):
    src = make_source(tmp_path, fmt)
    with open_project(tmp_path / "p.db", create=True) as pr:
        r1 = import_source(pr, fmt, src)
        assert r1.complete and r1.imported == FORMAT_ROWS[fmt] and r1.rejected
        before = snapshot(pr)
        runs = pr.conn.execute("SELECT count(*) FROM import_runs").fetchone()[0]
        r2 = import_source(pr, fmt, src)
        assert (r2.imported, r2.identities, r2.skipped) == (0, 0, r1.imported)
        assert [x.origin for x in r2.rejected] == [x.origin for x in r1.rejected]
        assert snapshot(pr) == before
        # an already complete source does not even start a new run
        assert pr.conn.execute("SELECT count(*) FROM import_runs").fetchone()[0] == runs
        assert_consistent(pr)


@pytest.mark.parametrize("fmt", list(FORMAT_ROWS))
def test_resume_after_cancel_every_format(tmp_path, fmt, monkeypatch):
    from annotator.core import importer

    monkeypatch.setattr(importer, "CANCEL_CHECK_ROWS", 4)
    src = make_source(tmp_path, fmt)
    with open_project(tmp_path / "ref.db", create=True) as ref:
        import_source(ref, fmt, src)
        expected = snapshot(ref)
    calls = {"n": 0}

    def cancel_soon():
        calls["n"] += 1
        return calls["n"] >= 3

    with open_project(tmp_path / "p.db", create=True) as pr:
        r1 = import_source(pr, fmt, src, cancelled=cancel_soon, batch_rows=4)
        assert not r1.complete
        assert 0 < r1.imported < FORMAT_ROWS[fmt]
        assert pr.conn.execute("SELECT complete FROM sources").fetchone()[0] == 0
        assert_consistent(pr)
        r2 = import_source(pr, fmt, src)
        assert r2.complete
        assert r1.imported + r2.imported == FORMAT_ROWS[fmt]
        assert r2.skipped == 0  # resumed exactly where the cancelled run stopped
        assert snapshot(pr) == expected
        assert_consistent(pr)


KILL_DRIVER = """
import os, signal, sqlite3, sys, time
from annotator.core import importer
from annotator.store.db import open_project
importer.CANCEL_CHECK_ROWS = 3
n = [0]
def cancelled():
    n[0] += 1
    if n[0] == 5:
        # let the writer thread commit a batch first, then die mid-import like `kill -9`
        watch = sqlite3.connect(sys.argv[1])
        t = time.monotonic()
        while watch.execute("SELECT count(*) FROM faces").fetchone()[0] == 0:
            if time.monotonic() - t > 30:
                break
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    return False
pr = open_project(sys.argv[1], create=True)
importer.import_source(pr, sys.argv[2], sys.argv[3], cancelled=cancelled, batch_rows=3)
"""


@pytest.mark.parametrize("fmt", ["msceleb", "rec", "folder"])
def test_killed_import_resumes(tmp_path, fmt):
    """`kill -9` in the middle of an import leaves a consistent project; the same import
    finishes it, with the same result as an uninterrupted one."""
    import subprocess
    import sys
    from pathlib import Path

    src = make_source(tmp_path, fmt)
    db = tmp_path / "p.db"
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-c", KILL_DRIVER, str(db), fmt, str(src)],
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == -9, r.stderr
    with open_project(tmp_path / "ref.db", create=True) as ref:
        import_source(ref, fmt, src)
        expected = snapshot(ref)
    with open_project(db) as pr:
        assert_consistent(pr)
        done = pr.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        assert 0 < done < FORMAT_ROWS[fmt]
        assert pr.conn.execute("SELECT status FROM import_runs").fetchall() == [("running",)]
        r2 = import_source(pr, fmt, src)
        assert r2.complete and done + r2.imported == FORMAT_ROWS[fmt]
        assert snapshot(pr) == expected
        assert_consistent(pr)


def test_foreign_files_are_refused_before_anything_is_written(tmp_path):
    from annotator.core.importer import format_mismatch, preflight

    write_tsv(tmp_path / "f.tsv", n=6)
    (tmp_path / "csv.tsv").write_text("a,b\nc,d\ne,f\n")
    (tmp_path / "img.tsv").write_bytes(jpeg(1))
    with open(tmp_path / "dev.tsv", "wb") as f:
        f.write(b"m.1\tx\ty\tz\tw\tv\tu\n" * 2)  # two broken 7-column lines first
        for i in range(10):
            msceleb.write_devset_row(f, "m.1", "N", "en", None, "F", None, jpeg(i))
    assert format_mismatch("devset", tmp_path / "dev.tsv") is None  # bad rows, right format
    cases = {
        ("devset", "f.tsv"): "like a 'msceleb' file",
        ("names", "f.tsv"): "like a 'msceleb' file",
        ("msceleb", "csv.tsv"): "all have 1 tab-separated column(s), not 7",
        ("msceleb", "img.tsv"): "is an image file",
        ("rec", "f.tsv"): "does not start with a RecordIO record",
    }
    with open_project(tmp_path / "p.db", create=True) as pr:
        for (fmt, name), msg in cases.items():
            with pytest.raises(AnnotatorError, match=re.escape(msg)):
                preflight(fmt, tmp_path / name)
            with pytest.raises(AnnotatorError, match=re.escape(msg)):
                import_source(pr, fmt, tmp_path / name)
        assert pr.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 0
        assert import_source(pr, "devset", tmp_path / "dev.tsv").imported == 10


# -- hostile input (issue 13 items 3, 5, 14) ----------------------------------------------------


def _row(mid: bytes, rank: bytes, i: int) -> bytes:
    import base64

    return b"\t".join([mid, rank, b"http://i", b"", b"F", b"", base64.b64encode(jpeg(i))]) + b"\n"


def test_out_of_range_rank_is_a_rejected_row_not_a_wedged_source(tmp_path):
    p = tmp_path / "f.tsv"
    rows = [_row(b"m.01", str(i).encode(), i) for i in range(30)]
    rows[10] = _row(b"m.01", b"9" * 20, 10)  # beyond int64: OverflowError at insert before
    rows[11] = _row(b"m.01", b"-" + b"9" * 19, 11)
    rows[12] = _row(b"m.01", "\u00b3".encode(), 12)  # a superscript digit is not an integer
    p.write_bytes(b"".join(rows))
    with open_project(tmp_path / "p.db", create=True) as pr:
        r = import_source(pr, "msceleb", p, batch_rows=1)
        assert r.complete and r.imported == 27
        reasons = {x.origin: x.reason for x in r.rejected}
        assert "out of range" in reasons["f.tsv:11"]
        assert "out of range" in reasons["f.tsv:12"]
        assert "not an integer" in reasons["f.tsv:13"]
        assert pr.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_invalid_utf8_mids_are_rejected_not_merged(tmp_path):
    p = tmp_path / "f.tsv"
    p.write_bytes(_row(b"m.\xff01", b"1", 1) + _row(b"m.\xfe01", b"2", 2) + _row(b"m.ok", b"3", 3))
    q = tmp_path / "g.tsv"  # a NUL in a text file is a bad row, not a "binary file"
    q.write_bytes(_row(b"m.\x00x", b"4", 4) + _row(b"m.ok2", b"5", 5))
    with open_project(tmp_path / "p.db", create=True) as pr:
        r = import_source(pr, "msceleb", p)
        assert r.imported == 1
        assert [x.origin for x in r.rejected] == ["f.tsv:1", "f.tsv:2"]
        assert "UTF-8" in r.rejected[0].reason
        r = import_source(pr, "msceleb", q)
        assert r.imported == 1
        assert [x.origin for x in r.rejected] == ["g.tsv:1"]
        assert "NUL" in r.rejected[0].reason
        keys = [k for (k,) in pr.conn.execute("SELECT key FROM identities ORDER BY key")]
        assert keys == ["m.ok", "m.ok2"]


def test_nul_byte_in_a_names_file_rejects_that_line_only(tmp_path):
    p = tmp_path / "names.tsv"
    p.write_bytes(
        b'm.1\t"One"@en\nm.2\t"T\x00wo"@en\nm.3\t"Three"@en\nm.4\t"Fo\xfcr"@de\nm.5\t"V"@en\n'
    )
    with open_project(tmp_path / "p.db", create=True) as pr:
        r = import_source(pr, "names", p)
        assert r.imported == 3
        assert [x.origin for x in r.rejected] == ["names.tsv:2", "names.tsv:4"]
        assert r.rejected[0].reason == "NUL byte in the line"
        assert "UTF-8" in r.rejected[1].reason


def test_restart_discards_a_partial_import_then_imports_the_fixed_file(tmp_path, monkeypatch):
    from annotator.core import importer

    monkeypatch.setattr(importer, "CANCEL_CHECK_ROWS", 5)
    monkeypatch.setattr(importer, "DISCARD_CHUNK", 3)  # several short transactions
    p = tmp_path / "f.tsv"
    write_tsv(p, n=40, ids=4)
    with open_project(tmp_path / "p.db", create=True) as pr:
        r = import_source(pr, "msceleb", p, batch_rows=1, cancelled=lambda: True)
        assert not r.complete
        done = pr.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        assert 0 < done < 40
        write_tsv(p, n=30, ids=3)  # "fixed" file: refused without --restart
        with pytest.raises(AnnotatorError, match="--restart"):
            import_source(pr, "msceleb", p)
        r2 = importer.import_source(pr, "msceleb", p, restart=True)
        assert r2.complete and r2.imported == 30 and r2.identities == 3
        assert counts(pr)[:2] == (30, 3)
        assert pr.conn.execute("SELECT count(*) FROM sources").fetchone()[0] == 1
        assert pr.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert pr.conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_restart_is_refused_when_faces_carry_review_work(tmp_path):
    from annotator.core.review import ops

    p = tmp_path / "f.tsv"
    write_tsv(p, n=10, ids=2)
    with open_project(tmp_path / "p.db", create=True) as pr:
        import_source(pr, "msceleb", p)
        fid = pr.conn.execute("SELECT min(id) FROM faces").fetchone()[0]
        ops.label_faces(pr, [fid], "correct", "ann")
        with pytest.raises(AnnotatorError, match="review work"):
            import_source(pr, "msceleb", p, restart=True)
        assert counts(pr)[0] == 10


def test_an_import_that_failed_part_way_resumes_without_duplicates(tmp_path, monkeypatch):
    from annotator.core import importer

    p = tmp_path / "f.tsv"
    write_tsv(p, n=50, ids=5)
    real = importer.store.insert_faces
    calls = {"n": 0}

    def failing(c, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(c, rows)

    monkeypatch.setattr(importer, "CANCEL_CHECK_ROWS", 5)
    with open_project(tmp_path / "p.db", create=True) as pr:
        monkeypatch.setattr(importer.store, "insert_faces", failing)
        with pytest.raises(RuntimeError):
            import_source(pr, "msceleb", p, batch_rows=5)
        monkeypatch.setattr(importer.store, "insert_faces", real)
        stored = counts(pr)[0]
        assert 0 < stored < 50
        r = import_source(pr, "msceleb", p, batch_rows=5)  # same file: resumes
        assert r.complete and r.imported == 50 - stored
        assert counts(pr)[0] == 50


def test_a_crafted_resume_position_is_one_clear_error(tmp_path):
    import sqlite3

    p = tmp_path / "f.tsv"
    write_tsv(p, n=10, ids=2)
    db = tmp_path / "p.db"
    with open_project(db, create=True) as pr:
        import_source(pr, "msceleb", p)
    c = sqlite3.connect(db)
    c.execute("UPDATE sources SET resume_pos = 9223372036854775807, complete = 0")
    c.commit()
    c.close()
    with open_project(db) as pr:
        with pytest.raises(AnnotatorError, match="resume position .*--restart"):
            import_source(pr, "msceleb", p)
        r = import_source(pr, "msceleb", p, restart=True)
        assert r.complete and r.imported == 10
