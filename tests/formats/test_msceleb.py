"""MS-Celeb-1M TSV readers: good rows, every bad-row kind, devset, names in several scripts."""

import base64
import io
import struct

from PIL import Image

from annotator.formats import b64_error, fingerprint, image_kind, msceleb
from annotator.model import FaceRecord, NameRecord, Rejected


def jpeg(color=(200, 30, 30), size=(24, 24)) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", size, color).save(b, "JPEG")
    return b.getvalue()


def b64(b: bytes) -> bytes:
    return base64.b64encode(b)


RECT = b64(struct.pack("<4f", 0.1, 0.2, 0.8, 0.9))


def items(rows):
    return [it for _, _, it in rows]


def test_good_rows_and_locators(tmp_path):
    imgs = [jpeg((i * 50, 10, 10)) for i in range(3)]
    p = tmp_path / "faces.tsv"
    with open(p, "wb") as f:
        for i, im in enumerate(imgs):
            msceleb.write_row(
                f,
                "m.0abc",
                i + 1,
                f"http://i/{i}",
                "http://page",
                f"F{i}",
                (0.1, 0.2, 0.8, 0.9),
                im,
            )
    got = items(msceleb.read_aligned(p))
    assert [type(g) for g in got] == [FaceRecord] * 3
    data = p.read_bytes()
    for i, rec in enumerate(got):
        assert rec.identity_key == "m.0abc"
        assert rec.record == i + 1
        assert rec.rank == i + 1
        assert (
            rec.image_url == f"http://i/{i}"
            and rec.page_url == "http://page"
            and rec.face_ref == f"F{i}"
        )
        assert rec.rect == (
            struct.unpack("<f", struct.pack("<f", 0.1))[0],
            struct.unpack("<f", struct.pack("<f", 0.2))[0],
            struct.unpack("<f", struct.pack("<f", 0.8))[0],
            struct.unpack("<f", struct.pack("<f", 0.9))[0],
        )
        loc = rec.locator
        assert base64.b64decode(data[loc.offset : loc.offset + loc.length]) == imgs[i]


def test_every_bad_row_kind_is_rejected_and_rest_imports(tmp_path):
    good = b64(jpeg())
    lines = [
        b"\t".join([b"m.01", b"1", b"u", b"p", b"F1", RECT, good]),  # 1 good
        b"\t".join([b"m.01", b"1", b"u", b"p", RECT, good]),  # 2 six columns
        b"\t".join([b"", b"1", b"u", b"p", b"F", RECT, good]),  # 3 empty MID
        b"\t".join([b"m.01", b"1", b"u", b"p", b"F", RECT, good[:-1] + b"!"]),  # 4 bad char
        b"\t".join([b"m.01", b"1", b"u", b"p", b"F", RECT, good[:-1]]),  # 5 bad length
        b"\t".join(
            [b"m.01", b"1", b"u", b"p", b"F", RECT, b64(b"GIF-not-really-an-image-at-all")]
        ),  # 6 not image
        b"\t".join(
            [b"m.01", b"1", b"u", b"p", b"F", b64(struct.pack("<4f", 0.9, 0.1, 0.1, 0.9)), good]
        ),  # 7 x1<x0
        b"\t".join([b"m.01", b"1", b"u", b"p", b"F", b"AAAA", good]),  # 8 rect of 3 bytes
        b"\t".join(
            [b"m.01", b"1", b"u", b"p", b"F", b64(struct.pack("<4f", float("nan"), 0, 1, 1)), good]
        ),  # 9 NaN
        b"",  # 10 blank line: skipped silently
        b"\t".join([b"m.01", b"x", b"u", b"p", b"F", RECT, good]),  # 11 bad rank
        b"\t".join([b"m.01", b"1", b"u", b"p", b"F", RECT, b""]),  # 12 empty FaceData
        b"\t".join(
            [b"m.01", b"1", b"u", b"p", b"F", RECT, good[:8] + b"=" + good[9:]]
        ),  # 13 padding inside
        b"\t".join([b"m.02", b"2", b"u", b"p", b"F2", b"", good]) + b"\r",  # 14 good, CRLF, no rect
    ]
    p = tmp_path / "faces.tsv"
    p.write_bytes(b"\n".join(lines))  # no final newline
    got = items(msceleb.read_aligned(p))
    rejected = {r.record: r.reason for r in got if isinstance(r, Rejected)}
    faces = [r for r in got if isinstance(r, FaceRecord)]
    assert [f.record for f in faces] == [1, 14]
    assert faces[1].rect is None and faces[1].rank == 2
    assert sorted(rejected) == [2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13]
    assert "found 6" in rejected[2]
    assert rejected[3] == "empty MID"
    assert "outside the alphabet" in rejected[4]
    assert "multiple of 4" in rejected[5]
    assert "not an image" in rejected[6]
    assert "bad face rectangle" in rejected[7]
    assert "bad face rectangle" in rejected[8] and "expected 16" in rejected[8]
    assert "not finite" in rejected[9]
    assert "ImageSearchRank" in rejected[11]
    assert "empty" in rejected[12]
    assert "padding" in rejected[13]
    origins = [r.origin for r in got if isinstance(r, Rejected)]
    assert origins[0] == "faces.tsv:2"
    # locator of the CRLF row excludes the CR
    data = p.read_bytes()
    loc = faces[1].locator
    assert data[loc.offset : loc.offset + loc.length] == good


def test_resume_from_position(tmp_path):
    p = tmp_path / "f.tsv"
    with open(p, "wb") as f:
        for i in range(5):
            msceleb.write_row(f, f"m.{i}", i, None, None, None, None, jpeg((i, i, i)))
    rows = list(msceleb.read_aligned(p))
    pos, line, _ = rows[1]
    rest = items(msceleb.read_aligned(p, pos, line))
    assert [r.record for r in rest] == [3, 4, 5]
    assert [r.locator for r in rest] == [r.locator for r in items(rows)[2:]]


def test_small_blocks_give_same_result(tmp_path, monkeypatch):
    p = tmp_path / "f.tsv"
    with open(p, "wb") as f:
        for i in range(20):
            msceleb.write_row(f, f"m.{i % 3}", i, "u", "p", "F", (0, 0, 1, 1), jpeg((i * 10, 0, 0)))
    big = items(msceleb.read_aligned(p))
    monkeypatch.setattr(msceleb, "BLOCK", 100)
    small = items(msceleb.read_aligned(p))
    assert [(r.record, r.locator) for r in small] == [(r.record, r.locator) for r in big]
    assert len(big) == 20


def test_devset_rows(tmp_path):
    p = tmp_path / "dev.tsv"
    im = jpeg()
    with open(p, "wb") as f:
        msceleb.write_devset_row(
            f, "m.0x", "Ада Лавлейс", "ru", "http://i", "F1", (0.1, 0.1, 0.5, 0.5), im
        )
        msceleb.write_devset_row(f, "m.0y", "Plain Name", None, "http://j", "F2", None, im)
        f.write(b"m.0z\tname\thttp://k\tF3\n")  # 4 columns
    got = items(msceleb.read_devset(p))
    assert got[0].names == {"ru": "Ада Лавлейс"} and got[0].face_ref == "F1"
    assert got[1].names == {"und": "Plain Name"} and got[1].rect is None
    assert isinstance(got[2], Rejected) and "expected 6" in got[2].reason


def test_names_list_unicode(tmp_path):
    p = tmp_path / "names.tsv"
    p.write_bytes(
        '\ufeffm.01\t"Zoë Ñúñez"@es\n'
        'm.01\t"张伟"@zh\n'
        'm.01\t"Иван Петров"@ru\n'
        'm.02\t"محمد"@ar\n'
        'm.02\t"साक्षी"@hi\n'
        'm.03\t"He said "hi""@en\n'
        "\tbroken\n"
        "only-one-column\n".encode()
        + b'm.04\t"\xff\xfe"@en\n'
    )
    got = items(msceleb.read_names(p))
    names = [(n.identity_key, n.lang, n.name) for n in got if isinstance(n, NameRecord)]
    assert names == [
        ("m.01", "es", "Zoë Ñúñez"),
        ("m.01", "zh", "张伟"),
        ("m.01", "ru", "Иван Петров"),
        ("m.02", "ar", "محمد"),
        ("m.02", "hi", "साक्षी"),
        ("m.03", "en", 'He said "hi"'),
    ]
    bad = [(r.record, r.reason) for r in got if isinstance(r, Rejected)]
    assert [b[0] for b in bad] == [7, 8, 9]
    assert bad[0][1] == "empty MID"
    assert "invalid UTF-8" in bad[2][1]


def test_helpers_pinned():
    assert image_kind(b"\xff\xd8\xff\xe0" + b"\0" * 12) == "jpeg"
    assert image_kind(b"\x89PNG\r\n\x1a\n" + b"\0" * 8) == "png"
    assert image_kind(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert image_kind(b"hello world!....") is None
    assert b64_error(b"QUJD") is None
    assert b64_error(b"QUI=") is None and b64_error(b"QQ==") is None
    assert b64_error(b"Q===") is not None and b64_error(b"Q=QQ") is not None
    assert msceleb.parse_name('"Name"@en') == ("Name", "en")
    assert msceleb.parse_name("bare") == ("bare", "und")


def test_fingerprint_pinned(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"hello")
    # sha256(b"5\0hello")
    assert fingerprint(p) == "3d4c083fcbeca5fb370ebcaeec1999e3ff3a920e12fdc584bd55bda6718e560c"
    big = tmp_path / "big.bin"
    big.write_bytes(b"a" * (3 << 20))
    fp1 = fingerprint(big)
    with open(
        big, "r+b"
    ) as f:  # a change in the middle of a same-size file is not seen (documented)
        f.seek(3 << 19)
        f.write(b"b")
    assert fingerprint(big) == fp1
    with open(big, "r+b") as f:  # a change in the tail is
        f.seek((3 << 20) - 1)
        f.write(b"b")
    assert fingerprint(big) != fp1


def test_looks_binary_tells_binary_files_from_text_with_a_stray_nul():
    from annotator.formats import looks_binary

    text = b"".join(b'm.%d\t"Name %d"@en\n' % (i, i) for i in range(50))
    assert not looks_binary(text)
    assert not looks_binary(text.replace(b"Name 7", b"Na\x00e 7").replace(b"Name 9", b"N\xffme"))
    assert looks_binary(b"SQLite format 3\x00" + bytes(100))
    assert looks_binary(text.decode().encode("utf-16-le"))
    assert looks_binary(jpeg())
    rnd = bytes((i * 7919 + 13) % 256 for i in range(20000))
    assert looks_binary(rnd)


def test_text_fields_that_are_not_utf8_are_bad_rows(tmp_path):
    """Issue 20 #13: a devset name, FaceID or URL with a byte that is not UTF-8 used to be
    stored with U+FFFD in it (two different broken names one, a FaceID no clean list
    matches); such a row is now a bad row named by file and line, as a bad MID is."""
    im = jpeg()
    dev = io.BytesIO()
    msceleb.write_devset_row(dev, "m.a", "Zoé", "fr", "http://i", "F1", None, im)
    good = dev.getvalue()
    p = tmp_path / "dev.tsv"
    p.write_bytes(
        good
        + good.replace("Zoé".encode(), b"Zo\xe9")  # Latin-1
        + good.replace(b"F1", b"F\xff1")
        + good.replace(b"http://i", b"http://\xc3")
    )
    got = items(msceleb.read_devset(p))
    assert isinstance(got[0], FaceRecord) and got[0].names == {"fr": "Zoé"}
    assert [(g.origin, g.reason) for g in got[1:]] == [
        (f"dev.tsv:{n}", f"column {c} is not valid UTF-8") for n, c in ((2, 2), (3, 4), (4, 3))
    ]
    aligned = io.BytesIO()
    msceleb.write_row(aligned, "m.a", 1, "http://i", "http://p", "F1", None, im)
    row = aligned.getvalue()
    p = tmp_path / "a.tsv"
    p.write_bytes(row + row.replace(b"http://p", b"http://p\xfe") + row.replace(b"F1", b"\xc0"))
    got = items(msceleb.read_aligned(p))
    assert isinstance(got[0], FaceRecord)
    assert [(g.origin, g.reason) for g in got[1:]] == [
        ("a.tsv:2", "column 4 is not valid UTF-8"),
        ("a.tsv:3", "column 5 is not valid UTF-8"),
    ]
