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


def test_fifo_named_like_an_image_is_rejected_without_opening_it(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "a.jpg").write_bytes(img("JPEG"))
    os.mkfifo(root / "a" / "b.jpg")  # opening it for reading would block forever
    got = [it for _, _, it in read_folder(root)]
    assert isinstance(got[0], FaceRecord)
    assert got[1] == Rejected("a/b.jpg", "not a regular file (a FIFO, socket or device)")


def test_symlinks_outside_the_root_are_skipped_unless_follow_links(tmp_path):
    outside = tmp_path / "outside"
    (outside / "who").mkdir(parents=True)
    (outside / "secret.jpg").write_bytes(img("JPEG"))
    (outside / "who" / "x.jpg").write_bytes(img("JPEG"))
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "in.jpg").write_bytes(img("JPEG"))
    os.symlink(root / "a" / "in.jpg", root / "a" / "link_in.jpg")  # stays inside: fine
    os.symlink(outside / "secret.jpg", root / "a" / "link_out.jpg")
    os.symlink(outside / "who", root / "b")
    got = {
        (it.locator.relpath if isinstance(it, FaceRecord) else it.origin): it
        for _, _, it in read_folder(root)
    }
    assert isinstance(got["a/in.jpg"], FaceRecord)
    assert isinstance(got["a/link_in.jpg"], FaceRecord)
    assert "outside the root" in got["a/link_out.jpg"].reason
    assert "outside the root" in got["b/"].reason
    followed = [it for _, _, it in read_folder(root, follow_links=True)]
    assert sum(isinstance(it, FaceRecord) for it in followed) == 4


def test_identity_folder_names_get_the_tsv_key_check(tmp_path):
    """Issue 20 #16: a folder name is an identity key like a TSV's MID: one that holds a
    direction override, a BOM, a line separator, a NUL-free control the key check refuses
    (CR, LF, TAB: a TSV export or names list would change the key), or is longer than a key
    may be, is one rejected entry (the folder, named) and none of its images imports."""
    root = tmp_path / "ds"
    bad = ["\u202eevil", "\ufeffbom", "a\nb", "a\rb", "a\tb", "l\u2028s"]
    for name in ["ok", "Zoë \u200d", "ctl\x01", *bad]:
        (root / name).mkdir(parents=True)
        (root / name / "1.jpg").write_bytes(img("JPEG"))
    got = [it for _, _, it in read_folder(root)]
    keys = sorted(g.identity_key for g in got if isinstance(g, FaceRecord))
    assert keys == sorted(["ok", "Zoë \u200d", "ctl\x01"])
    rejected = {g.origin: g.reason for g in got if isinstance(g, Rejected)}
    # named on one line: the hiding and line-breaking characters escaped
    assert sorted(rejected) == sorted(
        ["\\u202eevil/", "\\ufeffbom/", "a\\nb/", "a\\rb/", "a\\tb/", "l\\u2028s/"]
    )
    assert "direction-override" in rejected["\\u202eevil/"]
    assert "carriage return" in rejected["a\\rb/"] and "line feed" in rejected["a\\nb/"]
    assert "tab" in rejected["a\\tb/"]
    assert all(r.startswith("identity folder name: ") for r in rejected.values())
    positions = [n for _, n, _ in read_folder(root)]
    assert positions == list(range(1, len(got) + 1))


def test_identity_folder_name_longer_than_a_key(tmp_path, monkeypatch):
    """File systems cap a name at 255 bytes, below the key limit: the limit is lowered here to
    show the check is applied."""
    from annotator import formats

    monkeypatch.setattr(formats, "MAX_KEY_BYTES", 8)
    root = tmp_path / "ds"
    for name in ("short", "much-too-long"):
        (root / name).mkdir(parents=True)
        (root / name / "1.jpg").write_bytes(img("JPEG"))
    got = [it for _, _, it in read_folder(root)]
    assert [g.identity_key for g in got if isinstance(g, FaceRecord)] == ["short"]
    assert [(g.origin, g.reason) for g in got if isinstance(g, Rejected)] == [
        ("much-too-long/", "identity folder name: key longer than 8 bytes")
    ]
