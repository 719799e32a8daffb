"""The raw-noise estimate: only from faces drawn uniformly at random (estimate passes), with a
Wilson interval that covers the demo's true rate; never from labels given in review order."""

from __future__ import annotations

import json

import pytest

from annotator.cli.demo_cmd import truth_labels
from annotator.core.importer import import_source
from annotator.core.review import ops, qa
from annotator.core.review.stats import project_stats
from annotator.demo.dataset import generate_demo
from annotator.store import qa as qa_store
from annotator.store.db import open_project

SAMPLES = 200
SAMPLE_SIZE = 120


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The drawn demo (20 identities) imported; face id -> the label a careful reviewer gives."""
    d = tmp_path_factory.mktemp("demo")
    generate_demo(d, identities=20, seed=3)
    truth = truth_labels(json.loads((d / "truth.json").read_text(encoding="utf-8")))
    p = open_project(d / "demo.db", create=True)
    import_source(p, "msceleb", d / "faces.tsv")
    lines = dict(p.conn.execute("SELECT record, id FROM faces"))
    by_face = {int(lines[n]): lab for n, lab in truth.items()}
    p.close()
    return d / "demo.db", by_face


def test_interval_covers_the_true_rate_in_90_percent_of_200_seeded_samples(demo):
    path, truth = demo
    with open_project(path) as p:
        ids = qa_store.all_face_ids(p)
    assert len(ids) == len(truth)
    true_rate = sum(v in qa.NOISY_VERDICTS for v in truth.values()) / len(truth)
    assert 0.05 < true_rate < 0.3  # the demo injects noise
    covered = 0
    rates = []
    for seed in range(SAMPLES):
        picked = qa.random_sample(len(ids), SAMPLE_SIZE, seed)
        assert len(set(picked.tolist())) == SAMPLE_SIZE  # without replacement
        e = qa.estimate_from_verdicts([truth[int(ids[int(i)])] for i in picked])
        lo, hi = e["ci95"]
        covered += lo <= true_rate <= hi
        rates.append(e["rate"])
    assert covered >= 0.9 * SAMPLES, (covered, true_rate)
    # and the estimate is centred on the truth (a biased sampler would cover less and drift)
    assert abs(sum(rates) / SAMPLES - true_rate) < 0.01


def test_suspicion_ordered_labels_give_no_interval_a_random_pass_does(demo, tmp_path):
    path, truth = demo
    import shutil

    mine = tmp_path / "p.db"
    shutil.copy(path, mine)
    with open_project(mine) as p:
        # labels of the most noisy faces first (like reviewing most suspicious first)
        noisy_first = sorted(truth, key=lambda f: truth[f] not in qa.NOISY_VERDICTS)[:40]
        for f in noisy_first:
            ops.label_faces(p, [f], truth[f], "alice")
        s = project_stats(p)
        assert s["noise"]["labeled"] == 40 and "ci95" not in s["noise"]
        assert s["noise_estimate"] is None
        res = qa.start_pass(p, "bob", count=50, seed=11, sample="random")
        assert (res.items, res.eligible, res.sample) == (50, len(truth), "random")
        # bob judges every face: his own labels do not matter (the raw data is asked about)
        items = qa.next_items(p, res.pass_id)
        assert len(items) == 50
        verdicts = []
        for it in items[:45]:
            v = truth[it.face_id]
            qa.record_verdict(p, res.pass_id, it.face_id, v, "bob")
            verdicts.append(v)
        e = project_stats(p)["noise_estimate"]
        want = qa.estimate_from_verdicts(verdicts + [None] * 5)
        assert (e["drawn"], e["judged"], e["noisy"]) == (50, 45, want["noisy"])
        assert e["ci95"] == want["ci95"] and e["population_faces"] == len(truth)
        assert "imported with" in e["population"]
        # an estimate pass is no label QA: not in agreement, adjudication or export QA states
        assert qa.report(p)["items_total"] == 0
        assert qa.adjudication_queue(p) == [] and qa.identity_qa_states(p) == {}


def test_estimate_pass_asks_about_the_imported_identity(demo, tmp_path):
    path, _truth = demo
    import shutil

    mine = tmp_path / "p.db"
    shutil.copy(path, mine)
    with open_project(mine) as p:
        f, orig = p.conn.execute("SELECT id, identity_id FROM faces ORDER BY id LIMIT 1").fetchone()
        other = p.conn.execute("SELECT id FROM identities WHERE id != ?", (orig,)).fetchone()[0]
        ops.move_faces(p, [f], other, "alice")
        res = qa.start_pass(p, "bob", count=len(_truth), seed=1, sample="random")
        (it,) = [i for i in qa.next_items(p, res.pass_id) if i.face_id == f]
        assert it.identity_id == orig


def test_qa_report_of_an_estimate_pass_points_to_stats(demo, tmp_path):
    import shutil

    from annotator.model import AnnotatorError

    path, _truth = demo
    shutil.copy(path, tmp_path / "p.db")
    with open_project(tmp_path / "p.db") as p:
        res = qa.start_pass(p, "bob", count=5, seed=1, sample="random")
        with pytest.raises(AnnotatorError, match="noise estimate of `annotator stats`"):
            qa.report(p, res.pass_id)
