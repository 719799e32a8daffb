"""Issue 20 finding 6: a TSV, devset or names file without a final newline imports once and
every rerun says "already complete" (it failed with "resume position ... out of range")."""

from __future__ import annotations

import io
import sqlite3

import pytest
from PIL import Image

from annotator.core.importer import import_source
from annotator.formats import msceleb
from annotator.store.db import open_project


def _jpeg() -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (12, 12), (9, 90, 9)).save(b, "JPEG")
    return b.getvalue()


def _write(fmt: str, path) -> None:
    if fmt == "names":
        path.write_bytes(b'm.0\t"A"@en\nm.1\t"B"@en')
        return
    with open(path, "wb") as f:
        for i in range(3):
            if fmt == "msceleb":
                msceleb.write_row(f, f"m.{i}", i, None, None, None, None, _jpeg())
            else:
                msceleb.write_devset_row(f, f"m.{i}", "N", "en", None, f"F{i}", None, _jpeg())
    path.write_bytes(path.read_bytes().rstrip(b"\n"))


@pytest.mark.parametrize("fmt", ["msceleb", "devset", "names"])
def test_a_source_without_a_final_newline_reruns(tmp_path, fmt):
    src = tmp_path / "src.tsv"
    _write(fmt, src)
    db = tmp_path / "p.db"
    with open_project(db, create=True) as p:
        first = import_source(p, fmt, src)
        assert first.complete and not first.rejected
        again = import_source(p, fmt, src)
        assert again.complete and again.imported == 0
    # a project that recorded the position one byte past the end (before the fix) reruns too
    c = sqlite3.connect(db)
    c.execute("UPDATE sources SET resume_pos = size + 1")
    c.commit()
    c.close()
    with open_project(db) as p:
        assert import_source(p, fmt, src).complete
        pos, size = p.conn.execute("SELECT resume_pos, size FROM sources").fetchone()
        assert pos <= size + 1
