"""``embed --align box`` (core/identity/align.py): landmarks on the face's own rectangle when
it has one, the project's template otherwise; run for real with dlib on drawn faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from annotator.core.identity import align as A
from annotator.core.identity import embed as E
from annotator.core.importer import import_source
from annotator.core.infra.access import FaceBytes
from annotator.core.scan import scan
from annotator.demo.drawing import draw_face, encode_jpeg, face_box, identity_params, image_params
from annotator.formats.msceleb import write_row
from annotator.store import embeddings as store
from annotator.store.db import open_project

TEMPLATE = A.Template(((0.62, 0.45), (0.56, 0.45), (0.38, 0.45), (0.44, 0.45), (0.5, 0.6)))


def _drawn(i: int, size: int = 112) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    ident = identity_params(np.random.default_rng([5, i]))
    ip = image_params(np.random.default_rng([6, i]))
    return np.asarray(draw_face(ident, ip, size)), face_box(ident, ip)


@pytest.fixture(scope="module")
def models():
    E.load_models(*E.require_extra())
    return E._MODELS["dlib"], E._MODELS["sp"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """An MS-Celeb TSV of drawn faces, each row with its face's rectangle (as the demo writes
    them), and a folder of drawn faces (no rectangle) in one project, scanned, embedded with
    the default alignment."""
    d = tmp_path_factory.mktemp("align")
    with open(d / "faces.tsv", "wb") as fh:
        for i in range(4):
            img, rect = _drawn(i)
            jpeg = encode_jpeg(Image.fromarray(img), 90)
            write_row(fh, f"m.0{i % 2}", i, None, None, f"F{i}", rect, jpeg)
    folder = d / "faces" / "person"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(_drawn(100 + i)[0]).save(folder / f"{i}.jpg", quality=90)
    with open_project(d / "p.db", create=True) as p:
        import_source(p, "msceleb", d / "faces.tsv")
        import_source(p, "folder", d / "faces")
        scan(p, workers=1)
        p.set_meta(E.TEMPLATE_META, TEMPLATE.to_json())  # too few faces here to estimate one
        res = E.embed(p, workers=1)
    assert res.align == E.DEFAULT_ALIGN == "box" and res.template == TEMPLATE
    return d / "p.db", {"fallback": res.fallback, "embedded": res.embedded}


def test_box_where_a_rectangle_exists_template_elsewhere(mixed, models) -> None:
    dlib, sp = models
    db, counts = mixed
    with open_project(db) as p:
        model = E.model_id("box")
        faces, _, vecs = store.load_embeddings(p, model)
        notes = store.notes(p, model)
        rects = store.face_rects(p, faces.tolist())
        template = E.stored_template(p)
        fb = FaceBytes(p)
        images = {int(f): E.decode_rgb(fb.read(int(f))) for f in faces}
        fb.close()
    assert template is not None and len(faces) == counts["embedded"]
    no_rect = [int(f) for f in faces if int(f) not in rects]
    assert len(no_rect) == 3 == counts["fallback"]  # the folder's faces
    assert notes == {f: f"template {template.fingerprint()}: {A.NO_RECT}" for f in no_rect}
    # each stored vector is the network's reading of the chip its alignment makes (and the
    # other alignment's chip would read differently)
    chips = []
    for fid in faces.tolist():
        img = images[fid]
        if fid in rects:
            h, w = img.shape[:2]
            shape = A.landmarks_on(dlib, sp, img, A.box_pixels(rects[fid], w, h))
            chips += [A.chip_of(dlib, img, shape), E.face_chip(img, "template", template)]
        else:
            chips += [E.face_chip(img, "template", template), E.face_chip(img, "chip")]
    got = E.embed_images(chips, "crop").reshape(len(faces), 2, -1)
    assert np.abs(vecs.astype(np.float32) - got[:, 0]).max() < 2e-3  # float16 storage
    assert (np.abs(got[:, 0] - got[:, 1]).max(axis=1) > 0.01).all()


def test_landmarks_on_the_drawn_box_are_plausible(models) -> None:
    """The demo writes each drawn face's box as its FaceRectangle; dlib's landmarks on it are
    a frontal set, so the demo's faces take the box path."""
    dlib, sp = models
    found = [A.box_shape(dlib, sp, *_drawn(i))[1] for i in range(12)]
    assert found.count("") >= 11


def test_unusable_rectangle_gets_the_template_chip(models) -> None:
    dlib, sp = models
    img, rect = _drawn(1)
    t = TEMPLATE
    tmpl = E.face_chip(img, "template", t)
    for bad in [(0.5, 0.5, 0.52, 0.52), (1.5, 1.5, 1.9, 1.9), (-3.0, -3.0, 3.0, 3.0)]:
        assert A.box_pixels(bad, 112, 112) is None
        chip, how = A.box_chip(dlib, sp, img, bad, t)
        assert how == f"template {t.fingerprint()}: {A.BAD_RECT}"
        assert np.array_equal(chip, tmpl)
    chip, how = A.box_chip(dlib, sp, img, None, None)  # no template either: the whole crop
    assert how == f"crop: {A.NO_RECT}" and np.array_equal(chip, A.resized_crop(img))
    chip, how = A.box_chip(dlib, sp, img, rect, t)
    assert how == "" and not np.array_equal(chip, tmpl)
    assert A.box_pixels(rect, 112, 112) == tuple(int(round(v * 112)) for v in rect)


def test_implausible_landmarks_fall_back(models, monkeypatch) -> None:
    """Landmarks that are no frontal set relative to the box (a box on the background, say):
    the template's chip, and the reason says why."""
    dlib, sp = models
    img, rect = _drawn(2)
    t = TEMPLATE
    monkeypatch.setattr(A, "plausible_set", lambda pts: False)
    chip, how = A.box_chip(dlib, sp, img, rect, t)
    assert how.endswith(A.ODD_LANDMARKS) and np.array_equal(chip, E.face_chip(img, "template", t))


def test_model_id_of_box() -> None:
    assert E.model_id("box") == "dlib_resnet_v1/sp5/box150p0.25"
    assert E.model_id("box") not in {E.model_id("chip"), E.model_id("crop")}


def test_plausible_set_is_the_array_rule() -> None:
    """``box`` checks each face's landmarks with the plain-float rule: it must say what the
    array rule (the template's) says, on frontal-ish sets near every edge of the rule and on
    random ones (NaN, off the frame)."""
    rng = np.random.default_rng(7)
    frontal = np.array([[0.7, 0.4], [0.6, 0.4], [0.3, 0.4], [0.4, 0.4], [0.5, 0.6]])
    pts = np.concatenate(
        [
            frontal + rng.normal(0, 0.1, (3000, 5, 2)),
            rng.uniform(-0.4, 1.4, (1000, 5, 2)),
            np.repeat(frontal[None], 4, 0),
        ]
    )
    pts[::53, 1, 0] = np.nan
    pts[-3, 4, 1] = 0.4  # nose level with the eyes
    pts[-2, :, 0] *= 0.1  # eyes too close
    pts[-1, 0, 0] = 1.26  # off the frame
    want = A.plausible_landmarks(pts)
    got = np.array([A.plausible_set([(float(x), float(y)) for x, y in s]) for s in pts])
    assert 500 < want.sum() < len(pts) - 500 and want[-4] and not want[-3:].any()
    assert np.array_equal(got, want)
