"""Folder-per-identity reader: sorted walk, non-images, nested folders, symlink loops."""

import io
import os

from PIL import Image

from annotator.formats.folder import read_folder
from annotator.model import FaceRecord, Rejected


def img(fmt: str) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(b, fmt)
    return b.getvalue()


def make_tree(root):
    (root / "bob").mkdir(parents=True)
    (root / "alice").mkdir()
    (root / "alice" / "b.PNG").write_bytes(img("PNG"))
    (root / "alice" / "a.jpg").write_bytes(img("JPEG"))
    (root / "alice" / "notes.txt").write_text("hi")
    (root / "alice" / "fake.jpg").write_text("not really")
    (root / "bob" / "x.webp").write_bytes(img("WEBP"))
    (root / "bob" / "y.bmp").write_bytes(img("BMP"))
    (root / "bob" / "deeper").mkdir()
    (root / "README").write_text("top-level file")
    os.symlink(root, root / "loop")  # identity folder pointing at the root
    os.symlink(root / "bob" / "self", root / "bob" / "self")  # self-referencing symlink


def test_walk(tmp_path):
    root = tmp_path / "ds"
    make_tree(root)
    got = [it for _, _, it in read_folder(root)]
    faces = [(g.identity_key, g.locator.relpath) for g in got if isinstance(g, FaceRecord)]
    assert faces == [
        ("alice", "alice/a.jpg"),
        ("alice", "alice/b.PNG"),
        ("bob", "bob/x.webp"),
        ("bob", "bob/y.bmp"),
    ]
    bad = {g.origin: g.reason for g in got if isinstance(g, Rejected)}
    assert "not an image file" in bad["alice/notes.txt"]
    assert "magic" in bad["alice/fake.jpg"]
    assert "nested folder" in bad["bob/deeper/"]
    assert "symlink loop" in bad["loop/"]
    assert "symlink" in bad["bob/self"]
    assert "not in an identity folder" in bad["README"]
    # positions are 1..n and resuming skips exactly that many entries
    positions = [n for _, n, _ in read_folder(root)]
    assert positions == list(range(1, len(got) + 1))
    rest = [it for _, _, it in read_folder(root, 0, 3)]
    assert rest == got[3:]


def test_non_utf8_name_rejected(tmp_path):
    root = tmp_path / "ds"
    (root / "p").mkdir(parents=True)
    (root / "p" / "ok.jpg").write_bytes(img("JPEG"))
    try:
        with open(os.path.join(os.fsencode(root / "p"), b"bad\xff.jpg"), "wb") as f:
            f.write(img("JPEG"))
    except OSError:  # file system refuses non-UTF-8 names
        return
    got = [it for _, _, it in read_folder(root)]
    assert [type(g) for g in got] == [Rejected, FaceRecord]
    assert "not valid UTF-8" in got[0].reason


def test_locator_records_size_and_mtime(tmp_path):
    root = tmp_path / "ds"
    make_tree(root)
    faces = {
        it.locator.relpath: it.locator
        for _, _, it in read_folder(root)
        if isinstance(it, FaceRecord)
    }
    for rel, loc in faces.items():
        st = os.stat(root / rel)
        assert (loc.length, loc.offset) == (st.st_size, st.st_mtime_ns)
