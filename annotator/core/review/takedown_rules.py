"""What a takedown reaches, decided over plain rows (no SQL): the store reads the facts and
writes the outcome (:mod:`annotator.store.takedown`), these functions decide in between, so the
rules can be read and tested on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

DUP_KINDS = ("exact_dup", "near_dup", "cross_identity_dup")


def faces_reached(own: Sequence[int], copies: Iterable[int]) -> list[int]:
    """The faces a takedown deletes: the identity's own faces (current or as imported), then the
    copies of its photos under other identities that are not its own, each once."""
    own_set = set(own)
    return list(own) + sorted({int(f) for f in copies} - own_set)


def needles(key: str, names: Iterable[str]) -> list[str]:
    """The plain strings whose presence in a note, an export log row or a rejected row names the
    person: the key, then each distinct non-empty name."""
    out = [key] if key else []
    for n in names:
        if n and n not in out:
            out.append(n)
    return out


def dead_flags(members_left: Mapping[int, int]) -> list[int]:
    """Flags (id -> faces left after the removal) that no longer flag anything: fewer than two
    faces left. A one-face flag that lost its face has 0 left and goes too."""
    return sorted(f for f, n in members_left.items() if n < 2)


@dataclass(frozen=True)
class GroupFate:
    drop: list[int]  # groups left with a single member: dissolved
    keeperless: list[int]  # groups that keep two or more faces but lost their keeper


def group_fate(left: Mapping[int, tuple[int, bool]]) -> GroupFate:
    """Duplicate groups (id -> (members left, keeper still among them)) after the removal."""
    drop = sorted(g for g, (n, _k) in left.items() if n < 2)
    keeperless = sorted(g for g, (n, k) in left.items() if n >= 2 and not k)
    return GroupFate(drop, keeperless)


def dup_flag_kind(
    kind: str, similarity: float | None, n_identities: int, n_sha: int, n_unhashed: int
) -> tuple[str, float] | None:
    """The kind and score of a duplicate flag that kept two or more faces, by the scan's rule
    (``annotator.core.dedup.flags``): cross when the faces span identities (2 + similarity),
    else exact when all are byte-identical (1.0), else near (similarity). None for a flag that
    is not a duplicate flag (left as it is)."""
    if kind not in DUP_KINDS:
        return None
    sim = 1.0 if similarity is None else float(similarity)
    if n_identities > 1:
        return "cross_identity_dup", 2.0 + sim
    if n_sha == 1 and not n_unhashed:
        return "exact_dup", 1.0
    return "near_dup", sim


def fingerprint(kind: str, faces: Iterable[int]) -> str:
    """A flag's fingerprint, as the scan writes it: kind and its sorted faces."""
    return kind + ":" + ",".join(map(str, sorted(int(f) for f in faces)))


def dead_batches(
    touched: Iterable[int], targets_of: Mapping[int, Sequence[int]], has_events: Iterable[int]
) -> list[int]:
    """History batches that go: those the removal touched and left without events, then, closed
    over, the empty undo/redo batches whose target is a batch that goes (``targets_of``: batch
    -> the batches that target it). ``has_events``: batches that still have an event."""
    keep = set(has_events)
    dead = {b for b in touched if b not in keep}
    frontier = set(dead)
    while frontier:
        more = {
            b for t in frontier for b in targets_of.get(t, ()) if b not in dead and b not in keep
        }
        dead |= more
        frontier = more
    return sorted(dead)


def lookalikes(
    looks_like: Iterable[tuple[int, int]], near_centre: Iterable[int], person_faces: Iterable[int]
) -> list[int]:
    """Faces filed under other identities that the embeddings say look like the person: those a
    ``suspect_identity`` check pointed at the person's identity (``looks_like``: (face, identity
    it is filed under)), and those closer to the person's centre than the model's same-person
    distance (``near_centre``); never the person's own faces."""
    own = set(person_faces)
    return sorted(({f for f, _i in looks_like} | set(near_centre)) - own)
