"""InsightFace RecordIO: writer/reader round trip, header record, split records, bad records."""

import io
import struct

import pytest
from PIL import Image

from annotator.formats import recordio, recordio_idx
from annotator.formats.recordio import MAGIC_BYTES, RecordWriter, encode_record, read_rec
from annotator.model import FaceRecord, Rejected


def jpeg(color, size=(20, 20)) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", size, color).save(b, "JPEG")
    return b.getvalue()


def jpeg_with_magic(color) -> bytes:
    """A JPEG whose bytes contain the RecordIO magic at a 4-aligned payload offset (in a COM
    segment), so dmlc's writer must split the record."""
    base = jpeg(color)
    # payload = 24-byte IRHeader + image; put the magic at image offset 8 (payload offset 32)
    com = b"\xff\xfe" + struct.pack(">H", 2 + 4 + 8) + b"xx" + MAGIC_BYTES + b"yyyyyy"
    img = base[:2] + com + base[2:]
    assert img.find(MAGIC_BYTES) % 4 == 0
    return img


def items(rows):
    return [it for _, _, it in rows]


def test_encode_record_pinned():
    assert encode_record(b"abcde") == MAGIC_BYTES + struct.pack("<I", 5) + b"abcde\0\0\0"
    # the magic at an aligned position splits the record into first + last parts
    rec = encode_record(b"abcd" + MAGIC_BYTES + b"ef")
    assert rec == (
        MAGIC_BYTES
        + struct.pack("<I", (1 << 29) | 4)
        + b"abcd"
        + MAGIC_BYTES
        + struct.pack("<I", (3 << 29) | 2)
        + b"ef\0\0"
    )
    # unaligned magic: no split
    assert encode_record(b"a" + MAGIC_BYTES)[4:8] == struct.pack("<I", 5)


@pytest.mark.parametrize("with_header", [True, False])
def test_round_trip(tmp_path, with_header):
    imgs = [(c, jpeg((c * 60, i * 30, 0))) for c in range(3) for i in range(2)]
    imgs.append((1, jpeg_with_magic((9, 9, 9))))
    rec_path = tmp_path / "train.rec"
    with RecordWriter(rec_path, with_header=with_header) as w:
        for c, im in imgs:
            w.add(c, im)
    got = items(read_rec(rec_path))
    assert all(isinstance(g, FaceRecord) for g in got), got
    assert len(got) == len(imgs)
    expected = sorted(imgs, key=lambda t: t[0]) if with_header else imgs
    with open(rec_path, "rb") as fh:
        for rec, (cls, im) in zip(got, expected, strict=True):
            assert rec.identity_key == str(cls)
            assert recordio.read_image_at(fh, rec.locator.offset, rec.locator.length) == im
    keys = [r.record for r in got]
    assert keys == (list(range(1, len(imgs) + 1)) if with_header else list(range(len(imgs))))
    if with_header:
        assert (tmp_path / "property").read_text() == "3,112,112\n"
        assert recordio.read_property(rec_path) == (3, 112, 112)
        # header and identity records are there: header label = [first, end)
        with open(rec_path, "rb") as fh:
            flag, label, *_ = recordio.unpack(recordio.read_record_at(fh, 0))
        assert flag == 2 and label == (len(imgs) + 1, len(imgs) + 4)


def test_split_record_is_rejoined(tmp_path):
    im = jpeg_with_magic((1, 2, 3))
    rec_path = tmp_path / "t.rec"
    w = RecordWriter(rec_path, with_header=False)
    w.add(5, im)
    w.close()
    raw = rec_path.read_bytes()
    assert raw.count(MAGIC_BYTES) == 2  # the writer really split it
    (face,) = items(read_rec(rec_path))
    with open(rec_path, "rb") as fh:
        assert recordio.read_image_at(fh, face.locator.offset, face.locator.length) == im
    assert face.identity_key == "5"


def test_bad_records_reported(tmp_path):
    rec_path = tmp_path / "t.rec"
    w = RecordWriter(rec_path, with_header=False)
    w.add(0, jpeg((1, 1, 1)))
    w.add(1, b"this is not an image at all")
    w.add(2, jpeg((2, 2, 2)))
    w.close()
    idx = rec_path.with_suffix(".idx")
    # add a key pointing into the middle of a record (bad magic) and a garbage line
    idx.write_text(idx.read_text() + "7\t5\nnot a line\n")
    got = items(read_rec(rec_path))
    faces = [g for g in got if isinstance(g, FaceRecord)]
    bad = {g.origin: g.reason for g in got if isinstance(g, Rejected)}
    assert [f.identity_key for f in faces] == ["0", "2"]
    assert "not an image" in bad["t.rec#1"]
    assert "bad magic" in bad["t.rec#7"]
    assert any(o.startswith("t.idx:") for o in bad)


def test_resume_index(tmp_path):
    rec_path = tmp_path / "train.rec"
    with RecordWriter(rec_path) as w:
        for c in range(4):
            w.add(c, jpeg((c, 0, 0)))
    rows = list(read_rec(rec_path))
    pos, j, _ = rows[1]
    rest = items(read_rec(rec_path, pos, j))
    assert [r.record for r in rest] == [3, 4]


def test_missing_idx(tmp_path):
    from annotator.model import AnnotatorError

    (tmp_path / "x.rec").write_bytes(b"")
    with pytest.raises(AnnotatorError, match="index file"):
        list(read_rec(tmp_path / "x.rec"))


@pytest.mark.parametrize("block", [8, 64, 8 << 20])
def test_read_idx_blocks_and_bad_lines(tmp_path, monkeypatch, block):
    """Well-formed blocks are parsed in NumPy, the others line by line: same keys, offsets and
    bad-line numbers either way, whatever the block boundaries."""
    monkeypatch.setattr(recordio_idx, "IDX_BLOCK", block)
    lines = [f"{k}\t{100 * k}" for k in range(40)]
    lines[5] = "5 500"  # spaces are fine (the slow path reads them)
    lines[9] = "9\t-3"  # negative offset
    lines[17] = "17\t99999999999999999999999"  # does not fit an int64: a bad line, not a crash
    lines[23] = "x\t2300"
    lines[30] = ""
    lines[33] = "33\t3300\t1"
    p = tmp_path / "t.idx"
    p.write_text("\n".join(lines))  # no newline at the end
    keys, offs, bad = recordio_idx.read_idx(p)
    good = [k for k in range(40) if k not in (9, 17, 23, 30, 33)]
    assert keys.tolist() == good and offs.tolist() == [100 * k for k in good]
    assert [r.record for r in bad] == [10, 18, 24, 34]
    # out of file order: sorted by offset
    p.write_text("0\t300\n1\t100\n2\t200\n")
    keys, offs, bad = recordio_idx.read_idx(p)
    assert keys.tolist() == [1, 2, 0] and offs.tolist() == [100, 200, 300] and bad == []


# -- hostile input (issue 13 item 4) -------------------------------------------------------------


def _raw_rec(tmp_path, payloads, idx_lines=None):
    """A .rec of the given payloads (keys 0..) and its .idx (or the given .idx lines)."""
    rec = tmp_path / "train.rec"
    lines = []
    with open(rec, "wb") as f:
        for k, p in enumerate(payloads):
            lines.append(f"{k}\t{f.tell()}\n")
            f.write(encode_record(p))
    (tmp_path / "train.idx").write_text("".join(idx_lines if idx_lines is not None else lines))
    return rec


def test_header_range_that_contradicts_the_data_is_reported_not_trusted(tmp_path):
    imgs = [recordio.pack(i % 3, jpeg((i, 0, 0))) for i in range(1, 514)]
    rec = _raw_rec(tmp_path, [recordio.pack([1, 100000], b"")] + imgs)
    got = items(read_rec(rec))
    faces = [x for x in got if isinstance(x, FaceRecord)]
    assert len(faces) == 513
    bad = [x for x in got if isinstance(x, Rejected)]
    assert len(bad) == 1 and bad[0].origin == "train.rec#0" and "header" in bad[0].reason


def test_header_whose_range_covers_images_is_not_trusted(tmp_path):
    imgs = [recordio.pack(i % 3, jpeg((i, 0, 0))) for i in range(1, 11)]
    rec = _raw_rec(tmp_path, [recordio.pack([1, 11], b"")] + imgs)  # "all are range records"
    got = items(read_rec(rec))
    assert sum(isinstance(x, FaceRecord) for x in got) == 10
    assert [x.origin for x in got if isinstance(x, Rejected)] == ["train.rec#0"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_header_labels_are_a_rejection(tmp_path, bad):
    imgs = [recordio.pack(1, jpeg((9, 0, 0))), recordio.pack(bad, jpeg((8, 0, 0)))]
    rec = _raw_rec(tmp_path, [recordio.pack([bad, 3], b"")] + imgs)
    got = items(read_rec(rec))
    assert [x.record for x in got if isinstance(x, FaceRecord)] == [1]
    rej = {x.origin: x.reason for x in got if isinstance(x, Rejected)}
    assert set(rej) == {"train.rec#0", "train.rec#2"}
    assert "bad class label" in rej["train.rec#2"]


def test_idx_offset_past_the_end_is_a_rejection_not_an_abort(tmp_path):
    payloads = [recordio.pack(0, jpeg((1, 0, 0))), recordio.pack(1, jpeg((2, 0, 0)))]
    rec = _raw_rec(tmp_path, payloads)
    lines = (tmp_path / "train.idx").read_text().splitlines(keepends=True)
    lines += ["2\t9223372036854775000\n", "3\t99999999\n", "4\tnot-a-number\n"]
    (tmp_path / "train.idx").write_text("".join(lines))
    got = items(read_rec(rec))
    assert sum(isinstance(x, FaceRecord) for x in got) == 2
    rej = {x.origin: x.reason for x in got if isinstance(x, Rejected)}
    assert "past the end" in rej["train.rec#2"] and "past the end" in rej["train.rec#3"]
    assert "bad .idx line" in rej["train.idx:5"]


def test_duplicate_idx_lines_are_one_report_with_a_count(tmp_path, monkeypatch):
    """A .idx whose lines repeat (2M copies of one key, issue 20 #14) yields each record once
    and one rejection that counts the repeats, whatever the block boundaries."""
    monkeypatch.setattr(recordio_idx, "IDX_BLOCK", 1 << 20)
    payloads = [recordio.pack(0, jpeg((1, 0, 0))), recordio.pack(1, jpeg((2, 0, 0)))]
    rec = _raw_rec(tmp_path, payloads)
    lines = (tmp_path / "train.idx").read_bytes().splitlines(keepends=True)
    dup = 2_000_000
    (tmp_path / "train.idx").write_bytes(lines[0] + lines[1] * dup + b"1\t0\n" + lines[1])
    keys, offs, bad = recordio_idx.read_idx(tmp_path / "train.idx")
    assert keys.tolist() == [0, 1]
    assert len(bad) == 1 and str(dup + 1) in bad[0].reason and bad[0].origin == "train.idx:3"
    got = items(read_rec(rec))
    assert sum(isinstance(x, FaceRecord) for x in got) == 2
    assert [x.origin for x in got if isinstance(x, Rejected)] == ["train.idx:3"]


def test_idx_repeated_whole_is_caught_across_blocks(tmp_path, monkeypatch):
    """Every block in key order, the repeats only across blocks: still one report."""
    monkeypatch.setattr(recordio_idx, "IDX_BLOCK", 64)
    one = "".join(f"{k}\t{100 * k}\n" for k in range(30))
    (tmp_path / "t.idx").write_text(one + one + "x\n")
    keys, offs, bad = recordio_idx.read_idx(tmp_path / "t.idx")
    assert keys.tolist() == list(range(30)) and offs.tolist() == [100 * k for k in range(30)]
    assert [(r.origin, r.record) for r in bad] == [("t.idx:61", 61), ("t.idx:31", 31)]
    assert bad[1].reason.startswith("30 .idx line(s) repeat a key")


@pytest.mark.parametrize("block", [1 << 20, 32])
def test_two_idx_keys_at_one_offset_are_one_face_and_a_bad_row(tmp_path, monkeypatch, block):
    """Issue 20: two .idx keys giving one offset used to import the record twice (two faces).
    The first line's key is kept; the later lines are reported with file and line."""
    monkeypatch.setattr(recordio_idx, "IDX_BLOCK", block)
    payloads = [recordio.pack(c, jpeg((c * 40, 0, 0))) for c in range(3)]
    rec = _raw_rec(tmp_path, payloads)
    lines = (tmp_path / "train.idx").read_text().splitlines(keepends=True)
    off1 = lines[1].split("\t")[1]
    # key 7 (line 4) and key 9 (line 5) both point at key 1's record
    (tmp_path / "train.idx").write_text("".join(lines) + f"7\t{off1}" + f"9\t{off1}")
    keys, offs, bad = recordio.read_idx(tmp_path / "train.idx")
    assert sorted(keys.tolist()) == [0, 1, 2] and len(set(offs.tolist())) == 3
    assert [(r.origin, r.record) for r in bad] == [("train.idx:4", 4)]
    assert bad[0].reason.startswith("2 .idx line(s) give the offset of an earlier line")
    got = items(read_rec(rec))
    faces = [x for x in got if isinstance(x, FaceRecord)]
    assert sorted(f.record for f in faces) == [0, 1, 2]
    assert [x.origin for x in got if isinstance(x, Rejected)] == ["train.idx:4"]


def test_idx_key_at_an_earlier_offset_keeps_the_earlier_line(tmp_path):
    """The kept key is the one on the earlier line, whichever key is smaller."""
    payloads = [recordio.pack(c, jpeg((c * 40, 0, 0))) for c in range(2)]
    rec = _raw_rec(tmp_path, payloads)
    lines = (tmp_path / "train.idx").read_text().splitlines(keepends=True)
    off1 = lines[1].split("\t")[1]
    (tmp_path / "train.idx").write_text(f"5\t{off1}" + "".join(lines))
    keys, offs, bad = recordio.read_idx(tmp_path / "train.idx")
    assert sorted(keys.tolist()) == [0, 5]
    assert [r.origin for r in bad] == ["train.idx:3"]
    assert sum(isinstance(x, FaceRecord) for x in items(read_rec(rec))) == 2
