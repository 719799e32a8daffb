"""Label files with hostile ids and bytes (issue 13 items 10 and 14): each bad line is a
per-line rejection, never an abort of the whole file, and never a wrong face."""

from annotator.core.review import labels_io
from annotator.store.db import open_project


def _project(path):
    p = open_project(path, create=True)
    with p.tx() as c:
        c.execute(
            "INSERT INTO sources(id, path, format, size, mtime, fingerprint, added_at)"
            " VALUES (1, '/x/faces.tsv', 'msceleb', 1, 0, 'f', 'now')"
        )
        c.execute("INSERT INTO identities(id, key, face_count) VALUES (1, 'm.a', 4)")
        for f in range(1, 5):
            c.execute(
                "INSERT INTO faces(id, identity_id, orig_identity_id, source_id, record)"
                " VALUES (?, 1, 1, 1, ?)",
                (f, f),
            )
    return p


def test_bad_face_ids_are_per_line_rejections(tmp_path):
    raw = (
        "1\tcorrect\n"
        "99999999999999999999\tcorrect\n"  # beyond int64: OverflowError before
        "\u00b3\tcorrect\n"  # superscript three: ValueError before
        "\u0663\tcorrect\n"  # Arabic-Indic three: was taken as face 3
        "2\tcorrect\n"
        "faces.tsv:99999999999999999999\tcorrect\n"  # OverflowError in the origin lookup
        "faces.tsv:\u0663\tcorrect\n"  # was taken as faces.tsv:3
    ).encode()
    f = tmp_path / "l.tsv"
    f.write_bytes(raw)
    with _project(tmp_path / "p.db") as p:
        res = labels_io.import_labels(p, f, "alice")
        assert res.applied == 2
        reasons = {e.line: e.reason for e in res.errors}
        assert set(reasons) == {2, 3, 4, 6, 7}
        assert "not ASCII digits in range" in reasons[6] and "not ASCII" in reasons[7]
        assert "out of range" in reasons[2]
        assert "ASCII" in reasons[3] and "ASCII" in reasons[4]
        got = dict(p.conn.execute("SELECT id, label FROM faces"))
        assert got == {1: "correct", 2: "correct", 3: None, 4: None}


def test_a_nul_byte_rejects_its_line_not_the_file(tmp_path):
    from click.testing import CliRunner

    from annotator.cli.main import cli

    f = tmp_path / "l.tsv"
    f.write_bytes(b"1\tcorrect\n2\tcor\x00rect\n3\tunsure\n")
    with _project(tmp_path / "p.db") as p:
        res = labels_io.import_labels(p, f, "alice")
        assert res.applied == 2
        assert [(e.line, e.reason) for e in res.errors] == [(2, "NUL byte in the line")]
    r = CliRunner().invoke(
        cli, ["labels", "import", str(f), "-p", str(tmp_path / "p.db"), "-r", "bob", "--json"]
    )
    assert r.exit_code == 0, r.output
    # still refused: a real binary file given as a label file
    png = tmp_path / "x.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    r = CliRunner().invoke(
        cli, ["labels", "import", str(png), "-p", str(tmp_path / "p.db"), "-r", "bob"]
    )
    assert r.exit_code == 1 and "binary file" in r.output
