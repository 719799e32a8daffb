"""`annotator pack`, `annotator merge` and the packages line of `annotator info`."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from annotator.cli.main import cli
from annotator.core.importer import import_source
from annotator.core.review import ops
from annotator.store.db import open_project


def jpeg(i: int) -> bytes:
    b = io.BytesIO()
    Image.new("RGB", (24, 24), (i * 37 % 256, (i * 91) % 256, 160)).save(b, "JPEG")
    return b.getvalue()


def make_home(root: Path, name: str = "home.db") -> Path:
    """A project of 4 identities (a-d, folder source) of 3 faces each."""
    folder = root / "faces"
    if not folder.exists():
        for n in range(12):
            (folder / "abcd"[n // 3]).mkdir(parents=True, exist_ok=True)
            (folder / "abcd"[n // 3] / f"{n % 3}.jpg").write_bytes(jpeg(n))
    db = root / name
    with open_project(db, create=True) as p:
        import_source(p, "folder", folder)
    return db


def ids_of(p, key: str) -> list[int]:
    return [
        f
        for (f,) in p.conn.execute(
            "SELECT f.id FROM faces f JOIN identities i ON i.id = f.identity_id WHERE i.key = ?"
            " ORDER BY f.id",
            (key,),
        )
    ]


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok(*args: object) -> dict:
    r = run(*args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def one_line_error(r, contains: str) -> None:
    assert r.exit_code == 1 and r.stdout == "" and "Traceback" not in r.output, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and contains in lines[0], r.stderr


@pytest.fixture
def home(tmp_path) -> Path:
    return make_home(tmp_path)


def test_pack_label_merge_conflict_and_info(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    res = ok("pack", "-p", home, "--identities", "a,b", "--out", pkg)
    assert (res["identities"], res["faces"], res["with_images"]) == (2, 6, False)
    info = ok("info", "-p", home)["packages"]
    assert (info["out"], info["merged"]) == (1, 0)
    assert info["list"][0]["id"] == res["package_id"] and info["list"][0]["state"] == "out"
    text = run("info", "-p", home).output
    assert "packages" in text and "1 out, 0 merged" in text
    assert ok("info", "-p", pkg)["packages"]["of"]["id"] == res["package_id"]
    assert f"package of {home}" in run("info", "-p", pkg).output

    with open_project(pkg) as k:
        a = ids_of(k, "a")
        ops.label_faces(k, a, "correct", "bob")
    with open_project(home) as p:
        ops.label_faces(p, a[:1], "unusable", "alice")
    m = ok("merge", pkg, "-p", home)
    assert m["conflict_count"] == 1 and m["applied"] == 2
    assert m["conflicts"][0]["origin"] == "a/0.jpg"
    assert m["conflicts"][0]["home_label"] == "unusable"
    queue = ok("qa", "queue", "-p", home)["queue"]
    assert [(q["origin"], q["orig_label"], q["verdict"]) for q in queue] == [
        ("a/0.jpg", "unusable", "correct")
    ]
    again = run("merge", pkg, "-p", home)
    assert again.exit_code == 0 and "nothing new to merge" in again.output
    assert ok("merge", pkg, "-p", home)["batches"] == 0
    info = ok("info", "-p", home)["packages"]
    assert (info["out"], info["merged"]) == (0, 1)
    pid = queue[0]["pass_id"]
    adj = ok("qa", "adjudicate", "-p", home, "-r", "lead", "--pass", pid, "a/0.jpg", "correct")
    assert adj["changed"] and ok("qa", "queue", "-p", home)["queue"] == []


def test_merge_text_output_lists_conflicts(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    (tmp_path / "keys.txt").write_text("# my share\na\n\nb\n")
    assert (
        ok("pack", "-p", home, "--identities-file", tmp_path / "keys.txt", "--out", pkg)[
            "identities"
        ]
        == 2
    )
    with open_project(pkg) as k:
        ops.label_faces(k, ids_of(k, "b"), "duplicate", "bob")
    with open_project(home) as p:
        ops.label_faces(p, ids_of(p, "b")[:1], "correct", "alice")
    r = run("merge", pkg, "-p", home)
    assert r.exit_code == 0, r.output
    assert "1 conflicts queued" in r.output
    assert "conflict b/0.jpg: home correct (alice), package duplicate (bob)" in r.output


def test_with_images_and_unreviewed(home, tmp_path):
    res = ok("pack", "-p", home, "--unreviewed", "3", "--out", tmp_path / "p1.db", "--with-images")
    assert res["identities"] == 3 and res["with_images"]
    with open_project(tmp_path / "p1.db") as k:
        assert k.conn.execute("SELECT count(*) FROM face_blobs").fetchone()[0] == 9
    res = ok("pack", "-p", home, "--unreviewed", "3", "--out", tmp_path / "p2.db")
    assert res["identities"] == 1  # the other three are out


@pytest.mark.parametrize(
    "args, message",
    [
        (["pack", "-p", "{h}", "--out", "{t}/x.db"], "give exactly one of"),
        (
            ["pack", "-p", "{h}", "--identities", "a", "--unreviewed", "1", "--out", "{t}/x.db"],
            "give exactly one of",
        ),
        (["pack", "-p", "{h}", "--identities", "a,nobody", "--out", "{t}/x.db"], "'nobody'"),
        (["pack", "-p", "{h}", "--identities", " , ", "--out", "{t}/x.db"], "no identity key"),
        (["pack", "-p", "{h}", "--unreviewed", "0", "--out", "{t}/x.db"], "at least 1"),
        (["pack", "-p", "{h}", "--unreviewed", "x", "--out", "{t}/x.db"], "not a valid integer"),
        (["pack", "-p", "{h}", "--identities", "a", "--out", "{t}/no/dir/x.db"], "does not exist"),
        (["pack", "-p", "{h}", "--identities", "a", "--out", "{h}"], "exists"),
        (
            ["pack", "-p", "{h}", "--identities-file", "{t}/none.txt", "--out", "{t}/x.db"],
            "no such file",
        ),
        (["pack", "-p", "{h}", "--identities-file", "{h}", "--out", "{t}/x.db"], "binary file"),
        (  # issue 20: a damaged line is named, not read as another key
            ["pack", "-p", "{h}", "--identities-file", "{t}/bad.txt", "--out", "{t}/x.db"],
            "bad.txt:2: not UTF-8",
        ),
        (["merge", "{t}/none.db", "-p", "{h}"], "no package file"),
        (["merge", "{t}/text.txt", "-p", "{h}"], "not a reviewer package"),
        (["merge", "{h}", "-p", "{h}"], "the project itself"),
        (["merge", "{t}/plain.db", "-p", "{h}"], "not a reviewer package"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(home, tmp_path, args, message):
    (tmp_path / "text.txt").write_text("hello\n")
    (tmp_path / "bad.txt").write_bytes(b"\xef\xbb\xbfa\r\nb\xff\n")
    make_home(tmp_path, "plain.db")
    open_project(home).close()  # settle what a first open writes (PRAGMA optimize)
    before = home.read_bytes()
    r = run(*[a.format(h=home, t=tmp_path) for a in args])
    one_line_error(r, message)
    assert home.read_bytes() == before
    assert not (tmp_path / "x.db").exists()


def test_merge_refuses_another_projects_and_a_tampered_package(home, tmp_path):
    pkg = tmp_path / "pkg.db"
    ok("pack", "-p", home, "--identities", "a", "--out", pkg)
    (tmp_path / "o").mkdir()
    other = make_home(tmp_path / "o", "other.db")
    one_line_error(run("merge", pkg, "-p", other), "is a package of another project")
    conn = sqlite3.connect(pkg)
    conn.execute("UPDATE sources SET path = '/somewhere/else'")
    conn.commit()
    conn.close()
    one_line_error(run("merge", pkg, "-p", home), "tampered")
