"""Label import (every shape, every bad line) and export."""

import csv
import io

import pytest

from annotator.core.review import labels_io, ops
from annotator.model import AnnotatorError
from annotator.store import faces as faces_store
from annotator.store.db import open_project


def build(path):
    """3 sources (TSV, RecordIO, folder), identities m.a m.b m.c, 12 faces (store API)."""
    p = open_project(path, create=True)
    tsv, rec, imgs = (
        faces_store.add_source(p, path_, fmt, 1, 0.0, "f")
        for path_, fmt in [
            ("/x/faces.tsv", "msceleb"),
            ("/x/train.rec", "rec"),
            ("/x/imgs", "folder"),
        ]
    )
    with p.tx():
        ids = faces_store.create_identities(p, ["m.a", "m.b", "m.c"])
        none4 = (None,) * 4
        # faces.tsv lines 1..8: m.a ranks 1-4, m.b ranks 1-4
        rows = [
            (ids["m.a" if f <= 4 else "m.b"], tsv.id, f, None, None, None, (f - 1) % 4 + 1)
            + (None, None, "FaceId-0")
            + none4
            for f in range(1, 9)
        ]
        rows += [
            (ids["m.c"], rec.id, r, None, None, None, None, None, None, None) + none4
            for r in (0, 1)
        ]
        rows += [
            (ids["m.c"], imgs.id, None, rel, None, None, None, None, None, None) + none4
            for rel in ("m.c/a.jpg", "m.c/b.jpg")
        ]
        faces_store.insert_faces(p, rows)
        faces_store.refresh_face_counts(p, ids.values())
    return p


@pytest.fixture
def project(tmp_path):
    p = build(tmp_path / "p.db")
    yield p
    p.close()


def labels(p):
    return dict(p.conn.execute("SELECT id, label FROM faces"))


def write(tmp_path, text, name="labels.tsv", raw=None):
    f = tmp_path / name
    if raw is not None:
        f.write_bytes(raw)
    else:
        f.write_text(text, encoding="utf-8")
    return f


def test_tsv_without_header_all_reference_kinds(project, tmp_path):
    f = write(
        tmp_path,
        "faces.tsv:1\tcorrect\n"
        "2\twrong_identity\t\tlooks older\n"
        "train.rec#1\tduplicate\n"
        "m.c/b.jpg\tunusable\n"
        "faces.tsv:5\tcorrect\tm.a\tsame person as m.a\n",
    )
    res = labels_io.import_labels(project, f, "alice")
    assert res.shape == "labels" and res.errors == []
    assert (res.applied, res.unchanged) == (5, 0)
    lab = labels(project)
    assert lab[1] == "correct" and lab[2] == "wrong_identity" and lab[10] == "duplicate"
    assert lab[12] == "unusable" and lab[5] == "correct"
    assert project.conn.execute("SELECT identity_id FROM faces WHERE id = 5").fetchone()[0] == 1
    notes = dict(project.conn.execute("SELECT face_id, note FROM events WHERE kind = 'label'"))
    assert notes[2] == "looks older" and notes[5] == "same person as m.a"
    # the same file again changes nothing
    res = labels_io.import_labels(project, f, "alice")
    assert (res.applied, res.unchanged) == (0, 5)


def test_csv_with_header_and_quotes_and_semicolons(project, tmp_path):
    f = write(
        tmp_path, 'note,label,origin\n"blurry, dark",unusable,faces.tsv:3\n,correct,4\n', "l.csv"
    )
    res = labels_io.import_labels(project, f, "bob")
    assert res.errors == [] and res.applied == 2
    assert labels(project)[3] == "unusable" and labels(project)[4] == "correct"
    assert (
        project.conn.execute("SELECT note FROM events WHERE face_id = 3").fetchone()[0]
        == "blurry, dark"
    )
    f2 = write(tmp_path, "face_id;label\n6;Duplicate\n", "l2.csv")
    res = labels_io.import_labels(project, f2, "bob")
    assert res.errors == [] and labels(project)[6] == "duplicate"


def test_bad_lines_are_reported_with_line_numbers_and_the_rest_applies(project, tmp_path):
    raw = (
        b"faces.tsv:1\tcorrect\n"  # 1 ok
        b"faces.tsv:2\tgreat\n"  # 2 unknown label
        b"faces.tsv:99\tcorrect\n"  # 3 unknown origin
        b"77\tcorrect\n"  # 4 unknown face id
        b"\n"  # 5 blank: skipped silently
        b"faces.tsv:3\n"  # 6 no label
        b"faces.tsv:4\tcorrect\tm.zzz\n"  # 7 unknown identity
        b"faces.tsv:1\tunsure\n"  # 8 conflicts with line 1
        b"faces.tsv:1\tcorrect\n"  # 9 same as line 1: fine
        b"faces.tsv:6\tcorrect\xff\n"  # 10 not UTF-8
        b"\tcorrect\n"  # 11 no face
        b"other.tsv:1\tcorrect\n"
    )  # 12 unknown source
    f = write(tmp_path, "", raw=raw)
    res = labels_io.import_labels(project, f, "alice")
    got = [(e.line, e.reason.split(" ")[0]) for e in res.errors]
    assert got == [
        (2, "unknown"),
        (3, "unknown"),
        (4, "no"),
        (6, "no"),
        (7, "unknown"),
        (8, "face"),
        (10, "not"),
        (11, "no"),
        (12, "unknown"),
    ]
    assert "already given correct on line 1" in res.errors[5].reason
    assert res.applied == 1 and labels(project)[1] == "correct"
    assert res.to_json()["errors"][0] == {"line": 2, "reason": res.errors[0].reason}


def test_clean_list_with_others(project, tmp_path):
    f = write(
        tmp_path,
        "m.a/1-FaceId-0.jpg\tm.a\n"
        "m.a/3-FaceId-0.jpg\tm.a\n"
        "m.a/9-FaceId-0.jpg\tm.a\n"  # 3: no such rank
        "m.q/1-FaceId-0.jpg\tm.q\n"  # 4: unknown identity
        "m.a/2-FaceId-0.jpg\tm.b\n"  # 5: identity column differs
        "garbage\tm.a\n",
        "clean.txt",
    )  # 6: not a clean-list entry
    res = labels_io.import_labels(project, f, "alice", others="wrong_identity")
    assert res.shape == "clean"
    assert [e.line for e in res.errors] == [3, 4, 5, 6]
    lab = labels(project)
    assert lab[1] == lab[3] == "correct"
    assert lab[2] == lab[4] == "wrong_identity"  # m.a faces not listed
    assert all(lab[i] is None for i in range(5, 13))  # m.b, m.c not mentioned
    assert res.applied == 4


def test_clean_list_whitespace_separated_and_without_others(project, tmp_path):
    f = write(tmp_path, "m.b/4-FaceId-0.jpg m.b\nm.b/2-FaceId-0.jpg m.b\n", "clean.txt")
    res = labels_io.import_labels(project, f, "alice")
    assert res.errors == [] and res.applied == 2
    lab = labels(project)
    assert lab[6] == lab[8] == "correct" and lab[5] is None and lab[7] is None


def test_clean_list_not_grouped_by_identity(project, tmp_path, monkeypatch):
    monkeypatch.setattr(labels_io, "LOOKUP_IDENTITIES", 1)  # every switch evicts the other
    f = write(
        tmp_path,
        "m.a/1-FaceId-0.jpg\tm.a\nm.b/2-FaceId-0.jpg\tm.b\nm.a/4-FaceId-0.jpg\tm.a\n",
        "clean.txt",
    )
    res = labels_io.import_labels(project, f, "alice")
    assert res.errors == [] and res.applied == 3
    lab = labels(project)
    assert lab[1] == lab[6] == lab[4] == "correct" and lab[2] is None


def test_clean_list_lookup_reads_only_the_identitys_faces(tmp_path):
    """Finding an identity's imported faces must not scan the whole faces table (a 5M-line
    clean list names ~100k identities: a scan each is quadratic)."""
    from annotator.store import faces as store

    p = open_project(tmp_path / "big.db", create=True)
    src = store.add_source(p, "/x/faces.tsv", "msceleb", 1, 0.0, "f")
    with p.tx():
        ids = store.create_identities(p, [f"m.{i}" for i in range(200)])
        store.insert_faces(
            p,
            [
                (ids[f"m.{r % 200}"], src.id, r, None, None, None, 1, None, None, "x") + (None,) * 4
                for r in range(20_000)
            ],
        )
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    p.conn.set_progress_handler(count, 100)
    found = store.faces_by_rank_ref(p, ids["m.7"])
    p.conn.set_progress_handler(None, 0)
    assert len(found[(1, "x")]) == 100
    assert steps < 200, steps  # a full scan of 20,000 faces takes > 2,000
    p.close()


def test_others_with_a_label_table_and_moved_faces_untouched(project, tmp_path):
    ops.move_faces(project, [5], 1, "zed")  # face 5 now lives in m.a (reviewer's decision)
    f = write(tmp_path, "faces.tsv:1\tcorrect\n")
    res = labels_io.import_labels(project, f, "alice", others="wrong_identity")
    lab = labels(project)
    assert lab[1] == "correct" and lab[2] == lab[3] == lab[4] == "wrong_identity"
    assert lab[5] is None  # moved in (unreviewed there): not one of m.a's own faces
    assert res.applied == 4


def test_chunked_batches(project, tmp_path):
    f = write(tmp_path, "".join(f"{i}\tcorrect\n" for i in range(1, 6)) + "6\tunsure\n")
    labels_io.import_labels(project, f, "alice", chunk=2)
    sizes = [
        r[0]
        for r in project.conn.execute(
            "SELECT count(*) FROM events GROUP BY batch_id ORDER BY batch_id"
        )
    ]
    assert sizes == [2, 2, 1, 1]
    # each chunk is one undo step
    ops.undo(project, "alice")
    assert labels(project)[6] is None and labels(project)[5] == "correct"


def test_progress_and_cancel(project, tmp_path):
    f = write(tmp_path, "".join(f"{i}\tcorrect\n" for i in range(1, 7)))
    seen = []
    res = labels_io.import_labels(
        project,
        f,
        "alice",
        chunk=2,
        progress=lambda d, t: seen.append((d, t)),
        cancelled=lambda: len(seen) >= 3,
    )
    assert not res.complete and res.applied == 4
    assert seen == [(0, 6), (2, 6), (4, 6)]


def test_unknown_others_label_is_an_error(project, tmp_path):
    with pytest.raises(AnnotatorError):
        labels_io.import_labels(project, write(tmp_path, "1\tcorrect\n"), "a", others="bad")


def test_ambiguous_origin(project, tmp_path):
    other = faces_store.add_source(project, "/y/faces.tsv", "msceleb", 1, 0.0, "g")
    faces_store.insert_faces(project, [(1, other.id, 1) + (None,) * 11])
    res = labels_io.import_labels(project, write(tmp_path, "faces.tsv:1\tcorrect\n"), "a")
    assert res.errors[0].line == 1 and "ambiguous" in res.errors[0].reason


def test_export_rows_and_csv(project, tmp_path):
    ops.label_faces(project, [1], "correct", "alice")
    ops.label_faces(project, [2], "unsure", "bob")
    rows = list(labels_io.export_rows(project))
    assert len(rows) == 12
    r1 = rows[0]
    assert (r1["face_id"], r1["origin"], r1["identity"], r1["label"], r1["reviewer"]) == (
        1,
        "faces.tsv:1",
        "m.a",
        "correct",
        "alice",
    )
    assert r1["at"].endswith("Z") and r1["qa_verdict"] is None
    assert rows[9]["origin"] == "train.rec#1" and rows[11]["origin"] == "m.c/b.jpg"
    assert rows[11]["label"] is None and rows[11]["reviewer"] is None
    buf = io.StringIO()
    assert labels_io.write_csv(iter(rows), buf) == 12
    back = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert back[1]["label"] == "unsure" and back[1]["reviewer"] == "bob" and back[5]["label"] == ""


def test_a_dataset_given_as_label_file_is_refused_in_one_line(project, tmp_path):
    """e.g. the 89 GB faces TSV by mistake: refused after its first lines, never read whole."""
    row = "m.a\t1\thttp://x\thttp://p\tFaceId-0\tAAAA\t" + "QUJD" * 30000 + "\n"  # 120 kB
    f = write(tmp_path, row * 150, "faces.tsv")
    with pytest.raises(
        AnnotatorError, match=r"faces.tsv is not a label file: .*\(line 1: line longer"
    ):
        labels_io.import_labels(project, f, "alice")
    assert all(v is None for v in labels(project).values())
    # a few bad (or overlong) lines before good ones are only reported
    f = write(tmp_path, row * 3 + "faces.tsv:1\tcorrect\n", "mixed.tsv")
    res = labels_io.import_labels(project, f, "alice")
    assert [(e.line, e.reason) for e in res.errors] == [
        (i, "line longer than 64 KiB") for i in (1, 2, 3)
    ]
    assert res.applied == 1 and labels(project)[1] == "correct"
