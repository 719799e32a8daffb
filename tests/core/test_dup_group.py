"""The duplicate-group dialog's facts, gathered in core: the group, the keeper the one rule
proposes (and why), and who the identities of a group filed under several are."""

import numpy as np

from annotator import settings
from annotator.core.review.dup_group import OTHER_FACES, group_context
from annotator.store import embeddings as emb_store
from annotator.store import flags as flags_store
from annotator.store import hashes as hashes_store

A_LOOK = 0x0F0F_0F0F_0F0F_0F0F  # m.a's faces look alike
B_LOOK = ~A_LOOK & (2**63 - 1)  # m.b's faces look like nothing of m.a


def test_a_cross_identity_group_knows_which_copy_fits_where(make_project):
    # m.a: faces 1..9, m.b: faces 10..13; face 1 (m.a) and face 10 (m.b) are one picture that
    # looks like m.a
    p = make_project({"m.a": 9, "m.b": 4}, names={"m.a": "Ann A", "m.b": "Bob B"})
    phash = {f: A_LOOK for f in range(1, 10)} | {f: B_LOOK for f in range(10, 14)}
    phash[10] = A_LOOK
    hashes_store.insert_hashes(
        p, [(f, f"{f:064x}", h, h, 112, 112, 0, 1.0, None) for f, h in phash.items()]
    )
    flags_store.replace_dup_groups(p, [(10, 10, 1), (1, 10, 0)])
    ctx = group_context(p, 1)
    assert ctx is not None and ctx.cross
    assert {m.face_id for m in ctx.group} == {1, 10}
    # a pHash that looks like m.a's faces is no evidence of who is in the photo: no vectors,
    # no proposal, and the reason
    assert ctx.proposal.face is None and "no face vectors" in ctx.proposal.why
    a, b = (next(i for i, c in ctx.identities.items() if c.key == k) for k in ("m.a", "m.b"))
    assert ctx.identities[a].name == "Ann A" and ctx.identities[a].face_count == 9
    # a few of each identity's other faces, never a member of the group
    assert len(ctx.identities[a].others) == OTHER_FACES
    assert [t.id for t in ctx.identities[b].others] == [11, 12, 13]
    # with face vectors: the photo is m.a's person, so m.a's copy is proposed
    rng = np.random.default_rng(0)
    va, vb = rng.normal(0, 0.05, 128), rng.normal(0, 0.05, 128)
    vb[:4] += 0.3
    vec = {f: va + rng.normal(0, 0.01, 128) for f in range(1, 10)}
    vec |= {f: vb + rng.normal(0, 0.01, 128) for f in range(11, 14)}
    vec[10] = vec[1]
    emb_store.insert_embeddings(
        p, "test", [(f, "ok", None, emb_store.to_blob(v)) for f, v in vec.items()]
    )
    ctx = group_context(p, 10)
    assert ctx is not None and ctx.proposal.face == 1
    assert "looks like its identity" in ctx.proposal.why
    # the keeper's thresholds are the project's settings: a margin wider than the two
    # identities' distances differ leaves the dialog unsure
    settings.set_value(p, "keeper_margin", "5")
    ctx = group_context(p, 10)
    assert ctx is not None and ctx.proposal.face is None and "look alike" in ctx.proposal.why
    settings.set_value(p, "keeper_margin", None)
    settings.set_value(p, "keeper_min_faces", "9")  # m.a has 8 other faces: no centre
    ctx = group_context(p, 10)
    assert (
        ctx is not None
        and ctx.proposal.face is None
        and "needs 9 embedded faces" in ctx.proposal.why
    )
    assert settings.stale(p) == {}  # read when proposed: never "made with" another value


def test_a_group_in_one_identity_needs_no_context_and_no_group_is_none(make_project):
    p = make_project({"m.a": 4})
    flags_store.replace_dup_groups(p, [(1, 1, 1), (2, 1, 0)])
    ctx = group_context(p, 2)
    assert ctx is not None and not ctx.cross and ctx.identities == {}
    assert ctx.proposal.face == 1 and ctx.proposal.why == "largest image, best rank"
    assert group_context(p, 3) is None


def test_other_faces_leave_out_blank_and_wrongly_labeled_faces(make_project):
    from annotator.core.review import ops

    p = make_project({"m.a": 6, "m.b": 6})
    # m.b: 8 undecodable, 9 labeled wrong identity, 10 unusable, 11 correct, 12 unlabeled
    hashes_store.insert_hashes(
        p,
        [
            (f, f"{f:064x}", A_LOOK, A_LOOK, 112, 112, 0, 1.0, "truncated" if f == 8 else None)
            for f in range(1, 13)
        ],
    )
    from annotator.store import identity_check

    identity_check.replace_kind_flags(p, "corrupt", [(8, 1.0)])  # its tile's "!" badge
    ops.label_faces(p, [9], "wrong_identity", "alice")
    ops.label_faces(p, [10], "unusable", "alice")
    ops.label_faces(p, [11], "correct", "alice")
    flags_store.replace_dup_groups(p, [(7, 7, 1), (1, 7, 0)])
    ctx = group_context(p, 1)
    b = next(i for i, c in ctx.identities.items() if c.key == "m.b")
    shown = [t.id for t in ctx.identities[b].others]
    assert shown[0] == 11 and 12 in shown
    assert not {8, 9, 10} & set(shown)
