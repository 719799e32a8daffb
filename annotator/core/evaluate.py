"""Score a recogniser on an exported test set with the MS-Celeb-1M protocol.

Truth: an export folder (its ``manifest.json`` names the format). For ``msceleb`` exports
faces are matched by (ImageURL, FaceID) from ``faces.tsv``; for every format they can also be
matched by the ``file`` column of ``manifest.csv`` (for ``folder`` exports: the image path
relative to the export folder).

Predictions: ``ImageURL<TAB>FaceID<TAB>MID<TAB>confidence`` (the challenge's submission format)
or ``file<TAB>MID<TAB>confidence``. Blank lines and lines starting with ``#`` are skipped; bad
lines are reported with their line numbers and skipped.

Sweeping a threshold t over the distinct confidences (a prediction counts when its confidence is
>= t, so tied confidences enter together): precision = correct / answered, coverage = answered /
all test faces. ``coverage@p`` is the largest coverage whose precision is >= p (0 when none).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from annotator.formats import msceleb, physical_lines
from annotator.model import AnnotatorError, FaceRecord, Rejected

PRECISIONS = (0.95, 0.99)
MAX_REPORTED = 50  # bad / unmatched lines listed in full; the counts are always complete


@dataclass
class Truth:
    mids: list[str]  # identity of test face i
    keys: dict[tuple[str, ...], int]  # ('u', url, face id) or ('f', file) -> face index
    format: str


@dataclass
class CurvePoint:
    threshold: float
    answered: int
    correct: int

    def precision(self) -> float:
        return self.correct / self.answered if self.answered else 1.0


@dataclass
class Evaluation:
    total: int  # test faces
    answered: int  # test faces with a prediction
    correct: int  # ... whose MID is right
    unmatched: int  # prediction lines that name no test face
    curve: list[CurvePoint]
    bad_lines: list[Rejected] = field(default_factory=list)
    bad_count: int = 0
    unmatched_lines: list[Rejected] = field(default_factory=list)

    @property
    def top1(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def coverage_at(self, p: float) -> tuple[float, float | None]:
        """(largest coverage with precision >= p, the threshold giving it) — (0, None) if none."""
        best, thr = 0.0, None
        for pt in self.curve:
            cov = pt.answered / self.total if self.total else 0.0
            if pt.precision() >= p - 1e-12 and cov > best:
                best, thr = cov, pt.threshold
        return best, thr

    def to_json(self) -> dict[str, object]:
        cov = {}
        for p in PRECISIONS:
            c, t = self.coverage_at(p)
            cov[f"{p:.2f}"] = {"coverage": c, "threshold": t}
        return {
            "test_faces": self.total,
            "answered": self.answered,
            "correct": self.correct,
            "unmatched": self.unmatched,
            "top1_accuracy": self.top1,
            "precision_at_full_coverage": (self.correct / self.answered) if self.answered else None,
            "coverage_at_precision": cov,
            "bad_lines": self.bad_count,
            "bad": [{"line": r.record, "reason": r.reason} for r in self.bad_lines],
            "unmatched_examples": [
                {"line": r.record, "key": r.origin} for r in self.unmatched_lines
            ],
            "curve": [
                {
                    "threshold": pt.threshold,
                    "coverage": pt.answered / self.total if self.total else 0.0,
                    "precision": pt.precision(),
                }
                for pt in self.curve
            ],
        }


def _norm_file(s: str) -> str:
    s = s.strip().replace("\\", "/")
    while s.startswith("./"):
        s = s[2:]
    return s


def load_truth(export_dir: str | Path) -> Truth:
    """The test faces of an export folder and their identities."""
    d = Path(export_dir)
    mpath = d / "manifest.json"
    if not mpath.is_file():
        raise AnnotatorError(f"{d} is not an annotator export (no manifest.json)")
    try:
        fmt = str(json.loads(mpath.read_text(encoding="utf-8"))["filters"]["format"])
    except (ValueError, KeyError, TypeError) as e:
        raise AnnotatorError(f"{mpath}: unreadable manifest ({e})") from None
    mids: list[str] = []
    keys: dict[tuple[str, ...], int] = {}
    csv_path = d / "manifest.csv"
    if not csv_path.is_file():
        raise AnnotatorError(f"{d}: manifest.csv is missing")
    try:
        with open(csv_path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"file", "identity"} - set(reader.fieldnames or ())
            if missing:
                raise AnnotatorError(
                    f"{csv_path}: not an export manifest (no {' or '.join(sorted(missing))} column)"
                )
            for row in reader:
                if row["file"] is None or row["identity"] is None:
                    raise AnnotatorError(f"{csv_path}:{reader.line_num}: too few columns")
                keys[("f", _norm_file(row["file"]))] = len(mids)
                mids.append(row["identity"])
    except UnicodeDecodeError:
        raise AnnotatorError(f"{csv_path}: not UTF-8 text (not an export manifest)") from None
    except csv.Error as e:
        raise AnnotatorError(f"{csv_path}: unreadable CSV ({e})") from None
    if fmt == "msceleb":
        tsv = d / "faces.tsv"
        if not tsv.is_file():
            raise AnnotatorError(f"{d}: faces.tsv is missing")
        by_file = {k[1]: i for k, i in keys.items()}
        for _pos, _line, item in msceleb.read_aligned(tsv):
            if isinstance(item, FaceRecord):
                i = by_file.get(f"faces.tsv:{item.record}")
                if i is None:  # manifest.csv and faces.tsv disagree: trust the TSV
                    i = len(mids)
                    mids.append(item.identity_key)
                keys[("u", item.image_url or "", item.face_ref or "")] = i
    return Truth(mids, keys, fmt)


def _lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text) of a predictions file, None for a line that is not UTF-8
    (:func:`annotator.formats.physical_lines` counts the lines)."""
    try:
        with open(path, "rb") as fh:
            for n, raw in physical_lines(fh):
                assert raw is not None  # no max_line: every line is whole
                try:
                    yield n, raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield n, None
    except OSError as e:
        raise AnnotatorError(f"cannot read {path}: {e.strerror or e}") from None


def evaluate(truth: Truth, predictions: str | Path) -> Evaluation:
    """Score ``predictions`` (a file) against ``truth``."""
    p = Path(predictions)
    if not p.is_file():
        raise AnnotatorError(f"no predictions file at {p}")
    pred: dict[int, tuple[float, bool, int]] = {}  # face -> (confidence, correct, line)
    bad: list[Rejected] = []
    bad_count = 0
    unmatched: list[Rejected] = []
    n_unmatched = 0

    def reject(line: int, reason: str) -> None:
        nonlocal bad_count
        bad_count += 1
        if len(bad) < MAX_REPORTED:
            bad.append(Rejected(f"{p.name}:{line}", reason, line))

    for n, line in _lines(p):
        if line is None:
            reject(n, "not UTF-8 text")
            continue
        if "\0" in line:
            reject(n, "NUL byte in the line")
            continue
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) == 4:
            key: tuple[str, ...] = ("u", parts[0].strip(), parts[1].strip())
        elif len(parts) == 3:
            key = ("f", _norm_file(parts[0]))
        else:
            reject(n, f"expected 3 or 4 tab-separated fields, found {len(parts)}")
            continue
        mid, conf_s = parts[-2].strip(), parts[-1].strip()
        if not mid:
            reject(n, "empty MID")
            continue
        try:
            conf = float(conf_s)
            if not math.isfinite(conf):
                raise ValueError
        except ValueError:
            reject(n, f"confidence {conf_s!r} is not a finite number")
            continue
        face = truth.keys.get(key)
        if face is None:
            n_unmatched += 1
            if len(unmatched) < MAX_REPORTED:
                unmatched.append(Rejected("\t".join(key[1:]), "no such test face", n))
            continue
        if face in pred:
            reject(n, f"second prediction for the same face (first on line {pred[face][2]})")
            continue
        pred[face] = (conf, mid == truth.mids[face], n)
    ordered = sorted(pred.values(), key=lambda v: -v[0])
    curve: list[CurvePoint] = []
    answered = correct = 0
    i = 0
    while i < len(ordered):
        t = ordered[i][0]
        while i < len(ordered) and ordered[i][0] == t:  # ties enter together
            answered += 1
            correct += ordered[i][1]
            i += 1
        curve.append(CurvePoint(t, answered, correct))
    return Evaluation(
        len(truth.mids), answered, correct, n_unmatched, curve, bad, bad_count, unmatched
    )


def require_matches(truth: Truth, ev: Evaluation) -> None:
    """Refuse a score when no prediction line named a test face (every figure would be 0):
    the error says how many lines there were and how a line names a test face."""
    if ev.answered or not truth.mids:
        return
    how = (
        "a line names a test face by the file column of the export's manifest.csv "
        "(file<TAB>MID<TAB>confidence; the path relative to the export folder)"
    )
    if truth.format == "msceleb":
        how += " or by ImageURL and FaceID as in its faces.tsv (ImageURL<TAB>FaceID<TAB>MID<TAB>confidence)"
    example = ""
    if ev.unmatched_lines:
        r = ev.unmatched_lines[0]
        example = f", e.g. line {r.record}: {r.origin!r}"
    counts = f"{ev.unmatched:,} line(s) named no test face{example}"
    if ev.bad_count:
        counts += f", {ev.bad_count:,} bad line(s) skipped"
    raise AnnotatorError(f"no prediction matched any test face ({counts}); {how}")


def curve_figure(ev: Evaluation):  # -> matplotlib.figure.Figure
    """Precision against coverage, with the 0.95 / 0.99 precision levels marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot()
    cov = [0.0] + [pt.answered / ev.total for pt in ev.curve] if ev.total else [0.0]
    prec = [1.0] + [pt.precision() for pt in ev.curve] if ev.total else [1.0]
    ax.step(cov, prec, where="post", color="C0", label="precision vs coverage")
    for p, color in zip(PRECISIONS, ("C1", "C3"), strict=True):
        c, _t = ev.coverage_at(p)
        ax.axhline(p, color=color, lw=0.8, ls="--")
        ax.plot([c], [p], "o", color=color, label=f"coverage@{p:.2f} = {c:.3f}")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(max(0.0, min(prec + [0.9]) - 0.02), 1.005)
    ax.set_xlabel("coverage (answered / all test faces)")
    ax.set_ylabel("precision (correct / answered)")
    ax.set_title(f"MS-Celeb-1M protocol — {ev.total} faces, top-1 {ev.top1:.3f}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path) -> None:  # noqa: ANN001
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(str(path), format="png")
