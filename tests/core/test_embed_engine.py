"""The embedding network on onnxruntime (core/identity/engine.py, dlib_dat.py): equal to dlib's
own run of the same weights on drawn faces, the graph cache, and bad ``.dat`` files.

Needs the [embed] extra (dlib-bin, face-recognition-models, onnxruntime, onnx).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from annotator.core.identity import dlib_dat, engine
from annotator.core.identity import embed as E
from annotator.demo.dataset import generate_demo
from annotator.model import AnnotatorError
from annotator.store import embeddings as store

LANDMARKS, DAT = E.require_extra()


@pytest.fixture(scope="module")
def drawn_crops(tmp_path_factory) -> list[np.ndarray]:
    """The decodable face crops of a small drawn demo (6 invented people)."""
    d = tmp_path_factory.mktemp("engine_demo")
    r = generate_demo(d, identities=6, faces_per_identity=(4, 6), seed=3)
    crops = []
    for line in Path(r.faces_tsv).read_text().splitlines():
        try:
            crops.append(E.decode_rgb(base64.b64decode(line.split("\t")[-1])))
        except Exception:  # noqa: BLE001 - the demo's deliberately truncated faces
            continue
    assert len(crops) > 30
    return crops


def test_onnxruntime_equals_dlib_on_drawn_faces(drawn_crops) -> None:
    """The same chips (dlib's chip of each crop's landmarks, and the whole crop) through dlib's
    network and ours; a batch of 16 as dlib runs it."""
    import dlib

    E.load_models(LANDMARKS, DAT)
    crops = drawn_crops[::2][:16]
    chips = np.stack([E.face_chip(img, ("chip", "crop")[k % 2]) for k, img in enumerate(crops)])
    ours = E._MODELS["rec"].run(chips)
    theirs = dlib.face_recognition_model_v1(DAT).compute_face_descriptor(list(chips))
    theirs = np.array([np.asarray(v) for v in theirs], np.float32)
    assert ours.shape == theirs.shape == (len(chips), 128)
    assert np.abs(ours - theirs).max() <= 1e-5
    assert len({v.tobytes() for v in ours}) == len(set(map(bytes, chips)))  # faces differ
    # stored as float16: most values identical, the rest one float16 step apart (a value
    # within 1e-5 of a rounding boundary may round the other way)
    a = store.from_blobs([store.to_blob(v) for v in ours]).astype(np.float32)
    b = store.from_blobs([store.to_blob(v) for v in theirs]).astype(np.float32)
    step = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float16)).astype(np.float32)
    assert (np.abs(a - b) <= step).all() and (a == b).mean() > 0.98
    # a batch gives what one chip at a time gives
    one_by_one = np.concatenate([E._MODELS["rec"].run(chips[i : i + 1]) for i in range(4)])
    assert np.array_equal(one_by_one, ours[:4])


def test_the_graph_reads_dlibs_network() -> None:
    """29 convolutions, each followed by a per-channel affine layer that the graph folds, and
    dlib's mean RGB at the input."""
    ops = dlib_dat.read_network(DAT)
    kinds = [op.kind for op in ops]
    assert kinds.count("con") == kinds.count("affine") == 29 and kinds[-1] == "fc"
    assert all(kinds[i + 1] == "affine" for i, k in enumerate(kinds) if k == "con")
    assert np.allclose(ops[0].params["mean"], [122.782, 117.001, 104.298], atol=1e-3)
    assert ops[-1].params["w"].shape == (256, 128)


# -- bad .dat files ----------------------------------------------------------------------------
def _one_line_naming(err: pytest.ExceptionInfo, path: Path, words: str) -> None:
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and words in msg, msg


def test_truncated_dat_is_one_line(tmp_path) -> None:
    data = Path(DAT).read_bytes()
    for cut in (0, 300, len(data) // 2, len(data) - 3):
        bad = tmp_path / f"cut{cut}.dat"
        bad.write_bytes(data[:cut])
        with pytest.raises(AnnotatorError) as err:
            dlib_dat.read_network(bad)
        _one_line_naming(err, bad, "truncated")


def test_foreign_dat_is_one_line(tmp_path) -> None:
    """Another dlib model (the landmark model), random bytes, trailing bytes."""
    with pytest.raises(AnnotatorError) as err:
        dlib_dat.read_network(LANDMARKS)
    _one_line_naming(err, Path(LANDMARKS), "not dlib's face recognition ResNet")
    junk = tmp_path / "junk.dat"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AnnotatorError) as err:
        dlib_dat.read_network(junk)
    _one_line_naming(err, junk, "not dlib's face recognition ResNet")
    longer = tmp_path / "longer.dat"
    longer.write_bytes(Path(DAT).read_bytes() + b"\x00\x00")
    with pytest.raises(AnnotatorError) as err:
        dlib_dat.read_network(longer)
    _one_line_naming(err, longer, "2 bytes follow the network")
    with pytest.raises(AnnotatorError) as err:
        dlib_dat.read_network(tmp_path / "missing.dat")
    _one_line_naming(err, tmp_path / "missing.dat", "cannot read")


def test_corrupt_dat_is_one_line(tmp_path) -> None:
    """A layer name changed, and weights that are not numbers."""
    data = bytearray(Path(DAT).read_bytes())
    at = data.index(b"con_")
    renamed = tmp_path / "renamed.dat"
    renamed.write_bytes(data[:at] + b"cXn_" + data[at + 4 :])
    with pytest.raises(AnnotatorError) as err:
        dlib_dat.read_network(renamed)
    _one_line_naming(err, renamed, f"byte {at - 2}")
    # the first convolution's first weight: after its name and its tensor's header
    r = dlib_dat._Reader(bytes(data), "x")
    r.pos = at - 2
    assert r.string() == "con_4" and r.int_() == 2
    dims = [r.int_() for _ in range(4)]
    assert int(np.prod(dims)) == 32 * 3 * 7 * 7 + 32
    nan, w0 = data[:], r.pos
    nan[w0 : w0 + 4] = np.array([np.nan], "<f4").tobytes()
    bad = tmp_path / "nan.dat"
    bad.write_bytes(bytes(nan))
    with pytest.raises(AnnotatorError) as err:
        dlib_dat.read_network(bad)
    _one_line_naming(err, bad, "corrupt")


# -- the cache ---------------------------------------------------------------------------------
@pytest.fixture
def fake_builds(tmp_path, monkeypatch) -> list[str]:
    """A cache folder of its own, and a cheap stand-in for the graph build (recorded)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    builds: list[str] = []

    def build(path, digest=""):
        builds.append(digest)
        return f"model {digest} g{engine.GRAPH_VERSION}".encode()

    monkeypatch.setattr(engine, "build_model", build)
    return builds


def test_graph_is_built_once_then_read_from_the_cache(fake_builds, tmp_path) -> None:
    data, how = engine.model_bytes(DAT)
    assert how == "built" and len(fake_builds) == 1
    assert engine.model_bytes(DAT) == (data, "cache") and len(fake_builds) == 1
    files = sorted(p.name for p in (tmp_path / "cache" / "annotator").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".onnx")
    assert engine.file_digest(DAT)[:16] in files[1]


def test_a_stale_or_damaged_cache_is_rebuilt(fake_builds, tmp_path, monkeypatch) -> None:
    engine.model_bytes(DAT)
    onnx_file, side = engine._cache_paths(engine.file_digest(DAT))
    good = onnx_file.read_bytes()
    onnx_file.write_bytes(good[:-3])  # truncated
    assert engine.model_bytes(DAT)[1] == "built" and onnx_file.read_bytes() == good
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "graph_version": engine.GRAPH_VERSION - 1}))
    assert engine.model_bytes(DAT)[1] == "built"  # a sidecar of another version
    side.write_text("{not json")
    assert engine.model_bytes(DAT)[1] == "built"
    # a cache written by another graph version is never read
    monkeypatch.setattr(engine, "GRAPH_VERSION", engine.GRAPH_VERSION + 1)
    data, how = engine.model_bytes(DAT)
    assert how == "built" and data.endswith(f"g{engine.GRAPH_VERSION}".encode())
    assert len(fake_builds) == 5


def test_an_unwritable_cache_still_runs(fake_builds, tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file: no folder can be made in it
    data, how = engine.model_bytes(DAT)
    assert data and how.startswith("built (not cached")


def test_cuda_without_the_provider_is_one_line(monkeypatch) -> None:
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(AnnotatorError, match="no CUDA provider"):
        engine.check_device("cuda")
    with pytest.raises(AnnotatorError, match="unknown device"):
        engine.check_device("tpu")
    engine.check_device("cpu")


def test_embed_device_cuda_without_the_provider_writes_nothing(tmp_path, monkeypatch) -> None:
    """The device is checked before the project is opened: one line, exit 1, no file made."""
    import onnxruntime
    from click.testing import CliRunner

    from annotator.cli.main import cli

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    db = tmp_path / "p.db"
    res = CliRunner().invoke(cli, ["embed", "-p", str(db), "--device", "cuda"])
    assert res.exit_code != 0 and "no CUDA provider" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not db.exists()
