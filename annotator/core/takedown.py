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

Exports written before the takedown are folders outside the project: they are not touched, and
``earlier_exports`` says how many there are (re-export or delete them).

The ``reason`` text is stored as given: do not put the person's name in it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass

import numpy as np

from annotator.core import flags as flag_rules
from annotator.core.privacy import key_digest
from annotator.model import AnnotatorError
from annotator.store import export as export_store
from annotator.store import flags as flags_store
from annotator.store import labels as labels_store
from annotator.store import takedown as store
from annotator.store import thumbcache
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

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def recount_suspicion(project: Project, identity_ids: list[int]) -> None:
    """Recompute ``flagged_count`` and ``suspicion`` of some identities from their stored flags,
    with the scan's rule (:func:`annotator.core.flags.suspicion`)."""
    if not identity_ids:
        return
    scanned, rows = flags_store.flag_memberships(project, identity_ids)
    by_flag: dict[int, tuple[str, list[int]]] = {}
    for flag_id, kind, face in rows:
        by_flag.setdefault(flag_id, (kind, []))[1].append(face)
    fl = [flag_rules.Flag(k, tuple(fs), None, 0.0) for k, fs in by_flag.values()]
    face = np.array([f for f, _i in scanned], dtype=np.int64)
    ident = np.array([i for _f, i in scanned], dtype=np.int64)
    flags_store.set_identity_suspicion(project, identity_ids, flag_rules.suspicion(fl, face, ident))


def _drop_cache(project: Project, face_ids: list[int]) -> bool:
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


def takedown(
    project: Project, key: str, reviewer: str, reason: str | None = None
) -> TakedownResult:
    """Remove identity ``key`` and everything about it (see the module docstring)."""
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
    earlier = len(export_store.exports(project))
    # one transaction: the removal, the takedown record and the recounted suspicion
    with project.tx():
        rid = labels_store.reviewer_id(project, reviewer)
        removed = store.remove_identity(project, ident, key, digest, rid, reason or None)
        flags_store.set_keepers(
            project, flag_rules.keepers(flags_store.group_members(project, removed.keeperless))
        )
        recount_suspicion(project, removed.affected)
    cache_removed = _drop_cache(project, removed.face_ids)
    wal_ok = store.compact(project)
    return TakedownResult(
        digest,
        removed.faces,
        removed.flags,
        removed.events,
        removed.qa_items,
        removed.names,
        cache_removed,
        wal_ok,
        len(removed.affected),
        removed.notes_scrubbed,
        removed.exports_redacted,
        earlier,
    )
