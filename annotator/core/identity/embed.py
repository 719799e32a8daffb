"""`annotator embed`: a 128-d face embedding per scanned face (the optional ``[embed]`` extra).

The network is dlib's face-recognition ResNet (the weights ``face-recognition-models`` ships),
run on onnxruntime by :mod:`annotator.core.identity.engine`; dlib only finds the 5 landmarks
and cuts the 150x150 chip. Nothing outside this module's worker functions imports dlib, so
without the extra everything else works and :func:`require_extra` says how to install it.

Alignment (chip-making is :mod:`annotator.core.identity.align`; the model id stored with each
vector names it, so two are never mixed): ``box`` (default) finds dlib's 5 landmarks on the
face's own rectangle (MS-Celeb's FaceRectangle, stored by the importer; any reader that gives
one) and cuts dlib's chip of them, as dlib's network was trained; a face without a usable
rectangle, or whose landmarks on it are no plausible frontal set, gets the ``template`` chip
(``crop`` without a template), its vector's stored reason says so (``store.notes``) and
``EmbedResult.fallback`` counts it — one model id either way, so a project of TSV and folder
sources keeps its faces in one space. ``template`` maps every crop onto dlib's chip by one
project-wide similarity map, the per-point median of dlib's 5 landmarks over
:data:`TEMPLATE_SAMPLE` sampled crops (estimated once, kept in project meta; a dataset's own
alignment is kept and no single bad detection moves a face's chip); ``chip`` uses each crop's
own landmarks on the whole crop; ``crop`` resizes the whole crop. With fewer than
:data:`TEMPLATE_MIN` plausible landmark sets ``template`` falls back to ``crop`` and says so.
``box`` was chosen by LFW's verification protocol through this pipeline
(tests/bench/bench_lfw_protocol.py). A project embedded before with another alignment is
embedded again under the new model id by its next run (``--align template`` keeps its
vectors). Quality and speed of each: docs/MEASUREMENTS.md, "Alignment" and "Embeddings".

Work order and safety: scanned, non-corrupt faces without a vector of this model, unreviewed
identities first; a face that does not decode is stored as failed, without a vector. Each chunk
of :data:`CHUNK` faces (one network batch) is committed in its own short transaction, so Ctrl-C
keeps every finished chunk and the next run carries on. Workers are a 'spawn' process pool
(:mod:`annotator.core.infra.workers`) or Dask workers, each loading the models once.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from annotator.core.identity import engine, identity_check
from annotator.core.identity.align import (
    CHIP_INSET,
    CHIP_PADDING,
    CHIP_SIZE,
    N_POINTS,
    TEMPLATE_MIN,
    Rect,
    Template,
    box_chip,
    chip_of,
    crop_landmarks,
    plausible_landmarks,
    resized_crop,
    template_from_landmarks,
)
from annotator.core.identity.align import template_shape as _template_shape
from annotator.core.infra.access import FaceBytes, FaceReadError, ReadItem, read_planned
from annotator.core.infra.workers import process_pool, run_chunks, usable_cores
from annotator.model import AnnotatorError, CancelledFn, ProgressFn, never_cancelled
from annotator.store import embeddings as store
from annotator.store.db import Project

if TYPE_CHECKING:
    from annotator.core.infra.cluster import Cluster

INSTALL_HINT = (
    "face embeddings need the optional extra: pip install -e '.[embed]' "
    "(installs dlib-bin, face-recognition-models, onnxruntime and onnx)"
)
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DIM = store.DIM
MAX_SIDE = 600  # larger images are reduced on decode (a face crop is small)
CHUNK = 16  # faces per worker task, per network batch and per transaction
ALIGNMENTS = ("box", "template", "chip", "crop")
DEFAULT_ALIGN = "box"
TEMPLATE_META = "embed_template"  # project meta key: the project's template (JSON)
BOX_NO_TEMPLATE = "a face without a usable face rectangle gets the whole crop"
TEMPLATE_SAMPLE = 300  # faces whose landmarks the template is the median of


def model_id(align: str = DEFAULT_ALIGN, template: Template | None = None) -> str:
    """What is stored with each vector: the network and the alignment (for ``template``, the
    template's fingerprint)."""
    if align not in ALIGNMENTS:
        raise AnnotatorError(f"unknown alignment {align!r} (choose {', '.join(ALIGNMENTS)})")
    if align == "template":
        if template is None:
            raise AnnotatorError("the template alignment needs the project's template")
        return f"dlib_resnet_v1/sp5/tmpl{CHIP_SIZE}p{CHIP_PADDING:g}/{template.fingerprint()}"
    if align == "box":  # a face without a usable box: the template's chip (its vector's reason)
        return f"dlib_resnet_v1/sp5/box{CHIP_SIZE}p{CHIP_PADDING:g}"
    if align == "chip":
        return f"dlib_resnet_v1/sp5/chip{CHIP_SIZE}p{CHIP_PADDING:g}i{CHIP_INSET:g}"
    return f"dlib_resnet_v1/crop{CHIP_SIZE}"


def sample_evenly(ids: Sequence[int], n: int = TEMPLATE_SAMPLE) -> list[int]:
    """At most ``n`` of ``ids`` at evenly spaced positions (``ids`` grouped by identity, as
    :func:`store.faces_to_embed` gives them: the sample spreads over the identities)."""
    if len(ids) <= n:
        return list(ids)
    pos = np.linspace(0, len(ids) - 1, n).round().astype(np.int64)
    return [ids[int(i)] for i in np.unique(pos)]


def require_extra() -> tuple[str, str]:
    """Paths of the two model files; :class:`AnnotatorError` with the install hint when the
    extra is missing. Imports dlib (only the command that embeds calls this)."""
    try:
        import dlib  # noqa: F401

        spec = importlib.util.find_spec("face_recognition_models")
        runtime = [importlib.util.find_spec(m) for m in ("onnxruntime", "onnx")]
    except (ImportError, ValueError):
        raise AnnotatorError(INSTALL_HINT) from None
    if None in runtime or spec is None or not spec.submodule_search_locations:
        raise AnnotatorError(INSTALL_HINT)
    # the weights' folder, found without importing the package (it imports pkg_resources)
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    paths = (models / LANDMARKS_FILE, models / RECOGNITION_FILE)
    for p in paths:
        if not p.is_file():
            raise AnnotatorError(f"model file {p} is missing; {INSTALL_HINT}")
    return str(paths[0]), str(paths[1])


# -- in a worker ------------------------------------------------------------------------------
class _PerThread(threading.local):
    """The loaded models, one set per thread (a Dask worker may run several threads, and
    dlib's network keeps state between calls)."""

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        return self.models[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.models[key] = value


_MODELS = _PerThread()


def load_models(landmarks: str, recognition: str | None, device: str = "cpu") -> None:
    """Worker initializer: dlib's landmark model, and the network on onnxruntime
    (core/identity/engine.py: one session per process) unless ``recognition`` is None."""
    import dlib

    _MODELS["dlib"] = dlib
    _MODELS["sp"] = dlib.shape_predictor(landmarks)
    if recognition is not None:
        _MODELS["rec"] = engine.engine(recognition, device)


def load_own_models() -> None:
    """Initializer on a Dask worker: the worker's own model files (its install may live
    elsewhere than the client's), loaded once per worker thread by core/infra/cluster.py."""
    load_models(*require_extra())


def load_own_models_cuda() -> None:
    """:func:`load_own_models` with the network on onnxruntime's CUDA provider."""
    load_models(*require_extra(), "cuda")


def decode_rgb(data: bytes) -> np.ndarray:
    """An image's bytes -> (h, w, 3) uint8, reduced on decode when larger than MAX_SIDE."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at 1/2, 1/4, 1/8 when large
        im.load()
        img = im if im.mode == "RGB" else im.convert("RGB")  # no copy of an RGB JPEG's pixels
        if max(img.size) > MAX_SIDE:
            img.thumbnail((MAX_SIDE, MAX_SIDE))
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _landmarks(img: np.ndarray) -> Any:
    """dlib's 5 points on a rectangle covering the crop (inset by CHIP_INSET per side)."""
    return crop_landmarks(_MODELS["dlib"], _MODELS["sp"], img)


def template_shape(template: Template, w: int, h: int) -> Any:
    """The template's points on a w x h crop, as the dlib shape get_face_chip takes."""
    return _template_shape(_MODELS["dlib"], template, w, h)


def face_chip(img: np.ndarray, align: str, template: Template | None = None) -> np.ndarray:
    """The 150x150 chip the network reads, from a face crop (``box``: see :func:`box_chips`)."""
    h, w = img.shape[:2]
    if align == "crop":
        return resized_crop(img)
    if align == "template":
        if template is None:
            raise ValueError("the template alignment needs a template")
        shape = template_shape(template, w, h)
    else:
        shape = _landmarks(img)
    return chip_of(_MODELS["dlib"], img, shape)


def box_chips(
    images: Sequence[np.ndarray], rects: Sequence[Rect | None], template: Template | None
) -> tuple[list[np.ndarray], list[str | None]]:
    """``box`` chips (core/identity/align.py) of decoded crops and their face rectangles, and
    per chip None or how it was made instead (no usable box: the template's chip)."""
    made = [
        box_chip(_MODELS["dlib"], _MODELS["sp"], img, r, template)
        for img, r in zip(images, rects, strict=True)
    ]
    return [c for c, _ in made], [how or None for _, how in made]


def embed_images(
    images: Sequence[np.ndarray], align: str = DEFAULT_ALIGN, template: Template | None = None
) -> np.ndarray:
    """(n, DIM) float32 descriptors of decoded face crops (models loaded)."""
    return network([face_chip(img, align, template) for img in images])


def network(chips: Sequence[np.ndarray]) -> np.ndarray:
    """(n, DIM) float32 descriptors of 150x150 chips (the network loaded)."""
    if not len(chips):
        return np.empty((0, DIM), dtype=np.float32)
    return _MODELS["rec"].run(np.stack(chips))


def landmarks_planned(
    items: Sequence[ReadItem],
) -> tuple[list[tuple[int, list[list[float]]]], list[tuple[int, str]]]:
    """dlib's 5 landmarks on planned faces (in a worker, landmark model loaded), as fractions
    of each crop's width and height: (rows (face id, 5 [x, y]), read errors), the contract of
    :func:`embed_planned`. A face that cannot be read or decoded has no row."""
    rows: list[tuple[int, list[list[float]]]] = []
    errors: list[tuple[int, str]] = []
    for item, data in zip(items, read_planned(items, errors="return"), strict=True):
        if isinstance(data, FaceReadError):
            errors.append((item.face_id, str(data)))
            continue
        try:
            img = decode_rgb(data)
            h, w = img.shape[:2]
            shape = _landmarks(img)
            pts = [[shape.part(i).x / w, shape.part(i).y / h] for i in range(N_POINTS)]
        except Exception:  # noqa: BLE001 - this face's problem: left out of the template
            continue
        rows.append((item.face_id, pts))
    return rows, errors


def landmark_array(rows: Sequence[tuple[int, Sequence[Sequence[float]]]], n: int) -> np.ndarray:
    """(n, 5, 2) landmark sets of :func:`landmarks_planned`'s rows for a sample of ``n``
    faces, NaN for the faces without a row."""
    out = np.full((max(n, len(rows)), N_POINTS, 2), np.nan)
    for k, (_fid, pts) in enumerate(rows):
        out[k] = pts
    return out


def embed_planned(
    items: Sequence[ReadItem],
    align: str,
    template: Template | None = None,
    rects: dict[int, Rect] | None = None,
) -> tuple[list[tuple[int, str, str | None, bytes | None]], list[tuple[int, str]]]:
    """Read, decode and embed planned faces (in a worker). Returns (rows for the store,
    read errors): a face whose bytes cannot be read is not stored (the next run tries again);
    one that does not decode is stored as failed with its reason. ``box`` uses ``rects``
    (face id -> its rectangle); an ok row's reason says when a face got another chip."""
    rows: list[tuple[int, str, str | None, bytes | None]] = []
    errors: list[tuple[int, str]] = []
    ok_ids: list[int] = []
    images: list[np.ndarray] = []
    for item, data in zip(items, read_planned(items, errors="return"), strict=True):
        if isinstance(data, FaceReadError):
            errors.append((item.face_id, str(data)))
            continue
        try:
            images.append(decode_rgb(data))
            ok_ids.append(item.face_id)
        except Exception as e:  # any decoder failure is this face's, not the run's
            rows.append((item.face_id, "failed", f"cannot decode: {e}"[:200], None))
    hows: list[str | None] = [None] * len(images)
    if align == "box":  # the chips go to the network as they are
        chips, hows = box_chips(images, [(rects or {}).get(f) for f in ok_ids], template)
        vecs = network(chips)
    else:
        vecs = embed_images(images, align, template)
    for fid, vec, how in zip(ok_ids, vecs, hows, strict=True):
        rows.append((fid, "ok", how, store.to_blob(vec)))
    return rows, errors


# -- the run ----------------------------------------------------------------------------------
def stored_template(project: Project) -> Template | None:
    """The project's template (project meta), None when it has none or it is unreadable."""
    text = project.meta(TEMPLATE_META)
    if not text:
        return None
    try:
        return Template.from_json(text)
    except (ValueError, KeyError, TypeError):
        return None


def project_template(
    project: Project, paths: tuple[str, str], cluster: Cluster | None = None
) -> tuple[Template | None, str]:
    """(the project's template, a note when there is none). The first call estimates it from
    the landmarks of TEMPLATE_SAMPLE scanned, decodable faces spread over the identities
    (here, or on one cluster worker) and stores it in the project's meta: later runs and new
    faces use the same one, so an incremental run stays incremental."""
    found = stored_template(project)
    if found is not None:
        return found, ""
    sample = sample_evenly(store.faces_to_embed(project, "", None).tolist())
    fb = FaceBytes(project)
    try:
        plan = fb.plan(sample)
        if cluster is None:
            load_models(paths[0], None)
            rows, _errors = landmarks_planned(plan)
        else:
            with cluster.executor(project, load_own_models) as pool:
                rows, _errors = pool.submit(landmarks_planned, plan).result()
    finally:
        fb.close()
    pts = landmark_array(rows, len(sample))
    template = template_from_landmarks(pts)
    if template is None:
        n = int(plausible_landmarks(pts).sum())
        return None, (
            f"no template: {n} of {len(sample)} sampled faces have plausible landmarks "
            f"(at least {TEMPLATE_MIN} needed); the whole crop was used (--align crop)"
        )
    project.set_meta(TEMPLATE_META, template.to_json())
    return template, ""


@dataclass(slots=True)
class EmbedResult:
    model: str = ""
    align: str = ""  # the alignment used (``crop`` when a template could not be made)
    template: Template | None = None  # the project's template (align ``template``)
    note: str = ""  # why the alignment asked for was not used
    todo: int = 0  # faces that needed an embedding at the start
    embedded: int = 0
    failed: int = 0
    fallback: int = 0  # ``box``: faces without a usable box, given the template's chip
    read_errors: list[str] = field(default_factory=list)  # first few messages
    read_error_count: int = 0
    corrupt_skipped: int = 0  # corrupt faces in scope (never embedded)
    not_scanned: int = 0  # faces in scope without a scan (run `annotator scan`)
    cancelled: bool = False
    seconds: float = 0.0
    stored: int = 0  # embeddings of this model in the project after the run
    suspect_identity: int = 0  # flags after the run (annotator.core.identity.identity_check)
    same_person: int = 0  # "probably the same person" pairs of identities

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "align": self.align,
            "template": None if self.template is None else self.template.as_dict(),
            "note": self.note,
            "todo": self.todo,
            "embedded": self.embedded,
            "failed": self.failed,
            "fallback": self.fallback,
            "read_errors": self.read_error_count,
            "read_error_examples": self.read_errors,
            "corrupt_skipped": self.corrupt_skipped,
            "not_scanned": self.not_scanned,
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
            "stored": self.stored,
            "suspect_identity": self.suspect_identity,
            "same_person": self.same_person,
        }


def embed(
    project: Project,
    *,
    identity_keys: Sequence[str] | None = None,
    workers: int | None = None,
    align: str = DEFAULT_ALIGN,
    chunk: int = CHUNK,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    cluster: Cluster | None = None,
    device: str = "cpu",
) -> EmbedResult:
    """Embed every scanned, decodable face (of ``identity_keys`` when given) that has no
    embedding by this model yet. Resumable and incremental; one transaction per chunk. With
    ``cluster`` (core/infra/cluster.py) the chunks run on its Dask workers. ``align`` ``template``
    uses the project's template (:func:`project_template`), or ``crop`` when none can be made
    (``res.note`` says why). ``device`` ``cuda``: onnxruntime's CUDA provider (one line
    before anything is written when it has none)."""
    if align not in ALIGNMENTS:
        model_id(align)  # the one-line error
    engine.check_device(device, here=cluster is None)  # on a cluster the workers check
    paths = require_extra() if cluster is None else ("", "")  # workers find their own
    res = EmbedResult(align=align)
    cancelled = cancelled or never_cancelled
    t0 = time.perf_counter()
    ids: list[int] | None = None
    if identity_keys:
        ids, missing = store.identity_ids_of_keys(project, identity_keys)
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise AnnotatorError(f"no identity with key {missing[0]!r} in the project{more}")
    scope = store.scan_counts(project, ids)
    if scope["faces"] == 0:
        raise AnnotatorError("no faces to embed: the project has none (import some first)")
    if scope["scanned"] == 0:
        raise AnnotatorError(
            "no face has been scanned yet: run `annotator scan` first (embed skips corrupt faces)"
        )
    res.not_scanned = scope["faces"] - scope["scanned"]
    res.corrupt_skipped = scope["corrupt"]
    template = None
    if align == "template":
        template, res.note = project_template(project, paths, cluster)
        if template is None:
            align = res.align = "crop"
        res.template = template
    res.model = model = model_id(align, template)
    todo = store.faces_to_embed(project, model, ids)
    res.todo = total = len(todo)
    if align == "box" and total:  # the chip of a face without a usable box (at most once)
        template, note = project_template(project, paths, cluster)
        res.template = template
        if template is None:
            res.note = note.replace("the whole crop was used (--align crop)", BOX_NO_TEMPLATE)

    def rects_of(part: list[int]) -> dict[int, Rect] | None:
        return store.face_rects(project, part) if align == "box" else None

    if progress:
        progress(0, total)
    fb = FaceBytes(project)
    chunks = (todo[s : s + chunk].tolist() for s in range(0, total, chunk))
    done = 0

    def commit(out: tuple[list, list]) -> None:
        nonlocal done
        rows, errors = out
        store.insert_embeddings(project, model, rows)
        res.embedded += sum(1 for r in rows if r[1] == "ok")
        res.failed += sum(1 for r in rows if r[1] != "ok")
        res.fallback += sum(1 for r in rows if r[1] == "ok" and r[2])
        res.read_error_count += len(errors)
        for _, msg in errors:
            if len(res.read_errors) < 10:
                res.read_errors.append(msg)
        done += len(rows) + len(errors)
        if progress:
            progress(done, total)

    n_workers = workers if workers is not None else usable_cores()
    try:
        if total == 0:
            pass
        elif cluster is None and (n_workers <= 1 or total <= chunk):
            load_models(*paths, device)
            for part in chunks:
                if cancelled():
                    res.cancelled = True
                    break
                commit(embed_planned(fb.plan(part), align, template, rects_of(part)))
        else:
            if cluster is None:
                engine.model_bytes(paths[1])  # built and cached here, once, not per worker
            with (
                cluster.executor(
                    project, load_own_models_cuda if device == "cuda" else load_own_models
                )
                if cluster
                else process_pool(n_workers, load_models, (*paths, device))
            ) as pool:
                res.cancelled = run_chunks(
                    pool,
                    chunks,
                    lambda part: pool.submit(
                        embed_planned, fb.plan(part), align, template, rects_of(part)
                    ),
                    commit,
                    cancelled,
                    2 * n_workers,
                )
    finally:
        fb.close()
        res.seconds = time.perf_counter() - t0
    res.cancelled = res.cancelled and done < total  # stopped with work left
    res.stored = store.counts(project, model)["ok"]
    if not res.cancelled:  # the embeddings' flags (suspect_identity) and same-person pairs
        check = identity_check.refresh(project)
        res.suspect_identity = 0 if check is None else len(check.suspect)
        res.same_person = 0 if check is None else len(check.same_person)
    return res
