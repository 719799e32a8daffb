"""`annotator embed`: CPU milliseconds a face -- the network alone against the FLOP limit, the
whole command on drawn crops -- and, with ``--quality``, how well each alignment separates the
demo's drawn identities.

Speed (default), all in one process, one core, so the ratios compare like with like:

* the FLOP limit: a one-thread NumPy float32 matrix product (GFLOPS, best of a few), and what
  0.542 GFLOP a face (dlib's ResNet: 29 convolutions, 270.9 M multiply-adds) costs at that rate;
* the network alone on onnxruntime (core/identity/engine.py, one intra-op thread) at batches of
  1, 16 and 64 chips and graph optimisation ``all`` (NCHWc layouts, fusions) against
  ``extended``, and dlib's own run of the same weights on a few chips; each as ms a face and as
  a ratio to the limit;
* the whole ``embed(workers=1)`` with ``--align box`` (the default: dlib's 5 landmarks on each
  face's rectangle) and ``--align template`` (read, decode, landmarks, the chip, the network,
  the store, the identity check at the end) on ``--faces`` drawn crops of 112 px and of 150 px,
  each row with its FaceRectangle as in MS-Celeb's TSV, imported and scanned first; its stages
  on 512 of the faces; and 10M faces extrapolated in core-hours.

Quality (``--quality``): for each alignment (``box``, ``template``, ``chip``, ``crop``), with each face's
TRUE identity from the demo's truth.json: mean intra- and inter-identity distance, d', nearest
-centre accuracy, and for the injected wrong-identity faces the AUC and the precision at recall
0.8 of "distance to the filed identity's median" and of the margin against the nearest other
identity's median.

    python3 tests/bench/bench_embed.py                  # speed, 10,000 faces a size
    python3 tests/bench/bench_embed.py --faces 1000     # shorter
    python3 tests/bench/bench_embed.py --no-network --rounds 2   # the whole embed only, twice
    python3 tests/bench/bench_embed.py --quality [--identities 40] [--align template]
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


GFLOP_A_FACE = 0.542  # dlib's ResNet: 270.9 M multiply-adds a 150x150 chip


def flop_limit() -> float:
    """GFLOPS of a one-thread float32 matrix product (best of 5 runs of 1024x1024x1024)."""
    from annotator.core.infra.blas import one_blas_thread

    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    best = 0.0
    with one_blas_thread():
        a @ b
        for _ in range(5):
            c0 = _cpu()
            for _ in range(4):
                a @ b
            best = max(best, 4 * 2 * 1024**3 / max(_cpu() - c0, 1e-9) / 1e9)
    return best


def network_ms(run, chips: np.ndarray, batch: int, seconds: float = 4.0) -> float:
    """CPU ms a face of ``run(chips[i:i+batch])`` over at least ``seconds`` of CPU."""
    run(chips[:batch])  # warm-up
    n, c0 = 0, _cpu()
    while _cpu() - c0 < seconds:
        for s in range(0, len(chips), batch):
            run(chips[s : s + batch])
        n += len(chips)
    return (_cpu() - c0) / n * 1000


def speed(n_faces: int, rounds: int = 1, network: bool = True) -> None:
    from annotator.core.identity import embed as E

    lm, dat = E.require_extra()
    gflops = flop_limit()
    limit = GFLOP_A_FACE / gflops * 1000
    print(f"FLOP limit: one-thread float32 matmul {gflops:.0f} GFLOPS -> {limit:.2f} ms a face")
    if network:
        network_alone(E, dat, limit)
    for size in (112, 150):
        whole(E, n_faces, size, limit, rounds)


def network_alone(E, dat: str, limit: float) -> None:
    from annotator.core.identity import engine

    chips = np.random.default_rng(0).integers(0, 256, (64, 150, 150, 3), dtype=np.uint8)
    rows = []
    for opt in ("all", "extended"):
        eng = engine.Engine(dat, optimization=opt)
        for batch in (1, 16, 64) if opt == "all" else (16,):
            rows.append((f"onnxruntime {opt}, batch {batch}", network_ms(eng.run, chips, batch)))
    import dlib

    rec = dlib.face_recognition_model_v1(dat)
    rows.append(
        (
            "dlib, batch 16",
            network_ms(lambda c: rec.compute_face_descriptor(list(c)), chips[:16], 16, 2.0),
        )
    )
    print("network alone (CPU ms a face, ratio to the FLOP limit):")
    for name, ms in rows:
        print(f"  {name:<32} {ms:7.2f} ms  {ms / limit:5.2f}x")


ALIGNS = ("box", "template")  # the default, and the one without landmarks on every face


def whole(E, n_faces: int, size: int, limit: float, rounds: int = 1) -> None:
    """The whole ``embed(workers=1)`` with each of :data:`ALIGNS` on ``n_faces`` drawn crops
    of ``size`` px, each with its FaceRectangle (the demo's TSV gives the box it drew the face
    in, as MS-Celeb's does); every run on a fresh copy of the same imported, scanned project, so
    each pays what a first run pays (the template's landmarks on 300 faces, the identity check)
    and the alignments alternate ``rounds`` times in the same process."""
    import shutil

    from annotator.core.importer import import_source
    from annotator.core.scan import scan
    from annotator.demo.dataset import generate_demo
    from annotator.store.db import open_project

    with tempfile.TemporaryDirectory() as tmp:
        per = 20
        r = generate_demo(
            tmp, identities=max(2, n_faces // per), faces_per_identity=(per, per), seed=0, size=size
        )
        base = Path(tmp) / "scanned.db"
        p = open_project(base, create=True)
        import_source(p, "msceleb", r.faces_tsv)
        scan(p, workers=1)
        with_rect = p.conn.execute("SELECT count(*) FROM faces WHERE rect_x0 IS NOT NULL")
        rects = with_rect.fetchone()[0]
        p.close()
        for _ in range(rounds):
            for align in ALIGNS:
                work = Path(tmp) / "work.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{work}{suffix}").unlink(missing_ok=True)
                shutil.copyfile(base, work)
                p = open_project(work)
                near = GFLOP_A_FACE / flop_limit() * 1000  # the limit now (the load drifts)
                c0, t0 = _cpu(), time.perf_counter()
                res = E.embed(p, workers=1, align=align)
                cpu, wall = _cpu() - c0, time.perf_counter() - t0
                parts = stages(E, p, res)
                p.close()
                n = max(res.embedded, 1)
                ms = cpu / n * 1000
                print(
                    f"whole embed --align {align}, {size} px drawn crops: {res.embedded:,} faces "
                    f"({rects:,} of the project's faces with a rectangle; {res.fallback} fell "
                    f"back), {ms:.2f} ms CPU a face ({wall / n * 1000:.2f} ms wall), "
                    f"{ms / limit:.2f}x the FLOP limit ({ms / near:.2f}x the limit measured "
                    f"just before: {near:.2f} ms); 10M faces: "
                    f"{ms * 1e7 / 1000 / 3600:.1f} core-hours"
                )
                print(
                    "  of which (CPU ms a face, on 512 of them): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
                    + f"; the rest (store, template, identity check, ...) "
                    f"{ms - sum(parts.values()):.2f}"
                )


def stages(E, p, res, n: int = 512) -> dict[str, float]:
    """CPU ms a face of each stage of embed_planned, on the first ``n`` embedded faces of the
    run ``res``: read, decode, landmarks (``box``: dlib's 5 points on the face's rectangle and
    the plausibility check), chip (dlib's), network."""
    from annotator.core.identity import align as A
    from annotator.core.infra.access import FaceBytes, read_planned
    from annotator.store import embeddings as store

    ids = [int(i) for i in store.load_embeddings(p, res.model)[0][:n]]
    rects = store.face_rects(p, ids)
    dlib, sp = E._MODELS["dlib"], E._MODELS["sp"]
    fb = FaceBytes(p)
    c0 = _cpu()
    plan = fb.plan(ids)
    data = list(read_planned(plan, errors="return"))
    c1 = _cpu()
    imgs = [E.decode_rgb(d) for d in data]
    c2 = _cpu()
    if res.align == "box":
        shapes = [
            A.box_shape(dlib, sp, img, rects.get(i))[0] for i, img in zip(ids, imgs, strict=True)
        ]
    else:
        shapes = [E.template_shape(res.template, im.shape[1], im.shape[0]) for im in imgs]
    c3 = _cpu()
    chips = np.stack(
        [
            A.chip_of(dlib, img, s)
            if s is not None
            else A.box_chip(dlib, sp, img, rects.get(i), res.template)[0]
            for i, img, s in zip(ids, imgs, shapes, strict=True)
        ]
    )
    c4 = _cpu()
    for s in range(0, len(chips), E.CHUNK):
        E._MODELS["rec"].run(chips[s : s + E.CHUNK])
    c5 = _cpu()
    fb.close()
    k = 1000 / max(len(ids), 1)
    return {
        "read": (c1 - c0) * k,
        "decode": (c2 - c1) * k,
        "landmarks": (c3 - c2) * k,
        "chip": (c4 - c3) * k,
        "network": (c5 - c4) * k,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--faces", type=int, default=10000, help="drawn faces a crop size (speed)")
    ap.add_argument("--rounds", type=int, default=1, help="box/template alternations (speed)")
    ap.add_argument("--no-network", action="store_true", help="speed: skip the network alone")
    ap.add_argument("--quality", action="store_true", help="alignment quality instead of speed")
    ap.add_argument("--identities", type=int, default=40, help="demo size (--quality)")
    ap.add_argument("--quick", action="store_true", help="--quality on 8 identities")
    ap.add_argument("--align", choices=["box", "template", "chip", "crop", "all"], default="all")
    ap.add_argument("--workers", type=int, default=0, help="--quality: also time N workers")
    a = ap.parse_args()
    if not a.quality:
        speed(a.faces, a.rounds, not a.no_network)
        return
    n_ident = 8 if a.quick else a.identities
    from annotator.core.dedup.hashing import hash_planned
    from annotator.core.identity import embed as E
    from annotator.core.importer import import_source
    from annotator.core.infra.access import FaceBytes
    from annotator.core.scan import scan
    from annotator.demo.dataset import generate_demo
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
