"""What the duplicate-group dialog (G) shows about a group: its members, and for a group filed
under several identities how well each copy fits its identity and who those identities are.

Gathered here, over the store's reads, so the window only draws it; the keeper the dialog
proposes is chosen by :func:`annotator.core.review.ops.propose_keeper` from these facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from annotator.core.review import ops
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
    fit: dict[int, int] = field(default_factory=dict)  # face -> distance to its identity's look
    identities: dict[int, IdentityContext] = field(default_factory=dict)  # cross-identity only

    @property
    def cross(self) -> bool:
        return len({p.identity_id for p in self.group}) > 1


def group_context(project: Project, face_id: int) -> GroupContext | None:
    """The verified duplicate group of ``face_id`` with its context; None when the face is in
    no group (or a group of one)."""
    group = browse.dup_group(project, face_id)
    if len(group) < 2:
        return None
    ctx = GroupContext(group)
    idents = sorted({p.identity_id for p in group})
    if len(idents) < 2:
        return ctx
    # which copy looks like the identity it is filed under, and whom each copy is filed as
    hashes = browse.identity_phashes(project, idents)
    ctx.fit = ops.identity_fit([(p.face_id, p.identity_id) for p in group], hashes)
    members = {p.face_id for p in group}
    for i, row in browse.identity_rows(project, idents).items():
        others = [t for t in browse.faces_of_identity(project, i) if t.id not in members]
        ctx.identities[i] = IdentityContext(row.key, row.name, row.face_count, others[:OTHER_FACES])
    return ctx
