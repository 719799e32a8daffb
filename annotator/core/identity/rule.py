"""The identity check's rule on vectors (no SQL, no Qt): which faces are not the person they
are filed under (``suspect_identity``) and which identities are probably one person.

A face of an identity with >= MIN_FACES embedded faces is flagged when it is

* a *stranger*: farther from its identity's robust centre (core/identity/centres.py) than the
  model's metric and the identity's own faces allow (``FaceStats.far``), whether or not it
  resembles anyone else in the set — no ``looks_like``; or
* a *look-alike*: at least min(``metric.like``, LIKE_REL x spread) from its own centre
  (however its own faces lie: in an identity of a few faces, one of them another person's,
  every face is far from the centre), within ``metric.like_max`` of another identity's centre,
  and either closer to it than to its own by more than SUSPECT_REL_MARGIN x the identity's
  spread — unless, in an identity of fewer than OUTLIER_FACES faces in its centre, its
  nearest faces are its own identity's: the mean of its NEAR_FACES nearest faces there below
  that of the other's by more than NEAR_FACES_MARGIN — or, the centres about tied (closer to
  it at all, or farther by less than ASK_BEYOND), its nearest faces are that identity's: the
  mean of its NEAR_FACES nearest faces there below that of its own identity's by more than
  NEAR_FACES_MARGIN. Copies of the face (nearer than COPY_DIST) are no second photo and its
  own identity's strangers (not labelled correct) no photo of its person: both left out. When
  its own identity has only FEW_FACES faces beyond those, FEW_FACES a side are compared: a
  tied face then needs FEW_FACES_MARGIN (a mean of two scatters), while clearing one the
  centres tell still takes NEAR_FACES_MARGIN (measured: 0.06 there flagged more genuine faces
  at 858 LFW people); fewer on either side: the centres alone decide.
  A photo of a person is nearer that person's other photos than a look-alike's, even when
  their centres cannot tell (a person of few photos, a look-alike chosen as the nearest of
  thousands). In an identity of OUTLIER_FACES or more faces in its centre, whose centre and
  spread are well measured, a face OUTLIER_Z robust deviations out and closer to another
  centre than its own is a look-alike whatever its nearest faces say (among many faces a few
  are near any face by chance). In an identity of fewer than OUTLIER_FACES a look-alike is
  none, though, when the centres tell it by less than ODD_MARGIN, that identity has faces
  and none of them is within ODD_FACES of it, and a third identity's centre (not a
  same-person partner of either) is less than ODD_GAP farther than that identity's: an odd
  photo of its own person (blurred, turned, lit from the side) lies among many people, a
  photo of another person near that one (the trade measured at 858 LFW people:
  docs/MEASUREMENTS.md). Stored with that identity (``looks_like``) and the centres' margin
  (negative when the faces told it); its score is that margin, or for a face the centres
  left tied the larger of it and its nearest faces' margin.

At most MAX_SHARE of an identity's faces (at least one) are flagged, the highest
scores: the majority is the person — or as many as its robust centre left out, up to
LEFT_OUT_SHARE: of 2 photos of a person and 2 of two others, the centre keeps the pair, and
both others are flagged; look-alikes the centres alone tell (nearer another centre by the
margin) may also fill the identity's flags up to LEFT_OUT_SHARE (2 photos, a look-alike and a
stranger: the centre may keep the look-alike, yet both are flagged). Two identities are probably one person when their centres
are closer than both the model's ``same_centres`` and SAME_PERSON_RATIO x what two samples of
one person would be (larger spread x sqrt(1/na + 1/nb)); a face that looks like its identity's
same-person partner is no look-alike. Nearest centres come from core/identity/nearest.py's
bounds; ``exact=True`` compares everything with everything (the reference the tests use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from annotator.core.identity import centres, nearest
from annotator.core.identity.centres import Metric, face_stats
from annotator.model import COPY_VECTOR_DIST

MIN_FACES = 3
SUSPECT_REL_MARGIN = 0.15
LIKE_REL = 1.2  # a look-alike is at least this x its identity's spread (or metric.like) out
SAME_PERSON_RATIO = 1.4
MAX_SHARE = 0.45  # flags per identity at most this share of its faces (at least one)
LEFT_OUT_SHARE = 0.5  # ... or as many as its robust centre left out, up to this share, and
# the look-alikes its centres tell (another centre nearer by the margin) up to this share
NEAR_FACES = 3  # a look-alike's nearest faces in each identity: the mean of this many
NEAR_FACES_MARGIN = 0.02  # ... nearer in the other identity than in its own by this
FEW_FACES = 2  # ... or of this many when its own identity has no more, ...
FEW_FACES_MARGIN = 0.06  # ... nearer by this (a mean of 2 scatters more than one of 3)
OUTLIER_FACES = 20  # an identity this large measures its centre and spread well: ...
OUTLIER_Z = 4.0  # ... a face this many robust deviations out nearer another centre is flagged
ODD_MARGIN = 0.07  # a look-alike the centres tell by less than this ...
ODD_FACES = 0.50  # ... no face of that identity nearer than this ...
ODD_GAP = 0.05  # ... with a third identity's centre less than this farther: no look-alike
ASK_BEYOND = 0.03  # the faces are asked also when the other centre is farther by less than this
COPY_DIST = COPY_VECTOR_DIST  # two faces this near are one photo: no evidence of a person
ASK_BLOCK = 512  # faces whose two identities' faces are read at a time

# identity ids -> (face ids, identity ids, vectors) of those identities' faces that may make a
# centre (reviewed wrong or unusable left out), grouped by identity, faces ascending
FacesOf = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def fingerprint(metric: Metric) -> str:
    """The rule and its thresholds, stored with the centres: another recomputes them all."""
    c = centres
    return repr(
        (9, MIN_FACES, ASK_BEYOND, SUSPECT_REL_MARGIN, LIKE_REL, SAME_PERSON_RATIO, MAX_SHARE,
         ODD_MARGIN, ODD_FACES, ODD_GAP, LEFT_OUT_SHARE, FEW_FACES, FEW_FACES_MARGIN, OUTLIER_FACES, OUTLIER_Z,
         NEAR_FACES, NEAR_FACES_MARGIN, COPY_DIST, c.SAMPLE, c.ITERATIONS, c.KEEP_REL, c.FAR_Z,
         c.PRIOR_FACES, c.PRIOR_FACES_MAD, metric)
    )  # fmt: skip


@dataclass(slots=True)
class Centres:
    """Per identity (sorted by ``uid``): robust centre, faces in it, faces, spread, least
    stranger limit, and ``score`` (its worst flagged face) once judged."""

    uid: np.ndarray
    centre: np.ndarray
    kept: np.ndarray
    count: np.ndarray
    spread: np.ndarray
    far: np.ndarray
    score: np.ndarray

    @classmethod
    def empty(cls, dim: int = 128) -> Centres:
        z = np.zeros(0)
        return cls(np.zeros(0, np.int64), np.zeros((0, dim), np.float32), z, z, z, z, z)

    def pos(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.uid, ids)

    def take(self, keep: np.ndarray) -> Centres:
        return Centres(*(getattr(self, f)[keep] for f in self.__slots__))

    @staticmethod
    def join(parts: list[Centres]) -> Centres:
        c = Centres(*(np.concatenate([getattr(p, f) for p in parts]) for f in Centres.__slots__))
        return c.take(np.argsort(c.uid, kind="stable"))


@dataclass(slots=True)
class Faces:
    """Per embedded face, grouped by identity: id, identity, own distance (face left out),
    distance to the centre as stored, robust z, stranger or not, never flagged."""

    face: np.ndarray
    ident: np.ndarray
    d_own: np.ndarray
    d_centre: np.ndarray
    z: np.ndarray
    far: np.ndarray
    excess: np.ndarray  # d_own beyond the face's stranger limit (> 0: a stranger)
    protect: np.ndarray
    vectors: np.ndarray  # (n, dim), as given (float16 or float32)


def identity_stats(
    face: np.ndarray,
    ident: np.ndarray,
    vec: np.ndarray,
    metric: Metric,
    use: np.ndarray | None = None,
    protect: np.ndarray | None = None,
) -> tuple[Centres, Faces, np.ndarray]:
    """Centres of the identities in ``ident`` and their faces' distances. ``use``: faces that
    may make a centre (default all); ``protect``: faces never flagged (reviewed correct).
    Returns (centres, faces, order): faces come back grouped by identity, ``order`` maps them
    to the positions given."""
    face = np.asarray(face, np.int64)
    ident = np.asarray(ident, np.int64)
    n = len(face)
    use = np.ones(n, bool) if use is None else np.asarray(use, bool)
    protect = np.zeros(n, bool) if protect is None else np.asarray(protect, bool)
    order = np.lexsort((face, ident))
    idg, X = ident[order], np.asarray(vec)[order]
    start = np.flatnonzero(np.r_[True, idg[1:] != idg[:-1]]) if n else np.zeros(0, int)
    size = np.diff(np.r_[start, n]).astype(np.int64)
    m = len(start)
    cen = np.zeros((m, X.shape[1] if X.ndim == 2 else 128), np.float32)
    kept, spread, far = np.zeros(m), np.zeros(m), np.zeros(m)
    d_own, d_c, z, far_f = np.zeros(n), np.zeros(n), np.full(n, np.nan), np.zeros(n)
    use_o = use[order]
    for g, (s, k) in enumerate(zip(start.tolist(), size.tolist(), strict=True)):
        sl = slice(s, s + k)
        st = face_stats(X[sl], metric, use_o[sl])
        cen[g], kept[g], spread[g], far[g] = st.centre, st.kept.sum(), st.spread, st.far.min()
        d_own[sl], far_f[sl] = st.d_own, st.far
        d_c[sl] = nearest.canonical(X[sl], st.centre[None])
        if k >= MIN_FACES:
            z[sl] = st.z
    big = np.repeat(size >= MIN_FACES, size)
    is_far = big & (d_own > far_f)
    z0 = np.zeros(m)
    c = Centres(idg[start], cen, kept, size.astype(float), spread, far, z0)
    f = Faces(face[order], idg, d_own, d_c, z, is_far, d_own - far_f, protect[order], X)
    return c, f, order


@dataclass(slots=True)
class IdentityCheck:
    """The rule's outcome for the faces judged (grouped by identity): ``suspect`` positions
    flagged, with ``score``; ``near`` (identity) and ``margin`` of the look-alikes
    (``like``); the look-alike candidates (``cand``: only another centre nearer than ``t``
    can flag them); same-person pairs (a < b, centre distance); every centre with its score;
    ``global_faces``: faces compared with every centre (the bound did not hold);
    ``asked``: faces whose nearest faces were read (the centres about tied, or another centre
    nearer by the margin in an identity of fewer than OUTLIER_FACES); ``by_faces``: the
    look-alikes told by them (not by centres alone)."""

    faces: Faces
    centres: Centres
    cand: np.ndarray
    t: np.ndarray
    d_other: np.ndarray
    near: np.ndarray
    like: np.ndarray
    suspect: np.ndarray
    score: np.ndarray
    same_person: list[tuple[int, int, float]] = field(default_factory=list)
    global_faces: int = 0
    asked: int = 0
    by_faces: int = 0

    @property
    def face(self) -> np.ndarray:
        return self.faces.face

    @property
    def watch(self) -> np.ndarray:
        """Per face: a centre that comes (or leaves) nearer than this can change its flag:
        the identity it looks like is nearer than ``t``, a third one's centre matters up to
        ODD_GAP beyond that."""
        return self.t + ODD_GAP

    @property
    def margin(self) -> np.ndarray:
        return self.faces.d_own - self.d_other

    def flag_rows(self) -> list[tuple[int, float]]:
        """(face id, score) of every flagged face."""
        s = self.suspect
        return list(zip(self.face[s].tolist(), np.round(self.score[s], 6).tolist(), strict=True))

    def suspects(self) -> list[tuple[int, int, float]]:
        """(face id, identity it looks more like, margin) of the flagged look-alikes."""
        s = self.suspect[self.like[self.suspect]]
        m = np.round(self.margin[s], 6).tolist()
        return list(zip(self.face[s].tolist(), self.near[s].tolist(), m, strict=True))

    def identity_scores(self) -> dict[int, float]:
        """Embedding evidence per identity: the score of its worst flagged face."""
        c = self.centres
        return {int(i): float(v) for i, v in zip(c.uid, c.score, strict=True) if v > 0}


def _candidates(
    faces: Faces, spread: np.ndarray, metric: Metric, rel_margin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, t_margin, look-alike candidate mask) of ``faces`` (``spread``: of each face's
    identity): only another centre nearer than ``t`` can flag a candidate (by its nearest
    faces), one nearer than ``t_margin`` does (by centres alone). Depends on its own identity
    only."""
    t = np.minimum(faces.d_own + ASK_BEYOND, metric.like_max)
    t_margin = np.minimum(faces.d_own - rel_margin * spread, metric.like_max)
    like_min = np.minimum(metric.like, LIKE_REL * spread)
    cand = ~np.isnan(faces.z) & (faces.d_own >= like_min)
    return t, t_margin, cand


def flaggable(
    faces: Faces, cen: Centres, metric: Metric, rel_margin: float = SUSPECT_REL_MARGIN
) -> Faces:
    """The faces of ``faces`` that :func:`judge` can flag (strangers and look-alike
    candidates), judged against any centres exactly as all of them would be; ``cen``: their
    identities' centres."""
    _t, _tm, cand = _candidates(faces, cen.spread[cen.pos(faces.ident)], metric, rel_margin)
    keep = np.flatnonzero(cand | faces.far)
    return Faces(*(getattr(faces, f)[keep] for f in Faces.__slots__))


def near_faces(
    x: np.ndarray, face: int, of_face: np.ndarray, Y: np.ndarray, k: int = NEAR_FACES
) -> float:
    """Mean distance of ``x`` (face ``face``) to its ``k`` nearest rows of ``Y`` (faces
    ``of_face``), itself and its copies (nearer than COPY_DIST) left out; inf: fewer than
    ``k`` such faces (too few to tell a person by). The same floats whatever else is
    judged beside it (each distance on its own, summed in order)."""
    return _mean_nearest(_beyond_copies(x, face, of_face, Y), k)


def _beyond_copies(x: np.ndarray, face: int, of_face: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Distances of ``x`` (face ``face``) to the rows of ``Y`` (faces ``of_face``), nearest
    first, itself and its copies (nearer than COPY_DIST) left out."""
    d = np.sort(nearest.canonical(Y, np.broadcast_to(x, Y.shape))[of_face != face])
    return d[d >= COPY_DIST]


def _mean_nearest(d: np.ndarray, k: int) -> float:
    """Mean of the first ``k`` of the sorted distances ``d``; inf: fewer than ``k``."""
    d = d[:k]
    return float(d.sum() / len(d)) if len(d) == k else float("inf")


def _by_faces(
    faces: Faces, idx: np.ndarray, near_id: np.ndarray, faces_of: FacesOf
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How much nearer the faces ``idx`` are to their nearest faces of their nearest other
    identity (``near_id``) than to those of their own: the means of NEAR_FACES, or of
    FEW_FACES on both sides when the own identity has only that many beyond the face's copies
    (``few``); nan: fewer still on either side (the faces cannot tell). The own identity's
    strangers (``faces.far``) are no evidence of its person: left out. Reads ASK_BLOCK faces'
    identities at a time. Returns (margin, few, the distance to the other identity's nearest
    face: inf without one)."""
    out = np.full(len(idx), np.nan)
    other = np.full(len(idx), np.inf)
    few = np.zeros(len(idx), bool)
    stranger = faces.face[faces.far & ~faces.protect]  # reviewed correct: its person
    for s0 in range(0, len(idx), ASK_BLOCK):
        part = idx[s0 : s0 + ASK_BLOCK]
        want = np.r_[faces.ident[part], near_id[part]]
        of_face, of_ident, V = faces_of(np.unique(want))
        lo, hi = np.searchsorted(of_ident, want, "left"), np.searchsorted(of_ident, want, "right")
        ok = ~np.isin(of_face, stranger)
        n = len(part)
        for j, i in enumerate(part.tolist()):
            x = np.asarray(faces.vectors[i], np.float64)
            f = int(faces.face[i])
            a = np.arange(lo[j], hi[j])
            a = a[ok[a]]
            b = slice(lo[n + j], hi[n + j])
            d_own = _beyond_copies(x, f, of_face[a], V[a])
            d_other = _beyond_copies(x, f, of_face[b], V[b])
            k = NEAR_FACES if len(d_own) >= NEAR_FACES else FEW_FACES
            few[s0 + j] = k == FEW_FACES
            k_own, k_other = _mean_nearest(d_own, k), _mean_nearest(d_other, k)
            other[s0 + j] = d_other[0] if len(d_other) else np.inf
            if np.isfinite(k_own) and np.isfinite(k_other):
                out[s0 + j] = k_own - k_other
    return out, few, other


def _odd_photos(
    faces: Faces,
    idx: np.ndarray,
    near_id: np.ndarray,
    d_other: np.ndarray,
    cen: Centres,
    nb: tuple[np.ndarray, np.ndarray] | None,
    pairs: list[tuple[int, int, float]],
) -> np.ndarray:
    """Of the look-alikes ``idx`` (nearest other identity ``near_id``, at ``d_other``; the
    margin and faces tests already passed), those with a third identity's centre less than
    ODD_GAP farther than that one's: neither their own nor that one, nor a same-person
    partner of either. Such a centre is within |f - c_own| + d_other + ODD_GAP of their own
    centre, so the same bound finds it (``nb`` None: every centre, the reference)."""
    if not len(idx):
        return idx
    twin: dict[int, set[int]] = {}
    for a, b, _d in pairs:
        twin.setdefault(a, set()).add(b)
        twin.setdefault(b, set()).add(a)
    own = faces.ident[idx]
    skip = [
        {int(n)} | twin.get(int(a), set()) | twin.get(int(n), set())
        for a, n in zip(own.tolist(), near_id[idx].tolist(), strict=True)
    ]
    top = max(len(k) for k in skip) + 1  # past every centre skipped (its own is never given)
    g = cen.pos(own)
    X = faces.vectors[idx]
    w = d_other[idx] + ODD_GAP
    if nb is None:
        d, i = nearest.nearest_other_exact(X, g, cen.centre, top)
    else:
        d, i, _glob = nearest.nearest_other(X, g, faces.d_centre[idx] + w, cen.centre, nb, top)
    ids = np.where(i >= 0, cen.uid[np.maximum(i, 0)], -1)
    third = np.full(len(idx), np.inf)
    for j, k in enumerate(skip):
        for c in range(top):
            if ids[j, c] >= 0 and int(ids[j, c]) not in k:
                third[j] = d[j, c]
                break
    return idx[third < w]


def judge(
    faces: Faces,
    cen: Centres,
    nb: tuple[np.ndarray, np.ndarray] | None,
    pairs: list[tuple[int, int, float]],
    metric: Metric,
    faces_of: FacesOf,
    *,
    rel_margin: float = SUSPECT_REL_MARGIN,
) -> IdentityCheck:
    """Flag ``faces`` (all of some identities, grouped) against every centre ``cen`` (``nb``:
    its :func:`nearest.centre_neighbours`; None: compare with every centre, the exact
    reference); ``pairs``: the same-person pairs; ``faces_of``: the faces of any identities
    (read only for the few faces another centre is nearer than their own). Fills
    ``cen.score`` for the identities of ``faces``."""
    n = len(faces.face)
    g = cen.pos(faces.ident)
    t, t_margin, cand = _candidates(faces, cen.spread[g], metric, rel_margin)
    reach = np.where(cand, faces.d_centre + t, 0.0)
    d_other, near = np.full(n, np.inf), np.full(n, -1, np.int64)
    k = np.flatnonzero(cand)
    X = faces.vectors[k]
    glob = 0
    if nb is None:
        d, i = nearest.nearest_other_exact(X, g[k], cen.centre, top=1)
    else:
        d, i, glob = nearest.nearest_other(X, g[k], reach[k], cen.centre, nb, top=1)
    d_other[k], near[k] = d[:, 0], i[:, 0]
    near_id = np.where(near >= 0, cen.uid[np.maximum(near, 0)], -1)
    near_ok = cand & (d_other < t)
    if pairs and near_ok.any():  # closer to its own person's other key: no look-alike
        twins = {(a, b) for a, b, _d in pairs}
        own = cen.uid[g]
        lo, hi = np.minimum(own, near_id), np.maximum(own, near_id)
        near_ok &= ~np.array(
            [(a, b) in twins for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
        )
    like = near_ok.copy()
    by_centre = like & (d_other < t_margin)
    big = cen.kept[g] >= OUTLIER_FACES  # faces in its centre's mean
    ask = np.flatnonzero(like & ~faces.protect & ~(by_centre & big))
    by_near = np.full(n, -np.inf)
    if len(ask):
        m, few, k_other = _by_faces(faces, ask, near_id, faces_of)
        tied = ~by_centre[ask]
        # the centres about tied: its nearest faces must be the other identity's
        told = ~np.isnan(m)
        hit = told & (m > np.where(few, FEW_FACES_MARGIN, NEAR_FACES_MARGIN))
        like[ask[tied & ~hit]] = False
        by_near[ask[tied & told]] = m[tied & told]
        # the centres tell a look-alike (in an identity too small for them to be sure), its
        # nearest faces its own identity's: no look-alike
        veto = ask[~tied & (m < -NEAR_FACES_MARGIN)]  # (nan compares False)
        like[veto] = by_centre[veto] = False
        # told by little, none of that identity's faces near it (inf: none to tell by), and a
        # third identity's centre about as near: an odd photo of its own person, among many
        small = like[ask] & ~big[ask] & (faces.d_own[ask] - d_other[ask] < ODD_MARGIN)
        lone = small & np.isfinite(k_other) & (k_other > ODD_FACES)
        odd = _odd_photos(faces, ask[lone], near_id, d_other, cen, nb, pairs)
        like[odd] = by_centre[odd] = False
    # an outlier of a large identity nearer another centre: its centre and spread are well
    # measured, and among many faces a few are near any face by chance (its nearest faces
    # cannot tell)
    outlier = near_ok & ~like & big & (faces.z >= OUTLIER_Z) & (d_other < faces.d_own)
    like |= outlier
    like &= ~faces.protect | by_centre
    flagged = (like | faces.far) & ~faces.protect
    score = np.where(like, np.maximum(faces.d_own - d_other, by_near), faces.excess)
    count, half = cen.count, np.floor(LEFT_OUT_SHARE * cen.count)
    cap = np.maximum(np.maximum(1, np.floor(MAX_SHARE * count)), np.minimum(count - cen.kept, half))
    suspect = _top_per_identity(np.flatnonzero(flagged), g, cap, score)
    # a look-alike its centres tell (another centre nearer by the margin) the cap left out:
    # up to half (2 photos of a person, a look-alike and a stranger: both flagged)
    rest = np.setdiff1d(np.flatnonzero(by_centre & flagged), suspect)
    if len(rest):
        room = half - np.bincount(g[suspect], minlength=len(count))
        suspect = np.sort(np.r_[suspect, _top_per_identity(rest, g, room, score)])
    cen.score[np.unique(g)] = 0.0
    np.maximum.at(cen.score, g[suspect], score[suspect])
    return IdentityCheck(
        faces, cen, cand, t, d_other, near_id, like, suspect, score, pairs, glob, len(ask),
        int((like & ~by_centre & ~outlier).sum()),
    )  # fmt: skip


def same_person(
    cen: Centres,
    metric: Metric,
    nb: tuple[np.ndarray, np.ndarray] | None,
    query: np.ndarray | None = None,
    ratio: float = SAME_PERSON_RATIO,
) -> list[tuple[int, int, float]]:
    """Same-person pairs (a < b identity ids, centre distance), closest first, of the
    identities ``query`` (default all); ``nb`` None: every pair tried (the reference)."""
    return _same_person(cen, metric, nb, query, ratio)


def _same_person(
    cen: Centres, metric: Metric, nb, query: np.ndarray | None, ratio: float
) -> list[tuple[int, int, float]]:
    big = cen.count >= MIN_FACES
    if big.sum() < 2:
        return []
    sp = np.where(big, cen.spread, 0.0)
    inv = 1.0 / np.maximum(cen.kept, 1)
    inv_min = inv[big].max()
    lim_max = np.where(
        big, np.minimum(metric.same_centres, ratio * sp.max() * np.sqrt(inv + inv_min)), 0.0
    )

    def lim_of(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        lim = ratio * np.maximum(sp[a], sp[b]) * np.sqrt(inv[a] + inv[b])
        return np.where(big[a] & big[b], np.minimum(metric.same_centres, lim), -1.0)

    q = None if query is None else cen.pos(np.asarray(query, np.int64))
    got = nearest.close_pairs(cen.centre, lim_of, lim_max, nb, q)
    out = sorted(
        (int(min(cen.uid[a], cen.uid[b])), int(max(cen.uid[a], cen.uid[b])), round(d, 6))
        for a, b, d in got
    )
    return sorted(out, key=lambda r: (r[2], r[0], r[1]))


def _top_per_identity(
    pos: np.ndarray, g: np.ndarray, cap: np.ndarray, score: np.ndarray
) -> np.ndarray:
    """Of the positions ``pos``, at most ``cap`` (per identity) of each identity's, the
    highest scores."""
    if not len(pos):
        return pos
    gg = g[pos]
    o = np.lexsort((pos, -score[pos], gg))
    gs = gg[o]
    first = np.r_[True, gs[1:] != gs[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(o)), 0))
    rank = np.arange(len(o)) - start
    return np.sort(pos[o[rank < cap[gs]]])


def check(
    face: np.ndarray,
    ident: np.ndarray,
    vectors: np.ndarray,
    metric: Metric,
    *,
    exact: bool = False,
    use: np.ndarray | None = None,
    protect: np.ndarray | None = None,
    rel_margin: float = SUSPECT_REL_MARGIN,
    same_person_ratio: float = SAME_PERSON_RATIO,
) -> IdentityCheck:
    """The whole rule on one set of vectors (faces come back grouped by identity)."""
    cen, faces, order = identity_stats(face, ident, vectors, metric, use, protect)
    nb = None if exact else nearest.centre_neighbours(cen.centre)
    pairs = same_person(cen, metric, nb, ratio=same_person_ratio)
    in_centre = np.ones(len(order), bool) if use is None else np.asarray(use, bool)[order]
    return judge(faces, cen, nb, pairs, metric, faces_in(faces, in_centre), rel_margin=rel_margin)


def faces_in(faces: Faces, in_centre: np.ndarray) -> FacesOf:
    """:data:`FacesOf` over faces in memory (grouped by identity, faces ascending);
    ``in_centre``: those that may make a centre."""

    def of(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        k = np.isin(faces.ident, ids) & in_centre
        return faces.face[k], faces.ident[k], faces.vectors[k]

    return of
