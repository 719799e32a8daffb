"""Issue 20 finding 16 (keys and names): text that displays as something else, absurd names
and language tags, NUL in text columns and a CR inside a MID are bad rows, reported and
skipped; the good rows around them import."""

from __future__ import annotations

import base64
import io

from PIL import Image

from annotator.core.importer import import_source
from annotator.store.db import open_project


def _b64() -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (12, 12), (9, 90, 9)).save(b, "JPEG")
    return base64.b64encode(b.getvalue())


def _row(mid: bytes, face_ref: bytes = b"F", url: bytes = b"u") -> bytes:
    return b"\t".join([mid, b"1", url, b"p", face_ref, base64.b64encode(bytes(16)), _b64()]) + b"\n"


def test_hostile_keys_and_text_columns_are_bad_rows(tmp_path):
    src = tmp_path / "f.tsv"
    src.write_bytes(
        _row(b"m.good")
        + _row("m.\u202egood".encode())
        + _row("m.\ufeffx".encode())
        + _row(b"m.a\rb")
        + _row(b"m.n", face_ref=b"F\x00x")
        + _row(b"m.u", url=b"http://x\x00y")
        + _row(b"m.good2")
    )
    with open_project(tmp_path / "p.db", create=True) as p:
        res = import_source(p, "msceleb", src)
        assert res.imported == 2
        reasons = sorted(r.reason for r in res.rejected)
        assert len(reasons) == 5
        assert sum("direction-override" in r for r in reasons) == 2
        assert sum("carriage return" in r for r in reasons) == 1
        assert sum("NUL" in r for r in reasons) == 2


def test_hostile_names_are_bad_rows(tmp_path):
    names = tmp_path / "names.tsv"
    long_name = "a" * 100_000
    names.write_text(
        'm.1\t"Ann"@en\n'
        f'm.2\t"{long_name}"@en\n'
        f'm.3\t"Bob"@{"x" * 5000}\n'
        'm.4\t"Bo\u202eb"@en\n'
        'm.5\t"Eve"@en-GB\n',
        encoding="utf-8",
    )
    with open_project(tmp_path / "p.db", create=True) as p:
        res = import_source(p, "names", names)
        assert res.imported == 2 and len(res.rejected) == 3
        langs = dict(p.conn.execute("SELECT name, lang FROM identity_names"))
        assert langs == {"Ann": "en", "Eve": "en-GB"}
