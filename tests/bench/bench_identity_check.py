"""The identity check's refresh at scale (issue 17 item 4), on synthetic vectors.

    python3 tests/bench/bench_identity_check.py --faces 1000000 --identities 10000 [--work DIR]

Builds a project of ``--faces`` embedded faces in ``--identities`` identities (sizes varied,
dlib-like geometry: centres ~0.85 apart, faces ~0.3 from theirs with a heavy tail, 2 %
strangers and 2 % faces of another identity; ``--look-alikes F``: F of the identities get a
centre 0.55 from another's, people who look alike, whose faces near the boundary the look-alike
test reads faces for — without it no face is that near another centre), then measures, each in its own process (CPU
user+sys of it and its worker processes, wall, peak RSS of it and of its largest worker):

* ``read``: one pass reading every vector from the project (the floor of a full refresh's
  reading, which does one such pass), the baseline of the ratios printed;
* ``full``: ``refresh(full=True)``;
* ``none``: a refresh with nothing changed (what the scan's flag step pays);
* ``incremental``: after embedding one more identity (``--new-faces`` faces); ``compared``:
  the stored look-alike candidates compared with the changed centres (their reach, m019,
  lets them come near), of ``candidates`` stored;
* ``knn``: each centre's K nearest centres by blocked float32 products and, when installed,
  by faiss's exact ``IndexFlatL2`` (same process);
* ``compare`` (``--compare-with CHECKOUT``): ``full`` and ``incremental`` by another checkout
  and by this one, each on a fresh copy of the project, their CPU and wall ratios and whether
  they stored the same (digests of flags, looks-like rows, pairs, centres, suspicion);
* ``exact``: the stored flags against the exact rule (every candidate face against every
  centre, core/identity/rule.py ``exact=True``) on the same vectors, when ``--faces`` is at
  most ``--exact-max`` (it holds every vector in memory).

Figures go to docs/MEASUREMENTS.md ("Identity check"), not into this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(ROOT))

MODEL = "dlib_resnet_v1/crop150"


def build(
    db: Path,
    n_faces: int,
    n_ids: int,
    new_faces: int,
    seed: int,
    root: Path = ROOT,
    look_alikes: float = 0.0,
) -> dict:
    """The project: identities 1..n_ids embedded; identity n_ids + 1 (``new_faces`` faces)
    imported and scanned but not embedded. Written with plain SQL for speed (a bench); its
    schema made by the checkout ``root`` (the older one of a comparison: the newer one
    migrates it when it opens it)."""
    env = dict(os.environ, PYTHONPATH=str(root))
    subprocess.run(
        [sys.executable, "-c", "import sys; from annotator.store.db import open_project; "
         "open_project(sys.argv[1], create=True).close()", str(db)],
        check=True, env=env, cwd=root,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    size = np.maximum(1, rng.lognormal(0, 0.8, n_ids))
    size = np.maximum(1, np.round(size / size.sum() * n_faces)).astype(np.int64)
    size[-1] += n_faces - size.sum()
    size = np.maximum(size, 1)
    centres = rng.normal(0, 0.85 / 16, (n_ids + 1, 128)).astype(np.float32)
    partner = np.full(n_ids + 1, -1)
    if look_alikes:  # people who look alike: a share of centres LOOK_ALIKE_DIST from another's
        k = rng.choice(n_ids, int(look_alikes * n_ids), replace=False)
        u = rng.normal(0, 1, (len(k), 128))
        u *= LOOK_ALIKE_DIST / np.linalg.norm(u, axis=1)[:, None]
        partner[k] = (k + 1) % n_ids
        centres[k] = centres[partner[k]] + u.astype(np.float32)
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA journal_mode=OFF")
    at = "2026-12-07T00:00:00"
    con.execute(
        "INSERT INTO sources (id, path, format, size, mtime, fingerprint, added_at, complete) "
        "VALUES (1, '/synthetic.tsv', 'msceleb', 0, 0, 'x', ?, 1)",
        (at,),
    )
    all_size = np.r_[size, new_faces]
    con.executemany(
        "INSERT INTO identities (id, key, face_count) VALUES (?, ?, ?)",
        [(i + 1, f"m.{i + 1:07d}", int(n)) for i, n in enumerate(all_size.tolist())],
    )
    ident = np.repeat(np.arange(1, n_ids + 2), all_size)
    total = len(ident)
    step = 200_000
    for s in range(0, total, step):
        ids = ident[s : s + step]
        fid = np.arange(s + 1, s + 1 + len(ids))
        con.executemany(
            "INSERT INTO faces (id, identity_id, orig_identity_id, source_id, record, offset, "
            "length) VALUES (?, ?, ?, 1, ?, 0, 1)",
            zip(fid.tolist(), ids.tolist(), ids.tolist(), fid.tolist(), strict=True),
        )
        con.executemany(
            "INSERT INTO face_hashes (face_id, phash, scanned_at) VALUES (?, ?, ?)",
            ((int(f), int(f), at) for f in fid),
        )
        # the faces of the last identity stay unembedded (embedded by the incremental step)
        emb = ids <= n_ids
        vec = vectors(rng, centres, ids[emb], n_ids, partner)
        con.executemany(
            "INSERT INTO face_embeddings (face_id, model, status, vector, embedded_at) "
            "VALUES (?, ?, 'ok', ?, ?)",
            ((int(f), MODEL, v.tobytes(), at) for f, v in zip(fid[emb], vec, strict=True)),
        )
        con.commit()
    con.execute("DELETE FROM identity_centres_stale")
    con.commit()
    con.close()
    return {"faces": int(size.sum()), "identities": n_ids, "new_faces": new_faces}


LOOK_ALIKE_DIST = 0.55  # --look-alikes: two such people's centres this far apart


def vectors(
    rng, centres: np.ndarray, ids: np.ndarray, n_ids: int, partner: np.ndarray | None = None
) -> np.ndarray:
    """Faces of ``ids`` (1-based): centre + a random direction x 0.3 e^N(0, 0.25); 2 %
    strangers (a fresh centre), 2 % a face of another identity; of an identity with a
    look-alike ``partner`` (0-based, -1: none), 10 % halfway to the partner's centre."""
    n = len(ids)
    base = centres[ids - 1].copy()
    if partner is not None:
        p = partner[ids - 1]
        half = (p >= 0) & (rng.random(n) < 0.1)
        base[half] = (base[half] + centres[p[half]]) / 2
    k = rng.random(n)
    stranger = k < 0.02
    base[stranger] = rng.normal(0, 0.85 / 16, (int(stranger.sum()), 128))
    other = (k >= 0.02) & (k < 0.04)
    base[other] = centres[rng.integers(0, n_ids, int(other.sum()))]
    u = rng.normal(0, 1, (n, 128)).astype(np.float32)
    r = 0.3 * np.exp(rng.normal(0, 0.25, n)).astype(np.float32)
    return (base + u / np.linalg.norm(u, axis=1)[:, None] * r[:, None]).astype("<f2")


CHILD = r"""
import json, resource, sys, time
import numpy as np
t0 = time.perf_counter(); c0 = time.process_time()
from annotator.store.db import open_project
from annotator.core.identity import identity_check as ic
from annotator.store import identity_check as ic_store
step, db, arg = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
with open_project(db) as p:
    if step == "read":
        n, model = 0, ic_store.model_in_use(p)
        for lo, hi in ic_store.identity_ranges(p, ic.CHUNK_FACES):
            n += len(ic_store.embeddings_in_range(p, model, lo, hi)[0])
        out["faces_read"] = n
    elif step == "embed_new":
        ident = int(arg)
        face = [f for (f,) in p.conn.execute("SELECT id FROM faces WHERE identity_id = ?", (ident,))]
        rng = np.random.default_rng(1)
        c = rng.normal(0, 0.85 / 16, 128)
        from annotator.store import embeddings as emb
        rows = []
        for f in face:
            u = rng.normal(0, 1, 128)
            rows.append((f, "ok", None, emb.to_blob(c + 0.3 * u / np.linalg.norm(u))))
        emb.insert_embeddings(p, ic_store.model_in_use(p), rows)
        out["embedded"] = len(rows)
    else:
        r = ic.refresh(p, full=(step == "full"))
        out.update(mode=r.mode, recomputed=r.recomputed, global_faces=r.global_faces,
                   compared=getattr(r, "compared", None),  # not in older checkouts
                   candidates=getattr(r, "candidates", None),
                   asked=getattr(r, "asked", None), by_faces=getattr(r, "by_faces", None),
                   flags=len(r.suspect), same_person=len(r.same_person))
ru = resource.getrusage(resource.RUSAGE_SELF)
rc = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes of the refresh
out.update(wall=round(time.perf_counter() - t0, 2),
           cpu=round(ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime, 2),
           peak_rss_mb=round(ru.ru_maxrss / 1024), workers_peak_rss_mb=round(rc.ru_maxrss / 1024))
print(json.dumps(out))
"""


def child(step: str, db: Path, arg: str = "", root: Path = ROOT) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(root), "" if root != ROOT else env.get("PYTHONPATH", "")])
    )
    r = subprocess.run(
        [sys.executable, "-c", CHILD, step, str(db), arg],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,  # `python -c` imports from its working folder first
    )
    if r.returncode != 0:
        sys.exit(f"{step} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def stored_digests(db: Path) -> dict[str, str]:
    """Digests of what a refresh stores: flags, looks-like rows, pairs, centres, suspicion."""
    con = sqlite3.connect(db)
    queries = {
        "flags": "SELECT ff.face_id, fl.score FROM flags fl JOIN flag_faces ff "
        "ON ff.flag_id = fl.id WHERE kind = 'suspect_identity' ORDER BY 1",
        "looks": "SELECT * FROM face_looks_like ORDER BY 1",
        "pairs": "SELECT * FROM same_person ORDER BY 1, 2",
        "centres": "SELECT * FROM identity_centres ORDER BY 1",
        "suspicion": "SELECT id, suspicion FROM identities ORDER BY 1",
    }
    out = {k: hashlib.sha256(repr(con.execute(q).fetchall()).encode()).hexdigest()[:16]
           for k, q in queries.items() if k != "centres"}  # fmt: skip
    out["centres"] = _centres_digest(con)
    con.close()
    return out


def _centres_digest(con: sqlite3.Connection) -> str:
    """The stored centres with each one's candidates by face id (the order they are stored
    in is not part of what a refresh computes: since m019 farthest reach first)."""
    h = hashlib.sha256()
    for row in con.execute("SELECT * FROM identity_centres ORDER BY 1"):
        *head, faces, t, vec = row
        f = np.frombuffer(faces, "<i8")
        o = np.argsort(f, kind="stable")
        tv = np.frombuffer(t, "<f8")[o]
        vv = np.frombuffer(vec, "<f2").reshape(len(f), 128)[o]
        h.update(repr(head).encode() + f[o].tobytes() + tv.tobytes() + vv.tobytes())
    return h.hexdigest()[:16]


def compare(db: Path, other: Path, new_identity: int) -> dict:
    """Full and incremental refresh by the checkout ``other`` and by this one, each on its own
    copy of the project (before anything else touched it): CPU / wall / RSS, their ratios
    (this / other), and whether they stored the same."""
    out: dict[str, dict] = {}
    for name, root in (("other", other), ("this", ROOT)):
        copy = db.with_name(f"compare_{name}.db")
        shutil.copy(db, copy)
        r = {"full": child("full", copy, root=root)}
        r["stored_full"] = stored_digests(copy)
        child("embed_new", copy, str(new_identity), root=root)
        r["incremental"] = child("incremental", copy, root=root)
        r["stored_incremental"] = stored_digests(copy)
        copy.unlink()
        out[name] = r
    a, b = out["other"], out["this"]
    out["ratios_this_to_other"] = {
        f"{k}_{m}": round(b[k][m] / a[k][m], 3) for k in ("full", "incremental") for m in ("cpu", "wall")
    }  # fmt: skip
    out["stored_identical"] = all(a[k] == b[k] for k in ("stored_full", "stored_incremental"))
    return out


def knn_timing(db: Path) -> dict:
    from annotator.core.identity import nearest
    from annotator.store import identity_check as ic_store
    from annotator.store.db import open_project

    with open_project(db) as p:
        _ids, C, _v = ic_store.load_centres(p)
    out: dict[str, float] = {"centres": len(C)}
    t = time.perf_counter()
    d_np, _i = nearest.centre_neighbours(C)
    out["numpy_s"] = round(time.perf_counter() - t, 2)
    try:
        import faiss  # type: ignore[import-not-found]
    except ImportError:
        out["faiss_s"] = None
        return out
    t = time.perf_counter()
    index = faiss.IndexFlatL2(C.shape[1])
    index.add(np.ascontiguousarray(C))
    d_f, _j = index.search(np.ascontiguousarray(C), nearest.K + 1)
    out["faiss_s"] = round(time.perf_counter() - t, 2)
    out["max_kth_diff"] = float(np.abs(np.sqrt(np.maximum(d_f[:, -1], 0)) - d_np[:, -1]).max())
    return out


def exact_check(db: Path) -> dict:
    """The stored flags and same-person pairs against the exact rule on the same vectors."""
    from annotator.core.identity import identity_check as ic
    from annotator.store import embeddings as emb
    from annotator.store import identity_check as ic_store
    from annotator.store.db import open_project

    with open_project(db) as p:
        model = ic_store.model_in_use(p)
        face, ident, vec = emb.load_embeddings(p, model)
        stored = ic_store.kind_flag_rows(p, ic.KIND)
        pairs = [(x.a_id, x.b_id, x.distance) for x in ic_store.same_person(p)]
    t = time.perf_counter()
    ex = ic.check(face, ident, vec, exact=True)
    got = sorted((f, s) for f, s in ex.flag_rows())
    return {
        "exact_s": round(time.perf_counter() - t, 1),
        "flags_identical": got == sorted(stored),
        "same_person_identical": ex.same_person == pairs,
        "flags": len(got),
    }


def matmul_gflops() -> float:
    """A one-thread-or-more float32 matrix product's speed here (the arithmetic floor)."""
    a = np.random.default_rng(0).normal(size=(2048, 128)).astype(np.float32)
    b = np.random.default_rng(1).normal(size=(128, 8192)).astype(np.float32)
    a @ b
    t = time.perf_counter()
    for _ in range(5):
        a @ b
    return round(5 * 2 * 2048 * 128 * 8192 / (time.perf_counter() - t) / 1e9, 1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=200_000)
    ap.add_argument("--identities", type=int, default=2_000)
    ap.add_argument("--new-faces", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, help="build the project here (kept)")
    ap.add_argument(
        "--look-alikes", type=float, default=0.0,
        help="this share of identities gets a centre 0.55 from another's (people who look "
        "alike: their faces near the boundary are what the look-alike test reads faces for)",
    )  # fmt: skip
    ap.add_argument("--exact-max", type=int, default=2_000_000)
    ap.add_argument(
        "--compare-with",
        type=Path,
        help="another checkout (e.g. a worktree of main): its full and incremental refresh "
        "on a copy of the same project first, ratios and stored results compared",
    )
    a = ap.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="bench_identity_check."))
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"ic_{a.faces}_{a.identities}{f'_la{a.look_alikes}' if a.look_alikes else ''}.db"
    try:
        res: dict[str, object] = {"matmul_gflops": matmul_gflops()}
        if not db.exists():
            t = time.perf_counter()
            other = a.compare_with.resolve() if a.compare_with is not None else ROOT
            res["build"] = build(
                db, a.faces, a.identities, a.new_faces, a.seed, other, a.look_alikes
            )
            res["build_s"] = round(time.perf_counter() - t, 1)
        if a.compare_with is not None:
            res["compare"] = compare(db, a.compare_with.resolve(), a.identities + 1)
        res["read"] = child("read", db)
        res["full"] = child("full", db)
        res["none"] = child("none", db)
        res["knn"] = knn_timing(db)
        if a.faces <= a.exact_max:
            res["exact"] = exact_check(db)
        res["embed_new"] = child("embed_new", db, str(a.identities + 1))
        res["incremental"] = child("incremental", db)
        read = res["read"]["wall"]  # type: ignore[index]
        res["ratios_to_read"] = {
            k: round(res[k]["wall"] / read, 2)  # type: ignore[index]
            for k in ("full", "none", "incremental")
        }
        ru = resource.getrusage(resource.RUSAGE_SELF)
        res["bench_peak_rss_mb"] = round(ru.ru_maxrss / 1024)
        print(json.dumps(res, indent=1))
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
