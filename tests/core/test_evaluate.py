"""MS-Celeb-1M protocol evaluation, checked against hand-computed small cases with ties."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotator.core.evaluate import curve_figure, evaluate, load_truth, save_figure
from annotator.formats import msceleb
from annotator.model import AnnotatorError


def folder_export(d: Path, faces: list[tuple[str, str]]) -> Path:
    """A minimal folder export: manifest.json + manifest.csv (file, identity)."""
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"filters": {"format": "folder"}}))
    lines = ["origin,identity,file,sha256"] + [
        f"o{i},{mid},{f},x" for i, (f, mid) in enumerate(faces)
    ]
    (d / "manifest.csv").write_text("\n".join(lines) + "\n")
    return d


@pytest.fixture
def truth(tmp_path):
    return load_truth(
        folder_export(
            tmp_path / "set",
            [
                ("A/1.jpg", "A"),
                ("B/1.jpg", "B"),
                ("C/1.jpg", "C"),
                ("D/1.jpg", "D"),
                ("E/1.jpg", "E"),
            ],
        )
    )


def write(p: Path, lines: list[str]) -> Path:
    p.write_text("\n".join(lines) + "\n")
    return p


def test_hand_computed_case_with_ties(truth, tmp_path):
    preds = write(
        tmp_path / "pred.tsv",
        [
            "# a comment",
            "A/1.jpg\tA\t0.9",  # correct
            "./B/1.jpg\tB\t0.8",  # correct, tied with the wrong one below
            "C/1.jpg\tX\t0.8",  # wrong
            "D/1.jpg\tD\t0.5",  # correct
            "",
            # E/1.jpg has no prediction
        ],
    )
    ev = evaluate(truth, preds)
    # thresholds 0.9 / 0.8 / 0.5 -> answered 1 / 3 / 4, correct 1 / 2 / 3, of 5 faces
    assert [(pt.threshold, pt.answered, pt.correct) for pt in ev.curve] == [
        (0.9, 1, 1),
        (0.8, 3, 2),
        (0.5, 4, 3),
    ]
    assert ev.total == 5 and ev.answered == 4 and ev.correct == 3 and ev.unmatched == 0
    assert ev.top1 == pytest.approx(0.6)
    # ties enter together: B alone at 0.8 would give coverage 0.4 at precision 1
    assert ev.coverage_at(0.95) == (pytest.approx(0.2), 0.9)
    assert ev.coverage_at(0.99) == (pytest.approx(0.2), 0.9)
    # precision is not monotone: 0.75 at coverage 0.8 beats 0.667 at 0.6
    assert ev.coverage_at(0.7) == (pytest.approx(0.8), 0.5)
    assert ev.coverage_at(0.75) == (pytest.approx(0.8), 0.5)
    assert ev.coverage_at(0.76) == (pytest.approx(0.2), 0.9)
    j = ev.to_json()
    assert j["coverage_at_precision"]["0.95"] == {"coverage": pytest.approx(0.2), "threshold": 0.9}
    assert j["precision_at_full_coverage"] == pytest.approx(0.75)
    assert j["bad_lines"] == 0


def test_nothing_reaches_precision(truth, tmp_path):
    ev = evaluate(truth, write(tmp_path / "p", ["A/1.jpg\tZ\t0.9", "B/1.jpg\tB\t0.1"]))
    assert ev.coverage_at(0.95) == (0.0, None)
    assert ev.coverage_at(0.5) == (pytest.approx(0.4), 0.1)
    assert ev.top1 == pytest.approx(0.2)


def test_bad_and_unmatched_lines_are_reported_not_fatal(truth, tmp_path):
    preds = write(
        tmp_path / "pred.tsv",
        [
            "A/1.jpg\tA",  # line 1: 2 fields
            "B/1.jpg\tB\tabc",  # line 2: bad confidence
            "C/1.jpg\tC\tnan",  # line 3: not finite
            "A/1.jpg\tA\t0.3",  # line 4: ok
            "A/1.jpg\tB\t0.9",  # line 5: second prediction for A
            "nope.jpg\tA\t0.9",  # line 6: unmatched
            "D/1.jpg\t\t0.5",  # line 7: empty MID
        ],
    )
    ev = evaluate(truth, preds)
    assert [(r.record, r.reason.split(" ")[0]) for r in ev.bad_lines] == [
        (1, "expected"),
        (2, "confidence"),
        (3, "confidence"),
        (5, "second"),
        (7, "empty"),
    ]
    assert "first on line 4" in ev.bad_lines[3].reason
    assert ev.unmatched == 1 and ev.unmatched_lines[0].record == 6
    assert (ev.answered, ev.correct) == (1, 1)


def test_msceleb_truth_matches_url_and_faceid(tmp_path):
    d = tmp_path / "ms"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"filters": {"format": "msceleb"}}))
    jpg = b"\xff\xd8\xff\xe0" + b"\0" * 40
    with open(d / "faces.tsv", "wb") as fh:
        msceleb.write_row(fh, "m.1", 1, "http://u/1", "http://p", "0", None, jpg)
        msceleb.write_row(
            fh, "m.1", 2, "http://u/1", "http://p", "1", None, jpg
        )  # same URL, 2nd face
        msceleb.write_row(fh, "m.2", 1, "http://u/2", "http://p", "0", None, jpg)
    (d / "manifest.csv").write_text(
        "origin,identity,file,sha256\na:1,m.1,faces.tsv:1,x\na:2,m.1,faces.tsv:2,x\na:3,m.2,faces.tsv:3,x\n"
    )
    truth = load_truth(d)
    preds = write(
        tmp_path / "p",
        [
            "http://u/1\t0\tm.1\t0.7",
            "http://u/1\t1\tm.2\t0.7",
            "http://u/2\t0\tm.2\t0.2",
            "http://u/3\t0\tm.2\t1",
        ],
    )
    ev = evaluate(truth, preds)
    assert (ev.total, ev.answered, ev.correct, ev.unmatched) == (3, 3, 2, 1)
    assert ev.coverage_at(0.6) == (pytest.approx(1.0), 0.2)
    assert ev.coverage_at(0.9) == (0.0, None)


def test_plot_is_a_png(truth, tmp_path):
    ev = evaluate(truth, write(tmp_path / "p", ["A/1.jpg\tA\t0.9", "B/1.jpg\tX\t0.5"]))
    out = tmp_path / "curve.png"
    save_figure(curve_figure(ev), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_not_an_export(tmp_path):
    with pytest.raises(AnnotatorError, match="not an annotator export"):
        load_truth(tmp_path)


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"origin,who\nx,m.1\n", "no file or identity column"),
        (b"file,identity\nx\n", "too few columns"),
        (b"\xff\xfe\x00\x01binary", "not UTF-8"),
    ],
)
def test_damaged_manifest_csv_is_one_clear_error(tmp_path, raw, why):
    (tmp_path / "manifest.json").write_text(json.dumps({"filters": {"format": "csv"}}))
    (tmp_path / "manifest.csv").write_bytes(raw)
    with pytest.raises(AnnotatorError, match=why):
        load_truth(tmp_path)


def test_no_prediction_matching_a_test_face_is_an_error_that_says_how_faces_match(truth, tmp_path):
    from click.testing import CliRunner

    from annotator.cli.main import cli
    from annotator.core.evaluate import require_matches

    preds = write(tmp_path / "pred.tsv", ["set/A/1.jpg\tA\t0.9", "x.jpg\tB\t0.5"])
    ev = evaluate(truth, preds)
    with pytest.raises(AnnotatorError) as e:
        require_matches(truth, ev)
    msg = str(e.value)
    assert msg.startswith("no prediction matched any test face (2 line(s) named no test face")
    assert "line 1: 'set/A/1.jpg'" in msg
    assert "file column of the export's manifest.csv" in msg
    assert "relative to the export folder" in msg
    r = CliRunner().invoke(
        cli, ["evaluate", "--truth", str(tmp_path / "set"), "--predictions", str(preds)]
    )
    assert r.exit_code == 1
    assert r.output.splitlines() == [f"error: {msg}"]
    # one matching line is enough to score
    require_matches(truth, evaluate(truth, write(tmp_path / "ok.tsv", ["A/1.jpg\tB\t0.1"])))


def test_prediction_lines_that_are_not_utf8_are_bad_lines(truth, tmp_path):
    """Issue 20 #13: a damaged line used to be read with U+FFFD (a wrong answer counted, or an
    unmatched face); now it is a bad line, and a NUL too. CRLF and a BOM are fine."""
    preds = tmp_path / "pred.tsv"
    preds.write_bytes(
        b"\xef\xbb\xbfA/1.jpg\tA\t0.9\r\n"
        b"B/1.jpg\tB\xff\t0.8\n"  # line 2: the MID is damaged
        b"C/1.jpg\tC\x00\t0.7\n"  # line 3: NUL
        b"D/1.jpg\tD\t0.6\n"
    )
    ev = evaluate(truth, preds)
    assert [(r.origin, r.reason) for r in ev.bad_lines] == [
        ("pred.tsv:2", "not UTF-8 text"),
        ("pred.tsv:3", "NUL byte in the line"),
    ]
    assert (ev.answered, ev.correct, ev.unmatched) == (2, 2, 0)
