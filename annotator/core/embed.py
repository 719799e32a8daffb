"""`annotator embed`: a 128-d face embedding per scanned face (the optional ``[embed]`` extra).

The network is dlib's ResNet face-recognition model (``dlib_face_recognition_resnet_model_v1``)
with dlib's 5-point landmark model for alignment, both shipped as weights by the
``face-recognition-models`` package and run by the ``dlib-bin`` wheel. Nothing else of those
packages is loaded (no face detector: a dataset's face is already cropped), and nothing outside
this module's worker functions imports dlib, so without the extra everything else works and
:func:`require_extra` says in one line how to install it.

Alignment. MS-Celeb crops are face crops, aligned differently from dlib's 150x150 face chips.
Two ways are offered (the model id stored with each vector names the one used):

* ``chip`` (default): the 5-point landmark model runs on a rectangle covering the crop (inset
  by :data:`CHIP_INSET` per side), then ``dlib.get_face_chip(img, shape, size=150,
  padding=0.25)`` makes dlib's own chip, the input the network was trained on.
* ``crop``: the whole crop resized to 150x150 is the chip (no landmarks).

Measured on the drawn demo faces (tests/bench/bench_embed.py; the default demo: 835 decodable
faces of 40 invented people, true identities from truth.json), ``crop`` separates them better
than ``chip``: mean intra/inter-identity distance 0.385/0.483 vs 0.449/0.542, d' 1.33 vs 1.03,
nearest-centre accuracy 0.72 vs 0.52, AUC of "distance to the filed identity's median" for
the injected wrong-identity faces 0.93 vs 0.89. The landmark model, trained on photos, lands
erratically on drawn faces (eyes on the hair, chips rotated and scaled). ``chip`` stays the
default because it is the input dlib's network was trained on; whether it also wins on real
MS-Celeb crops must be measured on real photos (none may be in this repository).

Work order and safety: only scanned faces that decode (never a ``corrupt`` one) and have no
embedding by this model are embedded, unreviewed identities first (most suspicious first). Each
chunk of :data:`CHUNK` faces is committed in its own short transaction, so an interrupted run
loses at most the chunks in flight and the next run carries on. Workers are a 'spawn' process
pool (:mod:`annotator.core.workers`: they die with the parent) that load the models once each.
"""

from __future__ import annotations

import importlib.util
import io
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from annotator.core import identity_check
from annotator.core.access import FaceBytes, FaceReadError, ReadItem, read_planned
from annotator.core.workers import process_pool, run_chunks
from annotator.model import AnnotatorError, CancelledFn, ProgressFn, never_cancelled
from annotator.store import embeddings as store
from annotator.store.db import Project

if TYPE_CHECKING:
    from annotator.core.cluster import Cluster

INSTALL_HINT = (
    "face embeddings need the optional extra: pip install -e '.[embed]' "
    "(installs dlib-bin and face-recognition-models)"
)
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DIM = store.DIM
CHIP_SIZE = 150
CHIP_PADDING = 0.25
CHIP_INSET = 0.0  # fraction of the crop's side left out on each side of the landmark rectangle
MAX_SIDE = 600  # larger images are reduced on decode (a face crop is small)
CHUNK = 16  # faces per worker task and per transaction (~1-2 s of work)
ALIGNMENTS = ("chip", "crop")
DEFAULT_ALIGN = "chip"


def model_id(align: str = DEFAULT_ALIGN) -> str:
    """What is stored with each vector: the network and the alignment."""
    if align not in ALIGNMENTS:
        raise AnnotatorError(f"unknown alignment {align!r} (choose {', '.join(ALIGNMENTS)})")
    if align == "chip":
        return f"dlib_resnet_v1/sp5/chip{CHIP_SIZE}p{CHIP_PADDING:g}i{CHIP_INSET:g}"
    return f"dlib_resnet_v1/crop{CHIP_SIZE}"


def require_extra() -> tuple[str, str]:
    """Paths of the two model files; :class:`AnnotatorError` with the install hint when the
    extra is missing. Imports dlib (only the command that embeds calls this)."""
    try:
        import dlib  # noqa: F401

        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        raise AnnotatorError(INSTALL_HINT) from None
    if spec is None or not spec.submodule_search_locations:
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


def load_models(landmarks: str, recognition: str) -> None:
    """Worker initializer: load both models once per process."""
    import dlib

    _MODELS["dlib"] = dlib
    _MODELS["sp"] = dlib.shape_predictor(landmarks)
    _MODELS["rec"] = dlib.face_recognition_model_v1(recognition)


def load_own_models() -> None:
    """Initializer on a Dask worker: the worker's own model files (its install may live
    elsewhere than the client's), loaded once per worker thread by core/cluster.py."""
    load_models(*require_extra())


def decode_rgb(data: bytes) -> np.ndarray:
    """An image's bytes -> (h, w, 3) uint8, reduced on decode when larger than MAX_SIDE."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at 1/2, 1/4, 1/8 when large
        img = im.convert("RGB")
    if max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE))
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def face_chip(img: np.ndarray, align: str) -> np.ndarray:
    """The 150x150 chip the network reads, from a face crop."""
    dlib = _MODELS["dlib"]
    h, w = img.shape[:2]
    if align == "crop":
        from PIL import Image

        return np.asarray(Image.fromarray(img).resize((CHIP_SIZE, CHIP_SIZE), Image.BILINEAR))
    dx, dy = int(round(w * CHIP_INSET)), int(round(h * CHIP_INSET))
    shape = _MODELS["sp"](img, dlib.rectangle(dx, dy, w - 1 - dx, h - 1 - dy))
    return dlib.get_face_chip(img, shape, size=CHIP_SIZE, padding=CHIP_PADDING)


def embed_images(images: Sequence[np.ndarray], align: str = DEFAULT_ALIGN) -> np.ndarray:
    """(n, DIM) float32 descriptors of decoded face crops (models loaded)."""
    if not images:
        return np.empty((0, DIM), dtype=np.float32)
    chips = [face_chip(img, align) for img in images]
    out = _MODELS["rec"].compute_face_descriptor(chips)
    return np.array([np.asarray(v) for v in out], dtype=np.float32).reshape(len(chips), DIM)


def embed_planned(
    items: Sequence[ReadItem], align: str
) -> tuple[list[tuple[int, str, str | None, bytes | None]], list[tuple[int, str]]]:
    """Read, decode and embed planned faces (in a worker). Returns (rows for the store,
    read errors): a face whose bytes cannot be read is not stored (the next run tries again);
    one that does not decode is stored as failed with its reason."""
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
    for fid, vec in zip(ok_ids, embed_images(images, align), strict=True):
        rows.append((fid, "ok", None, store.to_blob(vec)))
    return rows, errors


# -- the run ----------------------------------------------------------------------------------
@dataclass(slots=True)
class EmbedResult:
    model: str = ""
    todo: int = 0  # faces that needed an embedding at the start
    embedded: int = 0
    failed: int = 0
    read_errors: list[str] = field(default_factory=list)  # first few messages
    read_error_count: int = 0
    corrupt_skipped: int = 0  # corrupt faces in scope (never embedded)
    not_scanned: int = 0  # faces in scope without a scan (run `annotator scan`)
    cancelled: bool = False
    seconds: float = 0.0
    stored: int = 0  # embeddings of this model in the project after the run
    suspect_identity: int = 0  # flags after the run (annotator.core.identity_check)
    same_person: int = 0  # "probably the same person" pairs of identities

    def as_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "todo": self.todo,
            "embedded": self.embedded,
            "failed": self.failed,
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
) -> EmbedResult:
    """Embed every scanned, decodable face (of ``identity_keys`` when given) that has no
    embedding by this model yet. Resumable and incremental; one transaction per chunk. With
    ``cluster`` (core/cluster.py) the chunks run on its Dask workers."""
    model = model_id(align)
    paths = require_extra() if cluster is None else ("", "")  # workers find their own
    res = EmbedResult(model=model)
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
    todo = store.faces_to_embed(project, model, ids)
    res.todo = total = len(todo)
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
        res.read_error_count += len(errors)
        for _, msg in errors:
            if len(res.read_errors) < 10:
                res.read_errors.append(msg)
        done += len(rows) + len(errors)
        if progress:
            progress(done, total)

    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    try:
        if total == 0:
            pass
        elif cluster is None and (n_workers <= 1 or total <= chunk):
            load_models(*paths)
            for part in chunks:
                if cancelled():
                    res.cancelled = True
                    break
                commit(embed_planned(fb.plan(part), align))
        else:
            with (
                cluster.executor(project, load_own_models)
                if cluster
                else process_pool(n_workers, load_models, paths)
            ) as pool:
                res.cancelled = run_chunks(
                    pool,
                    chunks,
                    lambda part: pool.submit(embed_planned, fb.plan(part), align),
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
