"""Issue 20 findings 7 and 8: identity folders never collide with the export's own files or
with each other on a case-insensitive, normalising file system; `--force` refuses while any
file under the folder (at any depth) is not one the earlier export lists."""

from __future__ import annotations

import io
import unicodedata

import pytest
from PIL import Image

from annotator.core.export.names import Namer
from annotator.core.export.run import export_dataset
from annotator.core.importer import import_source
from annotator.core.review import ops
from annotator.model import AnnotatorError
from annotator.store.db import open_project

KEYS = ["manifest.csv", "MANIFEST.JSON", "README.md", "pairs.txt", "pairs.bin", "m.A", "m.a",
        unicodedata.normalize("NFC", "é"), unicodedata.normalize("NFD", "É")]  # fmt: skip


def _project(tmp_path):
    src = tmp_path / "src"
    for n, key in enumerate(KEYS):
        (src / key).mkdir(parents=True)
        for j in range(2):
            b = io.BytesIO()
            Image.new("RGB", (20, 20), (n * 25, j * 90, 40)).save(b, "JPEG")
            (src / key / f"{j}.jpg").write_bytes(b.getvalue())
    db = tmp_path / "p.db"
    with open_project(db, create=True) as p:
        import_source(p, "folder", src)
        ids = [r[0] for r in p.conn.execute("SELECT id FROM faces")]
        ops.label_faces(p, ids, "correct", "alice")
    return db


def test_identity_folders_never_collide(tmp_path):
    db = _project(tmp_path)
    out = tmp_path / "out"
    with open_project(db) as p:
        res = export_dataset(p, out, "folder", pairs=2)
    assert res.faces == 2 * len(KEYS)
    names = [x.name for x in out.iterdir()]
    folded = [
        unicodedata.normalize("NFC", unicodedata.normalize("NFD", n).casefold()) for n in names
    ]
    assert len(set(folded)) == len(folded)
    for own in ("manifest.csv", "manifest.json", "README.md", "pairs.txt", "pairs.bin"):
        assert (out / own).is_file()
    assert sum(1 for x in out.iterdir() if x.is_dir()) == len(KEYS)


def test_namer_reserves_and_folds():
    n = Namer(reserved=("README.md",))
    assert n.take("readme.MD") == "readme.MD~2"
    assert n.take("É") == "É"
    assert n.take(unicodedata.normalize("NFD", "é")) != unicodedata.normalize("NFD", "é")


def test_force_refuses_a_user_file_inside_an_identity_folder(tmp_path):
    db = _project(tmp_path)
    out = tmp_path / "out"
    with open_project(db) as p:
        export_dataset(p, out, "folder")
        export_dataset(p, out, "folder", force=True)  # its own files only: replaced
        mine = out / "m.A" / "notes.txt"
        mine.write_text("mine")
        with pytest.raises(AnnotatorError, match="m.A/notes.txt"):
            export_dataset(p, out, "folder", force=True)
    assert mine.read_text() == "mine"
