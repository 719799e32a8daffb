"""The journal of queued labels (issue 20 #11): what it keeps, what it ignores, replay."""

import pytest

from annotator.core.importer import import_source
from annotator.core.review.journal import Journal, journal_path, replay
from annotator.demo.dataset import generate_demo
from annotator.store.db import open_project


@pytest.fixture
def demo_project(tmp_path):
    generate_demo(tmp_path, identities=5, faces_per_identity=(5, 7), seed=5)
    with open_project(tmp_path / "p.db", create=True) as p:
        import_source(p, "msceleb", tmp_path / "faces.tsv")
    return tmp_path / "p.db"


def test_waiting_skips_done_damaged_and_invalid_lines(tmp_path):
    j = Journal(tmp_path / "p.db")
    j.add(1, [1, 2], "correct", "ann")
    j.add(2, [3], None, "ann")
    j.add(3, [4], "wrong_identity", "ann")
    j.done(2)
    with open(j.path, "a", encoding="utf-8") as f:
        f.write('{"seq": 4, "faces": [5], "label": "evil", "reviewer": "x"}\n')  # not a label
        f.write('{"seq": 5, "faces": ["6"], "label": null, "reviewer": "x"}\n')  # not an id
        f.write('{"seq": 6, "faces": [7], "lab')  # cut off by a kill
    assert [e["seq"] for e in j.waiting()] == [1, 3]
    j.clear()
    assert j.waiting() == [] and not j.path.exists()


def test_replay_labels_in_order_and_leaves_out_removed_faces(tmp_path, demo_project):
    project = open_project(demo_project)
    try:
        faces = [r[0] for r in project.conn.execute("SELECT id FROM faces ORDER BY id LIMIT 3")]
        j = Journal(demo_project)
        j.add(1, faces[:2], "correct", "ann")
        j.add(2, [faces[1]], "unsure", "ann")  # a later key on the same face wins
        j.add(3, [10**9], "correct", "ann")  # a face that is gone
        r = replay(project)
        assert (r.labels, r.faces, r.skipped) == (2, 3, 1)
        got = dict(
            project.conn.execute(
                f"SELECT id, label FROM faces WHERE id IN ({','.join('?' * 3)})", faces
            )
        )
        assert got == {faces[0]: "correct", faces[1]: "unsure", faces[2]: None}
        assert not journal_path(demo_project).exists()
    finally:
        project.close()
