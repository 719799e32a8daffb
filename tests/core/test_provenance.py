"""Provenance: every label knows how it was made (reviewer, command, label file, package,
adjudication); stats activity counts human review only; the datasheet says only what the
provenance counts show."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from annotator.cli.demo_cmd import truth_labels, write_truth_labels
from annotator.core.export.run import export_dataset
from annotator.core.importer import import_source
from annotator.core.review import ops, qa
from annotator.core.review.labels_io import import_labels
from annotator.core.review.stats import project_stats
from annotator.demo.dataset import generate_demo
from annotator.store import labels as labels_store
from annotator.store.db import open_project


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    generate_demo(d, identities=6, seed=5)
    truth = json.loads((d / "truth.json").read_text(encoding="utf-8"))
    labels = write_truth_labels(d, truth)
    with open_project(d / "demo.db", create=True) as p:
        import_source(p, "msceleb", d / "faces.tsv")
    return d, labels, truth_labels(truth)


@pytest.fixture
def project(demo, tmp_path):
    d, _labels, _truth = demo
    shutil.copy(d / "demo.db", tmp_path / "p.db")
    p = open_project(tmp_path / "p.db")
    yield p
    p.close()


def _table(text: str, after: str) -> dict[str, int]:
    """The `| what | faces |` rows of the first table after the line starting ``after``."""
    part = text[text.index(after) :]
    rows: dict[str, int] = {}
    for line in part.splitlines()[1:]:
        if not line.startswith("|") and rows:
            break
        m = re.fullmatch(r"\| (.+) \| (\d+) \|", line)
        if m:
            rows[m.group(1)] = int(m.group(2))
    return rows


def test_label_file_import_is_not_human_review(project, demo, tmp_path):
    _d, labels, truth = demo
    res = import_labels(project, labels, "alice")
    assert res.applied == len(truth)
    made = labels_store.faces_by_provenance(project)
    assert {(p, d) for p, d, _lab, _n in made} == {("import", labels.name)}
    assert sum(n for *_x, n in made) == len(truth)
    s = project_stats(project)
    assert s["throughput"] == {}  # no "858 faces judged ... 0.08 h active"
    assert s["not_in_activity"] == {"import": len(truth)}

    out = tmp_path / "out"
    r = export_dataset(project, out, "csv")
    text = (out / "README.md").read_text(encoding="utf-8")
    correct = sum(v == "correct" for v in truth.values())
    assert r.faces <= correct
    # the claim follows the counts: nobody was seen looking at these faces
    assert "Every included face was judged" not in text
    assert f"0 of {r.faces} included faces were judged one at a time by a person" in text
    assert _table(text, "0 of ") == {f"imported from a label file `{labels.name}`": r.faces}
    assert "No face was moved to another identity." in text
    assert "moved misfiled faces" not in text
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["provenance"] == [
        {"provenance": "import", "detail": labels.name, "faces": r.faces}
    ]
    # the project-wide table: one row per label, with the file
    whole = {k: v for k, v in _table(text, "How the project's current labels").items()}
    assert sum(whole.values()) == len(truth)


def test_reviewer_labels_are_human_and_the_datasheet_says_so(project, tmp_path):
    project.origin = "gui"  # what the desktop reviewer's write path sets
    idents = [i for (i,) in project.conn.execute("SELECT id FROM identities ORDER BY id LIMIT 2")]
    for i in idents:
        ops.review_identity(project, i, "alice", rest="correct")
    s = project_stats(project)
    assert set(s["throughput"]) == {"alice"} and s["not_in_activity"] == {}
    out = tmp_path / "out"
    r = export_dataset(project, out, "csv")
    text = (out / "README.md").read_text(encoding="utf-8")
    assert "Every included face was judged one at a time by a person" in text
    assert _table(text, "Every included face") == {"reviewed in the desktop reviewer": r.faces}


def test_mixed_sources_and_adjudication_and_moves(project, demo, tmp_path):
    _d, labels, truth = demo
    import_labels(project, labels, "alice")
    project.origin = "gui"
    faces = [f for (f,) in project.conn.execute("SELECT id FROM faces WHERE label = 'correct'")]
    other = project.conn.execute(
        "SELECT id FROM identities WHERE id != (SELECT identity_id FROM faces WHERE id = ?)",
        (faces[0],),
    ).fetchone()[0]
    ops.move_faces(project, [faces[0]], other, "carol", label="correct")
    ops.label_faces(project, [faces[1]], "correct", "carol", notes={faces[1]: "x"})
    ops.label_faces(project, [faces[2]], "unsure", "carol")
    # a QA pass by bob over alice's imported labels; a face labelled unusable that bob calls
    # correct, and dan decides it is
    res = qa.start_pass(project, "bob", count=40, seed=2)
    wrong = {f for (f,) in project.conn.execute("SELECT id FROM faces WHERE label = 'unusable'")}
    it = next(i for i in qa.next_items(project, res.pass_id) if i.face_id in wrong)
    qa.record_verdict(project, res.pass_id, it.face_id, "correct", "bob")
    qa.adjudicate(project, res.pass_id, it.face_id, "correct", "dan")
    by = {}
    for p, d, _lab, n in labels_store.faces_by_provenance(project):
        by[(p, d)] = by.get((p, d), 0) + n
    # the moved face keeps its imported label (only the move is the reviewer's); faces[1]
    # already had that label: no new label; faces[2] is relabelled in the reviewer
    assert by[("gui", None)] == 1
    assert by[("adjudication", None)] == 1
    assert by[("import", labels.name)] == len(truth) - 2
    assert labels_store.moves_by_provenance(project) == {"gui": 1}
    s = project_stats(project)
    assert set(s["throughput"]) == {"carol", "bob", "dan"}
    out = tmp_path / "out"
    r = export_dataset(project, out, "csv")
    text = (out / "README.md").read_text(encoding="utf-8")
    included = _table(text, f"1 of {r.faces} included faces")
    assert included == {
        "decided by a QA adjudication": 1,
        "imported from a label file `truth-labels.tsv`": r.faces - 1,
    }
    assert "- 1 faces were moved to another identity" in text
    assert "(1 reviewed in the desktop reviewer)" in text


def test_history_before_provenance_is_unknown(project):
    ops.label_faces(project, [1], "correct", "alice")
    with project.tx() as c:  # as a batch written before m014 looks
        c.execute("UPDATE batches SET origin = NULL, origin_detail = NULL")
    assert labels_store.faces_by_provenance(project) == [("unknown", None, "correct", 1)]
    assert project_stats(project)["not_in_activity"] == {"unknown": 1}


def test_merged_package_labels_say_which_package(project, tmp_path):
    from annotator.core.review import merge as merge_core
    from annotator.core.review import pack

    ids = pack.select_identities(
        project,
        [k for (k,) in project.conn.execute("SELECT key FROM identities ORDER BY id LIMIT 1")],
    )
    res = pack.pack(project, ids, tmp_path / "pkg.db")
    with open_project(tmp_path / "pkg.db") as pkg:
        pkg.origin = "gui"  # a reviewer's keys in the package
        f = pkg.conn.execute("SELECT id FROM faces ORDER BY id LIMIT 1").fetchone()[0]
        ops.label_faces(pkg, [f], "correct", "erin")
        assert labels_store.faces_by_provenance(pkg) == [("gui", None, "correct", 1)]
    merge_core.merge(project, tmp_path / "pkg.db")
    made = labels_store.faces_by_provenance(project)
    assert made == [("merge", res.package_id, "correct", 1)]
    # not counted as review activity at home: its times and keys are the package's
    assert project_stats(project)["not_in_activity"] == {"merge": 1}
