"""How often the raw-noise interval covers the demo's true rate, by sample size, and how far the
old estimate (labels taken in review order) is from it.

Draws the demo (``--identities``, default 40), imports it into a temporary project, and for each
sample size draws ``--samples`` seeded uniformly random samples with
``core.review.qa.random_sample`` and scores them with ``estimate_from_verdicts`` (a perfect
reviewer: the demo's truth labels). The baseline in the same run is what `stats` used to say:
the noise rate of the first K faces in the reviewer's order (identities most suspicious first
needs a scan; here the faces of the noisiest identities first, the same bias) with a Wilson
interval as if it were a random sample.

    python3 tests/bench/bench_noise_estimate.py [--identities 40] [--samples 200]

Prints one JSON object; figures go in docs/MEASUREMENTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from annotator.cli.demo_cmd import truth_labels  # noqa: E402
from annotator.core.importer import import_source  # noqa: E402
from annotator.core.review import qa  # noqa: E402
from annotator.core.review.statistics import wilson  # noqa: E402
from annotator.demo.dataset import generate_demo  # noqa: E402
from annotator.store import qa as qa_store  # noqa: E402
from annotator.store.db import open_project  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=40)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--sizes", default="30,60,120,240")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        generate_demo(d, identities=a.identities, seed=0)
        truth = truth_labels(json.loads((d / "truth.json").read_text(encoding="utf-8")))
        with open_project(d / "p.db", create=True) as p:
            import_source(p, "msceleb", d / "faces.tsv")
            lines = dict(p.conn.execute("SELECT record, id FROM faces"))
            ids = qa_store.all_face_ids(p)
            ident = dict(p.conn.execute("SELECT id, identity_id FROM faces"))
    by_face = {int(lines[n]): lab for n, lab in truth.items()}
    noisy = {f for f, lab in by_face.items() if lab in qa.NOISY_VERDICTS}
    true_rate = len(noisy) / len(by_face)
    out: dict[str, object] = {"faces": len(ids), "true_rate": round(true_rate, 4), "random": {}}
    for n in (int(x) for x in a.sizes.split(",")):
        covered, width, mean = 0, 0.0, 0.0
        for seed in range(a.samples):
            e = qa.estimate_from_verdicts(
                [by_face[int(ids[int(i)])] for i in qa.random_sample(len(ids), n, seed)]
            )
            lo, hi = e["ci95"]
            covered += lo <= true_rate <= hi
            width += hi - lo
            mean += e["rate"]
        out["random"][str(n)] = {  # type: ignore[index]
            "coverage": round(covered / a.samples, 3),
            "mean_width": round(width / a.samples, 4),
            "mean_rate": round(mean / a.samples, 4),
        }
    # baseline: faces of the noisiest identities first (review order is most suspicious first)
    per: dict[int, list[int]] = {}
    for f in by_face:
        per.setdefault(ident[f], []).append(f)
    order = sorted(per, key=lambda i: -sum(f in noisy for f in per[i]) / len(per[i]))
    faces = [f for i in order for f in sorted(per[i])]
    base = {}
    for k in (5, 10):
        first = [f for i in order[:k] for f in per[i]]
        bad = sum(f in noisy for f in first)
        lo, hi = wilson(bad, len(first)) or (0.0, 0.0)
        base[f"first {k} identities"] = {
            "faces": len(first),
            "rate": round(bad / len(first), 4),
            "ci95": [round(lo, 4), round(hi, 4)],
            "covers": lo <= true_rate <= hi,
        }
    out["review_order_baseline"] = base
    out["faces_in_review_order"] = len(faces)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
