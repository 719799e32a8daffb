"""The withdrawal ledger: what a takedown remembers so that the person does not come back.

For each withdrawn person the project keeps salted digests (``sha256(salt, kind, value)``, the
salt is the project's own) of the key, of each name (its case- and accent-folded words) and of
each photo (its SHA-256) — never the plain values. Import refuses rows whose key or photo
matches, merge clears package notes that name the person, pack leaves such faces and notes out
of a package; each counts what it refused. Requests (``--from``) name people by key or by name;
a request already carried out is recognised by the same digests, so a rerun does nothing twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from annotator.core.review.privacy import key_digest
from annotator.formats import keylist
from annotator.store import withdrawal as store
from annotator.store.db import Project
from annotator.store.names import fold

KINDS = ("key", "name", "photo")
MAX_NAME_WORDS = 8  # a note is searched for names of up to this many words
_WORD = re.compile(r"\w+")
_EDGE = "()[]{}<>,;:!?\"'`«»“”‘’"


def digest(salt: str, kind: str, value: str) -> str:
    """The ledger's digest of one value; ``kind`` is one of :data:`KINDS`."""
    return hashlib.sha256(f"{salt}\x1f{kind}\x1f{value}".encode()).hexdigest()


def name_form(name: str) -> str:
    """A name as the ledger digests it: its folded words, one space apart."""
    return " ".join(_WORD.findall(fold(name)))


def person_digests(
    salt: str, key: str, names: Iterable[str], photo_sha256: Iterable[str]
) -> list[tuple[str, str]]:
    """(digest, kind) of a person's key, names and photos (hex SHA-256, any case)."""
    out = [(digest(salt, "key", key), "key")]
    out += [(digest(salt, "name", f), "name") for f in {name_form(n) for n in names} if f]
    out += [(digest(salt, "photo", s.lower()), "photo") for s in set(photo_sha256)]
    return out


@dataclass
class Ledger:
    """The project's digests, loaded once for a run of checks."""

    salt: str
    keys: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    photos: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, project: Project) -> Ledger:
        return cls(
            project.meta("salt") or "",
            store.digests(project, "key"),
            store.digests(project, "name"),
            store.digests(project, "photo"),
        )

    def __bool__(self) -> bool:
        return bool(self.keys or self.names or self.photos)

    def key(self, key: str) -> bool:
        return bool(self.keys) and digest(self.salt, "key", key) in self.keys

    def photo(self, sha256_hex: str) -> bool:
        return bool(self.photos) and digest(self.salt, "photo", sha256_hex.lower()) in self.photos

    def photo_bytes(self, data: bytes) -> bool:
        return bool(self.photos) and self.photo(hashlib.sha256(data).hexdigest())

    def name(self, name: str) -> bool:
        return bool(self.names) and digest(self.salt, "name", name_form(name)) in self.names

    def note(self, note: str | None) -> bool:
        """Whether a free-text note names a withdrawn person: any token (a key like
        ``(m.027tc)``, edges stripped) matches a key, or any run of up to
        :data:`MAX_NAME_WORDS` folded words matches a name."""
        if not note or not self:
            return False
        if self.keys:
            for tok in note.split():
                for t in {tok, tok.strip(_EDGE), tok.strip(_EDGE + ".")}:
                    if t and digest(self.salt, "key", t) in self.keys:
                        return True
        if self.names:
            words = _WORD.findall(fold(note))
            for i in range(len(words)):
                for j in range(i + 1, min(len(words), i + MAX_NAME_WORDS) + 1):
                    if digest(self.salt, "name", " ".join(words[i:j])) in self.names:
                        return True
        return False


def notes_naming(ledger: Ledger, notes: Iterable[tuple[int, str]]) -> list[int]:
    """The ids of the (id, note) rows whose note names a withdrawn person."""
    return [i for i, n in notes if ledger.note(n)]


def scrub_notes_since(project: Project, ledger: Ledger, event_id: int) -> int:
    """Clear the notes of events after ``event_id`` that name a withdrawn person (inside the
    caller's transaction: merge calls it in the transaction that brought them). Returns how
    many."""
    if not ledger:
        return 0
    ids = notes_naming(ledger, store.notes_after(project, event_id))
    if ids:
        store.clear_notes(project, ids)
    return len(ids)


# -- requests --------------------------------------------------------------------------------


def read_requests(path: str) -> list[tuple[int, str]]:
    """(line number, request) of a requests file: one key or name a line, ``#`` comments and
    blank lines ignored."""
    out: list[tuple[int, str]] = []
    for n, line in keylist.read_lines(path):  # a line that is not UTF-8 refuses the file
        s = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if s:
            out.append((n, s))
    return out


@dataclass
class Resolved:
    """What the requests name: keys to take down (with the requests naming them), requests
    already carried out (the ledger knows them), and requests that name nobody or several."""

    keys: dict[str, list[str]] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)


BULK_NAMES = 50  # more name requests than this: one pass over every name instead of searches


def resolve(project: Project, requests: Sequence[str]) -> Resolved:
    """Each request is a key if an identity has it, else a name (whole name, folded) of one
    identity; a request the ledger already holds (key or name) is done; a name shared by
    several identities is ambiguous (named, not taken down: a reviewer picks by key)."""
    from annotator.store import takedown as td_store

    ledger = Ledger.of(project)
    out = Resolved()
    names = [r for r in requests if td_store.identity_id(project, r) is None]
    by_form: dict[str, set[str]] | None = None
    if len(names) > BULK_NAMES:  # one pass over the names beats one index search each
        wanted = {name_form(r) for r in names}
        by_form = {}
        for k, n in store.all_names(project):
            f = name_form(n)
            if f in wanted:
                by_form.setdefault(f, set()).add(k)
    named = set(names)
    for req in requests:
        if req not in named:
            out.keys.setdefault(req, []).append(req)
            continue
        form = name_form(req)
        if by_form is not None:
            keys = sorted(by_form.get(form, ()))
        else:
            keys = sorted(
                {k for _i, k, n in store.named_candidates(project, req) if name_form(n) == form}
            )
        if len(keys) == 1:
            out.keys.setdefault(keys[0], []).append(req)
        elif keys:
            out.ambiguous[req] = keys
        elif (
            ledger.key(req)
            or ledger.name(req)
            or td_store.is_taken_down(project, key_digest(ledger.salt, req))
        ):
            out.done.append(req)
        else:
            out.unknown.append(req)
    return out


def withdrawn_photos(
    ledger: Ledger, source_path: str, fmt: str, records: Sequence[object]
) -> set[int]:
    """Indexes of the records (``FaceRecord``\\ s of one source) whose photo the ledger holds:
    their bytes are read through their locators (one open of the source for all). A face that
    cannot be read is not matched (the scan will report it)."""
    if not ledger.photos or not records:
        return set()
    from annotator.core.infra.access import FaceReadError, ReadItem, read_planned

    items = [
        ReadItem(-1, source_path, fmt, r.locator.offset, r.locator.length, r.locator.relpath, "")  # type: ignore[attr-defined]
        for r in records
    ]
    datas = read_planned(items, errors="return")
    return {
        i for i, d in enumerate(datas) if not isinstance(d, FaceReadError) and ledger.photo_bytes(d)
    }


@dataclass
class Scrubbed:
    count: int = 0


@contextmanager
def scrubbing(project: Project, ledger: Ledger) -> Iterator[Scrubbed]:
    """Around a write that brings events in (a merge chunk, inside its transaction): afterwards
    the new events' notes that name a withdrawn person are cleared, counted in ``count``."""
    out = Scrubbed()
    e0 = store.last_event_id(project) if ledger else 0
    yield out
    if ledger:
        out.count = scrub_notes_since(project, ledger, e0)
