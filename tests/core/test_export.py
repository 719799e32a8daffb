"""Clean test-set export: selection filters, every format read back, pairs, determinism,
path-escape attempts, atomicity."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import numbers
import os
import pickle
import pickletools
import signal
import struct
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from annotator.core.export.names import Namer, safe_component
from annotator.core.export.pairs import make_pairs
from annotator.core.export.run import export_dataset
from annotator.core.export.selection import ExportCancelled, ImageSizes, image_size, select_faces
from annotator.core.importer import import_source
from annotator.core.infra.access import FaceBytes
from annotator.core.review import ops, qa
from annotator.formats import msceleb, recordio
from annotator.formats.recordio import unescape_key
from annotator.model import AnnotatorError
from annotator.store.db import open_project

# identity key -> faces; keys are attack strings set after import (SQL in a fixture is fine)
KEYS = ["m.a", "M.A", "../../escape", "..", "CON", ".hidden", "a\\b/c\x07d", "x" * 300]
SIZES = [4, 3, 3, 2, 2, 2, 2, 2]


def jpeg(i: int) -> bytes:
    im = Image.new("RGB", (112, 112), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    d = ImageDraw.Draw(im)
    d.ellipse((10 + i % 20, 12, 90, 100), fill=((i * 13) % 256, 200, 100))
    b = io.BytesIO()
    im.save(b, "JPEG", quality=80)
    return b.getvalue()


def build(tmp: Path):
    tmp.mkdir(parents=True, exist_ok=True)
    tsv = tmp / "src.tsv"
    n = 0
    with open(tsv, "wb") as fh:
        for k, size in enumerate(SIZES):
            for j in range(size):
                n += 1
                msceleb.write_row(
                    fh,
                    f"m.k{k}",
                    j + 1,
                    f"http://x/{n}.jpg",
                    f"http://p/{n}",
                    str(j),
                    (0.1, 0.1, 0.9, 0.9),
                    jpeg(n),
                )
    p = open_project(tmp / "p.db", create=True)
    import_source(p, "msceleb", tsv)
    with p.tx() as c:
        for k, key in enumerate(KEYS):
            c.execute("UPDATE identities SET key = ? WHERE key = ?", (key, f"m.k{k}"))
    ids = dict(p.conn.execute("SELECT key, id FROM identities"))
    for key in KEYS:
        ops.review_identity(p, ids[key], "alice")
    return p, ids


def faces_of(p, ident):
    return [
        r[0]
        for r in p.conn.execute("SELECT id FROM faces WHERE identity_id = ? ORDER BY id", (ident,))
    ]


@pytest.fixture
def proj(tmp_path):
    p, ids = build(tmp_path / "proj")
    yield p, ids
    p.close()


@pytest.fixture
def noisy(proj):
    """m.a: one wrong_identity (bob), one corrupt, a duplicate pair whose scan keeper is face 4."""
    p, ids = proj
    fa = faces_of(p, ids["m.a"])  # 4 faces
    ops.label_faces(p, [fa[0]], "wrong_identity", "bob")
    with p.tx() as c:
        c.execute(
            "INSERT INTO face_hashes(face_id, corrupt, scanned_at) VALUES (?, 'truncated', 'x')",
            (fa[1],),
        )
        c.execute(
            "INSERT INTO dup_groups(face_id, group_id, is_keeper) VALUES (?, 7, 0), (?, 7, 1)",
            (fa[2], fa[3]),
        )
    return p, ids, fa


def test_safe_component_blocks_escapes():
    cases = {
        "../../escape": "____escape",
        "..": "_",
        ".hidden": "hidden",
        "CON": "_CON",
        "con.txt": "_con.txt",
        "lpt9": "_lpt9",
        "a\\b/c\x07d": "a_b_c_d",
        "": "_",
        "...": "_",
        "tab\there": "tab_here",
        "m.0abc": "m.0abc",
        "Zoë": "Zoë",
    }
    for raw, want in cases.items():
        assert safe_component(raw) == want, raw
    long = safe_component("é" * 300)
    assert len(long.encode()) <= 96 and long == "é" * 48
    n = Namer()
    assert [n.take("a"), n.take("A"), n.take("a"), n.take("a", ".jpg")] == [
        "a",
        "A~2",
        "a~3",
        "a.jpg",
    ]


def test_selection_filters_and_counts(noisy):
    p, ids, fa = noisy
    sel = select_faces(p)
    got = {f.face_id for f in sel.faces}
    assert fa[0] not in got and fa[1] not in got and fa[2] not in got and fa[3] in got
    assert len(sel.faces) == sum(SIZES) - 3
    assert sel.excluded == {
        "corrupt": 1,
        "duplicate (not the keeper of its group)": 1,
        "label wrong_identity": 1,
    }
    assert sel.reviewers == {"alice": sum(SIZES) - 3}
    # order: identity key, then face id
    keys = [f.identity_key for f in sel.faces]
    assert keys == sorted(keys)
    # the hashes are the original bytes'
    with FaceBytes(p) as fb:
        assert all(hashlib.sha256(fb.read(f.face_id)).hexdigest() == f.sha256 for f in sel.faces)


def test_reviewer_chose_another_keeper(noisy):
    p, ids, fa = noisy
    ops.choose_keeper(p, [fa[2], fa[3]], fa[2], "alice")  # fa[3] (scan keeper) -> duplicate
    got = {f.face_id for f in select_faces(p).faces}
    assert fa[2] in got and fa[3] not in got


def test_min_faces_leaves_out_small_identities(noisy):
    p, ids, _fa = noisy
    sel = select_faces(p, min_faces=3)
    per = {k: len(v) for k, v in sel.identities.items()}
    assert per == {"../../escape": 3, "M.A": 3}  # m.a is down to 1 face
    assert sel.excluded["identity with fewer than 3 faces"] == 1 + 2 * 5
    assert sel.excluded_identities == {"fewer than 3 faces": 6}


def test_require_qa_with_real_qa(proj, tmp_path):
    """bob QA-checks alice's labels: m.a agrees, M.A has a disagreement (then adjudicated),
    CON has a verdict still pending, ..escape was labeled by bob himself (never sampled)."""
    p, ids = proj
    ops.label_faces(p, faces_of(p, ids["../../escape"]), "unsure", "bob")
    ops.label_faces(p, faces_of(p, ids["../../escape"]), "correct", "bob")  # bob's own label
    res = qa.start_pass(p, "bob", fraction=1.0, seed=5)
    assert res.eligible == sum(SIZES) - 3
    items = qa.next_items(p, res.pass_id)
    for it in items:
        if it.identity_key == "M.A" and it.face_id == faces_of(p, ids["M.A"])[0]:
            qa.record_verdict(p, res.pass_id, it.face_id, "wrong_identity", "bob")
        elif it.identity_key == "CON" and it.face_id == faces_of(p, ids["CON"])[0]:
            continue  # pending
        else:
            qa.record_verdict(p, res.pass_id, it.face_id, "correct", "bob")
    states = qa.identity_qa_states(p)
    assert states[ids["m.a"]] == "passed" and states[ids["M.A"]] == "disagreement"
    assert states[ids["CON"]] == "pending" and ids["../../escape"] not in states

    out = tmp_path / "qa"
    export_dataset(p, out, "csv", require_qa=True)
    m = json.loads((out / "manifest.json").read_text())
    included = set(m["counts"]["per_identity"])
    assert included == set(KEYS) - {"M.A", "CON", "../../escape"}
    assert m["filters"]["require_qa"] is True
    assert m["excluded"]["faces"]["identity did not pass QA (unresolved disagreement)"] == 3
    assert m["excluded"]["faces"]["identity did not pass QA (verdicts pending)"] == 2
    assert m["excluded"]["faces"]["identity did not pass QA (never sampled)"] == 3
    assert m["excluded"]["identities"] == {
        "did not pass QA (never sampled)": 1,
        "did not pass QA (unresolved disagreement)": 1,
        "did not pass QA (verdicts pending)": 1,
    }
    assert m["qa"]["identities_passed"] == len(KEYS) - 3
    assert m["qa"]["identities_not_passed"] == 3
    assert m["qa"]["judged"] == m["qa"]["items"] - 1 and m["qa"]["agreed"] == m["qa"]["judged"] - 1
    readme = (out / "README.md").read_text()
    assert (
        "left out: 3 (never sampled: 1; unresolved disagreement: 1; verdicts pending: 1)" in readme
    )
    assert "## Withdrawal policy" in readme
    assert "People withdrawn from the project before this export: 0 (a count only;" in readme
    from annotator.core.review import keeper as keeper_rule

    assert keeper_rule.RULE in readme  # the one keeper rule, as the README and the G dialog

    # the adjudicator decides the face is correct after all: M.A passes
    qa.adjudicate(p, res.pass_id, faces_of(p, ids["M.A"])[0], "correct", "carol")
    sel = select_faces(p, require_qa=True)
    assert {f.identity_key for f in sel.faces} == set(KEYS) - {"CON", "../../escape"}
    # without --require-qa every identity is in
    assert {f.identity_key for f in select_faces(p).faces} == set(KEYS)


def read_manifest_csv(out: Path):
    with open(out / "manifest.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_folder_export_is_safe_and_complete(noisy, tmp_path):
    p, ids, _fa = noisy
    out = tmp_path / "out"
    res = export_dataset(p, out, "folder")
    assert (res.faces, res.identities) == (sum(SIZES) - 3, len(KEYS))
    dirs = sorted(d.name for d in out.iterdir() if d.is_dir())
    assert dirs == sorted(
        ["m.a~2", "M.A", "____escape", "_", "_CON", "hidden", "a_b_c_d", "x" * 88]
    )
    root = out.resolve()
    images = [q for q in out.rglob("*") if q.is_file() and q.parent != out]
    assert len(images) == res.faces
    for q in images:
        assert q.resolve().is_relative_to(root) and q.parent.parent == out
        assert q.suffix == ".jpg"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out", "proj"]  # nothing escaped
    assert sorted(x.name for x in out.iterdir() if x.is_file()) == [
        "README.md",
        "manifest.csv",
        "manifest.json",
    ]
    assert res.image_files == res.faces and res.to_json()["files"] == res.faces + 3
    rows = read_manifest_csv(out)
    assert len(rows) == res.faces
    manifest = json.loads((out / "manifest.json").read_text())
    with FaceBytes(p) as fb:
        originals = {hashlib.sha256(fb.read(f.face_id)).hexdigest() for f in select_faces(p).faces}
    for row in rows:
        data = (out / row["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert manifest["files"][row["file"]] == row["sha256"]
    assert {r["sha256"] for r in rows} == originals  # original bytes, not re-encoded
    # ms-celeb style names rank-FaceID
    assert (out / "m.a~2" / "4-3.jpg").exists()
    assert manifest["counts"]["per_identity"]["m.a"] == 1
    assert manifest["excluded"]["faces"]["corrupt"] == 1
    assert manifest["filters"] == {
        "format": "folder",
        "min_faces": 1,
        "pairs": 0,
        "require_qa": False,
        "seed": 0,
    }
    for name, sha in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == sha
    assert "README.md" in manifest["files"]
    readme = (out / "README.md").read_text()
    assert "| corrupt | 1 |" in readme and "privacy takedown): 0" in readme
    row = p.conn.execute(
        "SELECT format, faces, identities, manifest_sha256 FROM exports"
    ).fetchone()
    assert row == (
        "folder",
        res.faces,
        len(KEYS),
        hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest(),
    )


def test_msceleb_export_reimports(noisy, tmp_path):
    p, ids, _fa = noisy
    out = tmp_path / "ms"
    res = export_dataset(p, out, "msceleb")
    with FaceBytes(p) as fb:
        want = sorted(
            (f.identity_key, hashlib.sha256(fb.read(f.face_id)).hexdigest())
            for f in select_faces(p).faces
        )
    # keys with a TAB-free but odd content survive; re-import into a fresh project
    q = open_project(tmp_path / "q.db", create=True)
    r = import_source(q, "msceleb", out / "faces.tsv")
    assert r.imported == res.faces and not r.rejected
    got = []
    with FaceBytes(q) as fb:
        for fid, key, url, ref, rank in q.conn.execute(
            "SELECT f.id, i.key, f.image_url, f.face_ref, f.rank FROM faces f JOIN identities i ON i.id = f.identity_id"
        ):
            got.append((key, hashlib.sha256(fb.read(fid)).hexdigest()))
            assert url.startswith("http://x/") and rank >= 1 and ref.isdigit()
    q.close()
    assert sorted(got) == want


class MXIndexedRecordIOLike:
    """What ``mx.recordio.MXIndexedRecordIO(idx, rec, 'r')`` does, written from mxnet's
    recordio.py and dmlc-core's RecordIOReader::NextRecord — independent of our reader."""

    MAGIC = 0xCED7230A

    def __init__(self, idx_path: Path, rec_path: Path):
        self.idx: dict[int, int] = {}
        self.keys: list[int] = []
        with open(idx_path) as fin:  # mxnet: line.strip().split('\t'), key_type=int
            for line in iter(fin.readline, ""):
                parts = line.strip().split("\t")
                key = int(parts[0])
                self.idx[key] = int(parts[1])
                self.keys.append(key)
        self.f = open(rec_path, "rb")  # noqa: SIM115

    def read_idx(self, key: int) -> bytes:
        self.f.seek(self.idx[key])
        out = b""
        while True:
            magic, lrec = struct.unpack("<II", self.f.read(8))
            assert magic == self.MAGIC
            cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
            upper_align = ((length + 3) >> 2) << 2
            out += self.f.read(upper_align)[:length]
            if cflag in (0, 3):
                return out
            out += struct.pack("<I", self.MAGIC)

    def close(self) -> None:
        self.f.close()


def mx_unpack(s: bytes):
    """mx.recordio.unpack: IRHeader 'IfQQ' (native), float32 labels when flag > 0."""
    size = struct.calcsize("IfQQ")
    flag, label, id1, id2 = struct.unpack("IfQQ", s[:size])
    s = s[size:]
    if flag > 0:
        label = np.frombuffer(s, np.float32, flag)
        s = s[flag * 4 :]
    return (flag, label, id1, id2), s


def test_rec_export_reads_like_insightface_and_reimports(noisy, tmp_path):
    p, ids, _fa = noisy
    out = tmp_path / "rec"
    res = export_dataset(p, out, "rec")
    sel = select_faces(p)
    classes = {
        c: unescape_key(k)
        for c, k in (
            line.split("\t") for line in (out / "identities.tsv").read_text().splitlines()[1:]
        )
    }
    assert sorted(classes.values()) == sorted(KEYS)
    assert (out / "property").read_text().strip() == f"{len(KEYS)},112,112"
    want = sorted((f.identity_key, f.sha256) for f in sel.faces)

    rec = MXIndexedRecordIOLike(out / "train.idx", out / "train.rec")
    assert rec.idx[0] == 0  # the header is the file's first record
    # arcface_torch MXFaceDataset.__init__
    header, _ = mx_unpack(rec.read_idx(0))
    assert header[0] == 2  # flag: two labels
    first, end = int(header[1][0]), int(header[1][1])
    imgidx = np.array(range(1, first))
    assert len(imgidx) == res.faces and end - first == len(KEYS)
    got = []
    by_class: dict[int, list[int]] = {}
    for idx in imgidx:  # MXFaceDataset.__getitem__
        header, img = mx_unpack(rec.read_idx(int(idx)))
        label = header[1]
        if not isinstance(label, numbers.Number):
            label = label[0]
        with Image.open(io.BytesIO(img)) as im:  # mx.image.imdecode
            assert im.convert("RGB").size == (112, 112)
        got.append((classes[str(int(label))], hashlib.sha256(img).hexdigest()))
        by_class.setdefault(int(label), []).append(int(idx))
    assert sorted(got) == want
    # the older image_iter.py: id2range from the identity records
    seen: list[int] = []
    for identity in range(first, end):
        header, rest = mx_unpack(rec.read_idx(identity))
        a, b = int(header[1][0]), int(header[1][1])
        assert rest == b"" and list(range(a, b)) == by_class[identity - first]
        seen += range(a, b)
    assert seen == list(imgidx)
    assert sorted(rec.keys) == list(range(end))
    rec.close()

    # re-import with our own reader: same identities, same bytes
    q = open_project(tmp_path / "q.db", create=True)
    r = import_source(q, "rec", out / "train.rec")
    assert r.imported == res.faces and not r.rejected
    with FaceBytes(q) as fb:
        back = sorted(
            (classes[key], hashlib.sha256(fb.read(fid)).hexdigest())
            for fid, key in q.conn.execute(
                "SELECT f.id, i.key FROM faces f JOIN identities i ON i.id = f.identity_id"
            )
        )
    q.close()
    assert back == want
    # and our reader agrees with the header too
    with open(out / "train.rec", "rb") as fh:
        flag, label, *_ = recordio.unpack(recordio.read_record_at(fh, 0))
    assert (flag, label) == (2, (float(first), float(end)))


def test_csv_export_is_manifest_only(proj, tmp_path):
    p, _ids = proj
    out = tmp_path / "c"
    res = export_dataset(p, out, "csv")
    assert sorted(x.name for x in out.iterdir()) == ["README.md", "manifest.csv", "manifest.json"]
    rows = read_manifest_csv(out)
    assert list(rows[0]) == ["origin", "identity", "file", "sha256"]
    assert len(rows) == res.faces and rows[0]["origin"].startswith("src.tsv:")


def test_pairs_txt_and_bin(proj, tmp_path):
    p, _ids = proj
    out = tmp_path / "f"
    export_dataset(p, out, "folder", pairs=10, seed=3)
    with open(out / "pairs.bin", "rb") as f:  # insightface verification.load_bin
        bins, issame_list = pickle.load(f, encoding="bytes")
    assert isinstance(bins, list) and all(type(b) is bytes for b in bins)
    assert isinstance(issame_list, list) and all(type(x) is bool for x in issame_list)
    issame = issame_list
    assert len(bins) == 20 * 2 and len(issame) == 20
    for b in bins:  # mx.image.imdecode(_bin)
        with Image.open(io.BytesIO(b)) as im:
            assert im.convert("RGB").size == (112, 112)
    pickletools.dis((out / "pairs.bin").read_bytes(), out=io.StringIO())  # well-formed
    assert issame == [True, False] * 10  # 10 folds of 1 genuine + 1 impostor
    lines = (out / "pairs.txt").read_text().splitlines()
    assert lines[0] == "10\t1" and len(lines) == 21
    rows = read_manifest_csv(out)
    sha_to_ident = {r["sha256"]: r["identity"] for r in rows}
    per_dir: dict[str, list[str]] = {}
    for r in rows:
        per_dir.setdefault(r["file"].split("/")[0], []).append(r["sha256"])
    seen = set()
    for k, (line, same) in enumerate(zip(lines[1:], issame, strict=True)):
        a, b = hashlib.sha256(bins[2 * k]).hexdigest(), hashlib.sha256(bins[2 * k + 1]).hexdigest()
        assert (sha_to_ident[a] == sha_to_ident[b]) is same
        parts = line.split("\t")
        if same:
            name, n1, n2 = parts
            assert per_dir[name][int(n1) - 1] == a and per_dir[name][int(n2) - 1] == b and n1 != n2
        else:
            n1name, n1, n2name, n2 = parts
            assert per_dir[n1name][int(n1) - 1] == a and per_dir[n2name][int(n2) - 1] == b
        assert line not in seen
        seen.add(line)


def test_make_pairs_exhausts_small_sets_and_refuses_too_many():
    g, i = make_pairs([2, 1], 1, 0)
    assert g == [(0, 0, 0, 1)] and len(i) == 1 and i[0][0] == 0 and i[0][2] == 1
    g, i = make_pairs([3, 2], 4, 5)  # 3 + 1 genuine possible
    assert sorted(g) == [(0, 0, 0, 1), (0, 0, 0, 2), (0, 1, 0, 2), (1, 0, 1, 1)]
    assert len(set(i)) == 4
    with pytest.raises(AnnotatorError, match="genuine"):
        make_pairs([3, 2], 5, 0)
    assert make_pairs([4, 4, 4], 5, 9) == make_pairs([4, 4, 4], 5, 9)
    assert make_pairs([4, 4, 4], 5, 9) != make_pairs([4, 4, 4], 5, 10)


@pytest.mark.parametrize("fmt", ["folder", "msceleb", "rec", "csv"])
def test_determinism_byte_identical(noisy, tmp_path, fmt):
    p, _ids, _fa = noisy
    a, b = tmp_path / "a", tmp_path / "b"
    export_dataset(p, a, fmt, pairs=4, seed=11)
    export_dataset(p, b, fmt, pairs=4, seed=11)

    def tree(d: Path):
        return {
            q.relative_to(d).as_posix(): q.read_bytes() for q in sorted(d.rglob("*")) if q.is_file()
        }

    ta, tb = tree(a), tree(b)
    assert ta == tb and "pairs.bin" in ta
    c = tmp_path / "c"
    export_dataset(p, c, fmt, pairs=4, seed=12)
    assert tree(c)["pairs.txt"] != ta["pairs.txt"]


def test_refuses_non_empty_and_force_replaces_only_an_earlier_export(proj, tmp_path):
    p, _ids = proj
    out = tmp_path / "out"
    export_dataset(p, out, "csv", min_faces=3)
    with pytest.raises(AnnotatorError, match=r"not empty \(use --force"):
        export_dataset(p, out, "csv")
    export_dataset(p, out, "csv", force=True)  # an earlier export: replaced
    m = json.loads((out / "manifest.json").read_text())
    assert m["filters"]["min_faces"] == 1
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out", "proj"]  # no temp/old dirs left
    # a file the user added to an earlier export is never deleted
    (out / "notes.txt").write_text("mine")
    with pytest.raises(AnnotatorError, match="not part of the earlier export.*'notes.txt'"):
        export_dataset(p, out, "csv", force=True)
    assert (out / "notes.txt").read_text() == "mine"
    # a folder export: the identity folders are accounted for by the manifest
    f = tmp_path / "f"
    export_dataset(p, f, "folder", pairs=2)
    export_dataset(p, f, "folder", force=True)
    assert not (f / "pairs.txt").exists() and (f / "M.A").is_dir()
    # a folder that is not an export: refused, with or without --force
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "manifest.json").write_text('{\n  "files": {},\n  "tool": "other"\n}\n')
    for d in (mine, forged):
        for force in (False, True):
            with pytest.raises(AnnotatorError, match="not an earlier export") as e:
                export_dataset(p, d, "csv", force=force)
            assert "\n" not in str(e.value)
    assert (mine / "keep.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    export_dataset(p, empty, "csv")  # an empty folder is fine without --force
    (tmp_path / "file").write_text("x")
    with pytest.raises(AnnotatorError, match="not a folder"):
        export_dataset(p, tmp_path / "file", "csv", force=True)
    (tmp_path / "link").symlink_to(out)  # replacing would move the link, not the export
    with pytest.raises(AnnotatorError, match="symbolic link"):
        export_dataset(p, tmp_path / "link", "csv", force=True)
    assert (out / "notes.txt").exists()


def test_force_never_replaces_home_or_root(proj, tmp_path, monkeypatch):
    p, _ids = proj
    home = tmp_path / "home" / "me"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("secret")
    (home / "manifest.json").write_text("{}")
    monkeypatch.setenv("HOME", str(home))
    for out, why in (
        ("~", "is your home folder"),
        ("~/", "is your home folder"),
        (str(home / ".." / "me"), "is your home folder"),
        (str(tmp_path / "home"), "is a folder above your home folder"),
        (str(tmp_path), "is a folder above your home folder"),
        ("/", "is the root of the file system"),
    ):
        with pytest.raises(AnnotatorError, match=why):
            export_dataset(p, out, "csv", force=True)
    assert (home / ".ssh" / "id_ed25519").read_text() == "secret"
    # even an earlier export in the home folder itself is not replaced
    export_dataset(p, home / "set", "csv")
    for name in ("README.md", "manifest.csv", "manifest.json"):
        (home / name).unlink(missing_ok=True)
    (home / ".ssh" / "id_ed25519").unlink()
    (home / ".ssh").rmdir()
    for x in (home / "set").iterdir():
        x.rename(home / x.name)
    (home / "set").rmdir()
    with pytest.raises(AnnotatorError, match="your home folder"):
        export_dataset(p, "~", "csv", force=True)
    assert (home / "manifest.json").exists()


def test_force_never_replaces_a_folder_holding_the_project_or_a_source(proj, tmp_path):
    p, _ids = proj
    home = tmp_path / "proj"  # holds p.db and src.tsv
    before = sorted(x.name for x in home.iterdir())
    for out in (home, tmp_path):
        with pytest.raises(AnnotatorError, match="holds the project file"):
            export_dataset(p, out, "csv", force=True)
    assert sorted(x.name for x in home.iterdir()) == before
    # a source elsewhere: its folder is refused too, and so is a folder inside a folder source
    other = tmp_path / "data"
    (other / "m.z").mkdir(parents=True)
    (other / "m.z" / "1.jpg").write_bytes(jpeg(1))
    import_source(p, "folder", other)
    with pytest.raises(AnnotatorError, match="the source"):
        export_dataset(p, other, "csv", force=True)
    with pytest.raises(AnnotatorError, match="inside the source"):
        export_dataset(p, other / "m.z", "csv", force=True)
    assert (other / "m.z" / "1.jpg").read_bytes() == jpeg(1)


def test_cancel_leaves_nothing(proj, tmp_path):
    p, _ids = proj
    out = tmp_path / "out"
    with pytest.raises(ExportCancelled):
        export_dataset(p, out, "folder", cancelled=lambda: True)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["proj"]
    assert p.conn.execute("SELECT count(*) FROM exports").fetchone()[0] == 0


def test_failure_midway_keeps_old_export(proj, tmp_path, monkeypatch):
    p, _ids = proj
    out = tmp_path / "out"
    export_dataset(p, out, "csv")
    before = (out / "manifest.json").read_bytes()

    def boom(*a, **k):
        raise AnnotatorError("disk full")

    monkeypatch.setattr("annotator.core.export.pairs.write_pairs", boom)
    with pytest.raises(AnnotatorError, match="disk full"):
        export_dataset(p, out, "csv", pairs=2, force=True)
    assert (out / "manifest.json").read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out", "proj"]


def test_nothing_to_export_and_bad_args(tmp_path):
    p = open_project(tmp_path / "e.db", create=True)
    with pytest.raises(AnnotatorError, match="nothing to export"):
        export_dataset(p, tmp_path / "o", "folder")
    with pytest.raises(AnnotatorError, match="format"):
        export_dataset(p, tmp_path / "o", "zip")
    with pytest.raises(AnnotatorError, match="min-faces"):
        export_dataset(p, tmp_path / "o", "csv", min_faces=0)
    p.close()
    assert not (tmp_path / "o").exists()


def test_image_size_reads_the_header():
    cases = []
    for kw in ({}, {"progressive": True}, {"quality": 30, "optimize": True}):
        b = io.BytesIO()
        Image.new("RGB", (37, 21), (9, 9, 9)).save(b, "JPEG", **kw)
        cases.append((b.getvalue(), "jpeg"))
    b = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "x" * 300  # an APP1 segment before the frame header
    Image.new("L", (64, 48)).save(b, "JPEG", exif=exif.tobytes())
    cases.append((b.getvalue(), "jpeg"))
    j = cases[0][0]
    cases.append((j[:2] + b"\xff\xfe\x00\x06abcd" + j[2:], "jpeg"))  # COM segment
    b = io.BytesIO()
    Image.new("RGB", (30, 17)).save(b, "PNG")
    cases.append((b.getvalue(), "png"))
    want = [(21, 37)] * 3 + [(48, 64), (21, 37), (17, 30)]
    assert [image_size(data, kind) for data, kind in cases] == want
    assert [image_size(data) for data, _kind in cases] == want  # kind only narrows the search
    assert image_size(b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "png") is None
    assert image_size(j[:20], "jpeg") is None  # truncated before the frame header
    assert image_size(cases[-1][0], "jpeg") is None  # a PNG is not read as a JPEG


def test_image_sizes_answers_a_known_header_like_pillow():
    """Same encoder settings share the header: answered from the table, still right; sizes
    and qualities that differ are read by Pillow."""
    images = []
    for k in range(40):
        b = io.BytesIO()
        size = [(112, 112), (96, 112), (112, 96)][k % 3]
        im = Image.new("RGB", size, (k * 5, 90, 9))
        ImageDraw.Draw(im).ellipse((k % 7, 3, 60, 70), fill=(200, k * 3, 30))
        im.save(b, "JPEG", quality=[90, 75][k % 2], optimize=k % 5 == 0)
        images.append((b.getvalue(), "jpeg"))
    b = io.BytesIO()
    Image.new("RGB", (33, 44)).save(b, "PNG")
    images.append((b.getvalue(), "png"))
    images.append((images[0][0][:300], "jpeg"))  # cut inside the header
    sizes = ImageSizes()
    got = [sizes(data, kind) for data, kind in images * 2]
    want = [image_size(data, kind) for data, kind in images * 2]
    assert got == want and want[0] == (112, 112) and want[1] == (112, 96) and want[-1] is None
    assert 0 < len(sizes._known) <= 6 + 8  # 6 size/quality pairs + 8 own (optimised) tables


def test_memory_does_not_grow_with_the_export(tmp_path, monkeypatch):
    """Faces of ~190 kB: exporting 48 of them (9 MB) takes no more heap than exporting 8."""
    rng = np.random.default_rng(0)
    b = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)).save(b, "JPEG", quality=95)
    big = b.getvalue()
    assert len(big) > 150_000
    monkeypatch.setattr(
        "annotator.core.export.selection.READ_BYTES", 500_000
    )  # ~ one identity a read
    monkeypatch.setattr("annotator.core.export.pairs.PAIR_CHUNK", 4)

    def peaks(n: int) -> dict[str, int]:
        d = tmp_path / str(n)
        d.mkdir()
        with open(d / "big.tsv", "wb") as fh:
            for i in range(n):
                msceleb.write_row(fh, f"m.{i // 4}", i % 4 + 1, f"http://x/{i}", "", "0", None, big)
        p = open_project(d / "p.db", create=True)
        import_source(p, "msceleb", d / "big.tsv")
        for (ident,) in p.conn.execute("SELECT id FROM identities").fetchall():
            ops.review_identity(p, ident, "alice")
        out = {}
        for fmt in ("folder", "msceleb", "rec", "csv"):
            tracemalloc.start()
            res = export_dataset(p, d / fmt, fmt, pairs=3)
            out[fmt] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert res.faces == n
        p.close()
        return out

    small, large = peaks(8), peaks(48)
    for fmt in small:
        assert large[fmt] < small[fmt] + 500_000, (fmt, small[fmt], large[fmt])
        assert large[fmt] < 48 * len(big) / 3  # a third of the images


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    r = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(r.stdout)


KILLED_EXPORT = """
import os, signal, sys
from annotator.core.export import outdir
from annotator.core.export.run import export_dataset
from annotator.store.db import open_project

def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[3] == "write":  # killed while writing the temp folder
    progress = lambda done, total: done and die()
else:  # killed in the swap: the old export renamed aside, not yet deleted
    progress = lambda done, total: None
    real = outdir.shutil.rmtree
    outdir.shutil.rmtree = lambda p, *a, **k: die() if ".old-" in str(p) else real(p, *a, **k)
export_dataset(open_project(sys.argv[1]), sys.argv[2], "folder", force=True, progress=progress)
"""


def test_next_export_removes_leftovers_of_killed_exports(proj, tmp_path):
    """kill -9 while writing leaves .out.tmp-*, kill -9 in the swap leaves .out.old-*: the
    next export to the same folder removes both, and nothing that is not its own."""
    p, _ids = proj
    out = tmp_path / "out"
    export_dataset(p, out, "csv")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for phase, left in (("write", ".out.tmp"), ("swap", ".out.old")):
        r = subprocess.run(
            [sys.executable, "-c", KILLED_EXPORT, str(p.path), str(out), phase],
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert r.returncode == -signal.SIGKILL, r.stderr.decode()
        # (the swap run removed the temp folder the write run left)
        names = [x.name for x in tmp_path.iterdir() if x.name.startswith(".out.")]
        assert [n.split("-")[0] for n in names] == [left], names
    assert (out / "M.A").is_dir()  # the swap had happened: out is the folder export
    # look-alikes that are not leftovers of this export: kept
    dead = dead_pid()
    keep = [
        f".out.tmp-{os.getpid()}-00000000",  # a running export (this process)
        f".out.tmp-{dead}-nothex00",  # not our name pattern
        f".other.tmp-{dead}-00000000",  # another output folder's
        f".out.tmp-{dead}-11111111",  # holds something an export does not write first
        f".out.old-{dead}-22222222",  # not an earlier export (no manifest of ours)
    ]
    for name in keep:
        (tmp_path / name).mkdir()
    (tmp_path / keep[3] / "notes.txt").write_text("mine")
    (tmp_path / keep[4] / "notes.txt").write_text("mine")
    (tmp_path / f".out.old-{dead}-33333333").write_text("a file, not a folder")
    keep.append(f".out.old-{dead}-33333333")
    (tmp_path / f".out.tmp-{dead}-44444444").mkdir()  # killed right after mkdir: ours

    export_dataset(p, out, "csv", force=True)
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(["out", "proj", *keep])
    assert (tmp_path / keep[3] / "notes.txt").read_text() == "mine"


def test_rec_identities_tsv_escapes_keys(tmp_path):
    """Keys may hold newline, tab, CR and backslash (a folder import before issue 20's key
    check took them from folder names; the reader now refuses all but the backslash):
    identities.tsv keeps one class a line, and unescaping gives the keys back."""
    root = tmp_path / "src"
    keys = ["a\nb", "t\tab", "c\rr", "back\\slash\\n", "m.plain", "sep\u2028x"]
    for i, _key in enumerate(keys):
        (root / f"k{i}").mkdir(parents=True)
        (root / f"k{i}" / f"{i}.jpg").write_bytes(jpeg(i))
    p = open_project(tmp_path / "p.db", create=True)
    r = import_source(p, "folder", root)
    assert r.imported == len(keys) and not r.rejected
    with p.tx():  # the keys an older import stored
        for i, key in enumerate(keys):
            p.conn.execute("UPDATE identities SET key = ? WHERE key = ?", (key, f"k{i}"))
    for (ident,) in p.conn.execute("SELECT id FROM identities").fetchall():
        ops.review_identity(p, ident, "alice")
    out = tmp_path / "rec"
    export_dataset(p, out, "rec")
    p.close()
    raw = (out / "identities.tsv").read_bytes()
    assert raw.count(b"\n") == 1 + len(keys) and b"\r" not in raw
    lines = raw.decode().splitlines()  # also splits on U+2028: none may be left raw
    assert len(lines) == 1 + len(keys) and lines[0] == "class\tidentity"
    fields = [line.split("\t") for line in lines[1:]]
    assert all(len(f) == 2 for f in fields)
    assert sorted(unescape_key(k) for _c, k in fields) == sorted(keys)
    assert [c for c, _k in fields] == [str(i) for i in range(len(keys))]
    assert "a\\nb" in {k for _c, k in fields} and "back\\\\slash\\\\n" in {k for _c, k in fields}
    assert "newline `\\n`" in (out / "README.md").read_text()
