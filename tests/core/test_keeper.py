"""The duplicate-group keeper rule lives once (core.flags.group_rows): the scan and a takedown
that removes a group's keeper pick the same face."""

from __future__ import annotations

import numpy as np

from annotator.core import scan
from annotator.core.dedup import flags as flag_rules
from annotator.core.review.takedown import takedown
from annotator.store import faces as faces_store
from annotator.store import hashes as hashes_store
from annotator.store.db import open_project


def keeper_of_groups(p):
    return {
        frozenset(int(x) for x in members.split(",")): keeper
        for members, keeper in p.conn.execute(
            "SELECT group_concat(face_id), max(is_keeper * face_id) FROM dup_groups"
            " GROUP BY group_id"
        )
    }


def test_group_rows_pinned():
    # group 7: face 3 is largest; group 9: 5 and 6 tie on area, 6 has the better rank
    rows = flag_rules.group_rows(
        np.array([7, 7, 7, 9, 9]),
        np.array([1, 2, 3, 5, 6]),
        np.array([1, 1, 5, 4, 2]),
        np.array([100, 100, 400, 50, 50]),
    )
    assert rows.tolist() == [[3, 3, 1], [1, 3, 0], [2, 3, 0], [6, 6, 1], [5, 6, 0]]
    # unknown rank (NO_RANK) sorts last, then the lowest face id wins
    assert flag_rules.keepers(
        [(4, 10, 8, 8, hashes_store.NO_RANK), (4, 11, 8, 8, 3), (4, 12, 8, 8, 3)]
    ) == [(4, 11)]


def test_scan_and_takedown_agree_on_the_next_keeper(tmp_path):
    p = open_project(tmp_path / "p.db", create=True)
    src = faces_store.add_source(p, "/x/f.tsv", "msceleb", 1, 0.0, "f")
    # one byte-identical image in 3 identities: face 1 (m.a) is the largest, so the keeper;
    # faces 2-4 tie on size, 3 and 4 share the best rank, so 3 is next
    sizes = {1: 300, 2: 200, 3: 200, 4: 200, 5: 100}
    ranks = {1: 1, 2: 5, 3: 2, 4: 2, 5: 1}
    idents = {1: "m.a", 2: "m.b", 3: "m.b", 4: "m.c", 5: "m.c"}
    with p.tx():
        ids = faces_store.create_identities(p, sorted(set(idents.values())))
        faces_store.insert_faces(
            p,
            [
                (ids[idents[f]], src.id, f, None, None, None, ranks[f]) + (None,) * 7
                for f in sorted(idents)
            ],
        )
        faces_store.refresh_face_counts(p, ids.values())
    same = b"\x01" * 32
    hashes_store.insert_hashes(
        p,
        [
            (
                f,
                same if f < 5 else b"\x05" * 32,
                (1 << 40) if f < 5 else 7,
                0,
                sizes[f],
                sizes[f],
                0,
                100.0,
                None,  # decodes (a corrupt face is never a duplicate)
            )
            for f in sorted(idents)
        ],
    )
    scan.update_flags(p)
    assert keeper_of_groups(p) == {frozenset({1, 2, 3, 4}): 1}
    # removes the keeper; the other faces are byte-identical copies of its photo, kept here
    takedown(p, "m.a", "alice", keep_copies=True)
    after_takedown = keeper_of_groups(p)
    assert after_takedown == {frozenset({2, 3, 4}): 3}
    scan.update_flags(p)  # the scan's own path on what is left
    assert keeper_of_groups(p) == after_takedown
    p.close()


def test_with_scan_keeper_marks_the_rule_s_copy_only_where_the_scan_stored_none() -> None:
    from annotator.core.review.keeper import with_scan_keeper
    from annotator.store.browse import Partner

    def group(keeper: int | None) -> list[Partner]:
        # (face, size, rank): 2 and 3 are the largest; 3 has the better rank; 4 has no size
        facts = [(1, (8, 8), 1), (2, (9, 9), 5), (3, (9, 9), 4), (4, None, None)]
        return [Partner(f, 1, "m.a", None, keeper=f == keeper, size=s, rank=r) for f, s, r in facts]

    assert [p.face_id for p in with_scan_keeper(group(None)) if p.keeper] == [3]
    assert [p.face_id for p in with_scan_keeper(group(1)) if p.keeper] == [1]  # the scan's own
    assert with_scan_keeper(group(None)[:1]) == group(None)[:1]  # one face: no group, no keeper
