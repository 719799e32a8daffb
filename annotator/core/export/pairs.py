"""Verification pairs of an export: ``n`` genuine and ``n`` impostor pairs drawn with a seed,
in LFW order, written as ``pairs.txt`` (LFW layout) and ``pairs.bin`` (InsightFace pickle)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

from annotator.core.export.manifest import HashingFile
from annotator.core.export.selection import Selection
from annotator.core.infra.access import FaceBytes
from annotator.formats.insightface_bin import write_bin_stream
from annotator.model import AnnotatorError

Pair = tuple[int, int, int, int]  # identity index a, face index a, identity index b, face index b

PAIR_CHUNK = 64  # faces read at a time for pairs.bin


def make_pairs(sizes: list[int], n: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """``n`` distinct genuine and ``n`` distinct impostor pairs over identities of ``sizes`` faces."""
    rng = random.Random(seed)
    multi = [i for i, s in enumerate(sizes) if s >= 2]
    max_gen = sum(s * (s - 1) // 2 for s in sizes)
    tot = sum(sizes)
    max_imp = (tot * tot - sum(s * s for s in sizes)) // 2
    if n > max_gen:
        raise AnnotatorError(f"--pairs {n}: only {max_gen} genuine pairs are possible in this set")
    if n > max_imp:
        raise AnnotatorError(f"--pairs {n}: only {max_imp} impostor pairs are possible in this set")

    def gen() -> Pair:
        i = rng.choice(multi)
        a, b = sorted(rng.sample(range(sizes[i]), 2))
        return (i, a, i, b)

    def imp() -> Pair:
        i, j = sorted(rng.sample(range(len(sizes)), 2))
        return (i, rng.randrange(sizes[i]), j, rng.randrange(sizes[j]))

    def all_gen() -> list[Pair]:
        return [
            (i, a, i, b) for i in multi for a in range(sizes[i]) for b in range(a + 1, sizes[i])
        ]

    def all_imp() -> list[Pair]:
        k = len(sizes)
        return [
            (i, a, j, b)
            for i in range(k)
            for j in range(i + 1, k)
            for a in range(sizes[i])
            for b in range(sizes[j])
        ]

    def draw(fn, everything) -> list[Pair]:  # noqa: ANN001
        seen: set[Pair] = set()
        out: list[Pair] = []
        attempts = 0
        while len(out) < n and attempts < 20 * n + 100:
            attempts += 1
            p = fn()
            if p not in seen:
                seen.add(p)
                out.append(p)
        if len(out) < n:  # nearly every possible pair is wanted: draw from the rest
            rest = [p for p in everything() if p not in seen]
            rng.shuffle(rest)
            out += rest[: n - len(out)]
        return out

    genuine = draw(gen, all_gen) if n else []
    impostor = draw(imp, all_imp) if n else []
    return genuine, impostor


def pair_folds(n: int) -> int:
    """LFW layout: 10 folds when n is a multiple of 10, else one."""
    return 10 if n >= 10 and n % 10 == 0 else 1


def ordered_pairs(genuine: list[Pair], impostor: list[Pair]) -> list[tuple[Pair, bool]]:
    """LFW order: per fold, its genuine pairs then its impostor pairs."""
    n = len(genuine)
    folds = pair_folds(n) if n else 1
    per = n // folds if n else 0
    out: list[tuple[Pair, bool]] = []
    for k in range(folds):
        out += [(p, True) for p in genuine[k * per : (k + 1) * per]]
        out += [(p, False) for p in impostor[k * per : (k + 1) * per]]
    return out


def write_pairs(
    tmp: Path, sel: Selection, n: int, seed: int, fb: FaceBytes, files: dict[str, str]
) -> list[tuple[Pair, bool]]:
    """pairs.txt (LFW layout) and pairs.bin (InsightFace verification pickle), streamed: the
    paired faces' bytes are read again from the sources, a chunk of pairs at a time, and checked
    against the SHA-256 taken during the export."""
    idents = sel.idents
    genuine, impostor = make_pairs([i.count for i in idents], n, seed)
    pairs = ordered_pairs(genuine, impostor)
    folds = pair_folds(n)
    lines = [f"{folds}\t{n // folds}"]
    order: list[int] = []  # index into the selection's arrays, two per pair
    for (i, a, j, b), same in pairs:
        if same:
            lines.append(f"{idents[i].dirname}\t{a + 1}\t{b + 1}")
        else:
            lines.append(f"{idents[i].dirname}\t{a + 1}\t{idents[j].dirname}\t{b + 1}")
        order += [idents[i].start + a, idents[j].start + b]
    txt = ("\n".join(lines) + "\n").encode("utf-8")
    (tmp / "pairs.txt").write_bytes(txt)
    files["pairs.txt"] = hashlib.sha256(txt).hexdigest()

    def images() -> Iterator[bytes]:
        for k in range(0, len(order), PAIR_CHUNK):
            chunk = order[k : k + PAIR_CHUNK]
            want = sorted(set(chunk), key=lambda g: (sel.source_ids[g], sel.offsets[g], g))
            ids = [sel.face_ids[g] for g in want]
            data = dict(zip(want, fb.read_many(ids), strict=True))
            for g in chunk:
                b = data[g]
                if hashlib.sha256(b).digest() != sel.digests[32 * g : 32 * g + 32]:
                    raise AnnotatorError(
                        f"face {sel.face_ids[g]}: its source changed during the export"
                    )
                yield b

    out = HashingFile(tmp / "pairs.bin")
    try:
        write_bin_stream(out, images(), [same for _p, same in pairs])  # type: ignore[arg-type]
    finally:
        files["pairs.bin"] = out.close()
    return pairs
