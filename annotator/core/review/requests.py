"""Withdrawal requests in bulk (``annotator takedown --from requests.txt``, Identity > Withdraw…):
one summary for every person the requests name, then one transaction per person, and one
VACUUM at the end. A killed run leaves each person either withdrawn or untouched; a rerun
recognises the ones done by the ledger and carries out the rest. Unknown names are reported,
not fatal; a name several identities share is listed with their keys and left for a reviewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from annotator.core.review import takedown as td
from annotator.core.review import withdrawal
from annotator.model import AnnotatorError, CancelledFn, ProgressFn, never_cancelled
from annotator.store import takedown as td_store
from annotator.store import withdrawal as ledger_store
from annotator.store.db import Project


@dataclass
class Person:
    key: str
    requests: list[str]  # the request lines that name this person
    faces: int
    copies: int
    lookalikes: int
    packages: int


@dataclass
class Plan:
    people: list[Person] = field(default_factory=list)
    done: list[str] = field(default_factory=list)  # already withdrawn
    unknown: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def plan(project: Project, requests: Sequence[str]) -> Plan:
    """What the requests would remove (a preview: nothing is written)."""
    r = withdrawal.resolve(project, requests)
    out = Plan(done=r.done, unknown=r.unknown, ambiguous=r.ambiguous)
    for key, reqs in r.keys.items():
        ident = td_store.identity_id(project, key)
        if ident is None:
            continue
        _names, own = td_store.person_facts(project, ident)
        copies = td_store.find_copies(project, ident)
        look = {f for f, _i in ledger_store.looks_like(project, ident)} - set(own)
        look -= {f for f, _i, _h in copies}
        pk = ledger_store.packages_holding(project, [ident] + [i for _f, i, _h in copies])
        out.people.append(Person(key, reqs, len(own), len(copies), len(look), len(pk)))
    return out


@dataclass
class BulkResult:
    done: list[dict[str, object]] = field(default_factory=list)  # per person: key digest, counts
    failed: list[dict[str, str]] = field(default_factory=list)  # per person: request, reason
    wal_truncated: bool = False

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def run(
    project: Project,
    people: Sequence[Person],
    reviewer: str,
    reason: str | None = None,
    *,
    keep_copies: bool = False,
    include_lookalikes: bool = False,
    force_unscanned: bool = False,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
) -> BulkResult:
    """Take each planned person down, one transaction each; VACUUM once at the end. A person
    that fails (e.g. taken down meanwhile) is reported and the rest go on."""
    cancelled = cancelled or never_cancelled
    unscanned = td.check_ready(project, force_unscanned)
    out = BulkResult()
    for n, person in enumerate(people):
        if cancelled():
            break
        try:
            res = td.takedown(
                project,
                person.key,
                reviewer,
                reason,
                keep_copies=keep_copies,
                include_lookalikes=include_lookalikes,
                compact=False,
                checked=unscanned,
            )
        except AnnotatorError as e:
            out.failed.append({"request": person.requests[0], "reason": str(e)})
            continue
        out.done.append(
            {
                "key_digest": res.key_digest,
                "faces_removed": res.faces_removed,
                "copies_removed": res.copies_removed,
                "lookalikes": len(res.lookalikes) + res.lookalikes_removed,
                "lookalikes_removed": res.lookalikes_removed,
                "packages": len(res.packages),
            }
        )
        if progress:
            progress(n + 1, len(people))
    out.wal_truncated = td_store.compact(project)
    return out
