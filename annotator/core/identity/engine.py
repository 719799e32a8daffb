"""dlib's face-recognition ResNet on onnxruntime (the ``[embed]`` extra).

The ONNX graph is built here from the weights ``face-recognition-models`` ships (read by
:mod:`dlib_dat`, no dlib), once per machine, and cached in the user's cache folder
(``$XDG_CACHE_HOME/annotator`` or ``~/.cache/annotator``) under the ``.dat``'s SHA-256 and
:data:`GRAPH_VERSION`; a sidecar records both and the graph's own digest, so a cache written by
another version, for other weights, or damaged is rebuilt, never trusted. Nothing is downloaded.
The graph computes what dlib computes: the chip's mean RGB subtracted and divided by 256, each
per-channel affine layer folded into the convolution before it, and dlib's residual add, which
zero-fills the smaller input to the larger (a block that halves 8 px adds a 3x3 to a 4x4).
One onnxruntime session per process (shared by its threads), one intra-op thread by default.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from annotator.core.identity import dlib_dat
from annotator.model import AnnotatorError

GRAPH_VERSION = 2  # bump when the graph built from the same weights changes
OPSET = 17
BATCH = 64  # chips per onnxruntime call (dlib's own batch is 16)
DEVICES = ("cpu", "cuda")
ONNX_HINT = "the embedding engine needs onnxruntime and onnx: pip install -e '.[embed]'"
CUDA_HINT = (
    "--device cuda: this onnxruntime has no CUDA provider "
    "(install onnxruntime-gpu in place of onnxruntime); nothing was written"
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "annotator"


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise AnnotatorError(f"{path}: cannot read the network file: {e.strerror or e}") from None
    return h.hexdigest()


# -- the graph ----------------------------------------------------------------------------------
def build_model(dat_path: str | Path, dat_sha256: str = "") -> bytes:
    """The serialized ONNX model of the network in ``dat_path``."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise AnnotatorError(ONNX_HINT) from None
    ops = dlib_dat.read_network(dat_path)
    nodes: list[Any] = []
    inits: list[Any] = []
    count = [0]

    def name(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}{count[0]}"

    def const(arr: np.ndarray, prefix: str = "w") -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    # NHWC uint8 -> NCHW float, minus the mean (per channel plane: a cheap broadcast)
    x = node("Transpose", ["chips"], perm=[0, 3, 1, 2])
    x = node("Cast", [x], to=TensorProto.FLOAT)
    x = node("Sub", [x, const(ops[0].params["mean"].reshape(1, 3, 1, 1), "mean")])
    shape = (3, dlib_dat.CHIP, dlib_dat.CHIP)  # (channels, rows, columns) of x
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    first = True
    i = 1
    while i < len(ops):
        op = ops[i]
        p = op.params
        if op.kind == "con":
            w, b = p["w"].astype(np.float64), p["b"].astype(np.float64)
            if first:  # dlib's (pixel - mean) / 256: the scale is exact in the weights
                w, first = w / 256.0, False
            if i + 1 < len(ops) and ops[i + 1].kind == "affine":
                g, beta = ops[i + 1].params["gamma"], ops[i + 1].params["beta"]
                w = w * g.astype(np.float64)[:, None, None, None]
                b = b * g + beta.astype(np.float64)
                i += 1
            k, s, pad = w.shape[2], p["stride"], p["pad"]
            x = node(
                "Conv",
                [x, const(w.astype(np.float32)), const(b.astype(np.float32), "b")],
                kernel_shape=[k, k],
                strides=[s, s],
                pads=[pad] * 4,
            )
            side = [(d + 2 * pad - k) // s + 1 for d in shape[1:]]
            shape = (w.shape[0], side[0], side[1])
        elif op.kind == "affine":  # not after a convolution (not in this network)
            c = shape[0]
            x = node("Mul", [x, const(p["gamma"].reshape(1, c, 1, 1), "g")])
            x = node("Add", [x, const(p["beta"].reshape(1, c, 1, 1), "b")])
        elif op.kind == "relu":
            x = node("Relu", [x])
        elif op.kind in ("max_pool", "avg_pool"):
            size, s = p["size"], p["stride"]
            if size == 0:
                x = node("GlobalAveragePool", [x])
                shape = (shape[0], 1, 1)
            else:
                kind = "MaxPool" if op.kind == "max_pool" else "AveragePool"
                x = node(kind, [x], kernel_shape=[size, size], strides=[s, s])
                shape = (shape[0], *[(d - size) // s + 1 for d in shape[1:]])
        elif op.kind == "tag":
            tags[p["tag"]] = (x, shape)
        elif op.kind == "skip":
            x, shape = tags[p["tag"]]
        elif op.kind == "add_prev":
            other, oshape = tags[p["tag"]]
            big = tuple(max(a, c) for a, c in zip(shape, oshape, strict=True))
            x = node(
                "Add",
                [
                    _zero_fill(node, const, x, shape, big),
                    _zero_fill(node, const, other, oshape, big),
                ],
            )
            shape = big
        elif op.kind == "fc":
            x = node("Flatten", [x], axis=1)
            x = node("MatMul", [x, const(p["w"], "fc")])
        else:
            raise AnnotatorError(f"{dat_path}: unexpected layer {op.kind}")
        i += 1
    nodes[-1].output[0] = "descriptors"
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [
            helper.make_tensor_value_info(
                "chips", TensorProto.UINT8, ["n", dlib_dat.CHIP, dlib_dat.CHIP, 3]
            )
        ],
        [helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["n", 128])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="annotator"
    )
    model.ir_version = 8
    helper.set_model_props(model, {"graph_version": str(GRAPH_VERSION), "dat_sha256": dat_sha256})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _zero_fill(node: Any, const: Any, x: str, shape: tuple, big: tuple) -> str:
    """dlib's add_prev: the smaller tensor zero-filled at the end of each axis."""
    if shape == big:
        return x
    pads = [0, 0, 0, 0, 0, big[0] - shape[0], big[1] - shape[1], big[2] - shape[2]]
    return node("Pad", [x, const(np.array(pads, np.int64), "pads")], mode="constant")


# -- the cache ----------------------------------------------------------------------------------
def _cache_paths(digest: str) -> tuple[Path, Path]:
    stem = f"dlib_resnet_v1-{digest[:16]}-g{GRAPH_VERSION}"
    d = cache_dir()
    return d / f"{stem}.onnx", d / f"{stem}.json"


def _cached(digest: str) -> bytes | None:
    """The cached model for these weights if its sidecar vouches for it, else None."""
    onnx_path, side = _cache_paths(digest)
    try:
        meta = json.loads(side.read_text())
        data = onnx_path.read_bytes()
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(meta, dict)
        and meta.get("graph_version") == GRAPH_VERSION
        and meta.get("dat_sha256") == digest
        and meta.get("onnx_sha256") == hashlib.sha256(data).hexdigest()
    )
    return data if ok else None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def model_bytes(dat_path: str | Path) -> tuple[bytes, str]:
    """(the ONNX model for ``dat_path``, where it came from: ``cache`` / ``built`` /
    ``built (not cached: why)``). Built and cached when no trustworthy cache exists."""
    digest = file_digest(dat_path)
    data = _cached(digest)
    if data is not None:
        return data, "cache"
    data = build_model(dat_path, digest)
    onnx_path, side = _cache_paths(digest)
    meta = {
        "graph_version": GRAPH_VERSION,
        "dat_sha256": digest,
        "onnx_sha256": hashlib.sha256(data).hexdigest(),
        "dat": str(dat_path),
    }
    try:
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(onnx_path, data)  # the model first: a sidecar never vouches for a
        _write_atomic(side, json.dumps(meta).encode())  # model not written in full
    except OSError as e:
        return data, f"built (not cached: {e.strerror or e})"
    return data, "built"


# -- running it ---------------------------------------------------------------------------------
def check_device(device: str, here: bool = True) -> None:
    """One line when ``device`` is unknown or (``here``) this process's onnxruntime cannot
    use it; call before writing anything."""
    if device not in DEVICES:
        raise AnnotatorError(f"unknown device {device!r} (choose {', '.join(DEVICES)})")
    if not here:
        return
    try:
        import onnxruntime as ort
    except ImportError:
        raise AnnotatorError(ONNX_HINT) from None
    if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise AnnotatorError(CUDA_HINT)


class Engine:
    """An onnxruntime session of the network: :meth:`run` maps (n, 150, 150, 3) uint8 RGB
    chips (dlib's face chips) to (n, 128) float32 descriptors, dlib's to ~1e-6."""

    def __init__(
        self,
        dat_path: str | Path,
        device: str = "cpu",
        threads: int = 1,
        optimization: str = "all",
    ):
        check_device(device)
        import onnxruntime as ort

        data, self.source = model_bytes(dat_path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = {
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(data, so, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime's own error types
            raise AnnotatorError(f"onnxruntime cannot load the network: {e}") from None

    def run(self, chips: np.ndarray, batch: int = BATCH) -> np.ndarray:
        chips = np.ascontiguousarray(chips, dtype=np.uint8)
        if chips.ndim != 4 or chips.shape[1:] != (dlib_dat.CHIP, dlib_dat.CHIP, 3):
            raise ValueError(f"chips must be (n, 150, 150, 3) uint8, not {chips.shape}")
        out = np.empty((len(chips), 128), np.float32)
        for s in range(0, len(chips), batch):
            out[s : s + batch] = self.session.run(None, {"chips": chips[s : s + batch]})[0]
        return out


_ENGINES: dict[tuple[str, str], Engine] = {}
_LOCK = threading.Lock()


def engine(dat_path: str | Path, device: str = "cpu") -> Engine:
    """This process's engine for ``dat_path`` on ``device`` (made once; its session is shared
    by the process's threads: onnxruntime sessions may run concurrently)."""
    key = (str(dat_path), device)
    with _LOCK:
        found = _ENGINES.get(key)
        if found is None:
            found = _ENGINES[key] = Engine(dat_path, device)
        return found
