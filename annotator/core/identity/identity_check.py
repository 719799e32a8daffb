"""What the face embeddings say about identities (no SQL, no Qt): faces that look like another
person (``suspect_identity`` flags) and identities that are probably the same person.

Input: the stored embeddings of one model (``annotator embed``), one vector per face, and each
face's identity. Distances are Euclidean between the 128-d dlib vectors.

Robust centre, two passes. Pass 1: the coordinate-wise median of the identity's faces; each
face's distance to it; the identity's median and MAD of those distances; a face with
z = (d - median) / (1.4826 MAD + EPS) >= TRIM_Z is set aside. Pass 2: the mean of the faces
kept is the centre. A face's own distance ``d_own`` is to its identity's centre with the face
itself left out (when it was kept); ``z`` is ``d_own`` against the identity's median and MAD of
``d_own``; ``d_other`` is the distance to the nearest other identity's centre (computed only for
faces with z >= SUSPECT_Z, so the cost follows the candidates, not faces x identities).

``suspect_identity``: identity with >= MIN_FACES embedded faces, z >= SUSPECT_Z (farther than
its identity's median face) and margin = d_own - d_other > SUSPECT_REL_MARGIN x spread, where
spread is the identity's median ``d_own`` (closer to another identity's centre than to its own,
by a share of the identity's own spread), at most MAX_PER_IDENTITY (or MAX_SHARE of its
faces, if more) per identity, the largest margins. The flag's score is the margin; the other identity is
stored beside it (store ``face_looks_like``), shown as "looks more like m.xxx".

"Probably the same person": two identities (each with >= MIN_FACES faces) whose centres are
closer than SAME_PERSON_RATIO x the distance expected between two samples of ONE person
(larger spread x sqrt(1/na + 1/nb)). A face closer to its own identity's same-person partner
than to its own centre is not flagged.

Measured on the drawn demo of 40 people (835 faces, ``--align crop``; 23 wrong-identity faces
and 23 cross-identity copies, i.e. 46 faces of another person):

* the wrong faces' robust z is low (0.6-2.1: a drawn identity's own faces vary a lot), so a z
  threshold alone loses them (z > 1.5: recall 0.74 at precision 0.35); the margin separates
  (AUC 0.98): margin > 0 flags 251 faces, 205 of them genuine;
* relative margin > 0.20 / 0.25 / 0.30 / 0.35: recall 0.96 / 0.96 / 0.83 / 0.74, precision
  0.63 / 0.75 / 0.84 / 0.92 (any face of another person counted right; 0.47 / 0.61 / 0.73 /
  0.85 with the cross-identity copies left out). 0.3 is the largest that keeps recall >= 0.8;
  larger sets need its precision margin. On the 400-person demo (8,432 embedded faces, 232
  wrong-identity faces; tests/bench/bench_identity_quality.py) 0.25 / 0.3 / 0.35 / 0.4 give
  recall 0.91 / 0.90 / 0.85 / 0.75 at precision 0.48 / 0.60 / 0.69 / 0.78 (strict 0.31 / 0.42
  / 0.52 / 0.62): genuine faces flagged grow from 0.9 % (40 people) to 3.6 % (400) at 0.3 —
  more centres near a genuine face. A fixed relative margin does not hold precision as N
  grows; at 400 people 0.3 alone sits at the goal's edge (precision 0.599). Keeping at most
  3 per identity (the largest margins; the demo's people have 8-30 faces, so 10 % never
  exceeds 3) gives 40 people: precision 0.83 (strict 0.73) recall 0.83; 400 people:
  precision 0.63 (strict 0.46) recall 0.87 (2 per identity: 0.70 / 0.80 at 400 but recall
  0.74 at 40);
* same person: centres of distinct drawn people are 1.30 x (min; 5 % below 2.03) the one-person
  expectation; two random halves of one person 0.94 (median; max 1.47). 1.2 lists no pair on
  the demo and finds 174 of 200 people split into two random halves (5 splits of each of 40);
  on the 400-person demo it lists 47 pairs of distinct people (false suggestions grow with
  the number of pairs of people);
* with ``--align chip`` the same rule gives recall 0.74 at precision 0.55 (strict 0.37), AUC
  0.83; no threshold reaches precision 0.6 at recall 0.8 there;
* with the default ``--align template`` (core/identity/embed.py) and a third size, 120 people (2,433
  faces, 67 wrong-identity faces), relative margin 0.30 / 0.31 / 0.32 / 0.33 / 0.35 gives
  (precision / recall; 3 per identity):
  40 people 0.70/0.87, 0.70/0.87, 0.70/0.87, 0.74/0.87, 0.82/0.83;
  120 people 0.63/0.82, 0.65/0.81, 0.67/0.81, 0.70/0.79, 0.72/0.78;
  400 people 0.57/0.85, 0.59/0.85, 0.61/0.84, 0.63/0.83, 0.65/0.81.
  0.32 is the only one of these meeting the goal at all three sizes, with little to spare
  (400 people: precision 0.61; 120: recall 0.81, 54 of 67); identity AUC 0.95 / 0.91 / 0.91.
  ``crop`` at 120 people stays below recall 0.8 from 0.30 up (0.75 at 0.30, 0.70 at 0.32),
  and below 0.30 its 400-person precision falls (0.48 at 0.25, above), so the threshold moved
  to 0.32 with the default alignment (``crop`` at 0.32: 40 people 0.88/0.83, 400 people
  0.67/0.86);
* identity ranking AUC ("holds another person's face", 28 of 40): pHash flags with the old
  weights 0.80; with suspect_identity, outlier 0.5 and the margin term 0.96. At 400 people
  (271 of 400): 0.72 / 0.93.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from annotator import settings
from annotator.core.dedup import flags as flag_rules
from annotator.settings import DEFAULTS, Values
from annotator.store import embeddings as emb_store
from annotator.store import flags as flags_store
from annotator.store import identity_check as ic_store
from annotator.store.db import Project

MIN_FACES = 5
TRIM_Z = 2.5
SUSPECT_Z = 0.0
SUSPECT_REL_MARGIN = DEFAULTS.suspect_margin  # the defaults; per project: annotator.settings
SAME_PERSON_RATIO = DEFAULTS.same_person_ratio
MAX_PER_IDENTITY = 3  # flags per identity at most (the largest margins) ...
MAX_SHARE = 0.1  # ... or this share of its faces when that is more
EPS = 1e-3
BLOCK = 2048  # faces (or centres) per block of a distance matrix


@dataclass(slots=True)
class IdentityCheck:
    """Per embedded face (``face``, ``ident``): own distance, z and, for candidates, the
    nearest other identity and its distance (-1 / inf elsewhere). ``suspect``: positions of
    the flagged faces. ``same_person``: (identity a, identity b, centre distance), a < b."""

    face: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ident: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    d_own: np.ndarray = field(default_factory=lambda: np.zeros(0))
    z: np.ndarray = field(default_factory=lambda: np.zeros(0))
    d_other: np.ndarray = field(default_factory=lambda: np.zeros(0))
    near: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    suspect: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    same_person: list[tuple[int, int, float]] = field(default_factory=list)

    @property
    def margin(self) -> np.ndarray:
        return self.d_own - self.d_other

    def suspects(self) -> list[tuple[int, int, float]]:
        """(face id, identity it looks more like, margin) of the flagged faces."""
        s = self.suspect
        return list(
            zip(
                self.face[s].tolist(),
                self.near[s].tolist(),
                np.round(self.margin[s], 6).tolist(),
                strict=True,
            )
        )

    def identity_scores(self) -> dict[int, float]:
        """Embedding evidence per identity: its largest face margin (how much its worst face
        looks like someone else), over faces with a computed margin."""
        m = np.isfinite(self.d_other)
        out: dict[int, float] = {}
        if not m.any():
            return out
        ids, marg = self.ident[m], self.margin[m]
        o = np.lexsort((marg, ids))
        last = np.r_[ids[o][1:] != ids[o][:-1], True]
        for i, v in zip(ids[o][last].tolist(), marg[o][last].tolist(), strict=True):
            out[int(i)] = float(v)
        return out


def _segments(ident: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(order, identity ids, start, size): faces sorted by identity, one segment each."""
    order = np.argsort(ident, kind="stable")
    ids = ident[order]
    start = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    size = np.diff(np.r_[start, len(ids)])
    return order, ids[start], start, size


def _seg_median(v: np.ndarray, gid: np.ndarray, start: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Median of each segment of ``v`` (positions grouped by ``gid``, segments contiguous)."""
    s = v[np.lexsort((v, gid))]
    return (s[start + (size - 1) // 2] + s[start + size // 2]) / 2.0


def _top_per_identity(
    pos: np.ndarray, gid: np.ndarray, size: np.ndarray, margin: np.ndarray
) -> np.ndarray:
    """Of the flagged positions ``pos``, the MAX_PER_IDENTITY (or MAX_SHARE of the identity's
    faces, if more) with the largest margins per identity."""
    if not len(pos):
        return pos
    g = gid[pos]
    o = np.lexsort((-margin[pos], g))
    gs = g[o]
    first = np.r_[True, gs[1:] != gs[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(o)), 0))
    rank = np.arange(len(o)) - start
    cap = np.maximum(MAX_PER_IDENTITY, np.ceil(MAX_SHARE * size[gs]))
    return np.sort(pos[o[rank < cap]])


def _rows_per_block(n_centres: int) -> int:
    """Rows of a (rows x centres) float64 distance block of at most ~128 MB."""
    return max(1, min(BLOCK, (1 << 24) // max(n_centres, 1)))


def _row_dist(X: np.ndarray, centre_of) -> np.ndarray:
    """Distance of each row of ``X`` to ``centre_of(slice)`` (its centre), a slice at a time
    (bounded temporaries)."""
    out = np.empty(len(X))
    step = 32 * BLOCK
    for s in range(0, len(X), step):
        sl = slice(s, min(s + step, len(X)))
        out[sl] = np.linalg.norm(X[sl].astype(np.float64) - centre_of(sl), axis=1)
    return out


def _robust_z(
    d: np.ndarray, gid: np.ndarray, start: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    med = _seg_median(d, gid, start, size)
    mad = _seg_median(np.abs(d - med[gid]), gid, start, size)
    return (d - med[gid]) / (1.4826 * mad[gid] + EPS), med


def check(
    face: np.ndarray,
    ident: np.ndarray,
    vectors: np.ndarray,
    *,
    suspect_z: float = SUSPECT_Z,
    rel_margin: float = SUSPECT_REL_MARGIN,
    same_person_ratio: float = SAME_PERSON_RATIO,
) -> IdentityCheck:
    """Suspect faces and same-person pairs from embeddings (see the module docstring)."""
    face = np.asarray(face, np.int64)
    ident = np.asarray(ident, np.int64)
    n = len(face)
    out = IdentityCheck(face=face, ident=ident)
    out.d_own = np.zeros(n)
    out.z = np.full(n, np.nan)
    out.d_other = np.full(n, np.inf)
    out.near = np.full(n, -1, np.int64)
    if n == 0:
        return out
    order, uid, start, size = _segments(ident)
    X = np.asarray(vectors, np.float32)[order]
    gid = np.repeat(np.arange(len(uid)), size)
    # pass 1: coordinate-wise median per identity (one column at a time: bounded temporaries)
    med = np.empty((len(uid), X.shape[1]), np.float32)
    for c in range(X.shape[1]):
        med[:, c] = _seg_median(X[:, c], gid, start, size)
    d1 = _row_dist(X, lambda sl: med[gid[sl]])
    z1, _ = _robust_z(d1, gid, start, size)
    keep = z1 < TRIM_Z
    # pass 2: mean of the faces kept (an identity that kept none keeps its median)
    nk = np.bincount(gid, weights=keep, minlength=len(uid))
    sums = np.zeros((len(uid), X.shape[1]), np.float64)
    np.add.at(sums, gid[keep], X[keep])
    cen = np.where(nk[:, None] > 0, sums / np.maximum(nk, 1)[:, None], med).astype(np.float32)
    # own distance, the face left out of its centre when it was part of it
    lo = keep & (nk[gid] > 1)

    def own_centre(sl: slice) -> np.ndarray:
        g, m = gid[sl], lo[sl]
        c = cen[g].astype(np.float64)
        c[m] = (sums[g[m]] - X[sl][m]) / (nk[g[m]] - 1)[:, None]
        return c

    d_own = _row_dist(X, own_centre)
    z, spread = _robust_z(d_own, gid, start, size)
    big = size[gid] >= MIN_FACES
    z[~big] = np.nan
    # nearest other centre, for the candidates only
    cand = np.flatnonzero(big & (z >= suspect_z))
    d_other = np.full(n, np.inf)
    near = np.full(n, -1, np.int64)
    if len(uid) > 1 and len(cand):
        c2 = (cen.astype(np.float64) ** 2).sum(1)
        rows = _rows_per_block(len(uid))
        for s in range(0, len(cand), rows):
            k = cand[s : s + rows]
            q = X[k].astype(np.float64)
            D = (q**2).sum(1)[:, None] + c2[None] - 2.0 * q @ cen.T.astype(np.float64)
            D[np.arange(len(k)), gid[k]] = np.inf
            j = np.argmin(D, axis=1)
            d_other[k] = np.sqrt(np.maximum(D[np.arange(len(k)), j], 0))
            near[k] = uid[j]
    out.same_person = _same_person(uid, cen, spread, nk, size, same_person_ratio)
    flagged = cand[(d_own[cand] - d_other[cand]) > rel_margin * spread[gid[cand]]]
    flagged = _top_per_identity(flagged, gid, size, d_own - d_other)
    if out.same_person and len(flagged):  # closer to its own person's other key: not suspect
        twins = {(a, b) for a, b, _d in out.same_person}
        own_id, like = uid[gid[flagged]].tolist(), near[flagged].tolist()
        flagged = flagged[
            [(min(a, b), max(a, b)) not in twins for a, b in zip(own_id, like, strict=True)]
        ]
    # back to the caller's order
    out.d_own[order] = d_own
    out.z[order] = z
    out.d_other[order] = d_other
    out.near[order] = near
    out.suspect = np.sort(order[flagged])
    return out


def _same_person(
    uid: np.ndarray,
    cen: np.ndarray,
    spread: np.ndarray,
    nk: np.ndarray,
    size: np.ndarray,
    ratio: float,
) -> list[tuple[int, int, float]]:
    """Pairs of identities whose centres are closer than ``ratio`` x the distance expected
    between two samples of ONE person: larger spread x sqrt(1/na + 1/nb) (na, nb: faces
    in each centre)."""
    ok = np.flatnonzero(size >= MIN_FACES)
    if len(ok) < 2:
        return []
    C = cen[ok].astype(np.float64)
    sp = spread[ok]
    inv_n = 1.0 / np.maximum(nk[ok], 1)
    c2 = (C**2).sum(1)
    out: list[tuple[int, int, float]] = []
    rows = _rows_per_block(len(ok))
    for s in range(0, len(ok), rows):
        D = np.sqrt(np.maximum(c2[s : s + rows, None] + c2[None] - 2.0 * C[s : s + rows] @ C.T, 0))
        lim = (
            ratio
            * np.maximum(sp[s : s + rows, None], sp[None])
            * np.sqrt(inv_n[s : s + rows, None] + inv_n[None])
        )
        a, b = np.nonzero(D < lim)
        a = a + s
        m = a < b
        for x, y, d in zip(a[m].tolist(), b[m].tolist(), D[a[m] - s, b[m]].tolist(), strict=True):
            out.append((int(uid[ok[x]]), int(uid[ok[y]]), round(float(d), 6)))
    out.sort(key=lambda r: r[2])
    return out


# -- with a project: the scan's flag step and the end of `annotator embed` --------------------

KIND = "suspect_identity"
EMBED_WEIGHT = 1.0  # identity suspicion: + EMBED_WEIGHT x its worst face's margin / MARGIN_UNIT
MARGIN_UNIT = 0.1


def from_project(project: Project, values: Values | None = None) -> IdentityCheck | None:
    """The check on the project's stored embeddings (of the model with the most vectors), with
    the project's settings (or ``values``); None when there are none."""
    model = ic_store.model_in_use(project)
    if model is None:
        return None
    v = values if values is not None else settings.load(project)
    face, ident, vec = emb_store.load_embeddings(project, model)
    return check(
        face, ident, vec, rel_margin=v.suspect_margin, same_person_ratio=v.same_person_ratio
    )


def add_embedding_suspicion(
    rows: list[tuple[int, float, int]], res: IdentityCheck | None
) -> list[tuple[int, float, int]]:
    """The identity suspicion rows (identity, score, flagged faces) of the flag rule, plus the
    embedding evidence: EMBED_WEIGHT x (worst positive face margin / MARGIN_UNIT)."""
    if res is None:
        return rows
    extra = {i: EMBED_WEIGHT * v / MARGIN_UNIT for i, v in res.identity_scores().items() if v > 0}
    out = [(i, round(s + extra.pop(i, 0.0), 6), n) for i, s, n in rows]
    out += [(i, round(v, 6), 0) for i, v in extra.items()]
    return out


def attach(
    project: Project,
    fs: flag_rules.FlagSet,
    face: np.ndarray,
    ident: np.ndarray,
    values: Values | None = None,
):
    """The scan's flag step: add the ``suspect_identity`` flags to ``fs`` (computed, not yet
    stored) and recompute its identity suspicion. ``face``/``ident``: every scanned face.
    Returns the check (store it with :func:`store_result` after the flags), None without
    embeddings."""
    res = from_project(project, values)
    if res is None:
        return None
    s = res.suspect
    if len(s):
        k = len(s)
        fs.kind = np.r_[fs.kind, np.full(k, flag_rules.KIND_CODE[KIND], np.int8)]
        fs.distance = np.r_[fs.distance, np.full(k, -1, np.int16)]
        fs.score = np.r_[fs.score, np.round(res.margin[s], 6)]
        fs.similarity = np.r_[fs.similarity, np.full(k, np.nan, np.float32)]
        fs.offsets = np.r_[fs.offsets, fs.offsets[-1] + np.arange(1, k + 1)]
        fs.face_ids = np.r_[fs.face_ids, res.face[s].astype(fs.face_ids.dtype)]
    fs.suspicion = add_embedding_suspicion(
        flag_rules.suspicion_arrays(fs.kind, fs.offsets, fs.face_ids, face, ident), res
    )
    return res


def store_result(project: Project, res: IdentityCheck | None) -> None:
    """The looks-like identity of each suspect face and the same-person pairs (after the
    flags are stored; nothing — both emptied — without embeddings)."""
    ic_store.replace_looks_like(project, res.suspects() if res is not None else [])
    ic_store.replace_same_person(project, res.same_person if res is not None else [])


def refresh(project: Project) -> IdentityCheck | None:
    """After ``annotator embed``: recompute the ``suspect_identity`` flags, their looks-like
    identities, the same-person pairs and every identity's suspicion from the stored flags
    (the other kinds are the scan's and stay as they are). Records the settings it used."""
    values = settings.load(project)
    res = from_project(project, values)
    if res is None:
        return None
    settings.record(project, settings.EMBED, values.of(settings.EMBED))
    rows = [(f, m) for f, _o, m in res.suspects()]
    ic_store.replace_kind_flags(project, KIND, rows)
    store_result(project, res)
    scanned = ic_store.scanned_faces(project)
    face = np.array([f for f, _i in scanned], np.int64)
    ident = np.array([i for _f, i in scanned], np.int64)
    by_flag: dict[int, tuple[str, list[int]]] = {}
    ids = sorted(set(ident.tolist()))
    _scanned, members = flags_store.flag_memberships(project, ids)
    for flag_id, kind, f in members:
        by_flag.setdefault(flag_id, (kind, []))[1].append(f)
    fl = [flag_rules.Flag(k, tuple(fs), None, 0.0) for k, fs in by_flag.values()]
    flags_store.set_suspicion(
        project, add_embedding_suspicion(flag_rules.suspicion(fl, face, ident), res)
    )
    return res
