"""The demo dataset: drawn identities and photos written as an MS-Celeb TSV with injected problems and their truth."""

from __future__ import annotations

import base64
import json
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotator.demo.drawing import (
    DEFAULT_SIZE,
    IdentityParams,
    draw_face,
    encode_jpeg,
    face_box,
    identity_params,
    image_params,
)
from annotator.demo.names import invent_mid, invent_names
from annotator.demo.variants import near_variant
from annotator.formats.msceleb import write_row
from annotator.model import CancelledFn, ProgressFn


@dataclass
class DemoResult:
    out_dir: Path
    faces_tsv: Path
    names_tsv: Path
    truth_json: Path
    rows: int = 0  # lines in faces.tsv
    faces: int = 0  # lines that should import (rows minus broken)
    identities: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # injected problems by kind
    complete: bool = True  # False when cancelled (then no files are left behind)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("out_dir", "faces_tsv", "names_tsv", "truth_json"):
            d[k] = str(d[k])
        return d


@dataclass
class _Row:
    mid: str
    jpeg: bytes
    kind: str = (
        "clean"  # clean exact_dup near_dup cross_identity_dup wrong_identity truncated broken
    )
    ref: int | None = None  # index (into the row list) of the photo this one copies
    broken: str | None = None
    true_mid: str | None = None
    line: int = 0
    rect: tuple[float, float, float, float] | None = None  # the drawn face's box


def _rect(rng: np.random.Generator) -> tuple[float, float, float, float]:
    x0, y0 = rng.uniform(0.05, 0.45, 2)
    w = rng.uniform(0.15, 0.5)
    return (float(x0), float(y0), float(min(x0 + w, 1.0)), float(min(y0 + w * 1.2, 1.0)))


def _broken_line(kind: str, mid: str, rng: np.random.Generator, jpeg: bytes, n: int) -> bytes:
    rect = base64.b64encode(struct.pack("<4f", *_rect(rng)))
    data = base64.b64encode(jpeg)
    cols = [
        mid.encode(),
        str(n).encode(),
        f"http://example.invalid/img/{n}.jpg".encode(),
        f"http://example.invalid/page/{n}.html".encode(),
        f"FaceId-{n}".encode(),
        rect,
        data,
    ]
    if kind == "columns":
        del cols[int(rng.integers(1, 5))]
    elif kind == "empty_mid":
        cols[0] = b""
    elif kind == "base64":
        cut = len(data) // 2
        cols[6] = data[:cut] + b"!*#" + data[cut + 3 :] if rng.random() < 0.5 else data[:-3]
    elif kind == "not_image":
        cols[6] = base64.b64encode(b"<html><body>404 Not Found</body></html>" + bytes(n % 7))
    elif kind == "rect":
        if rng.random() < 0.5:
            cols[5] = base64.b64encode(struct.pack("<4f", 0.8, 0.7, 0.2, 0.1))  # x0 > x1
        else:
            cols[5] = base64.b64encode(struct.pack("<3f", 0.1, 0.1, 0.5))  # 12 bytes
    else:
        raise ValueError(kind)
    return b"\t".join(cols) + b"\n"


BROKEN_KINDS = ("columns", "empty_mid", "base64", "not_image", "rect")


def _plan_count(total: int, frac: float, minimum: int = 3) -> int:
    return max(minimum, round(total * frac))


INJECTED_KINDS = (
    "exact_dup",
    "near_dup",
    "cross_identity_dup",
    "wrong_identity",
    "broken",
    "truncated",
)


def injected_counts(truth: dict[str, Any]) -> dict[str, int]:
    """How many problems of each kind a demo's ``truth.json`` says were injected."""
    return {k: len(truth[k]) for k in INJECTED_KINDS}


def generate_demo(
    out_dir: str | os.PathLike[str],
    *,
    identities: int = 40,
    faces_per_identity: tuple[int, int] = (8, 30),
    seed: int = 0,
    size: int = DEFAULT_SIZE,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> DemoResult:
    """Draw the demo dataset into ``out_dir`` (faces.tsv, names.tsv, truth.json).

    Deterministic: the same arguments give byte-identical files. Files are written under a
    temporary name and renamed at the end, so a cancelled run leaves nothing half-written.
    """
    if identities < 2:
        raise ValueError("the demo needs at least 2 identities")
    lo, hi = faces_per_identity
    if lo < 2 or hi < lo:
        raise ValueError("faces_per_identity must be (lo, hi) with 2 <= lo <= hi")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0xDE30])

    # Identities: key, names, parameters, number of clean photos.
    mids: list[str] = []
    seen: set[str] = set()
    while len(mids) < identities:
        m = invent_mid(rng)
        if m not in seen:
            seen.add(m)
            mids.append(m)
    names = {m: invent_names(rng) for m in mids}
    params = {m: identity_params(rng) for m in mids}
    n_clean = {m: int(rng.integers(lo, hi + 1)) for m in mids}
    total_clean = sum(n_clean.values())
    n_inject = {
        k: _plan_count(total_clean, 0.03)
        for k in ("exact_dup", "near_dup", "cross_identity_dup", "wrong_identity", "truncated")
    }
    needed = sum(n_inject[k] for k in ("exact_dup", "near_dup", "cross_identity_dup", "truncated"))
    if total_clean < needed:
        raise ValueError(
            f"too few photos ({total_clean}) to inject the problems ({needed} originals needed); "
            "use more identities or faces per identity"
        )
    n_broken = max(len(BROKEN_KINDS), _plan_count(total_clean, 0.03))
    work = (
        total_clean
        + n_inject["wrong_identity"]
        + n_inject["near_dup"]
        + n_inject["cross_identity_dup"]
    )
    done = 0
    prog = progress or (lambda d, t: None)
    stop = cancelled or (lambda: False)

    def photo(mid: str, k: int) -> tuple[bytes, tuple[float, float, float, float]]:
        prng = np.random.default_rng([seed, mids.index(mid), k])
        ip = image_params(prng)
        return encode_jpeg(draw_face(params[mid], ip, size), ip.jpeg_quality), face_box(
            params[mid], ip
        )

    # Clean photos, per identity.
    blocks: dict[str, list[_Row]] = {}
    for m in mids:
        rows = []
        for k in range(n_clean[m]):
            if done % 16 == 0 and stop():
                return _cancelled(out)
            jpeg, box = photo(m, k)
            rows.append(_Row(m, jpeg, rect=box))
            done += 1
            prog(done, work)
        blocks[m] = rows

    sample_jpeg = blocks[mids[0]][0].jpeg  # payload for broken rows (before any truncation)
    # Pick distinct originals for the duplicate kinds and truncation (each used once).
    pool = [(m, i) for m in mids for i in range(n_clean[m])]
    order = rng.permutation(len(pool))
    picks = iter(pool[int(j)] for j in order)

    def other_mid(m: str) -> str:
        while True:
            o = mids[int(rng.integers(len(mids)))]
            if o != m:
                return o

    extra: dict[str, list[_Row]] = {m: [] for m in mids}
    for kind in ("exact_dup", "near_dup", "cross_identity_dup"):
        for _ in range(n_inject[kind]):
            m, i = next(picks)
            src = blocks[m][i]
            if kind == "exact_dup":
                extra[m].append(_Row(m, src.jpeg, kind, ref=id(src), rect=src.rect))
            elif kind == "near_dup":  # cut by at most 1 px per side: the same box
                data = near_variant(src.jpeg, rng)
                extra[m].append(_Row(m, data, kind, ref=id(src), rect=src.rect))
                done += 1
            else:
                dst = other_mid(m)
                data = src.jpeg if rng.random() < 0.5 else near_variant(src.jpeg, rng)
                extra[dst].append(_Row(dst, data, kind, ref=id(src), true_mid=m, rect=src.rect))
                done += 1
            prog(done, work)
    for _ in range(n_inject["truncated"]):
        m, i = next(picks)
        src = blocks[m][i]
        cut = int(len(src.jpeg) * rng.uniform(0.3, 0.7))
        src.jpeg = src.jpeg[:cut]
        src.kind = "truncated"
    for j in range(n_inject["wrong_identity"]):
        if stop():
            return _cancelled(out)
        true = mids[int(rng.integers(len(mids)))]
        filed = other_mid(true)
        jpeg, box = photo(true, 10_000 + j)
        extra[filed].append(_Row(filed, jpeg, "wrong_identity", true_mid=true, rect=box))
        done += 1
        prog(done, work)
    for j in range(n_broken):
        m = mids[int(rng.integers(len(mids)))]
        kind = BROKEN_KINDS[j % len(BROKEN_KINDS)]
        extra[m].append(_Row(m, b"", "broken", broken=kind))

    # Lay out: each identity's rows together (as MS-Celeb files are), extras shuffled in.
    lines: list[_Row] = []
    for m in mids:
        rows = blocks[m]
        for r in extra[m]:
            rows.insert(int(rng.integers(len(rows) + 1)), r)
        lines.extend(rows)
    by_id = {id(r): r for r in lines}
    for n, r in enumerate(lines, start=1):
        r.line = n

    truth: dict[str, Any] = {
        "exact_dup": [],
        "near_dup": [],
        "cross_identity_dup": [],
        "wrong_identity": [],
        "broken": [],
        "truncated": [],
        "identities": {m: {"lines": [], "names": names[m]} for m in mids},
        "true_identity": {},
        "params": {
            "identities": identities,
            "faces_per_identity": [lo, hi],
            "seed": seed,
            "size": size,
        },
    }
    faces_part = out / "faces.tsv.part"
    with open(faces_part, "wb") as fh:
        rank: dict[str, int] = {}
        for r in lines:
            rank[r.mid] = rank.get(r.mid, 0) + 1
            n = r.line
            if r.kind == "broken":
                fh.write(_broken_line(r.broken or "", r.mid, rng, sample_jpeg, n))
                truth["broken"].append({"line": n, "kind": r.broken})
                continue
            _rect(rng)  # the random box rows had before: drawn still, so the rest stays as it was
            _write_row(fh, r.mid, rank[r.mid], n, r.rect, r.jpeg)
            truth["identities"][r.mid]["lines"].append(n)
            if r.kind in ("exact_dup", "near_dup", "cross_identity_dup"):
                truth[r.kind].append(sorted([by_id[r.ref].line, n]))  # type: ignore[index]
            elif r.kind == "wrong_identity":
                truth["wrong_identity"].append(n)
            elif r.kind == "truncated":
                truth["truncated"].append(n)
            if r.true_mid is not None:
                truth["true_identity"][str(n)] = r.true_mid
    names_part = out / "names.tsv.part"
    with open(names_part, "wb") as fh:
        for m in mids:
            for lang, nm in names[m].items():
                fh.write(f'{m}\t"{nm}"@{lang}\n'.encode())
    truth_part = out / "truth.json.part"
    truth_part.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    result = DemoResult(out, out / "faces.tsv", out / "names.tsv", out / "truth.json")
    os.replace(faces_part, result.faces_tsv)
    os.replace(names_part, result.names_tsv)
    os.replace(truth_part, result.truth_json)
    result.rows = len(lines)
    result.faces = len(lines) - len(truth["broken"])
    result.identities = identities
    result.counts = injected_counts(truth)
    prog(work, work)
    return result


def _write_row(
    fh: Any,
    mid: str,
    rank: int,
    n: int,
    rect: tuple[float, float, float, float] | None,
    jpeg: bytes,
) -> None:
    url = f"http://example.invalid/img/{mid}/{rank}.jpg"
    page = f"http://example.invalid/page/{mid}/{rank}.html"
    write_row(fh, mid, rank, url, page, f"FaceId-{n}", rect, jpeg)


def _cancelled(out: Path) -> DemoResult:
    return DemoResult(out, out / "faces.tsv", out / "names.tsv", out / "truth.json", complete=False)


def jpeg_pool(n: int, size: int = DEFAULT_SIZE, seed: int = 0) -> list[bytes]:
    """``n`` distinct synthetic face JPEGs (a new invented person every 8 photos)."""
    out: list[bytes] = []
    ident: IdentityParams | None = None
    for i in range(n):
        rng = np.random.default_rng([seed, 0x9001, i])
        if i % 8 == 0:
            ident = identity_params(np.random.default_rng([seed, 0x9002, i]))
        ip = image_params(rng)
        assert ident is not None
        out.append(encode_jpeg(draw_face(ident, ip, size), ip.jpeg_quality))
    return out
