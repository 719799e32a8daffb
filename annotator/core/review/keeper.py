"""The one keeper rule of a duplicate group: which copy the G dialog proposes, `flags --json`
marks and the README and the export datasheet describe.

1. A copy labeled ``correct`` wins (copies labeled correct under two identities: nothing is
   proposed, the reviewer decides). A copy labeled duplicate, wrong identity or unusable is
   never proposed.
2. A group within one identity: the scan's keeper (largest image, then best search rank, then
   lowest id: :func:`annotator.core.dedup.flags.group_rows`) — any copy is the right person.
3. A group filed under several identities: with face vectors, the identity whose centre (the
   coordinate-wise median of its other embedded faces, the group's copies left out) is nearest
   the photo, when it is within ``keeper_same_person`` and nearer than the next identity by at
   least ``keeper_margin`` (project settings, annotator/settings.py; an identity needs
   ``keeper_min_faces`` other embedded faces); its scan keeper (or first copy) is proposed. Without vectors, or without a clear
   margin, nothing is proposed and the reason says why. A pHash distance says nothing about
   who is in the photo, so it is never used here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from annotator import settings
from annotator.core.dedup import flags as flag_rules
from annotator.settings import DEFAULTS, Values
from annotator.store import embeddings as emb_store
from annotator.store import flags as flags_store
from annotator.store import identity_check as ic_store
from annotator.store.browse import Partner
from annotator.store.db import Project
from annotator.store.hashes import NO_RANK

NOT_A_KEEPER = ("duplicate", "wrong_identity", "unusable")
# The rule in one sentence, for the export datasheet (the README says the same).
RULE = (
    "Of each group of copies of one photo (the same bytes, or a near copy: re-encoded, "
    "rescaled, brightened, cropped or shifted by a few per cent) one copy is kept: the copy a "
    "reviewer labeled `correct`. The tool proposes the copy labeled correct; within one "
    "identity, the largest image (then best search rank); for copies filed under several "
    "identities, the identity whose faces' centre (face vectors) is nearest the photo by a "
    "clear margin — and nothing, saying why, without vectors or a clear margin. A "
    "perceptual-hash distance is never taken as evidence of identity."
)
# The defaults (per project: annotator/settings.py, `annotator config`):
MARGIN = DEFAULTS.keeper_margin  # nearest centre nearer than the next by at least this (dlib)
SAME_PERSON = DEFAULTS.keeper_same_person  # dlib's one-person distance: farther is not the photo's
# An identity's other embedded faces needed for a centre: one — its one other photo, within
# the one-person distance and nearer by the margin, tells (on real photos 3 left every cross
# copy of a 3-photo person unsure, 2 every copy of a 2-photo person: docs/MEASUREMENTS.md).
MIN_CENTRE_FACES = DEFAULTS.keeper_min_faces


@dataclass(frozen=True, slots=True)
class Member:
    face_id: int
    identity_id: int
    label: str | None
    scan_keeper: bool


@dataclass(frozen=True, slots=True)
class Proposal:
    face: int | None  # None: nothing is proposed (``why`` says why)
    why: str


def with_scan_keeper(group: list[Partner]) -> list[Partner]:
    """``group`` (:func:`annotator.store.browse.dup_group`) with the scan's keeper marked: the
    one the scan stored, or, for a group it did not store (a face and its duplicate partners),
    the scan's rule over the members' image sizes and ranks (largest image, then best rank,
    then lowest id: :func:`annotator.core.dedup.flags.keepers`; no size counts as no area)."""
    if len(group) < 2 or any(p.keeper for p in group):
        return group
    rows = [
        (0, p.face_id, *(p.size or (0, 0)), p.rank if isinstance(p.rank, int) else NO_RANK)
        for p in group
    ]
    ((_group, keep),) = flag_rules.keepers(rows)
    return [dataclasses.replace(p, keeper=p.face_id == keep) for p in group]


def _pick(members: Sequence[Member]) -> int:
    """The scan's keeper among ``members`` if there, else the lowest face id."""
    return next((m.face_id for m in members if m.scan_keeper), min(m.face_id for m in members))


def propose(
    members: Sequence[Member], dist: dict[int, float] | None = None, values: Values = DEFAULTS
) -> Proposal:
    """The rule (module docstring). ``dist``: identity id -> distance of the photo's vector to
    that identity's centre (None or missing identities: no vectors to tell); ``values``: the
    project's settings (``keeper_*``)."""
    ok = [m for m in members if m.label not in NOT_A_KEEPER]
    if not ok:
        return Proposal(None, "every copy is labeled duplicate, wrong identity or unusable")
    correct = [m for m in ok if m.label == "correct"]
    if correct:
        if len({m.identity_id for m in correct}) > 1:
            return Proposal(None, "copies are labeled correct under different identities")
        return Proposal(_pick(correct), "labeled correct")
    idents = sorted({m.identity_id for m in ok})
    if len(idents) == 1:
        how = "largest image, best rank"
        if len({m.identity_id for m in members}) > 1:
            how = "the copies under other identities are labeled; " + how
        return Proposal(_pick(ok), how)
    dist = dist or {}
    if any(i not in dist for i in idents):
        return Proposal(
            None,
            "not sure: the copies are filed under different identities and there are no face "
            f"vectors to tell whose photo it is (annotator embed; an identity needs "
            f"{_faces(values.keeper_min_faces)} other than the copies)",
        )
    near = sorted(idents, key=lambda i: dist[i])
    d1, d2 = dist[near[0]], dist[near[1]]
    if d1 > values.keeper_same_person:
        return Proposal(
            None, f"not sure: the photo looks like none of its identities (nearest {d1:.2f})"
        )
    if d2 - d1 < values.keeper_margin:
        return Proposal(
            None, f"not sure: two identities look alike for this photo ({d1:.2f} vs {d2:.2f})"
        )
    chosen = [m for m in ok if m.identity_id == near[0]]
    return Proposal(_pick(chosen), f"looks like its identity ({d1:.2f}; the other {d2:.2f})")


def _faces(n: int) -> str:
    return "1 embedded face" if n == 1 else f"{n} embedded faces"


def photo_distances(
    members: Sequence[Member],
    faces: np.ndarray,
    idents: np.ndarray,
    vectors: np.ndarray,
    min_faces: int = MIN_CENTRE_FACES,
) -> dict[int, float]:
    """Identity id -> mean distance of the group's embedded copies to the identity's centre
    (the coordinate-wise median of its embedded faces outside the group; identities with
    fewer than ``min_faces`` of them are left out). Empty when no copy has a vector."""
    group = np.array([m.face_id for m in members], np.int64)
    in_group = np.isin(faces, group)
    copies = vectors[in_group].astype(np.float64)
    if not len(copies):
        return {}
    out: dict[int, float] = {}
    for i in sorted({m.identity_id for m in members}):
        own = vectors[(idents == i) & ~in_group]
        if len(own) < min_faces:
            continue
        centre = np.median(own.astype(np.float64), axis=0)
        out[i] = float(np.linalg.norm(copies - centre, axis=1).mean())
    return out


def _vectors(
    project: Project, identity_ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    model = ic_store.model_in_use(project)
    if model is None or not identity_ids:
        return None
    return emb_store.load_embeddings(project, model, sorted(set(identity_ids)))


def propose_for_group(project: Project, members: Sequence[Member]) -> Proposal:
    """:func:`propose` for one group, its vectors read from the project (the G dialog)."""
    dist = None
    values = settings.load(project)
    idents = {m.identity_id for m in members}
    if len(idents) > 1:
        got = _vectors(project, sorted(idents))
        if got is not None:
            dist = photo_distances(members, *got, min_faces=values.keeper_min_faces)
    return propose(members, dist, values)


def proposals(project: Project) -> dict[int, Proposal]:
    """Group id -> :func:`propose` for every stored duplicate group (``flags --json``); the
    vectors of the identities of cross-identity groups are read once."""
    groups: dict[int, list[Member]] = {}
    for gid, face, ident, label, keep in flags_store.group_member_rows(project):
        groups.setdefault(gid, []).append(Member(face, ident, label, keep))
    cross = sorted(
        {m.identity_id for g in groups.values() if len({x.identity_id for x in g}) > 1 for m in g}
    )
    got = _vectors(project, cross) if cross else None
    values = settings.load(project)
    out: dict[int, Proposal] = {}
    for gid, members in groups.items():
        dist = None
        if got is not None and len({m.identity_id for m in members}) > 1:
            dist = photo_distances(members, *got, min_faces=values.keeper_min_faces)
        out[gid] = propose(members, dist, values)
    return out
