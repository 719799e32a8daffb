"""The pixel budget (issue 13 item 7): an image declaring 12000x12000 pixels in a small file
is marked "too large" by the scan without being decoded, and memory stays bounded."""

import io
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
from PIL import Image

from annotator.core.dedup.hashing import hash_images
from annotator.core.infra.decode import MAX_PIXELS, ImageTooLarge, open_image

ROOT = Path(__file__).resolve().parents[2]


def big_png(side: int = 12000) -> bytes:
    """A flat RGB PNG of side x side pixels, written row by row (a few hundred KB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    z = zlib.compressobj(9)
    row = b"\0" + b"\x80" * (3 * side)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def png12k() -> bytes:
    return big_png()


def test_open_image_refuses_before_decoding(png12k):
    assert len(png12k) < 1 << 20
    with pytest.raises(ImageTooLarge, match="too large: 12000x12000"):
        open_image(png12k)
    small = io.BytesIO()
    Image.new("RGB", (64, 64)).save(small, "PNG")
    assert open_image(small.getvalue()).size == (64, 64)


def test_a_big_jpeg_is_drafted_down_when_a_small_picture_will_do():
    b = io.BytesIO()
    Image.new("RGB", (4200, 4200), (9, 9, 9)).save(b, "JPEG", quality=50)
    assert 4200 * 4200 > MAX_PIXELS
    with pytest.raises(ImageTooLarge):
        open_image(b.getvalue())  # full size needed (scan): refused
    im = open_image(b.getvalue(), fit=(128, 128))  # thumbnail: decoded at 1/8 scale
    assert im.size == (525, 525)


def test_scan_hashing_marks_it_too_large(png12k):
    (r,) = hash_images([7], [png12k])
    assert r.corrupt is not None and r.corrupt.startswith("too large")
    assert r.phash is None and len(r.sha256) == 32


def test_peak_memory_stays_bounded(tmp_path, png12k):
    f = tmp_path / "big.png"
    f.write_bytes(png12k)
    code = textwrap.dedent(
        f"""
        import resource, sys
        from annotator.core.dedup.hashing import hash_images
        data = open({str(f)!r}, "rb").read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        (r,) = hash_images([1], [data])
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(r.corrupt[:9].replace(" ", "_"), (after - before) // 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    ).stdout.split()
    assert out[0] == "too_large"
    assert int(out[1]) < 64, f"peak grew by {out[1]} MB"  # a full decode would be > 400 MB


def test_thumbnail_of_a_too_large_image_is_refused(png12k):
    pytest.importorskip("PySide6")
    from annotator.gui.thumbnails import decode_thumbnail

    with pytest.raises(ImageTooLarge):
        decode_thumbnail(png12k, 128)


def test_scan_of_a_folder_source_marks_the_big_png_too_large(tmp_path, png12k):
    from annotator.core.importer import import_source
    from annotator.core.scan import scan
    from annotator.store.db import open_project

    (tmp_path / "root" / "a").mkdir(parents=True)
    (tmp_path / "root" / "a" / "big.png").write_bytes(png12k)
    small = io.BytesIO()
    Image.new("RGB", (32, 32), (5, 6, 7)).save(small, "PNG")
    (tmp_path / "root" / "a" / "small.png").write_bytes(small.getvalue())
    with open_project(tmp_path / "p.db", create=True) as p:
        import_source(p, "folder", tmp_path / "root")
        res = scan(p, workers=1)
        assert res.hashed == 2 and res.corrupt == 1
        rows = dict(
            p.conn.execute(
                "SELECT f.relpath, h.corrupt FROM faces f JOIN face_hashes h ON h.face_id = f.id"
            )
        )
    assert rows["a/big.png"].startswith("too large: 12000x12000")
    assert rows["a/small.png"] is None
