"""Face embeddings (core/identity/embed.py, store/embeddings.py), run for real with dlib on a tiny demo.

Needs the [embed] extra (dlib-bin, face-recognition-models), which the test install includes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from annotator.core.identity import align
from annotator.core.identity import embed as E
from annotator.core.importer import import_source
from annotator.core.scan import scan
from annotator.demo.dataset import generate_demo
from annotator.model import AnnotatorError
from annotator.store import embeddings as store
from annotator.store.db import open_project


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> tuple[Path, dict]:
    """A scanned demo of 3 invented people (~30 faces, 3 truncated = corrupt), not embedded."""
    d = tmp_path_factory.mktemp("embed_demo")
    r = generate_demo(d, identities=3, faces_per_identity=(4, 6), seed=3)
    with open_project(d / "p.db", create=True) as p:
        import_source(p, "msceleb", r.faces_tsv)
        scan(p, workers=1)
    return d / "p.db", json.loads(Path(r.truth_json).read_text())


@pytest.fixture(scope="module")
def embedded(demo_db, tmp_path_factory) -> tuple[Path, dict, E.EmbedResult]:
    """The demo embedded once by two workers (the process pool path), with the template
    (the default ``box`` is tested in test_embed_align.py)."""
    src, truth = demo_db
    db = tmp_path_factory.mktemp("embedded") / "p.db"
    shutil.copy(src, db)
    with open_project(db) as p:
        res = E.embed(p, workers=2, chunk=8, align="template")
    return db, truth, res


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "p.db"
    shutil.copy(src, dst)
    return dst


def test_vectors_are_float16_128d_for_every_decodable_face(embedded) -> None:
    db, truth, res = embedded
    with open_project(db) as p:
        n_faces = p.conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        corrupt = {
            r[0]
            for r in p.conn.execute("SELECT face_id FROM face_hashes WHERE corrupt IS NOT NULL")
        }
        blobs = p.conn.execute("SELECT face_id, vector, model, status FROM face_embeddings")
        rows = blobs.fetchall()
        faces, idents, vecs = store.load_embeddings(p, res.model)
    assert len(corrupt) == len(truth["truncated"]) == 3
    assert res.embedded == len(rows) == n_faces - 3 and res.failed == 0 and not res.cancelled
    assert res.corrupt_skipped == 3 and res.not_scanned == 0 and res.stored == res.embedded
    assert all(len(v) == 2 * 128 and m == res.model and s == "ok" for _, v, m, s in rows)
    assert not corrupt & {r[0] for r in rows}  # corrupt faces are never embedded
    assert vecs.dtype == np.float16 and vecs.shape == (len(rows), 128)
    assert np.isfinite(vecs).all()
    norms = np.linalg.norm(vecs.astype(np.float32), axis=1)
    assert np.all((norms > 0.5) & (norms < 1.5))  # dlib descriptors have norm ~1
    # one vector per distinct image: copies embed alike, different images differently
    with open_project(db) as p:
        distinct = p.conn.execute(
            "SELECT count(DISTINCT h.sha256) FROM face_hashes h "
            "JOIN face_embeddings e ON e.face_id = h.face_id"
        ).fetchone()[0]
    assert len({v.tobytes() for v in vecs}) == distinct < len(vecs)


def test_exact_copies_get_the_same_vector(embedded) -> None:
    """A byte-identical copy must embed identically (deterministic pipeline)."""
    db, truth, res = embedded
    with open_project(db) as p:
        by_line = {
            int(r[0]): r[1]
            for r in p.conn.execute(
                "SELECT f.record, e.vector FROM faces f JOIN face_embeddings e ON e.face_id = f.id"
            )
        }
    pairs = [pr for pr in truth["exact_dup"] if pr[0] in by_line and pr[1] in by_line]
    assert pairs
    for a, b in pairs:
        assert by_line[a] == by_line[b]


def test_in_process_equals_worker_pool(embedded, tmp_path) -> None:
    """workers=1 (in this process) gives the same vectors as the pool, for one identity."""
    db, _, res = embedded
    with open_project(db) as p:
        key = p.conn.execute("SELECT key FROM identities ORDER BY id LIMIT 1").fetchone()[0]
        ident = store.identity_ids_of_keys(p, [key])[0]
        want = store.load_embeddings(p, res.model, ident)
    with open_project(_copy(db, tmp_path)) as p:
        with p.tx() as c:
            c.execute("DELETE FROM face_embeddings")  # test set-up only
        r = E.embed(p, identity_keys=[key], workers=1, align=res.align)
        got = store.load_embeddings(p, res.model)
    assert r.embedded == len(want[0]) > 0
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[2], want[2])


def test_resumable_cancel_after_one_batch(demo_db, tmp_path) -> None:
    src, _ = demo_db
    db = _copy(src, tmp_path)
    calls = {"n": 0}

    def cancel_after_first_batch() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    with open_project(db) as p:
        first = E.embed(p, workers=1, chunk=5, cancelled=cancel_after_first_batch)
        assert first.cancelled and first.embedded == 5 and first.todo > 5
        assert store.counts(p, first.model)["ok"] == 5  # the committed batch survives
        second = E.embed(p, workers=1, chunk=5)
        assert not second.cancelled and second.todo == first.todo - 5
        assert second.embedded == second.todo
        third = E.embed(p, workers=1)  # nothing left: incremental
        assert third.todo == third.embedded == 0
        n = p.conn.execute("SELECT count(*), count(DISTINCT face_id) FROM face_embeddings")
        total, distinct = n.fetchone()
    assert total == distinct == first.todo  # every face once, no duplicates


def test_identity_option_and_unreviewed_first(demo_db, tmp_path) -> None:
    src, _ = demo_db
    with open_project(_copy(src, tmp_path)) as p:
        keys = [r[0] for r in p.conn.execute("SELECT key FROM identities ORDER BY id")]
        ident = store.identity_ids_of_keys(p, keys[1:2])[0]
        model = E.model_id("crop")  # no embedding yet: any model's work is every face
        # the order of the work: unreviewed identities first
        with p.tx() as c:  # test set-up only: mark the first identity reviewed
            c.execute("UPDATE identities SET reviewed = 1 WHERE key = ?", (keys[0],))
        order = store.faces_to_embed(p, model)
        owner = dict(p.conn.execute("SELECT id, identity_id FROM faces").fetchall())
        reviewed_id = store.identity_ids_of_keys(p, keys[:1])[0][0]
        pos = [i for i, f in enumerate(order) if owner[int(f)] == reviewed_id]
        assert pos and pos == list(range(len(order) - len(pos), len(order)))  # all at the end

        res = E.embed(p, identity_keys=[keys[1]], workers=1)
        stored = store.load_embeddings(p, res.model)
        assert res.embedded > 0 and set(stored[1].tolist()) == set(ident)
        with pytest.raises(AnnotatorError, match="no identity with key 'm.nope'"):
            E.embed(p, identity_keys=["m.nope"], workers=1)


def test_not_scanned_is_one_clear_error(tmp_path) -> None:
    r = generate_demo(tmp_path, identities=2, faces_per_identity=(6, 6), seed=1)
    with open_project(tmp_path / "p.db", create=True) as p:
        import_source(p, "msceleb", r.faces_tsv)
        with pytest.raises(AnnotatorError, match="no face has been scanned yet"):
            E.embed(p, workers=1)


def test_undecodable_face_is_stored_as_failed() -> None:
    """A face whose bytes do not decode (scanned before a decoder change, say) gets a failed
    row with the reason, not an exception for the whole run."""
    from annotator.core.infra.access import ReadItem

    E.load_models(*E.require_extra())
    import base64
    import tempfile

    with tempfile.NamedTemporaryFile("wb", suffix=".tsv", delete=False) as f:
        data = base64.b64encode(b"not an image at all")
        f.write(data)
    try:
        rows, errors = E.embed_planned(
            [ReadItem(7, f.name, "msceleb", 0, len(data), None, "x.tsv:1")], "chip"
        )
    finally:
        Path(f.name).unlink()
    assert errors == [] and len(rows) == 1
    fid, status, reason, vec = rows[0]
    assert (fid, status, vec) == (7, "failed", None) and reason.startswith("cannot decode")


def test_model_id_names_the_alignment() -> None:
    t1 = align.Template(((0.7, 0.42), (0.58, 0.43), (0.29, 0.43), (0.4, 0.43), (0.49, 0.64)))
    t2 = align.Template(((0.7, 0.42), (0.58, 0.43), (0.29, 0.43), (0.4, 0.43), (0.49, 0.66)))
    ids = {E.model_id("chip"), E.model_id("crop"), E.model_id("template", t1)}
    assert len(ids) == 3 and E.DEFAULT_ALIGN == "box"
    assert E.model_id("template", t1).startswith("dlib_resnet_v1/sp5/tmpl150p0.25/")
    # the template's points are in the id: two templates never share vectors
    assert E.model_id("template", t1) != E.model_id("template", t2)
    assert E.model_id("template", t1) == E.model_id("template", align.Template(t1.points, 7, 9))
    with pytest.raises(AnnotatorError):
        E.model_id("sideways")
    with pytest.raises(AnnotatorError, match="needs the project's template"):
        E.model_id("template")


# -- the template alignment --------------------------------------------------------------------
FRONT = np.array([[0.70, 0.42], [0.58, 0.43], [0.29, 0.43], [0.40, 0.43], [0.49, 0.64]])


def _planted(n: int, seed: int = 0, noise: float = 0.02) -> np.ndarray:
    return FRONT + np.random.default_rng(seed).normal(0, noise, (n, 5, 2))


def test_template_is_the_per_point_median_of_plausible_sets() -> None:
    pts = _planted(60)
    # erratic detections: eyes on the hair, a collapsed set, one off the crop, a failure
    bad = np.array(
        [
            FRONT + [0.0, -0.35],  # all points shifted up: still plausible, the median holds
            np.full((5, 2), 0.5),  # collapsed: not plausible
            FRONT + [2.0, 0.0],  # off the crop
            np.full((5, 2), np.nan),  # landmarks not taken (unreadable face)
            FRONT[[2, 3, 0, 1, 4]],  # eyes swapped (mirror): not plausible
        ]
    )
    t = align.template_from_landmarks(np.concatenate([pts, bad]))
    assert t is not None and len(t.points) == 5 and all(len(p) == 2 for p in t.points)
    assert (t.faces, t.sampled) == (61, 65)
    assert np.allclose(t.points, np.median(np.concatenate([pts, bad[:1]]), axis=0), atol=1e-4)
    assert np.abs(np.array(t.points) - FRONT).max() < 0.02
    assert 0.01 < t.spread < 0.05  # planted noise sd 0.02 per coordinate
    ok = align.plausible_landmarks(np.concatenate([pts[:3], bad]))
    assert ok.tolist() == [True, True, True, True, False, False, False, False]


def test_a_few_wild_detections_do_not_move_the_median() -> None:
    pts = _planted(40, seed=1)
    wild = _planted(15, seed=2, noise=0.0) + np.array([0.12, 0.1])  # 27 % of the sets
    clean = align.template_from_landmarks(pts)
    mixed = align.template_from_landmarks(np.concatenate([pts, wild]))
    assert clean is not None and mixed is not None
    assert np.abs(np.array(mixed.points) - np.array(clean.points)).max() < 0.05


def test_too_few_plausible_sets_give_no_template() -> None:
    assert align.template_from_landmarks(np.empty((0, 5, 2))) is None
    assert align.template_from_landmarks(_planted(align.TEMPLATE_MIN - 1)) is None
    assert align.template_from_landmarks(np.full((50, 5, 2), np.nan)) is None
    assert align.template_from_landmarks(_planted(align.TEMPLATE_MIN)) is not None
    assert align.template_from_landmarks(_planted(3), min_faces=3) is not None


def test_template_json_round_trip_and_bad_text() -> None:
    t = align.template_from_landmarks(_planted(20))
    assert t is not None and align.Template.from_json(t.to_json()) == t
    for bad in ('{"points": [[0.5, 0.5]]}', "{}", "[1, 2]"):
        with pytest.raises((ValueError, KeyError, TypeError)):
            align.Template.from_json(bad)


def test_sample_is_spread_evenly_and_bounded() -> None:
    ids = list(range(1000, 2000))
    s = E.sample_evenly(ids, 100)
    assert len(s) == 100 and s[0] == 1000 and s[-1] == 1999 and s == sorted(set(s))
    assert max(np.diff(s)) <= 11
    assert E.sample_evenly(ids[:30], 100) == ids[:30] and E.sample_evenly([], 5) == []


def test_template_chip_is_one_similarity_map_onto_dlibs_chip() -> None:
    """Every crop of a size gets the same chip geometry: a crop whose content is shifted by
    the template's own offset gives a shifted chip, not a re-detected one."""
    E.load_models(*E.require_extra())
    t = align.Template(tuple(map(tuple, FRONT.tolist())))
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    chip = E.face_chip(img, "template", t)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    # the same crop size -> the same map; another image -> its own pixels through that map
    other = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    mix = img.copy()
    mix[:, 56:] = other[:, 56:]
    a, b, c = (E.face_chip(x, "template", t) for x in (img, other, mix))
    assert np.array_equal(c[:, :40], a[:, :40]) and np.array_equal(c[:, -40:], b[:, -40:])
    with pytest.raises(ValueError):
        E.face_chip(img, "template", None)


def test_landmarks_of_planned_faces_leave_unreadable_ones_out(demo_db) -> None:
    from annotator.core.infra.access import FaceBytes, ReadItem

    src, _ = demo_db
    E.load_models(E.require_extra()[0], None)
    with open_project(src) as p:
        ids = store.faces_to_embed(p, "")[:4].tolist()
        fb = FaceBytes(p)
        plan = list(fb.plan(ids))
        fb.close()
    plan.append(ReadItem(99, "/nonexistent/x.tsv", "msceleb", 0, 10, None, "x.tsv:1"))
    rows, errors = E.landmarks_planned(plan)
    assert [r[0] for r in rows] == ids and [e[0] for e in errors] == [99]
    pts = E.landmark_array(rows, len(plan))
    assert pts.shape == (5, 5, 2)
    assert np.isfinite(pts[:4]).all() and np.isnan(pts[4]).all()
    assert ((pts[:4] >= 0) & (pts[:4] <= 1)).all()


def test_embed_estimates_the_template_once_and_reuses_it(embedded, demo_db, tmp_path) -> None:
    db, _truth, res = embedded
    assert res.align == "template" and res.template is not None and res.note == ""
    assert res.model == E.model_id("template", res.template)
    assert res.as_dict()["template"]["points"] == [list(p) for p in res.template.points]
    with open_project(db) as p:
        assert E.stored_template(p) == res.template
    # a fresh copy (no template yet) estimates the same template from the same faces
    src, _ = demo_db
    with open_project(_copy(src, tmp_path)) as p:
        ident = p.conn.execute("SELECT key FROM identities ORDER BY id LIMIT 1").fetchone()[0]
        first = E.embed(p, identity_keys=[ident], workers=1, align="template")
        assert first.template == res.template
        # a template stored by an earlier run is used as it is, even when other faces now
        # would give another median: the model id, and so the vectors, stay valid
        moved = align.Template(tuple((x + 0.01, y) for x, y in res.template.points), 1, 1)
        p.set_meta(E.TEMPLATE_META, moved.to_json())
        again = E.embed(p, identity_keys=[ident], workers=1, align="template")
        assert again.template == moved and again.model != first.model
        assert again.todo == first.todo  # the faces are embedded again under the new id
        assert store.counts(p, first.model)["ok"] == 0
        assert store.counts(p, again.model)["ok"] == first.embedded


def test_no_template_falls_back_to_crop(demo_db, tmp_path, monkeypatch) -> None:
    """Landmarks that fail (or too few faces) leave the project without a template: the run
    embeds with ``crop``, says so, stores no template, and a later run tries again."""
    src, _ = demo_db
    monkeypatch.setattr(E, "landmarks_planned", lambda items: ([], []))  # every face failed
    with open_project(_copy(src, tmp_path)) as p:
        key = p.conn.execute("SELECT key FROM identities ORDER BY id LIMIT 1").fetchone()[0]
        res = E.embed(p, identity_keys=[key], workers=1, align="template")
        assert res.align == "crop" and res.template is None and res.model == E.model_id("crop")
        assert res.note.startswith("no template: 0 of ") and "--align crop" in res.note
        assert res.embedded > 0 and E.stored_template(p) is None
        p.set_meta(E.TEMPLATE_META, "not json")  # an unreadable template: estimated again
        assert E.stored_template(p) is None
        monkeypatch.undo()
        again = E.embed(p, identity_keys=[key], workers=1, align="template")
        assert again.align == "template" and again.template is not None
        assert E.stored_template(p) == again.template


def test_float16_blob_round_trip() -> None:
    v = np.linspace(-0.3, 0.3, 128)
    back = store.from_blobs([store.to_blob(v)])
    assert back.shape == (1, 128) and back.dtype == np.float16
    assert np.allclose(back[0], v, atol=1e-3)
    with pytest.raises(ValueError):
        store.to_blob(np.zeros(127))


def test_unscanned_and_corrupt_faces_are_not_in_the_work(demo_db, tmp_path) -> None:
    src, truth = demo_db
    with open_project(_copy(src, tmp_path)) as p:
        ids = [r[0] for r in p.conn.execute("SELECT face_id FROM face_hashes ORDER BY face_id")]
        with p.tx() as c:  # test set-up only: two faces not scanned
            c.execute("DELETE FROM face_hashes WHERE face_id IN (?, ?)", (ids[0], ids[1]))
        scope = store.scan_counts(p)
        todo = set(store.faces_to_embed(p, E.model_id("crop")).tolist())
        corrupt = {
            r[0]
            for r in p.conn.execute("SELECT face_id FROM face_hashes WHERE corrupt IS NOT NULL")
        }
    assert scope["faces"] - scope["scanned"] == 2 and scope["corrupt"] == len(corrupt) == 3
    assert not todo & ({ids[0], ids[1]} | corrupt)
    assert len(todo) == scope["scanned"] - scope["corrupt"]
