"""Byte damage in every reader (issue 20 #13: "one of 100 damaged files gives an unexpected
UnicodeDecodeError"): invalid UTF-8, NUL, truncation (also inside a character), BOMs, CRs and
mixes of them, in the TSV, devset and names readers, RecordIO (.idx and .rec), folder trees
(damaged names and files), label files (CSV, TSV, clean list), QA verdict files, `takedown
--from`, `pack --identities-file` and `evaluate --predictions`. Each case runs through the CLI in-process and must end:

* in exit 0 with one JSON object, every bad row reported with its file and line (and every
  line accounted for), nothing stored with U+FFFD where the input had none, every stored key
  one the key check accepts; or
* in exit 1 with one ``error:`` line that is not "unexpected" and names the file (a file no
  row of which can be used, or a list a damaged line of which refuses it).

Seeded (DAMAGE_SEED), ~510 cases, all data drawn or written by the test.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
from pathlib import Path

from annotator.formats import msceleb, recordio, text_key_error
from tests.fuzz.test_fuzz_inputs import check_clean, integrity_ok, jpeg, run
from tests.fuzz.test_fuzz_inputs import tmp_path as tmp_path  # noqa: F401 - the RAM scratch

DAMAGE_SEED = 2020
CASES = int(os.environ.get("DAMAGE_CASES", "60"))  # per reader (more: DAMAGE_CASES=500)

BAD_UTF8 = [b"\xff", b"\xc3", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80"]
BOM = b"\xef\xbb\xbf"


def damage(rng: random.Random, data: bytes) -> bytes:
    """1-3 of: invalid UTF-8 bytes, a NUL, a truncation, a BOM, a CR (or every LF made CRLF
    or CR); half of them near a line's start."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(b) + 1)
        if rng.random() < 0.5:  # near a line start: the keys, names and URLs, not the base64
            starts = [0] + [j + 1 for j in range(len(b)) if b[j] == 10]
            i = min(len(b), rng.choice(starts) + rng.randrange(60))
        op = rng.randrange(6)
        if op == 0:
            b[i:i] = rng.choice(BAD_UTF8)
        elif op == 1:
            b[i:i] = b"\0"
        elif op == 2:
            del b[i:]
        elif op == 3:  # a BOM at the start or anywhere
            at = 0 if rng.random() < 0.5 else i
            b[at:at] = BOM
        elif op == 4:
            b[i:i] = b"\r"
        else:
            b = bytearray(bytes(b).replace(b"\n", rng.choice([b"\r\n", b"\r"])))
    return bytes(b)


def lines_of(data: bytes) -> int:
    return data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)


def text_lines_of(data: bytes) -> int:
    """Lines as label files and lists number them (a lone CR ends a line too)."""
    return len(data.splitlines())


def has_fffd(data: bytes) -> bool:
    return "\ufffd".encode() in data


def error_names(r, case: str, name: str) -> None:
    """Exit 1: the one error line names the file."""
    line = r.output.strip()
    assert name in line, (case, line)


def stored_text_ok(db: Path, fffd_in_input: bool) -> None:
    """Every stored key passes the key check; no U+FFFD in keys, names, URLs or FaceIDs unless
    the input held one (a decode with 'replace' would make two broken keys one)."""
    c = sqlite3.connect(db)
    try:
        keys = [k for (k,) in c.execute("SELECT key FROM identities")]
        names = [n for (n,) in c.execute("SELECT name FROM identity_names")]
        names += [
            t
            for row in c.execute("SELECT image_url, page_url, face_ref FROM faces")
            for t in row
            if t is not None
        ]
    finally:
        c.close()
    for k in keys:
        assert text_key_error(k) is None, (k, text_key_error(k))
    if not fffd_in_input:
        assert not any("\ufffd" in t for t in keys + names), [
            t for t in keys + names if "\ufffd" in t
        ]


def tsv_base(fmt: str) -> bytes:
    import io

    buf = io.BytesIO()
    for i in range(6):
        key = ["m.ä", "m.日本", "m.x"][i % 3]
        if fmt == "msceleb":
            msceleb.write_row(buf, key, i, f"http://x/é{i}", "p", f"F{i}", None, jpeg(i))
        else:
            msceleb.write_devset_row(buf, key, f"Zoë {i}", "fr", None, f"F{i}", None, jpeg(i))
    return buf.getvalue()


NAMES_BASE = "".join(
    f'm.{k}\t"{n}"@{lang}\n' for k, n, lang in [("ä", "Zoë", "fr"), ("日本", "山田", "ja"),
                                              ("x", "Ωmega", "el"), ("y", "Ann", "en")]
).encode()  # fmt: skip


def _fuzz_import(tmp_path: Path, fmt: str, base: bytes, seed: int) -> None:
    rng = random.Random(seed)
    db = tmp_path / "p.db"
    fffd = False
    for n in range(CASES):
        data = damage(rng, base)
        fffd |= has_fffd(data)
        src = tmp_path / f"{fmt}{n}.tsv"
        src.write_bytes(data)
        r = run("import", fmt, src, "-p", db, "--json")
        out = check_clean(r, f"{fmt} {n}")
        if out is None:
            error_names(r, f"{fmt} {n}", src.name)
            continue
        for rej in out["rejected"]:
            name, _, line = rej["origin"].rpartition(":")
            assert name == src.name and 1 <= int(line) <= lines_of(data), (fmt, n, rej)
        src.unlink()
    integrity_ok(db)
    stored_text_ok(db, fffd)


def test_damaged_msceleb_tsv(tmp_path):
    _fuzz_import(tmp_path, "msceleb", tsv_base("msceleb"), DAMAGE_SEED)


def test_damaged_devset_tsv(tmp_path):
    _fuzz_import(tmp_path, "devset", tsv_base("devset"), DAMAGE_SEED + 1)


def test_damaged_names(tmp_path):
    _fuzz_import(tmp_path, "names", NAMES_BASE, DAMAGE_SEED + 2)


def test_damaged_recordio(tmp_path):
    rng = random.Random(DAMAGE_SEED + 3)
    base = tmp_path / "base"
    base.mkdir()
    with recordio.RecordWriter(base / "train.rec") as w:
        for i in range(6):
            w.add(i % 2, jpeg(i))
    rec0, idx0 = (base / "train.rec").read_bytes(), (base / "train.idx").read_bytes()
    db = tmp_path / "p.db"
    for n in range(CASES):
        d = tmp_path / f"r{n}"
        d.mkdir()
        rec, idx = rec0, damage(rng, idx0)
        if rng.random() < 0.3:
            rec = damage(rng, rec0)
        (d / "train.rec").write_bytes(rec)
        (d / "train.idx").write_bytes(idx)
        r = run("import", "rec", d / "train.rec", "-p", db, "--json")
        out = check_clean(r, f"rec {n}")
        if out is None:
            assert "train." in r.output, (n, r.output)
            continue
        for rej in out["rejected"]:
            o = rej["origin"]
            if o.startswith("train.idx:"):
                assert 1 <= int(o.split(":")[1]) <= lines_of(idx), (n, rej)
            else:
                assert o.startswith("train.rec#") and o[10:].isdigit(), (n, rej)
    integrity_ok(db)
    stored_text_ok(db, False)


def test_damaged_folder_names_and_files(tmp_path):
    """Folder names with invalid UTF-8, BOMs, CRs; image files damaged."""
    rng = random.Random(DAMAGE_SEED + 4)
    db = tmp_path / "p.db"
    for n in range(CASES // 2):
        root = tmp_path / f"t{n}"
        root.mkdir()
        for k in range(3):
            name = damage(rng, f"pérson{k}".encode()) if rng.random() < 0.6 else f"p{k}".encode()
            name = name.replace(b"/", b"_").replace(b"\0", b"_") or b"_"
            d = os.path.join(os.fsencode(root), name)
            if os.path.exists(d):
                continue
            try:
                os.mkdir(d)
            except OSError:  # a name the file system refuses (too long, not UTF-8 on some)
                continue
            for j in range(2):
                data = jpeg(j) if rng.random() < 0.6 else damage(rng, jpeg(j))
                with open(os.path.join(d, f"{j}.jpg".encode()), "wb") as f:
                    f.write(data)
        r = run("import", "folder", root, "-p", db, "--json")
        out = check_clean(r, f"folder {n}")
        if out is None:
            error_names(r, f"folder {n}", root.name)
            continue
        assert all("\n" not in x["origin"] and "\r" not in x["origin"] for x in out["rejected"])
    integrity_ok(db)
    stored_text_ok(db, False)


def _project(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "f.tsv"
    src.write_bytes(tsv_base("msceleb"))
    db = tmp_path / "p.db"
    assert run("import", "msceleb", src, "-p", db).exit_code == 0
    return db, src


def test_damaged_label_files(tmp_path):
    db, _src = _project(tmp_path)
    rng = random.Random(DAMAGE_SEED + 5)
    bases = [
        "origin,label,identity,note\nf.tsv:1,correct,,é ok\n2,wrong_identity,m.日本,\n"
        'f.tsv:3,unsure,,"a, b"\n4,duplicate,,\n',
        "f.tsv:1\tcorrect\nf.tsv:5\tunusable\tm.x\tnöte\n",
        "m.ä/0-F0.jpg\tm.ä\nm.日本/1-F1.jpg\n",
    ]
    for n in range(CASES):
        data = damage(rng, rng.choice(bases).encode())
        lf = tmp_path / f"l{n}.csv"
        lf.write_bytes(data)
        r = run("labels", "import", lf, "-p", db, "-r", "fuzz", "--json")
        out = check_clean(r, f"labels {n}")
        if out is None:
            error_names(r, f"labels {n}", lf.name)
            continue
        for e in out["errors"]:
            assert 1 <= e["line"] <= text_lines_of(data), (n, e)
    integrity_ok(db)


def test_damaged_qa_verdict_files(tmp_path):
    db, _src = _project(tmp_path)
    r = run("qa", "start", "-p", db, "-r", "qa", "--sample", "random", "--count", "4", "--json")
    assert r.exit_code == 0, r.output
    pass_id = json.loads(r.output)["pass_id"]
    rng = random.Random(DAMAGE_SEED + 6)
    base = "origin,label\nf.tsv:1,correct\nf.tsv:2,unsure\n3,wrong_identity\nf.tsv:4,correct\n"
    for n in range(CASES // 2):
        data = damage(rng, base.encode())
        vf = tmp_path / f"v{n}.csv"
        vf.write_bytes(data)
        r = run("qa", "label", vf, "-p", db, "-r", "qa", "--pass", pass_id, "--json")
        out = check_clean(r, f"qa {n}")
        if out is None:
            error_names(r, f"qa {n}", vf.name)
            continue
        for e in out["errors"]:
            assert 1 <= e["line"] <= text_lines_of(data), (n, e)
    integrity_ok(db)


def test_damaged_takedown_requests_and_pack_lists(tmp_path):
    """A list with a line that is not UTF-8 is refused naming FILE:LINE; else it is read (no
    takedown without --yes: the plan is made and the command stops there)."""
    db, _src = _project(tmp_path)
    before = sqlite3.connect(db).execute("SELECT count(*) FROM faces").fetchone()
    rng = random.Random(DAMAGE_SEED + 7)
    base = "# requests\nm.ä\nZoë 1\n\nm.日本  # a note\nnobody\n".encode()
    for n in range(CASES):
        data = damage(rng, base)
        f = tmp_path / f"k{n}.txt"
        f.write_bytes(data)
        if n % 2:
            r = run("takedown", "--from", f, "-p", db, "-r", "lead", "--json")
        else:
            r = run("pack", "-p", db, "--identities-file", f, "--out", tmp_path / f"k{n}.db",
                    "--json")  # fmt: skip
        out = check_clean(r, f"list {n}")
        if out is None:
            line = r.output.strip()
            bad_utf8 = any(b in data for b in BAD_UTF8)
            if bad_utf8 and "not UTF-8" in line:
                assert f"{f}:" in line, (n, line)
            elif "irreversible" not in line:  # the takedown's refusal without --yes
                assert f.name in line or "identity" in line, (n, line)
    c = sqlite3.connect(db)
    assert c.execute("SELECT count(*) FROM faces").fetchone() == before  # nothing taken down
    c.close()
    integrity_ok(db)


def test_damaged_prediction_files(tmp_path):
    from tests.core.test_evaluate import folder_export

    truth = folder_export(tmp_path / "set", [("A/1.jpg", "m.ä"), ("B/1.jpg", "m.日本")])
    rng = random.Random(DAMAGE_SEED + 8)
    base = "# preds\nA/1.jpg\tm.ä\t0.9\nB/1.jpg\tm.日本\t0.8\nhttp://x/é\tF1\tm.ä\t0.5\n".encode()
    for n in range(CASES // 2):
        data = damage(rng, base)
        f = tmp_path / f"p{n}.tsv"
        f.write_bytes(data)
        r = run("evaluate", "--truth", truth, "--predictions", f, "--json")
        out = check_clean(r, f"predictions {n}")
        if out is None:
            line = r.output.strip()
            assert f.name in line or "no prediction" in line.lower(), (n, line)
            continue
        for e in out["bad"] + out["unmatched_examples"]:
            assert 1 <= e["line"] <= text_lines_of(data), (n, e)
        if not has_fffd(data):
            assert all("\ufffd" not in e["key"] for e in out["unmatched_examples"]), (n, out)
