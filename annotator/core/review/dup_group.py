"""What the duplicate-group dialog (G) shows about a group: its members, and for a group filed
under several identities who those identities are, and the keeper proposed by the one rule
(:func:`annotator.core.review.keeper.propose_for_group`, with its reason).

Gathered here, over the store's reads, so the window only draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from annotator.core.review import keeper as keeper_rule
from annotator.store import browse
from annotator.store.browse import FaceTile, Partner
from annotator.store.db import Project

OTHER_FACES = 6  # an identity's other faces shown beside its copies


@dataclass
class IdentityContext:
    """An identity a group's copies are filed under: key, name, and a few of its other faces
    (so the reviewer sees whom each copy is filed as)."""

    key: str
    name: str | None
    face_count: int
    others: list[FaceTile]


@dataclass
class GroupContext:
    group: list[Partner]  # the group's faces, the given one among them
    proposal: keeper_rule.Proposal = field(
        default_factory=lambda: keeper_rule.Proposal(None, "")
    )  # the proposed keeper (or None) and why
    identities: dict[int, IdentityContext] = field(default_factory=dict)  # cross-identity only

    @property
    def cross(self) -> bool:
        return len({p.identity_id for p in self.group}) > 1


def group_context(project: Project, face_id: int) -> GroupContext | None:
    """The verified duplicate group of ``face_id`` with its context; None when the face is in
    no group (or a group of one)."""
    group = keeper_rule.with_scan_keeper(browse.dup_group(project, face_id))
    if len(group) < 2:
        return None
    members_ = [keeper_rule.Member(p.face_id, p.identity_id, p.label, p.keeper) for p in group]
    ctx = GroupContext(group, keeper_rule.propose_for_group(project, members_))
    idents = sorted({p.identity_id for p in group})
    if len(idents) < 2:
        return ctx
    # whom each copy is filed as
    members = {p.face_id for p in group}
    for i, row in browse.identity_rows(project, idents).items():
        # faces that show what the identity looks like: not the group's, not undecodable (a
        # blank tile), not labeled as someone else or unusable; those labeled correct first
        others = sorted(
            (
                t
                for t in browse.faces_of_identity(project, i)
                if t.id not in members and "!" not in t.badges and t.label in (None, "correct")
            ),
            key=lambda t: t.label != "correct",
        )
        ctx.identities[i] = IdentityContext(row.key, row.name, row.face_count, others[:OTHER_FACES])
    return ctx
