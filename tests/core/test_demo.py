"""The synthetic demo dataset: determinism, ground truth matches the files, pHash separation."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from annotator.demo.dataset import BROKEN_KINDS, generate_demo, jpeg_pool
from annotator.demo.drawing import draw_face, identity_params, image_params, phash_int
from annotator.demo.variants import NEAR_MAX_BITS, near_variant
from annotator.formats import msceleb
from annotator.model import FaceRecord, Rejected

SMALL = {"identities": 6, "faces_per_identity": (4, 8)}


def _fields(path: Path) -> list[list[bytes]]:
    return [ln.split(b"\t") for ln in path.read_bytes().split(b"\n")[:-1]]


def _jpeg(fields: list[bytes]) -> bytes:
    return base64.b64decode(fields[6])


def _phash(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        return int(str(imagehash.phash(im)), 16)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_small")
    res = generate_demo(out, seed=7, **SMALL)
    return res, json.loads(res.truth_json.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_default")
    res = generate_demo(out)
    return res, json.loads(res.truth_json.read_text(encoding="utf-8"))


def test_draw_face_shapes_and_params():
    rng = np.random.default_rng(1)
    ident, ip = identity_params(rng), image_params(rng)
    img = draw_face(ident, ip)
    assert img.size == (112, 112) and img.mode == "RGB"
    assert draw_face(ident, ip, size=64).size == (64, 64)
    # dicts work as well as the dataclasses, and drawing is deterministic
    from dataclasses import asdict

    again = draw_face(asdict(ident), asdict(ip))
    assert img.tobytes() == again.tobytes()
    # not a flat image: there is a face and a background
    assert np.asarray(img).std() > 20


def test_generate_is_deterministic(tmp_path, small):
    res, _ = small
    again = generate_demo(tmp_path / "again", seed=7, **SMALL)
    for a, b in (
        (res.faces_tsv, again.faces_tsv),
        (res.names_tsv, again.names_tsv),
        (res.truth_json, again.truth_json),
    ):
        assert a.read_bytes() == b.read_bytes()
    other = generate_demo(tmp_path / "other", seed=8, **SMALL)
    assert other.faces_tsv.read_bytes() != res.faces_tsv.read_bytes()


def test_known_values_seed0_names(tmp_path):
    # The names and keys come from NumPy's PCG64 stream only (no JPEG codec involved).
    res = generate_demo(tmp_path, identities=3, faces_per_identity=(5, 5), seed=0)
    lines = res.names_tsv.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t")[0] == "m.0iysbc2"
    assert all(ln.count("\t") == 1 and '"@' in ln for ln in lines)
    assert res.identities == 3
    assert res.counts["broken"] == 5  # one of each broken kind at least
    assert all(res.counts[k] >= 3 for k in res.counts)


def test_counts_and_truth_cover_the_file(small):
    res, truth = small
    rows = _fields(res.faces_tsv)
    assert len(rows) == res.rows
    broken = {b["line"] for b in truth["broken"]}
    filed = [n for v in truth["identities"].values() for n in v["lines"]]
    assert len(filed) == len(set(filed)) == res.faces
    assert sorted(filed + sorted(broken)) == list(range(1, res.rows + 1))
    for kind in ("exact_dup", "near_dup", "cross_identity_dup", "wrong_identity", "truncated"):
        assert len(truth[kind]) >= 3, kind
    assert {b["kind"] for b in truth["broken"]} == set(BROKEN_KINDS)
    # every filed line really carries its identity's MID
    mid_of = {n: m for m, v in truth["identities"].items() for n in v["lines"]}
    for n, m in mid_of.items():
        assert rows[n - 1][0].decode() == m
    # names file and truth agree, and use more than one script
    names = {}
    for ln in res.names_tsv.read_text(encoding="utf-8").splitlines():
        mid, text = ln.split("\t")
        name, lang = text[1:].rsplit('"@', 1)
        names.setdefault(mid, {})[lang] = name
    assert names == {m: v["names"] for m, v in truth["identities"].items()}
    assert any(not n.isascii() for v in names.values() for n in v.values())


def test_duplicates_match_their_kind(small):
    res, truth = small
    rows = _fields(res.faces_tsv)
    mid = {n: m for m, v in truth["identities"].items() for n in v["lines"]}
    for a, b in truth["exact_dup"]:
        assert a < b and mid[a] == mid[b]
        assert _jpeg(rows[a - 1]) == _jpeg(rows[b - 1])
    for a, b in truth["near_dup"]:
        assert a < b and mid[a] == mid[b]
        ja, jb = _jpeg(rows[a - 1]), _jpeg(rows[b - 1])
        assert ja != jb
        assert (_phash(ja) ^ _phash(jb)).bit_count() <= NEAR_MAX_BITS
    for a, b in truth["cross_identity_dup"]:
        assert mid[a] != mid[b]
        assert (_phash(_jpeg(rows[a - 1])) ^ _phash(_jpeg(rows[b - 1]))).bit_count() <= 4
        copy, orig = (a, b) if str(a) in truth["true_identity"] else (b, a)
        assert truth["true_identity"][str(copy)] == mid[orig]
    for n in truth["wrong_identity"]:
        assert truth["true_identity"][str(n)] != mid[n]


def test_broken_and_truncated_rows_really_are(small):
    res, truth = small
    got = {}
    for _pos, line, item in msceleb.read_aligned(res.faces_tsv):
        got[line] = item
    expect_reason = {
        "columns": "columns",
        "empty_mid": "empty MID",
        "base64": "base64",
        "not_image": "not an image",
        "rect": "rectangle",
    }
    broken = {b["line"]: b["kind"] for b in truth["broken"]}
    for line, item in got.items():
        if line in broken:
            assert isinstance(item, Rejected), line
            assert expect_reason[broken[line]] in item.reason, (broken[line], item.reason)
        else:
            assert isinstance(item, FaceRecord), (line, item)
    rows = _fields(res.faces_tsv)
    for n in truth["truncated"]:
        data = _jpeg(rows[n - 1])
        assert data[:3] == b"\xff\xd8\xff"  # passes the import's magic check
        with pytest.raises(OSError), Image.open(io.BytesIO(data)) as im:
            im.load()
    # every other filed image decodes
    bad = set(truth["truncated"]) | set(broken)
    for n in range(1, res.rows + 1):
        if n not in bad:
            with Image.open(io.BytesIO(_jpeg(rows[n - 1]))) as im:
                im.load()
                assert im.size == (112, 112) or n in {b for _, b in truth["near_dup"]} | {
                    x for p in truth["cross_identity_dup"] for x in p
                }


def test_phash_separation_on_default_demo(default_demo):
    """Distinct photos > 10 bits apart for >= 99% of pairs; injected dups within 4 bits."""
    res, truth = default_demo
    assert 600 <= res.faces <= 1000 and res.identities == 40
    rows = _fields(res.faces_tsv)
    broken = {b["line"] for b in truth["broken"]} | set(truth["truncated"])
    keys = [n for n in range(1, res.rows + 1) if n not in broken]
    hashes = np.array([_phash(_jpeg(rows[n - 1])) for n in keys], dtype=np.uint64)
    dups = {
        tuple(sorted(p)) for k in ("exact_dup", "near_dup", "cross_identity_dup") for p in truth[k]
    }
    idx = {n: i for i, n in enumerate(keys)}
    d = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    iu = np.triu_indices(len(keys), 1)
    dist = d[iu]
    is_dup = np.zeros(len(dist), dtype=bool)
    n = len(keys)
    for a, b in dups:
        i, j = sorted((idx[a], idx[b]))
        is_dup[i * n - i * (i + 1) // 2 + (j - i - 1)] = True
    distinct = dist[~is_dup]
    assert (distinct > 10).mean() >= 0.99
    assert np.percentile(distinct, 1) > 10
    assert dist[is_dup].max() <= 4
    assert is_dup.sum() == len(dups)


def test_near_variant_is_close_and_different():
    rng = np.random.default_rng(3)
    for data in jpeg_pool(5, seed=3):
        v = near_variant(data, rng)
        assert v != data
        assert (phash_int(v) ^ phash_int(data)).bit_count() <= 4


def test_jpeg_pool():
    pool = jpeg_pool(12, size=64, seed=1)
    assert len(pool) == 12 and len(set(pool)) == 12
    assert pool == jpeg_pool(12, size=64, seed=1)
    with Image.open(io.BytesIO(pool[0])) as im:
        assert im.format == "JPEG" and im.size == (64, 64)
    assert (
        len(
            {hashlib.sha256(p).digest() for p in jpeg_pool(3, seed=2)}
            & set(hashlib.sha256(p).digest() for p in pool)
        )
        == 0
    )


def test_cancel_leaves_nothing(tmp_path):
    calls = []

    def progress(done, total):
        calls.append((done, total))

    res = generate_demo(tmp_path, progress=progress, cancelled=lambda: len(calls) > 3, **SMALL)
    assert not res.complete
    assert list(tmp_path.iterdir()) == []


def test_progress_reaches_total(tmp_path):
    calls = []
    generate_demo(tmp_path, progress=lambda d, t: calls.append((d, t)), **SMALL)
    assert calls[-1][0] == calls[-1][1] > 0
    assert all(d <= t for d, t in calls)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_demo(tmp_path, identities=1)
    with pytest.raises(ValueError):
        generate_demo(tmp_path, faces_per_identity=(5, 3))
    with pytest.raises(ValueError, match="too few photos"):
        generate_demo(tmp_path, identities=2, faces_per_identity=(2, 2))
