"""The duplicate-group dialog's facts, gathered in core: the group, how each copy of a group
filed under several identities fits its identity, and who those identities are."""

from annotator.core.review.dup_group import OTHER_FACES, group_context
from annotator.store import flags as flags_store

A_LOOK = 0x0F0F_0F0F_0F0F_0F0F  # m.a's faces look alike
B_LOOK = ~A_LOOK & (2**63 - 1)  # m.b's faces look like nothing of m.a


def test_a_cross_identity_group_knows_which_copy_fits_where(make_project):
    # m.a: faces 1..9, m.b: faces 10..13; face 1 (m.a) and face 10 (m.b) are one picture that
    # looks like m.a
    p = make_project({"m.a": 9, "m.b": 4}, names={"m.a": "Ann A", "m.b": "Bob B"})
    phash = {f: A_LOOK for f in range(1, 10)} | {f: B_LOOK for f in range(10, 14)}
    phash[10] = A_LOOK
    flags_store.insert_hashes(
        p, [(f, f"{f:064x}", h, h, 112, 112, 0, 1.0, None) for f, h in phash.items()]
    )
    flags_store.replace_dup_groups(p, [(10, 10, 1), (1, 10, 0)])
    ctx = group_context(p, 1)
    assert ctx is not None and ctx.cross
    assert {m.face_id for m in ctx.group} == {1, 10}
    assert ctx.fit[1] == 0 and ctx.fit[10] > 20  # the copy under m.b does not look like m.b
    a, b = (next(i for i, c in ctx.identities.items() if c.key == k) for k in ("m.a", "m.b"))
    assert ctx.identities[a].name == "Ann A" and ctx.identities[a].face_count == 9
    # a few of each identity's other faces, never a member of the group
    assert len(ctx.identities[a].others) == OTHER_FACES
    assert [t.id for t in ctx.identities[b].others] == [11, 12, 13]


def test_a_group_in_one_identity_needs_no_context_and_no_group_is_none(make_project):
    p = make_project({"m.a": 4})
    flags_store.replace_dup_groups(p, [(1, 1, 1), (2, 1, 0)])
    ctx = group_context(p, 2)
    assert ctx is not None and not ctx.cross and ctx.fit == {} and ctx.identities == {}
    assert group_context(p, 3) is None
