"""The takedown's decisions as plain functions over rows (no project file, no SQL)."""

from annotator.core.review import takedown_rules as rules


def test_faces_reached_are_own_faces_then_other_copies_once():
    assert rules.faces_reached([5, 3], [9, 3, 7, 9]) == [5, 3, 7, 9]
    assert rules.faces_reached([], []) == []


def test_needles_are_the_key_then_distinct_names():
    assert rules.needles("m.1", ["Ann", "", "Ann", "Анна"]) == ["m.1", "Ann", "Анна"]
    # faces removed without an identity (pack's ledger matches): no empty needle, which would
    # match every note
    assert rules.needles("", []) == []


def test_flags_left_with_fewer_than_two_faces_die():
    assert rules.dead_flags({1: 0, 2: 1, 3: 2, 4: 5}) == [1, 2]


def test_group_fate_dissolves_singletons_and_names_groups_without_keeper():
    fate = rules.group_fate({10: (1, True), 11: (2, False), 12: (3, True), 13: (0, False)})
    assert fate.drop == [10, 13]
    assert fate.keeperless == [11]


def test_dup_flag_kind_follows_the_scan_rule():
    assert rules.dup_flag_kind("outlier", 0.5, 2, 2, 0) is None
    assert rules.dup_flag_kind("exact_dup", 0.9, 2, 1, 0) == ("cross_identity_dup", 2.9)
    assert rules.dup_flag_kind("cross_identity_dup", None, 1, 1, 0) == ("exact_dup", 1.0)
    assert rules.dup_flag_kind("cross_identity_dup", 0.8, 1, 2, 0) == ("near_dup", 0.8)
    # an unhashed member cannot be called byte-identical
    assert rules.dup_flag_kind("exact_dup", 0.8, 1, 1, 1) == ("near_dup", 0.8)
    assert rules.fingerprint("near_dup", [9, 2, 5]) == "near_dup:2,5,9"


def test_dead_batches_close_over_empty_undo_redo_chains():
    # 1 emptied; 2 undoes 1 (empty), 3 redoes 2 (empty), 4 undoes 1 but still has events
    targets = {1: [2, 4], 2: [3]}
    assert rules.dead_batches([1], targets, has_events=[4]) == [1, 2, 3]
    # a touched batch that keeps events stays, and so do the batches that target it
    assert rules.dead_batches([1], targets, has_events=[1]) == []


def test_lookalikes_leave_out_the_persons_own_faces():
    assert rules.lookalikes([(7, 2), (3, 4)], [8, 1], person_faces=[1, 3]) == [7, 8]
