"""Read dlib's serialized face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``).

No dlib needed: the file is parsed by the network's own definition (dlib's
``tools/python/src/face_recognition.cpp``, ``anet_type``) and dlib's serialization rules
(``dlib/serialize.h``, ``dlib/dnn/core.h``, ``layers.h``, ``input.h``, ``loss.h``).
A dlib network is written outside-in: each wrapper's version, then its sub-network, then its
own layer; so the file holds the versions from the loss down to the input, then the layers
from the input up. :func:`read_network` returns the layers bottom-up as :class:`Op` s, the
per-channel affine layers (or batch-norm layers, converted as dlib converts them) kept apart
for the graph builder to fold. Anything that is not this network, or is cut short, is one
:class:`~annotator.model.AnnotatorError` naming the file, the byte and what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from annotator.model import AnnotatorError

CHIP = 150  # input_rgb_image_sized<150>


@dataclass(slots=True)
class Op:
    """One layer, bottom-up. kind: input (mean RGB in ``params['mean']``), con (``w`` (out, in,
    kh, kw), ``b`` (out,), ``stride``, ``pad``), affine (``gamma``, ``beta`` per channel), relu,
    max_pool / avg_pool (``size`` (0 = everything), ``stride``, ``pad``), tag / skip /
    add_prev (``tag`` id), fc (``w`` (in, out), ``b`` or None)."""

    kind: str
    params: dict = field(default_factory=dict)


def _net_spec() -> list[tuple]:
    """dlib's ``anet_type``, top (loss) to bottom (input): (kind, args...)."""

    def block(n: int, stride: int) -> list[tuple]:
        # block = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>
        return [("affine",), ("con", n, 3, 1), ("relu",), ("affine",), ("con", n, 3, stride)]

    def ares(n: int) -> list[tuple]:  # relu<add_prev1<block<N,1,tag1<SUBNET>>>>
        return [("relu",), ("add_prev", 1), *block(n, 1), ("tag", 1)]

    def ares_down(n: int) -> list[tuple]:
        # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,2,tag1<SUBNET>>>>>>>
        return [
            ("relu",),
            ("add_prev", 2),
            ("avg_pool", 2, 2),
            ("skip", 1),
            ("tag", 2),
            *block(n, 2),
            ("tag", 1),
        ]

    spec: list[tuple] = [("loss",), ("fc", 128), ("avg_pool", 0, 1)]
    spec += ares_down(256)  # alevel0
    spec += ares(256) + ares(256) + ares_down(256)  # alevel1
    spec += ares(128) + ares(128) + ares_down(128)  # alevel2
    spec += ares(64) + ares(64) + ares(64) + ares_down(64)  # alevel3
    spec += ares(32) + ares(32) + ares(32)  # alevel4
    spec += [("max_pool", 3, 2), ("relu",), ("affine",), ("con", 32, 7, 2), ("input",)]
    return spec


class _Reader:
    """dlib's serialization primitives over the file's bytes, with errors naming the byte."""

    def __init__(self, data: bytes, path: str):
        self.data = data
        self.pos = 0
        self.path = path
        self.what = "the file's start"

    def fail(self, msg: str) -> AnnotatorError:
        return AnnotatorError(
            f"{self.path}: not dlib's face recognition ResNet ({msg} at byte {self.pos}, "
            f"reading {self.what})"
        )

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise AnnotatorError(
                f"{self.path}: truncated: the file ends at byte {len(self.data)} while reading "
                f"{self.what} (it needs {self.pos + n - len(self.data)} more bytes)"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int_(self) -> int:
        """dlib's integer: a control byte (size in the low 4 bits, 0x80 = negative), then
        ``size`` little-endian bytes."""
        ctrl = self.take(1)[0]
        size = ctrl & 0x0F
        if size == 0 or size > 8 or ctrl & 0x70:
            self.pos -= 1
            raise self.fail(f"bad integer control byte 0x{ctrl:02x}")
        v = int.from_bytes(self.take(size), "little")
        return -v if ctrl & 0x80 else v

    def expect_int(self, allowed: tuple[int, ...], name: str) -> int:
        at = self.pos
        v = self.int_()
        if v not in allowed:
            self.pos = at
            raise self.fail(f"{name} is {v}, expected {' or '.join(map(str, allowed))}")
        return v

    def string(self, limit: int = 64) -> str:
        at = self.pos
        n = self.int_()
        if not 0 <= n <= limit:
            self.pos = at
            raise self.fail(f"a string of length {n}")
        raw = self.take(n)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            self.pos = at
            raise self.fail("a string that is not ASCII") from None

    def expect_string(self, *allowed: str) -> str:
        at = self.pos
        s = self.string()
        if s not in allowed:
            self.pos = at
            raise self.fail(f"found {s!r} where {' or '.join(map(repr, allowed))} belongs")
        return s

    def float_(self) -> float:
        """dlib's portable float: mantissa (int64) x 2**exponent (int16), special exponents
        for inf/-inf/nan."""
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail("an old text-format float")
        man, exp = self.int_(), self.int_()
        if exp == 32000:
            return float("inf")
        if exp == 32001:
            return float("-inf")
        if exp == 32002:
            return float("nan")
        return float(np.ldexp(np.float64(man), exp))

    def bool_(self) -> bool:
        c = self.take(1)
        if c not in (b"0", b"1"):
            self.pos -= 1
            raise self.fail(f"bad bool byte {c!r}")
        return c == b"1"

    def tensor(self) -> np.ndarray:
        """A resizable_tensor: version 2, (n, k, nr, nc), raw little-endian float32."""
        self.expect_int((2,), "tensor version")
        dims = [self.int_() for _ in range(4)]
        if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.float64)) > 1 << 28:
            raise self.fail(f"a tensor of shape {dims}")
        count = int(np.prod(dims))
        return np.frombuffer(self.take(4 * count), dtype="<f4").reshape(dims).astype(np.float32)

    def alias(self) -> tuple[int, ...]:
        self.expect_int((1,), "alias_tensor version")
        dims = tuple(self.int_() for _ in range(4))
        if any(d < 0 for d in dims):
            raise self.fail(f"an alias tensor of shape {dims}")
        return dims


def _check(r: _Reader, ok: bool, msg: str) -> None:
    if not ok:
        raise r.fail(msg)


def _finite(r: _Reader, arr: np.ndarray, name: str) -> None:
    if not np.isfinite(arr).all():
        raise AnnotatorError(f"{r.path}: corrupt: {name} holds values that are not finite")


def _input(r: _Reader) -> Op:
    r.expect_string("input_rgb_image_sized")
    mean = [r.float_() for _ in range(3)]
    nr, nc = r.int_(), r.int_()
    _check(r, (nr, nc) == (CHIP, CHIP), f"input size {nr}x{nc}, expected {CHIP}x{CHIP}")
    return Op("input", {"mean": np.array(mean, np.float32)})


def _con(r: _Reader, n: int, k: int, stride: int) -> Op:
    version = r.expect_string("con_4", "con_5", "con_6")
    params = r.tensor()
    filters = r.int_()
    nr, nc, sy, sx, py, px = (r.int_() for _ in range(6))
    pad = 0 if stride != 1 else k // 2
    _check(r, (filters, nr, nc) == (n, k, k), f"a {filters} x {nr}x{nc} convolution")
    _check(r, (sy, sx, py, px) == (stride, stride, pad, pad), "convolution stride or padding")
    fshape, bshape = r.alias(), r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.float_()
    use_bias = r.bool_() if version in ("con_5", "con_6") else True
    if version == "con_6":
        _check(r, not r.bool_(), "a convolution with a fused relu")
    _check(r, fshape[0] == n and fshape[2:] == (k, k), f"filters of shape {fshape}")
    size = int(np.prod(fshape))
    nb = n if use_bias else 0
    _check(r, params.size == size + nb, f"{params.size} convolution parameters")
    _check(r, not use_bias or int(np.prod(bshape)) == n, f"biases of shape {bshape}")
    flat = params.reshape(-1)
    w = flat[:size].reshape(fshape)
    b = flat[size:].copy() if use_bias else np.zeros(n, np.float32)
    _finite(r, flat, "a convolution's weights")
    return Op("con", {"w": w, "b": b, "stride": stride, "pad": pad})


def _affine(r: _Reader, channels: int) -> Op:
    version = r.expect_string("affine_", "affine_2", "bn_con2")
    if version == "bn_con2":  # a batch-norm layer: dlib converts it to affine_ on load
        params = r.tensor()
        gamma, beta = r.alias(), r.alias()
        _means, _invstds, rmean, rvar = (r.tensor() for _ in range(4))  # + running stats
        r.int_()  # num_updates
        r.int_()  # running_stats_window_size
        for _ in range(4):
            r.float_()
        eps = r.float_()
        g, b, c = _split_affine(r, params, gamma, beta)
        _check(r, rmean.size == c and rvar.size == c, "batch-norm statistics")
        # as affine_(const bn_&): g / sqrt(var + eps), b - g * mean, in float32
        g = (g / np.sqrt(rvar.reshape(-1) + np.float32(eps))).astype(np.float32)
        b = (b - g * rmean.reshape(-1)).astype(np.float32)
    else:
        params = r.tensor()
        gamma, beta = r.alias(), r.alias()
        mode = r.int_()
        _check(r, mode == 0, f"an affine layer in mode {mode} (expected per-channel, 0)")
        if version == "affine_2":
            _check(r, not r.bool_(), "a disabled affine layer")
        g, b, c = _split_affine(r, params, gamma, beta)
    _check(r, c == channels, f"an affine layer of {c} channels after {channels}")
    _finite(r, np.concatenate([g, b]), "an affine layer")
    return Op("affine", {"gamma": g, "beta": b})


def _split_affine(
    r: _Reader, params: np.ndarray, gamma: tuple, beta: tuple
) -> tuple[np.ndarray, np.ndarray, int]:
    c = int(np.prod(gamma))
    _check(r, int(np.prod(beta)) == c and params.size == 2 * c, "affine parameter sizes")
    flat = params.reshape(-1)
    return flat[:c].copy(), flat[c:].copy(), c


def _pool(r: _Reader, kind: str, size: int, stride: int) -> Op:
    r.expect_string(f"{kind}_2")
    nr, nc, sy, sx, py, px = (r.int_() for _ in range(6))
    _check(r, (nr, nc, sy, sx, py, px) == (size, size, stride, stride, 0, 0), f"{kind} shape")
    return Op(kind, {"size": size, "stride": stride})


def _fc(r: _Reader, n: int, inputs: int) -> Op:
    version = r.expect_string("fc_2", "fc_3")
    outs, ins = r.int_(), r.int_()
    _check(r, (outs, ins) == (n, inputs), f"a fully connected layer {ins} -> {outs}")
    params = r.tensor()
    wshape, _bshape = r.alias(), r.alias()
    bmode = r.int_()
    for _ in range(4):
        r.float_()
    if version == "fc_3":
        r.bool_()
    _check(r, bmode == 1, "a fully connected layer with a bias (expected fc_no_bias)")
    _check(r, params.size == ins * outs and int(np.prod(wshape)) == ins * outs, "fc weights")
    w = params.reshape(ins, outs).copy()
    _finite(r, w, "the fully connected layer")
    return Op("fc", {"w": w, "b": None})


def _layer_trailer(r: _Reader, version: int, on_input: bool) -> None:
    """What add_layer writes after its layer: 3 bools, then gradients and outputs (empty in a
    saved network, skipped either way)."""
    for _ in range(3):
        r.bool_()
    r.tensor()  # x_grad
    r.tensor()  # cached_output
    if on_input:
        r.tensor()  # grad_final
        if version >= 3:
            r.int_()  # sample expansion factor
    elif version == 2:
        r.tensor()  # params_grad


def read_network(path: str | Path) -> list[Op]:
    """The network's layers bottom-up (input first), read from ``path``."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise AnnotatorError(f"{p}: cannot read the network file: {e.strerror or e}") from None
    r = _Reader(data, str(p))
    spec = _net_spec()
    # down: each wrapper's version (and the loss layer, written before its sub-network)
    versions: list[int] = []
    for depth, item in enumerate(spec):
        kind = item[0]
        r.what = f"the version of layer {depth} ({kind})"
        if kind == "loss":
            r.expect_int((1,), "the loss layer's version")
            r.what = "the loss layer"
            if r.expect_string("loss_metric_", "loss_metric_2") == "loss_metric_2":
                r.float_(), r.float_()  # margin, distance threshold
            versions.append(1)
        elif kind in ("tag", "skip"):
            versions.append(r.expect_int((1,), f"a {kind} layer's version"))
        elif kind == "input":
            versions.append(0)
        elif spec[depth + 1][0] == "input":
            versions.append(r.expect_int((2, 3), "the first layer's version"))
        else:
            versions.append(r.expect_int((1, 2), "a layer's version"))
    # up: the layers, input first
    ops: list[Op] = []
    channels = 3
    for depth in range(len(spec) - 1, -1, -1):
        item, kind = spec[depth], spec[depth][0]
        r.what = f"layer {depth} ({kind})"
        if kind == "loss":
            continue
        if kind == "input":
            ops.append(_input(r))
            continue
        if kind in ("tag", "skip", "add_prev"):
            if kind == "add_prev":
                r.expect_string("add_prev_")
                _layer_trailer(r, versions[depth], False)
            ops.append(Op(kind, {"tag": item[1]}))
            continue
        if kind == "con":
            op = _con(r, item[1], item[2], item[3])
            _check(r, op.params["w"].shape[1] == channels, "convolution input channels")
            channels = item[1]
        elif kind == "affine":
            op = _affine(r, channels)
        elif kind == "relu":
            v = r.expect_string("relu_", "relu_2")
            if v == "relu_2":
                _check(r, not r.bool_(), "a disabled relu")
            op = Op("relu")
        elif kind in ("max_pool", "avg_pool"):
            op = _pool(r, kind, item[1], item[2])
        else:  # fc
            op = _fc(r, item[1], channels)
        _layer_trailer(r, versions[depth], spec[depth + 1][0] == "input")
        ops.append(op)
    if r.pos != len(data):
        raise AnnotatorError(
            f"{p}: not dlib's face recognition ResNet ({len(data) - r.pos} bytes follow the "
            "network)"
        )
    return ops
