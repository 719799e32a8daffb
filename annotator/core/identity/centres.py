"""Each identity's robust centre and how far each of its faces is from it (no SQL, no Qt).

The centre is the identity's majority person even when a third or more of its faces are other
people: a seed face with the most faces of its identity nearby (the least sum of distances
capped at the model's same-person distance), then a mean of the faces near it, refined a few
times. Distances are judged against the model's own metric (``Metric``: dlib's ResNet calls two
faces one person below 0.6) and the identity's own spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from annotator.model import AnnotatorError

SAMPLE = 256  # faces of one identity at most in the seed search (evenly spaced)
ITERATIONS = 3  # refinements of the trimmed mean
KEEP_REL = 1.5  # a face stays in the mean within max(keep radius, 1.5 x median distance)
EPS = 1e-3


@dataclass(frozen=True, slots=True)
class Metric:
    """What distances mean for one embedding model."""

    same: float  # two faces of one person are closer than this (the model's own threshold)
    keep: float  # faces within this of the centre make the mean
    far: float  # a face this far from its identity's centre is no face of it (stranger) ...
    far_cap: float  # ... unless its identity's faces spread wider, up to this at most
    like: float  # a face nearer its own centre than this is no look-alike of another person
    like_max: float  # ... and one farther than this from the other centre is none of it
    same_centres: float  # two identities' centres closer than this may be one person
    spread: float  # the model's one-person prior: a person's median face distance to its centre
    mad: float  # ... and the median absolute deviation of those distances


METRICS = {
    # dlib_face_recognition_resnet_model_v1 (dlib's network, any alignment of the project)
    "dlib_resnet_v1/": Metric(
        same=0.6, keep=0.48, far=0.5, far_cap=0.65, like=0.35, like_max=0.5, same_centres=0.3,
        spread=0.31, mad=0.03,
    ),
}  # fmt: skip


def metric_of(model: str) -> Metric:
    """The metric of a stored model id; one line for vectors of a model this version does not
    know (they cannot be judged: their distances mean something else)."""
    for prefix, m in METRICS.items():
        if model.startswith(prefix):
            return m
    raise AnnotatorError(
        f"the project's face vectors are of an unknown model {model!r}: re-run `annotator "
        "embed` (it embeds again every face whose vector is of another model)"
    )


@dataclass(slots=True)
class FaceStats:
    """One identity's centre and its faces (in the order given)."""

    centre: np.ndarray  # (128,) float32
    kept: np.ndarray  # bool: in the centre's mean
    d_own: np.ndarray  # float64: to the centre, the face itself left out when it was kept
    spread: float  # median d_own of the kept faces
    far: np.ndarray  # d_own above this is a stranger (see :func:`face_stats`)
    z: np.ndarray  # robust z of d_own (against the kept faces' median and MAD)


FAR_Z = 4.0
# Faces' worth of the model's one-person prior in an identity's spread and in its MAD: the
# variance of one face's estimate over the variance between people (measured on real photos,
# docs/MEASUREMENTS.md "Identity check"): a 3-7-face identity leans on the prior, a large one
# on its own faces.
PRIOR_FACES = 6.0
PRIOR_FACES_MAD = 20.0


def _dist(X: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.sqrt(((X - c) ** 2).sum(1))


def robust_centre(X: np.ndarray, metric: Metric, use: np.ndarray | None = None):
    """(centre, kept mask) of the faces ``X`` (n, d) float64; ``use``: faces allowed in the
    centre (others still measured)."""
    n = len(X)
    use = np.ones(n, bool) if use is None else use
    if not use.any():
        use = np.ones(n, bool)
    idx = np.flatnonzero(use)
    if len(idx) < 3:
        keep = use.copy()
        return X[keep].mean(0), keep
    s = idx[:: max(1, len(idx) // SAMPLE)][:SAMPLE]
    S = X[s]
    sq = (S * S).sum(1)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2.0 * S @ S.T, 0.0))
    c = S[int(np.argmin(np.minimum(D, metric.same).sum(1)))]
    keep = use
    for it in range(ITERATIONS):
        d = _dist(X, c)
        # first the faces the model calls the seed's person, then those near their mean
        r = metric.same if it == 0 else max(metric.keep, KEEP_REL * float(np.median(d[use])))
        k = use & (d < r)
        if not k.any():
            break
        keep = k
        c = X[keep].mean(0)
    return c, keep


def face_stats(X: np.ndarray, metric: Metric, use: np.ndarray | None = None) -> FaceStats:
    """Centre, own distances, spread, stranger limit and z of one identity's faces.

    The stranger limit needs the tail of the person's distances, which a few faces tell badly:
    the kept faces' distances (each to the mean of the others) are inflated by
    sqrt(1 + 1/(k - 1)) for k kept faces, and their median and MAD scatter widely. So for the
    limit both are taken to the person's scale and shrunk toward the model's one-person prior
    (``metric.spread``, ``metric.mad``) with PRIOR_FACES / PRIOR_FACES_MAD faces' weight
    (empirical Bayes: the sampling variance of one face's worth over the variance between
    people), then widened again for the centre a face is measured against. ``spread`` and
    ``z`` stay the identity's own (the look-alike test's scale)."""
    X = np.asarray(X, np.float64)
    c, keep = robust_centre(X, metric, use)
    nk = int(keep.sum())
    d = _dist(X, c)
    if nk > 1:  # leave the face out of the centre it made
        tot = X[keep].sum(0)
        d[keep] = np.sqrt((((tot - X[keep]) / (nk - 1) - X[keep]) ** 2).sum(1))
    dk = d[keep]
    med = float(np.median(dk))
    mad = float(np.median(np.abs(dk - med)))
    z = (d - med) / (1.4826 * mad + EPS)
    # the person's spread (distance to its true centre): the kept faces' distances deflated,
    # then shrunk toward the model's prior; one kept face says nothing
    infl = np.sqrt(1.0 + 1.0 / max(nk - 1, 1))
    w = nk if nk > 1 else 0
    sigma = (w * med / infl + PRIOR_FACES * metric.spread) / (w + PRIOR_FACES)
    sig_mad = (w * mad / infl + PRIOR_FACES_MAD * metric.mad) / (w + PRIOR_FACES_MAD)
    # the stranger limit: the person's spread + FAR_Z robust deviations, within the model's
    # limits for a centre of many faces, widened for a centre of few (the distance to a mean
    # of m faces varies as sqrt(1 + 1/m))
    m = np.where(keep, nk - 1, nk).clip(1, None)
    widen = np.sqrt(1.0 + 1.0 / m)
    lim = min(max(sigma + FAR_Z * 1.4826 * sig_mad, metric.far), metric.far_cap)
    return FaceStats(c.astype(np.float32), keep, d, med, lim * widen, z)
