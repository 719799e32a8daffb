"""Suspicion flags computed from stored hashes (no SQL, no Qt).

Kinds (each flag: kind, faces, Hamming distance, score — higher score = look first):

* ``exact_dup`` — identical bytes (same SHA-256) within one identity; one flag per group of
  copies, distance 0, score = size. Identical bytes under *different* identities are reported as
  ``cross_identity_dup`` with distance 0 (the label conflict is what matters there).
* ``near_dup`` — pHash within R bits, same identity (and not byte-identical); score 1 - d/(R+1).
* ``cross_identity_dup`` — pHash within R bits, different identities: a label conflict;
  score 2 - d/(R+1) (ranked above near duplicates).
* ``outlier`` — a face whose pHash is far from its identity's bitwise-majority hash compared with
  the identity's own spread: z = (d - median) / (1.4826 * MAD + 1) >= OUTLIER_Z, identities with
  >= OUTLIER_MIN_FACES decodable faces only; score = z. A weak signal: ranked, not asserted.
* ``corrupt`` — does not decode (score 1); ``tiny`` — min side < TINY_PX (score 1 - side/TINY_PX);
  ``grayscale`` (score 0.25); ``blurry`` — sharpness < BLURRY_SHARPNESS
  (score 1 - sharpness/BLURRY_SHARPNESS).

Default radius: DEFAULT_RADIUS = 6. Evidence (demo data, tests/core/test_flags.py): the demo's
near duplicates (re-encoded, 1-3 px crops, +-10% brightness) are within 4 bits, distinct photos
are > 10 bits apart for >= 99% of pairs, so 6 keeps recall 1.0 with a 2-bit margin while leaving
a 4-bit gap to unrelated photos.

Duplicate groups are the connected components of exact + near + cross pairs; the keeper of a
group is its largest-resolution face, then best (lowest) search rank, then lowest face id.

Identity suspicion = sum over kinds of WEIGHTS[kind] * (share of the identity's faces with a flag
of that kind); flagged_count = faces with any flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from annotator.core.neighbors import pairs_within

DEFAULT_RADIUS = 6
TINY_PX = 48
BLURRY_SHARPNESS = 15.0
OUTLIER_Z = 3.0
OUTLIER_MIN_FACES = 5
KINDS = (
    "exact_dup",
    "near_dup",
    "cross_identity_dup",
    "outlier",
    "corrupt",
    "tiny",
    "grayscale",
    "blurry",
)
WEIGHTS = {
    "cross_identity_dup": 3.0,  # a label conflict: someone is mislabelled
    "outlier": 1.5,
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


@dataclass(slots=True)
class FlagSet:
    flags: list[Flag] = field(default_factory=list)
    groups: list[tuple[int, int, int]] = field(default_factory=list)  # face, group, keeper
    suspicion: list[tuple[int, float, int]] = field(
        default_factory=list
    )  # identity, score, flagged
    pairs: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for f in self.flags if f.kind == kind)


def majority_outliers(phash: np.ndarray, identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance to identity majority hash, z score) per face. z is NaN for small identities."""
    n = len(phash)
    dist = np.zeros(n, dtype=np.int64)
    z = np.full(n, np.nan)
    if n == 0:
        return dist, z
    order = np.argsort(identity, kind="stable")
    ids = identity[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], n]
    # process identities in slices of ~1M faces to bound the bit matrix
    s = 0
    while s < len(starts):
        e = s
        while e < len(starts) and ends[e] - starts[s] < 1_000_000:
            e += 1
        e = max(e, s + 1)
        lo, hi = starts[s], ends[e - 1]
        sel = order[lo:hi]
        h = phash[sel].astype(np.int64).view(np.uint64)
        bits = np.unpackbits(h.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
        seg = starts[s:e] - lo
        sums = np.add.reduceat(bits.astype(np.int32), seg, axis=0)
        sizes = np.diff(np.r_[seg, hi - lo])
        maj = (sums * 2 > sizes[:, None]).astype(np.uint8)
        maj_h = np.packbits(maj, axis=1).view(">u8").reshape(-1).astype(np.uint64)
        which = np.repeat(np.arange(len(seg)), sizes)
        d = np.bitwise_count(h ^ maj_h[which]).astype(np.int64)
        dist[sel] = d
        for g in range(len(seg)):
            if sizes[g] < OUTLIER_MIN_FACES:
                continue
            dd = d[seg[g] : seg[g] + sizes[g]]
            med = np.median(dd)
            mad = np.median(np.abs(dd - med))
            z[sel[seg[g] : seg[g] + sizes[g]]] = (dd - med) / (1.4826 * mad + 1.0)
        s = e
    return dist, z


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    return labels


def compute_flags(
    data: np.ndarray,
    sha_groups: Sequence[Sequence[int]],
    radius: int = DEFAULT_RADIUS,
    progress=None,
    cancelled=None,
) -> FlagSet:
    """All flags of a project from its hashes (``annotator.store.hashes.load_hashes`` rows)."""
    out = FlagSet()
    face = data["face_id"]
    ident = data["identity_id"]
    n = len(data)
    pos = {int(f): k for k, f in enumerate(face)}

    # exact duplicates
    sha_of = np.full(n, -1, dtype=np.int64)
    for g, ids in enumerate(sha_groups):
        by_identity: dict[int, list[int]] = {}
        for f in sorted(int(x) for x in ids):
            if f in pos:
                sha_of[pos[f]] = g
                by_identity.setdefault(int(ident[pos[f]]), []).append(f)
        for members in by_identity.values():
            if len(members) > 1:
                out.flags.append(Flag("exact_dup", tuple(members), 0, float(len(members))))

    ok = data["corrupt"] == 0
    okidx = np.flatnonzero(ok)
    i, j, d = pairs_within(data["phash"][okidx], radius, progress=progress, cancelled=cancelled)
    i, j = okidx[i], okidx[j]
    out.pairs = len(i)
    same_bytes = (sha_of[i] >= 0) & (sha_of[i] == sha_of[j])
    same_id = ident[i] == ident[j]
    for a, b, dist, sb, si in zip(face[i], face[j], d, same_bytes, same_id, strict=True):
        if sb and si:
            continue  # already an exact_dup flag
        frac = 1.0 - float(dist) / (radius + 1)
        if si:
            out.flags.append(Flag("near_dup", (int(a), int(b)), int(dist), frac))
        else:
            out.flags.append(Flag("cross_identity_dup", (int(a), int(b)), int(dist), 1.0 + frac))

    # duplicate groups: components of exact + within-R pairs
    ei, ej = [i], [j]
    for ids in sha_groups:  # also corrupt byte-identical copies
        p = [pos[int(x)] for x in ids if int(x) in pos]
        if len(p) > 1:
            ei.append(np.full(len(p) - 1, p[0], dtype=np.int64))
            ej.append(np.array(p[1:], dtype=np.int64))
    gi, gj = np.concatenate(ei), np.concatenate(ej)
    if len(gi):
        labels = _components(n, gi, gj)
        involved = np.zeros(n, dtype=bool)
        involved[gi] = True
        involved[gj] = True
        idx = np.flatnonzero(involved)
        area = data["width"][idx].astype(np.int64) * data["height"][idx]
        # keeper: largest area, then lowest rank, then lowest id -> lexsort (last key primary)
        order = np.lexsort((face[idx], data["rank"][idx], -area, labels[idx]))
        lab = labels[idx][order]
        first = np.r_[True, lab[1:] != lab[:-1]]
        gid_of = {}
        for k, o in enumerate(order):
            f = int(face[idx[o]])
            if first[k]:
                gid_of[int(lab[k])] = f  # group id = keeper's face id (stable across scans)
            out.groups.append((f, gid_of[int(lab[k])], int(first[k])))

    # outliers
    dist, z = majority_outliers(data["phash"][okidx], ident[okidx])
    for k in np.flatnonzero(z >= OUTLIER_Z):
        out.flags.append(Flag("outlier", (int(face[okidx[k]]),), int(dist[k]), float(z[k])))

    # per-face quality flags
    for k in np.flatnonzero(~ok):
        out.flags.append(Flag("corrupt", (int(face[k]),), None, 1.0))
    side = np.minimum(data["width"], data["height"])
    for k in np.flatnonzero(ok & (side < TINY_PX)):
        out.flags.append(Flag("tiny", (int(face[k]),), None, 1.0 - float(side[k]) / TINY_PX))
    for k in np.flatnonzero(ok & (data["grayscale"] == 1)):
        out.flags.append(Flag("grayscale", (int(face[k]),), None, 0.25))
    sharp = data["sharpness"]
    for k in np.flatnonzero(ok & (sharp >= 0) & (sharp < BLURRY_SHARPNESS)):
        out.flags.append(
            Flag("blurry", (int(face[k]),), None, 1.0 - float(sharp[k]) / BLURRY_SHARPNESS)
        )

    out.suspicion = suspicion(out.flags, face, ident)
    return out


def suspicion(
    flags: Sequence[Flag], face: np.ndarray, ident: np.ndarray
) -> list[tuple[int, float, int]]:
    """(identity id, suspicion, flagged faces) for identities with any flagged face."""
    id_of = dict(zip(face.tolist(), ident.tolist(), strict=True))
    size: dict[int, int] = {}
    for x in ident.tolist():
        size[x] = size.get(x, 0) + 1
    kinds_of: dict[int, set[str]] = {}
    for f in flags:
        for fid in f.faces:
            kinds_of.setdefault(fid, set()).add(f.kind)
    score: dict[int, float] = {}
    flagged: dict[int, int] = {}
    for fid, kinds in kinds_of.items():
        iid = id_of.get(fid)
        if iid is None:
            continue
        flagged[iid] = flagged.get(iid, 0) + 1
        score[iid] = score.get(iid, 0.0) + sum(WEIGHTS[k] for k in kinds) / size[iid]
    return [(iid, round(score[iid], 6), flagged[iid]) for iid in sorted(score)]
