"""Privacy takedown: remove an identity completely and remember only a salted digest of its key.

Removed: its faces (current, and those imported under it and moved elsewhere), their hashes,
flags (and multi-face flags that would be left with a single face), duplicate-group entries
(groups left with one member go; a group that lost its keeper gets the next one), label/QA
events and QA items, move events of other faces into or out of it, its names, the identity row,
notes of other events and export-log rows that contain its key or one of its names (scrubbed),
and its thumbnails: the cache beside the project (``P.db.cache/``, disposable, keyed by face id)
is deleted; if it cannot be deleted (another program holds it open), the removed faces' rows are
deleted from its cache files and those are VACUUMed. The other identities that shared a flag
with a removed face, or exchanged faces with it, get their face counters, ``flagged_count`` and
``suspicion`` recounted by the scan's rule. Then the project file is VACUUMed and its WAL
truncated so the deleted bytes leave the files. The importer skips digested keys on re-import.

Copies of the person's photos filed under other identities (the same photo under another MID,
a re-encoded copy) are the person's photos too. Before deleting, :func:`find_copies` collects
every face of another identity that is byte-identical (same SHA-256) to one of the identity's
faces or in the same verified duplicate group (``dup_groups``, written by the scan after the
dHash + thumbnail-SSIM verification of :mod:`annotator.core.dedup.verify`; a pHash neighbour that
failed verification is not a copy). By default they are removed in the same transaction as the
identity (their flags, groups, history too, and the counters, flags and suspicion of the
identities they were under recounted); ``keep_copies=True`` removes none of them and returns
their ids and origins for a reviewer to decide. The result counts them by how they were found
(``copies_by_sha256``, ``copies_by_near``) and by how many identities they were under — never
by key (such an identity may be the same person under another MID). A face without hashes
cannot be matched, so a takedown refuses while the project has unscanned faces (run
``annotator scan`` first) unless ``force_unscanned=True``; the count of unscanned faces is then
reported. The copies are found from what the scan stored: a scan that is still writing its
groups (``flags_state`` 'updating') makes a takedown refuse too.

Exports written before the takedown are folders outside the project: they are not touched, and
``earlier_exports`` says how many there are (re-export or delete them).

The ``reason`` text is stored as given: do not put the person's name in it.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from annotator.core.dedup import flags as flag_rules
from annotator.core.dedup import flagset
from annotator.core.review import takedown_rules as rules
from annotator.core.review import withdrawal
from annotator.core.review.privacy import key_digest
from annotator.model import AnnotatorError
from annotator.store import faces as faces_store
from annotator.store import flags as flags_store
from annotator.store import labels as labels_store
from annotator.store import takedown as store
from annotator.store import thumbcache
from annotator.store import withdrawal as ledger_store
from annotator.store.db import Project


@dataclass
class TakedownResult:
    key_digest: str
    faces_removed: int
    flags_removed: int
    events_removed: int
    qa_items_removed: int
    names_removed: int
    cache_removed: bool
    wal_truncated: bool
    identities_recounted: int = 0
    notes_scrubbed: int = 0
    exports_redacted: int = 0
    earlier_exports: int = 0
    copies_removed: int = 0  # copies of the person's photos under other identities, removed
    copies_kept: int = 0  # ... found but kept (``keep_copies``)
    copies_by_sha256: int = 0  # found as byte-identical to one of the identity's faces
    copies_by_near: int = 0  # found in the same verified duplicate group
    copy_identities: int = 0  # how many other identities they were filed under
    identities_emptied: int = 0  # of those, how many have no face left
    unscanned_faces: int = 0  # faces of the project without hashes (``force_unscanned``)
    copies: list[dict[str, object]] = field(default_factory=list)  # kept: id, origin, found_by
    lookalikes: list[dict[str, object]] = field(default_factory=list)  # listed: id, origin
    lookalikes_removed: int = 0  # ... removed (``include_lookalikes``)
    packages: list[dict[str, object]] = field(default_factory=list)  # out, holding the person
    unfinished_packages: list[dict[str, object]] = field(default_factory=list)  # killed packs
    same_person: int = 0  # other identities whose centre is close: probably the same person

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def recount_suspicion(project: Project, identity_ids: list[int]) -> None:
    """Recompute ``flagged_count`` and ``suspicion`` of some identities from their stored flags,
    with the scan's rule (:func:`annotator.core.dedup.flags.suspicion`)."""
    if not identity_ids:
        return
    scanned, rows = flags_store.flag_memberships(project, identity_ids)
    by_flag: dict[int, tuple[str, list[int]]] = {}
    for flag_id, kind, face in rows:
        by_flag.setdefault(flag_id, (kind, []))[1].append(face)
    fl = [flagset.Flag(k, tuple(fs), None, 0.0) for k, fs in by_flag.values()]
    face = np.array([f for f, _i in scanned], dtype=np.int64)
    ident = np.array([i for _f, i in scanned], dtype=np.int64)
    flags_store.set_identity_suspicion(project, identity_ids, flag_rules.suspicion(fl, face, ident))


def drop_cache(project: Project, face_ids: list[int]) -> bool:
    cache = project.cache_dir
    if not cache.exists():
        return True
    shutil.rmtree(cache, ignore_errors=True)
    if not cache.exists():
        return True
    # could not delete (held open elsewhere, permissions): delete the faces' rows instead
    ok = True
    for f in sorted(cache.glob("*.sqlite")):
        ok = thumbcache.purge_thumb_cache(f, face_ids) and ok
    return ok


@dataclass(frozen=True)
class Copies:
    """Copies of an identity's photos under other identities (see :func:`find_copies`)."""

    rows: list[tuple[int, int, str]]  # (face id, identity id, found by 'sha256' | 'near')

    @property
    def face_ids(self) -> list[int]:
        return [f for f, _i, _h in self.rows]

    def count(self, how: str) -> int:
        return sum(1 for _f, _i, h in self.rows if h == how)

    @property
    def identities(self) -> int:
        return len({i for _f, i, _h in self.rows})


def find_copies(project: Project, key: str) -> Copies | None:
    """The copies of identity ``key``'s photos under other identities, or None when there is no
    such identity (a preview for a confirmation prompt; :func:`takedown` looks again inside its
    transaction)."""
    ident = store.identity_id(project, key.strip())
    return None if ident is None else Copies(store.find_copies(project, ident))


@dataclass
class Removed:
    """What the cascade deleted (:func:`remove`)."""

    faces: int  # the identity's own faces
    flags: int
    events: int
    batches: int
    qa_items: int
    names: int
    notes_scrubbed: int
    exports_redacted: int
    face_ids: list[int]  # every face deleted (for caches)
    affected: list[int]  # other identities to recount
    keeperless: list[int]  # duplicate groups that lost their keeper


def remove(project: Project, ident: int, key: str, extra: Sequence[int] = ()) -> Removed:
    """Remove identity ``ident``, its faces (current or as imported), the faces ``extra``
    (copies, look-alikes) and all that refers to them, inside the caller's transaction. The
    store reads and writes; :mod:`takedown_rules` decides what goes. Works on any project file
    of this schema (a reviewer package too)."""
    store.secure_delete(project)  # freed pages are zeroed as they are freed
    with project.tx():
        names, own = store.person_facts(project, ident)
        needles = rules.needles(key, names)
        faces = rules.faces_reached(own, extra)
        others = store.mark_faces(project, ident, faces)
        left, flagged_others = store.flag_facts(project)
        dead = rules.dead_flags(left)
        store.delete_flags(project, dead)
        for fid, kind, sim, n_id, n_sha, n_nosha, members in store.dup_flag_rows(
            project, sorted(set(left) - set(dead))
        ):
            new = rules.dup_flag_kind(kind, sim, n_id, n_sha, n_nosha)
            if new is not None:  # a flag now the same as another one is dropped
                store.set_flag_kind(project, fid, *new, rules.fingerprint(new[0], members))
        fate = rules.group_fate(store.group_facts(project))
        store.delete_group_rows(project, fate.drop)
        qa_items = store.delete_hashes_and_qa(project)
        touched, events = store.delete_history(project, ident)
        notes, exports = store.scrub(project, needles)
        targets, alive = store.batch_links(project, touched)
        dead_batches = rules.dead_batches(touched, targets, alive)
        store.delete_batches(project, dead_batches)
        n_names = store.delete_person(project, ident, others)
    affected = sorted((set(others) | set(flagged_others)) - {ident})
    return Removed(
        len(own),
        len(dead),
        events,
        len(dead_batches),
        qa_items,
        n_names,
        notes,
        exports,
        faces,
        affected,
        fate.keeperless,
    )


def check_ready(project: Project, force_unscanned: bool) -> int:
    unscanned = store.unscanned_faces(project)
    if unscanned and not force_unscanned:
        raise AnnotatorError(
            f"{unscanned} face(s) of the project are not scanned, so copies of this person's "
            "photos among them cannot be found; run `annotator scan` first "
            "(or pass --force-unscanned to go ahead without them)"
        )
    if flags_store.flags_state(project) == "updating":
        raise AnnotatorError(
            "a scan is writing the duplicate groups (or stopped while writing them), so copies "
            "of this person's photos cannot all be found; let it finish or run `annotator scan`"
        )
    return unscanned


def takedown(
    project: Project,
    key: str,
    reviewer: str,
    reason: str | None = None,
    *,
    keep_copies: bool = False,
    force_unscanned: bool = False,
    include_lookalikes: bool = False,
    compact: bool = True,
    checked: int | None = None,
) -> TakedownResult:
    """Remove identity ``key`` and everything about it, and the copies of its photos under
    other identities unless ``keep_copies`` (see the module docstring); look-alikes are listed,
    and removed with ``include_lookalikes``. ``compact=False`` leaves the VACUUM to the caller
    (a bulk run compacts once at the end); ``checked``: the unscanned faces a bulk run counted
    once with :func:`check_ready`."""
    key = key.strip()
    if not key:
        raise AnnotatorError("no identity key given")
    salt = project.meta("salt")
    if not salt:
        raise AnnotatorError("the project has no salt (meta 'salt'); cannot record a takedown")
    digest = key_digest(salt, key)
    ident = store.identity_id(project, key)
    if ident is None:
        if store.is_taken_down(project, digest):
            raise AnnotatorError("that identity was already taken down")
        raise AnnotatorError(f"no identity with key {key!r}")
    unscanned = check_ready(project, force_unscanned) if checked is None else checked
    # one transaction: the copies found, the removal, the ledger and the recounts
    with project.tx():
        copies = Copies(store.find_copies(project, ident))
        own_names, own = store.person_facts(project, ident)
        look = rules.lookalikes(ledger_store.looks_like(project, ident), (), own + copies.face_ids)
        kept = _listed(project, copies.rows if keep_copies else [], look)
        extra = ([] if keep_copies else copies.face_ids) + (look if include_lookalikes else [])
        pkgs = ledger_store.packages_holding(project, [ident] + [i for _f, i, _h in copies.rows])
        shas = ledger_store.photo_sha256(project, own + extra)
        same = len(ledger_store.same_person_identities(project, ident))
        rid = labels_store.reviewer_id(project, reviewer)
        removed = remove(project, ident, key, extra)
        out = _copies_out(project, pkgs, rules.needles(key, own_names))  # exports scrubbed
        emptied = 0
        if copies.rows and not keep_copies:
            emptied = store.empty_identities(project, sorted({i for _f, i, _h in copies.rows}))
        flags_store.set_keepers(
            project, flag_rules.keepers(flags_store.group_members(project, removed.keeperless))
        )
        recount_suspicion(project, removed.affected)
        res = TakedownResult(
            digest,
            removed.faces,
            removed.flags,
            removed.events,
            removed.qa_items,
            removed.names,
            False,
            False,
            len(removed.affected),
            removed.notes_scrubbed,
            removed.exports_redacted,
            len(out["exports"]),
            copies_removed=0 if keep_copies else len(copies.rows),
            copies_kept=len(copies.rows) if keep_copies else 0,
            copies_by_sha256=copies.count("sha256"),
            copies_by_near=copies.count("near"),
            copy_identities=copies.identities,
            identities_emptied=emptied,
            unscanned_faces=unscanned,
            copies=[c for c in kept if c["found_by"] != "looks_like"],
            lookalikes=[c for c in kept if c["found_by"] == "looks_like"],
            lookalikes_removed=len(look) if include_lookalikes else 0,
            packages=out["packages"],  # type: ignore[arg-type]
            unfinished_packages=out["unfinished_packages"],  # type: ignore[arg-type]
            same_person=same,
        )
        # still in the project, for a reviewer: copies kept, look-alikes not removed
        out["in_project"] = [
            {"face": c["id"], "origin": c["origin"], "found_by": c["found_by"]}
            for c in res.copies + res.lookalikes
        ]
        tid = ledger_store.record_takedown(
            project, rid, digest, len(removed.face_ids), reason or None, _counts(res), out
        )
        ledger_store.add_digests(
            project, tid, withdrawal.person_digests(salt, key, own_names, shas)
        )
        ledger_store.bump_data_version(project)
    res.cache_removed = drop_cache(project, removed.face_ids)
    res.wal_truncated = store.compact(project) if compact else False
    return res


def _listed(
    project: Project, copies: list[tuple[int, int, str]], look: list[int]
) -> list[dict[str, object]]:
    """Copies kept and look-alikes, by id, origin and how they were found (for a reviewer)."""
    ids = [f for f, _i, _h in copies] + look
    if not ids:
        return []
    origins = faces_store.face_origins(project, ids)
    return [{"id": f, "origin": origins.get(f, "?"), "found_by": h} for f, _i, h in copies] + [
        {"id": f, "origin": origins.get(f, "?"), "found_by": "looks_like"} for f in look
    ]


def _copies_out(
    project: Project, pkgs: list[tuple[str, str, bool]], needles: list[str]
) -> dict[str, list[dict[str, object]]]:
    """Where copies of the person may still be, outside the project: every export (folder,
    manifest digest; read after the scrub) and the packages sent out with the person (a file
    name that names the person is redacted)."""
    return {
        "exports": [
            {"id": i, "folder": p, "manifest_sha256": d}
            for i, p, d in ledger_store.exports_out(project)
        ],
        "packages": [
            {"id": i, "file": p, "with_images": w}
            for i, p, w in [
                (i, store.REDACTED if any(n in p for n in needles) else p, w) for i, p, w in pkgs
            ]
        ],
        "unfinished_packages": [
            {"file": store.REDACTED if any(n in p for n in needles) else p}
            for p in ledger_store.partials(project)
            if Path(p).exists()
        ],
    }


def _counts(res: TakedownResult) -> dict[str, object]:
    return {
        k: v
        for k, v in res.to_json().items()
        if isinstance(v, int) and not isinstance(v, bool) and k != "key_digest"
    }
