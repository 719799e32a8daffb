"""Project statistics: counts by label/review state, noise counts among reviewed identities
(no interval), histogram, reviewer throughput of human review actions, QA agreement, plots."""

from __future__ import annotations

import pytest

from annotator.core.review import ops
from annotator.core.review.statistics import cohen_kappa, confusion, wilson
from annotator.core.review.stats import (
    MIN_ACTIONS,
    histogram,
    project_stats,
    save_plots,
    throughput,
)
from annotator.model import LABELS


@pytest.fixture
def project(tmp_path, build_project):
    """3 identities with 5, 3 and 1 faces."""
    p = build_project(tmp_path / "p.db", [5, 3, 1])
    p.origin = "gui"  # the steps below stand for a reviewer's keys in the desktop reviewer
    yield p
    p.close()


def test_wilson_and_kappa_known_values():
    lo, hi = wilson(1, 10)
    assert (round(lo, 4), round(hi, 4)) == (0.0179, 0.4042)
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and round(hi, 4) == 0.1611
    assert wilson(0, 0) is None  # one behaviour for the whole project (QA says the same)
    # po = 0.75, pe = 3/4*2/4 + 1/4*2/4 = 0.5 -> kappa 0.5
    pairs = [("c", "c"), ("c", "c"), ("c", "w"), ("w", "w")]
    assert cohen_kappa(confusion(pairs, ["c", "w"])).kappa == pytest.approx(0.5)
    assert cohen_kappa(confusion([("c", "c")], ["c"])).kappa is None
    assert cohen_kappa(confusion([], ["c", "w"])).kappa is None


def test_statistics_live_in_one_module():
    """stats and QA use the same formulas (once there were two copies that disagreed)."""
    from annotator.core.review import qa, statistics, stats

    assert qa.wilson is statistics.wilson and stats.wilson is statistics.wilson
    assert qa.cohen_kappa is statistics.cohen_kappa is stats.cohen_kappa
    assert not hasattr(qa, "Z95") and not hasattr(stats, "Z95")


def test_histogram_bins():
    h = histogram([1, 1, 2, 3, 4, 5, 9, 16, 17])
    assert h["bins"] == ["1", "2", "3-4", "5-8", "9-16", "17-32"]
    assert h["counts"] == [2, 1, 2, 1, 2, 1]
    assert (h["min"], h["median"], h["max"]) == (1, 4, 17)
    assert histogram([])["counts"] == []


def test_throughput_caps_idle_gaps():
    b = [("alice", f"2024-01-01T10:{m:02d}:00.000Z", 5) for m in range(11)]  # 60 s apart
    b.append(("alice", "2024-01-01T12:00:00.000Z", 5))  # a break: new session
    b.append(("bob", "2024-01-01T10:00:30.000Z", 1))
    t = throughput(b)
    assert t["alice"]["sessions"] == 2 and t["alice"]["labels"] == 60
    assert t["alice"]["actions"] == 12
    assert t["alice"]["active_hours"] == pytest.approx((300 + 600 + 300) / 3600)
    assert t["alice"]["faces_per_hour"] == pytest.approx(60 / (1200 / 3600))
    # one action (a CLI adjudication) is no rate: not "12 faces/hour"
    assert t["bob"]["faces_per_hour"] is None and t["bob"]["actions"] == 1


def test_a_rate_needs_enough_actions_and_time():
    few = [("a", f"2024-01-01T10:{m:02d}:00.000Z", 50) for m in range(MIN_ACTIONS - 1)]
    assert throughput(few)["a"]["faces_per_hour"] is None  # too few actions
    fast = [("a", f"2024-01-01T10:00:{s:02d}.000Z", 1) for s in range(0, 40, 2)]
    assert throughput(fast)["a"]["faces_per_hour"] is None  # 20 actions in 340 s active


def test_undone_steps_are_not_activity(project):
    for f in range(1, 6):
        ops.label_faces(project, [f], "correct", "alice")
    for _ in range(4):
        ops.undo(project, "alice")
    ops.redo(project, "alice")  # faces 1, 2 labeled; 3-5 undone
    s = project_stats(project)
    assert s["throughput"]["alice"]["labels"] == 2
    assert s["throughput"]["alice"]["actions"] == 2
    assert s["labels_by_reviewer"] == {"alice": {"correct": 2}}
    assert sum(s["labels_per_hour"].values()) == 2
    assert "not undone" in s["activity_note"] and "current labels" in s["activity_note"]


def test_stats_cli_says_where_figures_come_from(project):
    from click.testing import CliRunner

    from annotator.cli.main import cli

    ops.label_faces(project, [1], "correct", "alice")
    r = CliRunner().invoke(cli, ["stats", "-p", str(project.path)])
    assert r.exit_code == 0, r.output
    # identity 1 has a label and no review mark: not called "partly" labeled (a label file
    # may label every face of it)
    assert "identities: reviewed 0, labeled (not reviewed) 1, untouched 2" in r.output
    assert "activity (actions not undone):" in r.output
    assert "not enough activity for a rate" in r.output and "faces/hour" not in r.output
    assert "current labels by reviewer:" in r.output


def test_chart_colours_are_the_grids_label_colours(project):
    from matplotlib.colors import to_hex

    from annotator.core.review.stats import figures
    from annotator.model import LABEL_COLORS

    for f, lab in zip(range(1, 6), LABELS, strict=True):
        ops.label_faces(project, [f], lab, "alice")
    figs = figures(project_stats(project))
    bars = figs["reviewers"].axes[0].containers
    assert [to_hex(c.patches[0].get_facecolor()) for c in bars] == [
        LABEL_COLORS[lab] for lab in LABELS
    ]
    labels_bars = figs["labels"].axes[0].patches
    assert [to_hex(p.get_facecolor()) for p in labels_bars[: len(LABELS)]] == [
        LABEL_COLORS[lab] for lab in LABELS
    ]


def test_empty_charts_say_so_instead_of_bare_axes(project):
    from annotator.core.review.stats import figures

    figs = figures(project_stats(project))  # nothing labelled yet
    for name in ("reviewers", "labels_per_hour"):
        ax = figs[name].axes[0]
        assert not ax.patches and not list(ax.get_yticks())  # no -0.04 .. 0.04 scale
        assert any(t.get_text().startswith("no ") for t in ax.texts)
    ops.label_faces(project, [1], "correct", "alice")  # in the reviewer: both charts fill
    figs = figures(project_stats(project))
    for name in ("reviewers", "labels_per_hour"):
        ax = figs[name].axes[0]
        assert ax.patches and not ax.texts


def test_project_stats(project, tmp_path):
    ops.label_faces(project, [1], "wrong_identity", "alice")
    ops.label_faces(project, [2], "duplicate", "alice")
    ops.move_faces(project, [3], 2, "bob")  # misfiled in the raw data ...
    ops.label_faces(project, [3], "correct", "bob")  # ... and accepted at m.2
    ops.review_identity(project, 1, "alice")  # faces 4, 5 -> correct
    ops.label_faces(project, [9], "unsure", "bob")
    s = project_stats(project)
    assert s["faces"] == 9
    assert s["faces_by_label"] == {
        "correct": 3,
        "wrong_identity": 1,
        "duplicate": 1,
        "unusable": 0,
        "unsure": 1,
        "unlabeled": 3,
    }
    # identity 1 (now 4 faces after the move) is reviewed
    assert s["faces_by_review_state"] == {"reviewed": 4, "unreviewed": 5}
    assert s["identities"] == {"reviewed": 1, "partly_labeled": 2, "untouched": 0, "empty": 0}
    n = s["noise"]
    assert (n["labeled"], n["noisy"], n["moved"]) == (6, 3, 1)
    # labels given in review order are no random sample: counts only, no rate, no interval
    assert "rate" not in n and "ci95" not in n and s["noise_estimate"] is None
    assert s["faces_per_identity"]["counts"] == [1, 0, 2]  # 1 | 2 | 3-4 (4 and 4)
    assert s["labels_by_reviewer"] == {
        "alice": {"correct": 2, "duplicate": 1, "wrong_identity": 1},
        "bob": {"correct": 1, "unsure": 1},
    }
    assert s["throughput"]["alice"]["labels"] == 4 and s["throughput"]["bob"]["labels"] == 2
    assert sum(s["labels_per_hour"].values()) == 6
    assert s["qa"]["drawn"] == 0 and s["qa"]["overall"]["kappa"] is None
    paths = save_plots(s, tmp_path / "plots")
    assert len(paths) == 4
    for p in paths:
        with open(p, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_qa_agreement_from_qa_items(project):
    ops.review_identity(project, 1, "alice")
    ops.label_faces(project, [6], "wrong_identity", "bob")
    with project.tx() as c:
        c.execute(
            "INSERT INTO qa_passes(id, reviewer_id, created_at, seed, params) VALUES (1, 2, 'x', 0, '{}')"
        )
        rows = [  # (face, orig label, orig reviewer, verdict)
            (1, "correct", 1, "correct"),
            (2, "correct", 1, "correct"),
            (3, "correct", 1, "wrong_identity"),
            (6, "wrong_identity", 2, "wrong_identity"),
            (4, "correct", 1, None),  # drawn, not judged yet
        ]
        for pos, (f, lab, rid, verdict) in enumerate(rows):
            c.execute(
                "INSERT INTO qa_items(pass_id, face_id, position, orig_label, orig_reviewer_id,"
                " orig_event_id, verdict) VALUES (1, ?, ?, ?, ?, 0, ?)",
                (f, pos, lab, rid, verdict),
            )
    q = project_stats(project)["qa"]
    assert q["drawn"] == 5
    assert q["overall"]["judged"] == 4 and q["overall"]["agreed"] == 3
    assert q["overall"]["kappa"] == pytest.approx(0.5)
    assert q["per_reviewer"]["alice"]["agreement"] == pytest.approx(2 / 3)
    assert q["per_reviewer"]["bob"]["agreement"] == 1.0


def test_noise_rate_counts_each_face_once_hand_computed(project):
    # 9 faces; labeled: 1 wrong_identity, 2 duplicate, 3 moved to m.2 and then labeled
    # duplicate there (misfiled AND a duplicate: one noisy face), 4 unsure, 5 correct
    ops.label_faces(project, [1], "wrong_identity", "alice")
    ops.label_faces(project, [2], "duplicate", "alice")
    ops.move_faces(project, [3], 2, "alice")
    ops.label_faces(project, [3], "duplicate", "alice")
    ops.label_faces(project, [4], "unsure", "alice")
    ops.label_faces(project, [5], "correct", "alice")
    n = project_stats(project)["noise"]
    assert (n["labeled"], n["noisy"], n["moved"], n["duplicate"]) == (5, 3, 1, 2)
    assert "rate" not in n and "ci95" not in n


def test_noise_estimate_from_random_verdicts_hand_computed():
    from annotator.core.review.qa import estimate_from_verdicts

    # 3 noisy of 5 answered (an unsure and an unjudged item left out)
    v = ["wrong_identity", "duplicate", "duplicate", "correct", "unusable", "unsure", None]
    e = estimate_from_verdicts(v)
    assert (e["drawn"], e["judged"], e["unsure"], e["noisy"]) == (7, 6, 1, 3)
    assert e["rate"] == pytest.approx(3 / 5)
    # Wilson 95% for 3/5 by hand: z = 1.959964, z2 = 3.841459
    # centre = (0.6 + z2/10) / (1 + z2/5) = 0.984146 / 1.768292 = 0.556553
    # half = z * sqrt(0.24/5 + z2/100) / 1.768292 = 1.959964 * 0.293964 / 1.768292 = 0.325827
    assert e["ci95"] == [pytest.approx(0.230726, abs=1e-5), pytest.approx(0.882380, abs=1e-5)]


def test_faces_per_hour_per_reviewer_hand_computed(project):
    """Batches at set times: alice labels 2 faces at 10:00:00, 1 at 10:02:00 (+120 s), undoes
    it (neither the undo nor the undone step counts), labels 3 at 11:00:00 (a break: new
    session); bob QA-judges 1 face at 10:00:00 and 1 at 10:00:30."""
    from annotator.core.review import qa

    ops.label_faces(project, [1, 2], "correct", "alice")
    ops.label_faces(project, [3], "correct", "alice")
    ops.undo(project, "alice")
    ops.label_faces(project, [6, 7, 8], "wrong_identity", "alice")
    res = qa.start_pass(project, "bob", count=2, seed=1)
    items = qa.next_items(project, res.pass_id)
    for it in items:
        qa.record_verdict(project, res.pass_id, it.face_id, "correct", "bob")
    times = iter(
        [
            "2024-01-01T10:00:00.000Z",
            "2024-01-01T10:02:00.000Z",
            "2024-01-01T10:03:00.000Z",  # the undo
            "2024-01-01T11:00:00.000Z",
            "2024-01-01T10:00:00.000Z",  # bob's verdicts
            "2024-01-01T10:00:30.000Z",
        ]
    )
    with project.tx() as c:
        for (bid,) in c.execute("SELECT id FROM batches ORDER BY id").fetchall():
            c.execute("UPDATE batches SET at = ? WHERE id = ?", (next(times), bid))
    t = project_stats(project)["throughput"]
    # alice: 300 (session start) + 300 (new session) = 600 s for 2 + 3 = 5 faces
    assert t["alice"]["labels"] == 5 and t["alice"]["sessions"] == 2
    assert t["alice"]["actions"] == 2
    assert t["alice"]["active_hours"] == pytest.approx(600 / 3600)
    # bob: 300 + 30 = 330 s for 2 faces
    assert t["bob"]["labels"] == 2 and t["bob"]["active_hours"] == pytest.approx(330 / 3600)
    # two actions each: too little activity for a rate
    assert t["alice"]["faces_per_hour"] is None and t["bob"]["faces_per_hour"] is None
