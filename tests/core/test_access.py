"""FaceBytes: bytes read back through locators equal the originals; changed sources fail."""

import io
import os
import pickle

import pytest
from PIL import Image

from annotator.core.importer import import_source
from annotator.core.infra.access import FaceBytes, FaceReadError, read_locator, read_planned
from annotator.formats import msceleb
from annotator.formats.recordio import RecordWriter
from annotator.store.db import open_project
from annotator.store.faces import all_sources


def img(color, fmt="JPEG") -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(b, fmt)
    return b.getvalue()


@pytest.fixture
def project(tmp_path):
    tsv_imgs = [img((i * 20, 0, 0)) for i in range(5)]
    with open(tmp_path / "faces.tsv", "wb") as f:
        for i, im in enumerate(tsv_imgs):
            msceleb.write_row(f, f"m.{i % 2}", i, None, None, None, (0, 0, 1, 1), im)
    rec_imgs = [img((0, i * 20, 0)) for i in range(4)]
    with RecordWriter(tmp_path / "train.rec") as w:
        for i, im in enumerate(rec_imgs):
            w.add(i // 2, im)
    root = tmp_path / "folder"
    folder_imgs = {}
    for ident in ("p1", "p2"):
        (root / ident).mkdir(parents=True)
        for j in range(2):
            data = img((0, 0, j * 90), "PNG")
            (root / ident / f"{j}.png").write_bytes(data)
            folder_imgs[f"{ident}/{j}.png"] = data
    pr = open_project(tmp_path / "p.db", create=True)
    import_source(pr, "msceleb", tmp_path / "faces.tsv")
    import_source(pr, "rec", tmp_path / "train.rec")
    import_source(pr, "folder", root)
    expected = {}
    for fid, fmt, record, relpath in pr.conn.execute(
        "SELECT f.id, s.format, f.record, f.relpath FROM faces f JOIN sources s ON s.id = f.source_id"
    ):
        if fmt == "msceleb":
            expected[fid] = tsv_imgs[record - 1]
        elif fmt == "rec":
            expected[fid] = rec_imgs[record - 1]
        else:
            expected[fid] = folder_imgs[relpath]
    yield pr, expected, tmp_path
    pr.close()


def test_read_back_equals_original(project):
    pr, expected, _ = project
    assert len(expected) == 5 + 4 + 4
    with FaceBytes(pr) as fb:
        ids = sorted(expected)
        assert fb.read_many(ids) == [expected[i] for i in ids]
        assert fb.read(ids[-1]) == expected[ids[-1]]
        with pytest.raises(FaceReadError, match="no face"):
            fb.read(10_000)


def test_plan_is_picklable_and_reads(project):
    pr, expected, _ = project
    with FaceBytes(pr) as fb:
        plan = fb.plan(sorted(expected))
    plan2 = pickle.loads(pickle.dumps(plan))
    assert read_planned(plan2) == [expected[i] for i in sorted(expected)]
    item = plan2[0]
    assert (
        read_locator((item.source_path, item.fmt), item.offset, item.length, item.relpath)
        == expected[item.face_id]
    )


def test_changed_or_missing_source(project):
    pr, expected, tmp = project
    tsv_face = min(fid for fid in expected if expected[fid][:2] == b"\xff\xd8")
    with open(tmp / "faces.tsv", "ab") as f:
        f.write(b"appended\n")
    with FaceBytes(pr) as fb:
        with pytest.raises(FaceReadError, match=r"faces\.tsv:1: .*changed"):
            fb.read(tsv_face)
        # errors="return" keeps going
        out = fb.read_many(sorted(expected), errors="return")
        assert sum(isinstance(o, FaceReadError) for o in out) == 5
    os.remove(tmp / "folder" / "p1" / "0.png")
    with FaceBytes(pr) as fb:
        out = fb.read_many(sorted(expected), errors="return")
        errs = [str(o) for o in out if isinstance(o, FaceReadError)]
        assert any(e.startswith("p1/0.png") for e in errs)
    os.rename(tmp / "train.rec", tmp / "moved.rec")
    with FaceBytes(pr) as fb:
        out = fb.read_many(sorted(expected), errors="return")
        errs = [str(o) for o in out if isinstance(o, FaceReadError)]
        assert any(e.startswith("train.rec#1") and "missing" in e for e in errs)


def test_changed_folder_image_is_reported(project):
    """A folder face whose file was rewritten after import is an error naming the face, both
    through FaceBytes and through read plans (worker processes)."""
    pr, expected, tmp = project
    by_rel = dict(
        pr.conn.execute("SELECT relpath, id FROM faces WHERE relpath IS NOT NULL").fetchall()
    )
    bigger, same_size, touched = (
        tmp / "folder/p1/0.png",
        tmp / "folder/p1/1.png",
        tmp / "folder/p2/0.png",
    )
    bigger.write_bytes(bigger.read_bytes() + b"\0" * 10)
    data = bytearray(same_size.read_bytes())
    data[-20] ^= 0xFF  # same size, other content, and a later mtime
    same_size.write_bytes(bytes(data))
    st = same_size.stat()
    os.utime(same_size, ns=(st.st_atime_ns, st.st_mtime_ns + 60 * 10**9))
    st = touched.stat()  # mtime moved by less than the slack (e.g. a copy that rounds times)
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ids = [by_rel["p1/0.png"], by_rel["p1/1.png"], by_rel["p2/0.png"], by_rel["p2/1.png"]]
    with FaceBytes(pr) as fb:
        out = fb.read_many(ids, errors="return")
        with pytest.raises(FaceReadError, match=r"^p1/0\.png: file changed since import \(size"):
            fb.read(ids[0])
        plan = fb.plan(ids)
    assert isinstance(out[0], FaceReadError) and "bytes, was" in str(out[0])
    assert isinstance(out[1], FaceReadError)
    assert str(out[1]).startswith("p1/1.png: file changed since import (modified ")
    assert out[2] == expected[ids[2]] and out[3] == expected[ids[3]]
    planned = read_planned(plan, errors="return")
    assert [type(o) for o in planned] == [FaceReadError, FaceReadError, bytes, bytes]


def test_check_source_is_public(project):
    pr, _, tmp = project
    srcs = {s.format: s for s in all_sources(pr)}
    assert all(FaceBytes.check_source(s) is None for s in srcs.values())
    (tmp / "faces.tsv").write_bytes(b"replaced\n")
    why = FaceBytes.check_source(srcs["msceleb"])
    assert why and "changed since import" in why
    assert FaceBytes._check(srcs["msceleb"]) == why  # the old name still works
    os.rename(tmp / "folder", tmp / "gone")
    assert "missing" in FaceBytes.check_source(srcs["folder"])
