"""LFW's verification protocol through the tool's own pipeline, for each `annotator embed --align`.

``--photos DIR`` is a folder in the layout of ``../shared/lfw`` (its README): ``index.tsv``
(path, name, LFW photo count, FaceRectangle x0 y0 x1 y1 as fractions of the crop, score) and
``dev_pairs.txt`` (``fold<TAB>`` then a line of LFW's pairs.txt: ``Name n1 n2`` = same person,
``Name1 n1 Name2 n2`` = different). A user can measure the tool on their own verified photos
the same way. Nothing of DIR is written anywhere but a temporary folder (``--work``, default
a fresh one under /tmp, removed afterwards unless given).

The crops named by the pairs are written as one MS-Celeb TSV (a row per crop, its
FaceRectangle from index.tsv, the crop's JPEG bytes unchanged, one identity key per person),
imported (``core.importer``), scanned (``core.scan``) and embedded by ``core.identity.embed``
once per alignment; the stored vectors are read back from the project. The protocol: the
Euclidean distance of each pair, 10 folds, each fold's threshold the one that classifies the
other 9 folds best; accuracy = mean over folds (± their standard deviation, as dlib reports
its 99.38 % ± 0.27 on the full LFW). Pairs naming a crop missing from DIR are left out and
counted. Speed: embed's wall time per alignment, as a ratio to ``template``'s in the same run.

    python3 tests/bench/bench_lfw_protocol.py --photos ../shared/lfw
    python3 tests/bench/bench_lfw_protocol.py --photos ../shared/lfw --align box --align template
    python3 tests/bench/bench_lfw_protocol.py --photos ../shared/lfw --folds 2   # quicker: 2 folds' faces
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402

DLIB_PUBLISHED = (99.38, 0.27)  # dlib_face_recognition_resnet_model_v1 on LFW (dlib.net)
FOLDS = 10


def read_index(photos: Path) -> dict[str, tuple[str, tuple[float, float, float, float]]]:
    """file name (``Name_0001.jpg``) -> (path relative to DIR, FaceRectangle)."""
    out = {}
    with open(photos / "index.tsv", encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        col = {c: i for i, c in enumerate(header)}
        for line_no, line in enumerate(fh, 2):
            f = line.rstrip("\n").split("\t")
            try:
                rect = tuple(float(f[col[c]]) for c in ("x0", "y0", "x1", "y1"))
                out[Path(f[col["path"]]).name] = (f[col["path"]], rect)
            except (IndexError, KeyError, ValueError):
                print(f"index.tsv:{line_no}: bad row, skipped", file=sys.stderr)
    return out


def read_pairs(photos: Path) -> list[tuple[int, str, str, bool]]:
    """(fold, file a, file b, same person) of dev_pairs.txt."""
    out = []
    with open(photos / "dev_pairs.txt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            f = line.split()
            try:
                if len(f) == 4:
                    a, b = (f"{f[1]}_{int(n):04d}.jpg" for n in f[2:4])
                    out.append((int(f[0]), a, b, True))
                elif len(f) == 5:
                    a, b = f"{f[1]}_{int(f[2]):04d}.jpg", f"{f[3]}_{int(f[4]):04d}.jpg"
                    out.append((int(f[0]), a, b, False))
                else:
                    raise ValueError
            except ValueError:
                print(f"dev_pairs.txt:{line_no}: bad row, skipped", file=sys.stderr)
    return out


def write_tsv(photos: Path, files: list[str], index: dict, tsv: Path) -> list[str]:
    """One MS-Celeb row per crop (line i+1 = files[i]); identity key per person."""
    from annotator.formats.msceleb import write_row

    keys: dict[str, str] = {}
    with open(tsv, "wb") as fh:
        for i, name in enumerate(files):
            rel, rect = index[name]
            person = name.rsplit("_", 1)[0]
            key = keys.setdefault(person, f"m.lfw{len(keys):05d}")
            write_row(fh, key, i, None, None, f"F{i}", rect, (photos / rel).read_bytes())
    return files


def protocol(dist: np.ndarray, same: np.ndarray, fold: np.ndarray) -> tuple[float, float]:
    """(mean, sd) over folds of the accuracy at the threshold best on the other folds."""
    accs = []
    for k in np.unique(fold):
        tr, te = fold != k, fold == k
        d, s = dist[tr], same[tr]
        cand = np.unique(d)
        cuts = np.concatenate([[cand[0] - 1e-6], (cand[1:] + cand[:-1]) / 2, [cand[-1] + 1e-6]])
        # accuracy of "same if distance < cut" for every cut, by sorting once
        order = np.argsort(d)
        ds, ss = d[order], s[order]
        pos = np.searchsorted(ds, cuts)  # pairs below the cut: called same
        same_below = np.concatenate([[0], np.cumsum(ss)])[pos]
        diff_above = (~ss).sum() - (pos - same_below)
        best = cuts[int(np.argmax(same_below + diff_above))]
        accs.append(float(((dist[te] < best) == same[te]).mean()))
    return 100 * float(np.mean(accs)), 100 * float(np.std(accs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", required=True, type=Path, help="folder in ../shared/lfw's layout")
    ap.add_argument("--align", action="append", help="alignment(s) to measure (default: all)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--folds", type=int, default=FOLDS, help="use the pairs of folds 1..N only")
    ap.add_argument("--work", type=Path, help="keep the TSV and project here (default: temp)")
    args = ap.parse_args()
    if not 2 <= args.folds <= FOLDS:
        ap.error(f"--folds must be 2..{FOLDS} (a fold's threshold comes from the others)")

    from annotator.core.identity import embed as E
    from annotator.core.importer import import_source
    from annotator.core.scan import scan
    from annotator.store import embeddings as emb
    from annotator.store.db import open_project
    from annotator.store.faces import face_locations

    aligns = args.align or list(E.ALIGNMENTS)
    index = read_index(args.photos)
    pairs = [p for p in read_pairs(args.photos) if p[0] <= args.folds]
    usable = [p for p in pairs if p[1] in index and p[2] in index]
    files = sorted({f for p in usable for f in p[1:3]})
    work = args.work or Path(tempfile.mkdtemp(prefix="lfw-protocol-"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"{len(pairs)} pairs in folds 1-{args.folds} ({sum(p[3] for p in pairs)} same), "
        f"{len(pairs) - len(usable)} left out (a crop missing), {len(files)} crops; "
        f"work folder {work}",
        flush=True,
    )
    try:
        write_tsv(args.photos, files, index, work / "pairs.tsv")
        db = work / "p.db"
        if db.exists():
            db.unlink()
        rows = []
        with open_project(db, create=True) as p:
            import_source(p, "msceleb", work / "pairs.tsv")
            scan(p, workers=args.workers)
            base = None
            for align in aligns:
                t0 = time.perf_counter()
                res = E.embed(p, align=align, workers=args.workers)
                wall = time.perf_counter() - t0
                fids, _idents, vecs = emb.load_embeddings(p, res.model)
                locs = face_locations(p, fids.tolist())
                by_file = {
                    files[locs[int(f)].record - 1]: v.astype(np.float64)
                    for f, v in zip(fids, vecs, strict=True)
                }
                ok = [q for q in usable if q[1] in by_file and q[2] in by_file]
                dist = np.array([np.linalg.norm(by_file[a] - by_file[b]) for _, a, b, _s in ok])
                same = np.array([q[3] for q in ok])
                fold = np.array([q[0] for q in ok])
                acc, sd = protocol(dist, same, fold)
                if align == "template":
                    base = wall
                rows.append((align, acc, sd, len(ok), res.fallback, res.failed, wall, res.note))
                print(
                    f"  {align}: {acc:.2f} % ± {sd:.2f} on {len(ok)} pairs "
                    f"({res.embedded} embedded, {res.fallback} fell back, {wall:.0f} s)",
                    flush=True,
                )
        print(f"\nLFW protocol ({args.folds} folds, threshold from the other folds), {args.photos}")
        print(
            f"{'alignment':<10} {'accuracy %':>11} {'± sd':>6} {'pairs':>6} "
            f"{'fallback':>8} {'failed':>6} {'embed s':>8} {'x template':>10}"
        )
        for align, acc, sd, n, fb, failed, wall, note in rows:
            ratio = f"{wall / base:.2f}" if base else "-"
            print(
                f"{align:<10} {acc:>11.2f} {sd:>6.2f} {n:>6} {fb:>8} {failed:>6} "
                f"{wall:>8.0f} {ratio:>10}" + (f"  ({note})" if note else "")
            )
        print(
            f"{'dlib (published, full LFW)':<28} {DLIB_PUBLISHED[0]:.2f} ± {DLIB_PUBLISHED[1]:.2f}"
        )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
