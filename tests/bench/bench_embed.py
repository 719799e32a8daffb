"""`annotator embed`: milliseconds per face per core, and how well the embeddings separate the
demo's drawn identities under each alignment.

On a demo of ``--identities`` invented people (imported and scanned first):

* speed — CPU time per face of ``embed(workers=1)`` (one core: decode, 5-point landmarks, chip,
  ResNet), against the baseline measured in the same run on the same faces: the scan's hash
  stage (``hash_planned``: decode, SHA-256, pHash, dHash...). Reported as ms/face and the ratio.
  With ``--workers N`` also the wall time of the pool (faces/s).
* quality — for each alignment (``box``: landmarks on each face's rectangle, which the demo
  writes where it draws the face, + dlib's face chip; ``template``: the project's median
  landmarks + dlib's face chip; ``chip``: each crop's own landmarks + dlib's face chip;
  ``crop``: the whole crop resized), with each face's TRUE identity from the demo's truth.json:
  mean intra- and inter-identity distance, d' = (inter - intra) / pooled sd, nearest-centre
  accuracy (leave-one-out centres of the true identities), and for the injected
  wrong-identity faces the AUC and the precision at recall 0.8 of two scores: "distance to the
  median of the identity the face is filed under", and the margin "that distance (face left
  out) minus the distance to the nearest other identity's median".

    python3 tests/bench/bench_embed.py                 # 40 identities (the default demo)
    python3 tests/bench/bench_embed.py --quick         # 8 identities
    python3 tests/bench/bench_embed.py --workers 2 --align template
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def quality(E: np.ndarray, true: np.ndarray, filed: np.ndarray, wrong: np.ndarray) -> dict:
    E = E.astype(np.float64)
    D = np.sqrt(np.maximum(((E[:, None] - E[None]) ** 2).sum(-1), 0))
    iu = np.triu_indices(len(E), 1)
    same = (true[:, None] == true[None])[iu]
    intra, inter = D[iu][same], D[iu][~same]
    dprime = (inter.mean() - intra.mean()) / np.sqrt((intra.var() + inter.var()) / 2)
    ids = np.unique(true)
    ok = 0
    for k in range(len(E)):
        best = None
        for i in ids:
            m = true == i
            m[k] = False
            if not m.any():
                continue
            d = np.linalg.norm(E[k] - E[m].mean(0))
            if best is None or d < best[0]:
                best = (d, i)
        ok += best is not None and best[1] == true[k]
    score = np.array(
        [np.linalg.norm(E[k] - np.median(E[filed == filed[k]], 0)) for k in range(len(E))]
    )
    # margin: distance to its own identity's median (without the face) minus the distance to
    # the nearest other identity's median: > 0 means "looks more like someone else"
    names = np.unique(filed)
    med = {n: np.median(E[filed == n], 0) for n in names}
    margin = np.empty(len(E))
    for k in range(len(E)):
        m = filed == filed[k]
        m[k] = False
        own = np.linalg.norm(E[k] - np.median(E[m], 0)) if m.any() else 0.0
        other = min(np.linalg.norm(E[k] - med[n]) for n in names if n != filed[k])
        margin[k] = own - other
    auc, p80 = _rank(score, wrong)
    m_auc, m_p80 = _rank(margin, wrong)
    return {
        "intra": round(float(intra.mean()), 3),
        "inter": round(float(inter.mean()), 3),
        "dprime": round(float(dprime), 2),
        "nearest_centre_acc": round(ok / len(E), 3),
        "wrong_identity_auc": round(auc, 3),
        "wrong_precision_at_recall_0.8": round(p80, 3),
        "margin_auc": round(m_auc, 3),
        "margin_precision_at_recall_0.8": round(m_p80, 3),
        "margin_positive": f"{int((margin[wrong] > 0).sum())}/{int(wrong.sum())} wrong, "
        f"{int((margin[~wrong] > 0).sum())}/{int((~wrong).sum())} others",
    }


def _rank(score: np.ndarray, wrong: np.ndarray) -> tuple[float, float]:
    """(AUC, precision at recall 0.8) of ``score`` (high = suspect) for the wrong faces."""
    pos, neg = score[wrong], score[~wrong]
    auc = float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())
    hits = np.cumsum(wrong[np.argsort(-score)])
    k80 = int(np.searchsorted(hits, 0.8 * wrong.sum())) + 1
    return auc, float(0.8 * wrong.sum() / k80)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--identities", type=int, default=40)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=0, help="also time a pool of N workers")
    ap.add_argument("--align", choices=["box", "template", "chip", "crop", "all"], default="all")
    a = ap.parse_args()
    n_ident = 8 if a.quick else a.identities

    from annotator.core.dedup.hashing import hash_planned
    from annotator.core.identity import embed as E
    from annotator.core.importer import import_source
    from annotator.core.infra.access import FaceBytes
    from annotator.core.scan import scan
    from annotator.demo import generate_demo
    from annotator.store import embeddings as store
    from annotator.store.db import open_project

    with tempfile.TemporaryDirectory() as tmp:
        r = generate_demo(tmp, identities=n_ident, seed=0)
        truth = json.loads(Path(r.truth_json).read_text())
        p = open_project(Path(tmp) / "p.db", create=True)
        import_source(p, "msceleb", r.faces_tsv)
        scan(p, workers=1)
        line_of = dict(p.conn.execute("SELECT id, record FROM faces"))
        key_of = dict(p.conn.execute("SELECT id, key FROM identities"))
        ids = store.faces_to_embed(p, E.model_id("chip")).tolist()
        print(f"demo: {n_ident} identities, {len(ids)} decodable faces")

        # baseline: the scan's hash stage on the same faces, one core
        fb = FaceBytes(p)
        plan = fb.plan(ids)
        c0 = _cpu()
        hash_planned(plan)
        base = (_cpu() - c0) / len(ids) * 1000
        fb.close()

        aligns = ["box", "template", "chip", "crop"] if a.align == "all" else [a.align]
        for align in aligns:
            c0, t0 = _cpu(), time.perf_counter()
            res = E.embed(p, workers=1, align=align)
            cpu = (_cpu() - c0) / max(res.embedded, 1) * 1000
            wall = (time.perf_counter() - t0) / max(res.embedded, 1) * 1000
            print(
                f"{align}: {cpu:.1f} ms CPU per face per core ({wall:.1f} ms wall), "
                f"{cpu / base:.1f}x the hash stage ({base:.2f} ms/face)"
            )
            faces, idents, vecs = store.load_embeddings(p, res.model)
            filed = np.array([key_of[int(i)] for i in idents])
            lines = [line_of[int(f)] for f in faces]
            true = np.array(
                [truth["true_identity"].get(str(n), k) for n, k in zip(lines, filed, strict=True)]
            )
            wrong = np.isin(lines, truth["wrong_identity"])
            print(f"  {align} quality: {quality(vecs, true, filed, wrong)}")
        if a.workers:
            with p.tx() as c:
                c.execute("DELETE FROM face_embeddings")
            t0 = time.perf_counter()
            res = E.embed(p, workers=a.workers, align=aligns[0])
            dt = time.perf_counter() - t0
            print(
                f"pool of {a.workers}: {res.embedded / dt:.1f} faces/s "
                f"({dt / res.embedded * 1000 * a.workers:.1f} ms wall per face per worker)"
            )
        p.close()


if __name__ == "__main__":
    main()
