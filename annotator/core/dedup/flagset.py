"""Flags as columns: the kinds, their suspicion weights, one flag (:class:`Flag`) and many
(:class:`FlagSet`, arrays: millions of near-duplicate pairs stay arrays, not objects), and the
builder the flag step fills kind by kind (:mod:`annotator.core.dedup.flags`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

KINDS = (
    "exact_dup",
    "near_dup",
    "cross_identity_dup",
    "outlier",
    "corrupt",
    "tiny",
    "grayscale",
    "blurry",
    "suspect_identity",  # from the embeddings: annotator.core.identity.identity_check
)
WEIGHTS = {
    "cross_identity_dup": 3.0,  # a label conflict: someone is mislabelled
    "suspect_identity": 3.0,  # closer to another identity's faces than to its own
    "outlier": 0.5,  # the weak pHash outlier: ranked low
    "corrupt": 1.0,
    "near_dup": 0.5,
    "exact_dup": 0.5,
    "tiny": 0.5,
    "blurry": 0.5,
    "grayscale": 0.25,
}


@dataclass(frozen=True, slots=True)
class Flag:
    kind: str
    faces: tuple[int, ...]  # sorted face ids
    distance: int | None
    score: float
    similarity: float | None = None  # duplicate groups: their lowest thumbnail SSIM


KIND_CODE = {k: i for i, k in enumerate(KINDS)}
CODE_WEIGHTS = np.array([WEIGHTS[k] for k in KINDS])


@dataclass(slots=True)
class FlagSet:
    """Flags as columns (millions of near-duplicate pairs stay arrays, not objects).

    Flag ``k`` has kind ``KINDS[kind[k]]``, distance ``distance[k]`` (-1: none), score
    ``score[k]`` and faces ``face_ids[offsets[k]:offsets[k + 1]]`` (sorted).

    Narrow dtypes (27 bytes per pair flag): kind int8, distance int16, face ids int32
    while they fit (int64 beyond), offsets int64, score float64.
    """

    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    distance: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    score: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    similarity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # NaN: none
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    face_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    groups: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    suspicion: list[tuple[int, float, int]] = field(default_factory=list)  # identity, score, n
    pairs: int = 0  # candidate pairs of the pHash search
    verified: int = 0  # of them, pairs that passed both verification tests (+ crop pairs)
    crop_pairs: int = 0  # candidate pairs of the crop search (core/dedup/crops.py)

    def __len__(self) -> int:
        return len(self.kind)

    def count(self, kind: str) -> int:
        return int(np.count_nonzero(self.kind == KIND_CODE[kind]))

    def rows(self) -> Iterator[tuple[str, tuple[int, ...], int | None, float, float | None]]:
        """(kind, faces, distance, score, similarity) per flag, as plain Python values — converted
        ``ROWS_CHUNK`` flags at a time, so Python objects never exist for all flags at once."""
        for s in range(0, len(self.kind), ROWS_CHUNK):
            e = min(s + ROWS_CHUNK, len(self.kind))
            kinds = [KINDS[k] for k in self.kind[s:e].tolist()]
            off0 = int(self.offsets[s])
            off = (self.offsets[s : e + 1] - off0).tolist()
            ids = self.face_ids[off0 : int(self.offsets[e])].tolist()
            sims = self.similarity[s:e].tolist()
            for k, (kind, d, sc) in enumerate(
                zip(kinds, self.distance[s:e].tolist(), self.score[s:e].tolist(), strict=True)
            ):
                sm = sims[k]
                yield (
                    kind,
                    tuple(ids[off[k] : off[k + 1]]),
                    None if d < 0 else d,
                    sc,
                    None if sm != sm else round(sm, 4),  # NaN: no similarity
                )

    @property
    def flags(self) -> list[Flag]:
        return [Flag(*r) for r in self.rows()]


ROWS_CHUNK = 100_000


class FlagBuilder:
    """Collects flag columns kind by kind; faces as fixed-width blocks or CSR pieces."""

    def __init__(self, face_dtype: type = np.int64) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []  # kind, dist, score, sim, counts, faces
        self.face_dtype = face_dtype

    def add(self, kind: str, faces: np.ndarray, dist: np.ndarray | None, score: np.ndarray):
        """``faces``: (k, w) sorted face ids per row."""
        k = len(faces)
        if not k:
            return
        d = np.full(k, -1, np.int16) if dist is None else np.asarray(dist, np.int16)
        counts = np.full(k, faces.shape[1], np.int8)
        self.parts.append(
            (
                np.full(k, KIND_CODE[kind], np.int8),
                d,
                np.asarray(score, np.float64),
                np.full(k, np.nan, np.float32),
                counts,
                np.asarray(faces.reshape(-1), self.face_dtype),
            )
        )

    def add_csr(
        self, kind: str, counts: np.ndarray, faces: np.ndarray, dist, score, sim=None
    ) -> None:
        k = len(counts)
        if not k:
            return
        self.parts.append(
            (
                np.full(k, KIND_CODE[kind], np.int8),
                np.asarray(dist, np.int16),
                np.asarray(score, np.float64),
                np.full(k, np.nan, np.float32) if sim is None else np.asarray(sim, np.float32),
                counts.astype(np.int64),
                np.asarray(faces, self.face_dtype),
            )
        )

    def build(self, out: FlagSet) -> None:
        """Concatenate the parts column by column, freeing each column's parts as it goes."""
        if not self.parts:
            return
        parts = [list(c) for c in zip(*self.parts, strict=True)]
        self.parts.clear()
        cols = []
        for c in parts:
            cols.append(np.concatenate(c))
            c.clear()
        out.kind, out.distance, out.score, out.similarity, counts, out.face_ids = cols
        out.offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=out.offsets[1:])
