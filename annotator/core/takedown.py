"""Privacy takedown: remove an identity completely and remember only a salted digest of its key.

Removed: its faces (current, and those imported under it and moved elsewhere), their hashes,
flags (and multi-face flags that would be left with a single face), duplicate-group entries
(and groups left with one member), label/QA events and QA items, its names, the identity row,
and the thumbnail cache beside the project (the whole cache directory: it is disposable and
keyed by face id, so it is rebuilt on demand). Then the project file is VACUUMed and its WAL
truncated so the deleted bytes leave the files. The importer skips digested keys on re-import.

The ``reason`` text is stored as given: do not put the person's name in it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass

from annotator.core.models import AnnotatorError
from annotator.core.privacy import key_digest
from annotator.store import labels as labels_store
from annotator.store import takedown as store
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

    def to_json(self) -> dict[str, object]:
        return asdict(self)


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
    rid = labels_store.reviewer_id(project, reviewer)
    removed = store.remove_identity(project, ident, key, digest, rid, reason or None)
    cache = project.cache_dir
    cache_removed = False
    if cache.exists():
        shutil.rmtree(cache, ignore_errors=True)
        cache_removed = not cache.exists()
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
    )
