"""The writers the export uses: RecordStreamWriter (InsightFace .rec with header, no image kept
in memory), the identities.tsv lines beside it, the folder-per-identity writer and the
verification .bin pickle written opcode by opcode."""

import io
import pickle
import pickletools
import struct

import pytest
from PIL import Image

from annotator.formats import recordio
from annotator.formats.folder import FolderWriter, write_new_file
from annotator.formats.insightface_bin import write_bin_stream
from annotator.formats.recordio import (
    MAGIC_BYTES,
    RecordStreamWriter,
    RecordWriter,
    class_line,
    escape_key,
    unescape_key,
)
from annotator.model import AnnotatorError


def jpeg(color) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (20, 20), color).save(b, "JPEG")
    return b.getvalue()


def jpeg_with_magic(color) -> bytes:
    """The RecordIO magic at a 4-aligned payload offset: the writers must split the record."""
    base = jpeg(color)
    com = b"\xff\xfe" + struct.pack(">H", 2 + 4 + 8) + b"xx" + MAGIC_BYTES + b"yyyyyy"
    img = base[:2] + com + base[2:]
    assert img.find(MAGIC_BYTES) % 4 == 0
    return img


def test_stream_writer_is_byte_identical_to_record_writer(tmp_path):
    imgs = [(0, jpeg((1, 2, 3))), (0, jpeg_with_magic((9, 9, 9))), (2, jpeg((5, 5, 5)))]
    imgs += [(3, jpeg((c, 0, 0))) for c in range(3)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with RecordWriter(tmp_path / "a" / "train.rec", image_size=(20, 20)) as w:
        for c, im in imgs:
            w.add(c, im)
    s = RecordStreamWriter(tmp_path / "b" / "train.rec")
    assert [s.add(c, im) for c, im in imgs] == list(range(1, len(imgs) + 1))
    s.close((20, 20))
    for name in ("train.rec", "train.idx", "property"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with open(tmp_path / "b" / "train.rec", "rb") as fh:
        flag, label, *_ = recordio.unpack(recordio.read_record_at(fh, 0))
    assert (flag, label) == (2, (7.0, 10.0))


def test_stream_writer_refuses_classes_out_of_order(tmp_path):
    s = RecordStreamWriter(tmp_path / "train.rec")
    s.add(1, jpeg((1, 1, 1)))
    with pytest.raises(ValueError, match="class order"):
        s.add(0, jpeg((2, 2, 2)))
    s.abort()


@pytest.mark.parametrize("n", [0, 1, 1001, 1500])
def test_bin_pickle_loads_like_pickle_dumps(n):
    images = [bytes([k % 251]) * (k % 300 + 1) for k in range(2 * n)]  # short and long items
    issame = [k % 3 == 0 for k in range(n)]
    buf = io.BytesIO()
    assert write_bin_stream(buf, iter(images), issame) == 2 * n
    raw = buf.getvalue()
    pickletools.dis(raw, out=io.StringIO())  # a well-formed opcode stream
    bins, same = pickle.load(io.BytesIO(raw), encoding="bytes")  # insightface load_bin
    assert bins == images and same == issame
    assert all(type(x) is bool for x in same)
    assert pickle.loads(raw) == pickle.loads(pickle.dumps((images, issame), protocol=4))


def test_bin_refuses_a_wrong_image_count():
    with pytest.raises(ValueError, match="3 images for 2 pairs"):
        write_bin_stream(io.BytesIO(), [b"a", b"b", b"c"], [True, False])


def test_escape_key_round_trips():
    for key in [
        "",
        "m.0abc",
        "\\",
        "\\\\n",
        "x\x00\x1f\x7f\x85\u2028\u2029é",
        "end\\",
        "a\tb\nc\rd",
    ]:
        esc = escape_key(key)
        assert unescape_key(esc) == key
        assert not any(ch in esc for ch in "\t\n\r\x85\u2028\u2029")
        assert len(("0\t" + esc).splitlines()) == 1
    assert escape_key("m.0abc") == "m.0abc"  # plain keys are written as they are
    assert class_line(7, "a\tb\\") == b"7\ta\\tb\\\\\n"
    assert unescape_key("odd\\q and cut \\x4") == "odd\\q and cut \\x4"  # kept as written


def test_folder_writer_writes_new_files_inside_the_root_only(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    w = FolderWriter(root)
    w.write_identity("m.a", [("1.jpg", b"one"), ("2.jpg", b"two")])
    assert (root / "m.a" / "2.jpg").read_bytes() == b"two"
    with pytest.raises(FileExistsError):
        w.write_identity("m.a", [("3.jpg", b"x")])  # never into an existing folder
    for bad_dir in ("..", "../x", "a/b", "/abs"):
        with pytest.raises(AnnotatorError, match="outside the export folder"):
            w.write_identity(bad_dir, [("1.jpg", b"x")])
    for bad_name in ("../1.jpg", "", ".."):
        with pytest.raises(AnnotatorError, match="outside the export folder"):
            w.write_identity(f"d{len(bad_name)}", [(bad_name, b"x")])
    (tmp_path / "target").write_bytes(b"keep")
    (root / "m.a" / "link.jpg").symlink_to(tmp_path / "target")
    (root / "m.a" / "dangling.jpg").symlink_to(tmp_path / "nowhere")
    for name in ("link.jpg", "dangling.jpg", "1.jpg"):  # never through a link, never over a file
        with pytest.raises(FileExistsError):
            write_new_file(root / "m.a" / name, b"x")
    assert (tmp_path / "target").read_bytes() == b"keep"
    assert (root / "m.a" / "1.jpg").read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "target"]
