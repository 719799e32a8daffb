"""Withdrawal in reviewer package files: ``annotator takedown KEY --package PKG.db`` removes the
person from a package already sent out (the same cascade as at home, embedded photo bytes
included, then VACUUM), and ``pack`` leaves out of a new package what the withdrawal ledger
matches. A purged package gets a new content digest; home records it, so the package still
merges — only for a person home has already withdrawn, so a purge cannot launder a tampered
package.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from annotator.core.review import takedown as td
from annotator.core.review.privacy import key_digest
from annotator.core.review.withdrawal import Ledger, scrub_notes_since
from annotator.model import AnnotatorError
from annotator.store import packages as packages_store
from annotator.store import takedown as td_store
from annotator.store import withdrawal as store
from annotator.store.db import Project, open_project


def refuse_in_package(pkg: Project, ledger: Ledger) -> int:
    """Remove from a package being written the faces whose photo the ledger holds (with all
    that refers to them) and clear the notes that name a withdrawn person; returns how many
    faces and notes were refused."""
    if not ledger:
        return 0
    faces = [f for f, sha in store.face_sha256(pkg) if ledger.photo(sha)]
    with pkg.tx():
        if faces:
            td.remove(pkg, -1, "", faces)
        notes = scrub_notes_since(pkg, ledger, 0)
    return len(faces) + notes


@dataclass
class PurgeResult:
    package_id: str
    faces_removed: int
    copies_removed: int
    notes_scrubbed: int
    refused_by_ledger: int
    home_updated: bool
    wal_truncated: bool

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def purge_package(home: Project, path: str | os.PathLike[str], key: str) -> PurgeResult:
    """Remove identity ``key`` (withdrawn at ``home`` already) and the copies of its photos
    from the package file at ``path``; then whatever else home's ledger matches there (photos,
    notes). Home's record of the package gets the new digest."""
    key = key.strip()
    salt = home.meta("salt") or ""
    ledger = Ledger.of(home)
    if not (ledger.key(key) or td_store.is_taken_down(home, key_digest(salt, key))):
        raise AnnotatorError(
            f"{key!r} is not withdrawn in {home.path.name}: take the person down at home first "
            "(`annotator takedown KEY`), then purge the packages"
        )
    p = Path(path).expanduser().absolute()
    if not p.exists():
        raise AnnotatorError(f"no package file at {p}")
    pkg = open_project(p)
    try:
        info = packages_store.package_info(pkg)
        if info is None:
            raise AnnotatorError(f"{p.name} is not a reviewer package (no package record)")
        if info.home_project_id != packages_store.project_id(home):
            raise AnnotatorError(f"{p.name} is a package of another project")
        ident = td_store.identity_id(pkg, key)
        with pkg.tx():
            copies = td_store.find_copies(pkg, ident) if ident is not None else []
            gone: list[int] = []
            if ident is not None:
                removed = td.remove(pkg, ident, key, [f for f, _i, _h in copies])
                own, notes, gone = removed.faces, removed.notes_scrubbed, removed.face_ids
            else:
                own, notes = 0, td_store.scrub(pkg, [key])[0]
            refused = refuse_in_package(pkg, ledger)
            digest = packages_store.content_digest(pkg, info)
            store.set_package_digest(pkg, digest)
        td.drop_cache(pkg, gone)  # the package's thumbnails (rows of these, if held open)
        wal_ok = td_store.compact(pkg)
    finally:
        pkg.close()
    packages_store.set_delete_journal(p)  # it travels as one file again
    home_ok = store.set_package_record_digest(home, info.id, digest)
    return PurgeResult(info.id, own, len(copies), notes, refused, home_ok, wal_ok)


# -- packages being written -------------------------------------------------------------------
# ``pack`` writes ``OUT.partial`` first; a pack killed with SIGKILL leaves it (face bytes too,
# with --with-images) and no package record. Home notes the file while it is written, so a
# takedown can name what is left.


def note(home: Project, partial: Path) -> None:
    store.note_partial(home, str(partial))


def clear(home: Project, partial: Path) -> None:
    store.clear_partial(home, str(partial))
