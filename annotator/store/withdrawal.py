"""SQL of the withdrawal ledger (migration m016): the takedown record with what it removed and
where copies may still be, the salted digests of each withdrawn person's key, names and photos,
and the few reads a takedown needs to say where the person still is (packages out, look-alike
faces, photo SHA-256 values). Digests are made in core (``core/review/withdrawal.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence

from annotator.store.db import Project, now
from annotator.store.names import name_match_sql

DATA_VERSION = "data_version"  # meta key: bumped by every takedown (open windows reload)


def record_takedown(
    project: Project,
    reviewer_id: int | None,
    key_digest: str,
    faces_removed: int,
    reason: str | None,
    removed: dict[str, object],
    copies_out: dict[str, object],
) -> int:
    """The takedown row (inside the caller's transaction); returns its id."""
    with project.tx() as c:
        cur = c.execute(
            "INSERT INTO takedowns(at, reviewer_id, key_digest, faces_removed, reason, removed,"
            " copies_out) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                now(),
                reviewer_id,
                key_digest,
                faces_removed,
                reason,
                json.dumps(removed, sort_keys=True),
                json.dumps(copies_out, sort_keys=True),
            ),
        )
        return int(cur.lastrowid or 0)


def add_digests(project: Project, takedown_id: int, rows: Iterable[tuple[str, str]]) -> None:
    """(digest, kind) rows of one takedown; a digest already in the ledger stays as it is."""
    with project.tx() as c:
        c.executemany(
            "INSERT OR IGNORE INTO withdrawn(digest, kind, takedown_id) VALUES (?, ?, ?)",
            [(d, k, takedown_id) for d, k in rows],
        )


def digests(project: Project, kind: str | None = None) -> set[str]:
    """Every digest of the ledger (of one kind)."""
    if kind is None:
        return {r[0] for r in project.conn.execute("SELECT digest FROM withdrawn")}
    return {
        r[0] for r in project.conn.execute("SELECT digest FROM withdrawn WHERE kind = ?", (kind,))
    }


def has_digest(project: Project, digest: str) -> bool:
    return (
        project.conn.execute("SELECT 1 FROM withdrawn WHERE digest = ?", (digest,)).fetchone()
        is not None
    )


def ledger(project: Project) -> list[dict[str, object]]:
    """Every takedown: when, by whom, what was removed, where copies may still be, and how many
    digests of each kind it holds (never the digests' plain values: the ledger has none)."""
    out: list[dict[str, object]] = []
    for tid, at, who, faces, reason, removed, copies in project.conn.execute(
        "SELECT t.id, t.at, r.name, t.faces_removed, t.reason, t.removed, t.copies_out"
        " FROM takedowns t LEFT JOIN reviewers r ON r.id = t.reviewer_id ORDER BY t.id"
    ):
        kinds = dict(
            project.conn.execute(
                "SELECT kind, count(*) FROM withdrawn WHERE takedown_id = ? GROUP BY kind", (tid,)
            ).fetchall()
        )
        out.append(
            {
                "id": tid,
                "at": at,
                "by": who,
                "faces_removed": faces,
                "reason": reason,
                "removed": json.loads(removed) if removed else {},
                "copies_out": json.loads(copies) if copies else {},
                "digests": kinds,
            }
        )
    return out


def withdrawn_count(project: Project) -> int:
    return int(project.conn.execute("SELECT count(*) FROM takedowns").fetchone()[0])


def photo_sha256(project: Project, face_ids: Sequence[int]) -> list[str]:
    """Hex SHA-256 of those faces that have one."""
    out: list[str] = []
    ids = list(face_ids)
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        out += [
            str(r[0])
            for r in project.conn.execute(
                f"SELECT DISTINCT hex(sha256) FROM face_hashes WHERE face_id IN"
                f" ({','.join('?' * len(chunk))}) AND sha256 IS NOT NULL",
                chunk,
            )
        ]
    return out


def packages_holding(project: Project, identity_ids: Sequence[int]) -> list[tuple[str, str, bool]]:
    """(package id, file, with images) of the packages sent out with any of these identities."""
    ids = sorted(set(identity_ids))
    rows: dict[str, tuple[str, str, bool]] = {}
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        for pid, path, img in project.conn.execute(
            "SELECT p.id, p.out_path, p.with_images FROM packages p WHERE p.id IN"
            " (SELECT package_id FROM package_identities WHERE identity_id IN"
            f" ({','.join('?' * len(chunk))}))",
            chunk,
        ):
            rows[str(pid)] = (str(pid), str(path), bool(img))
    return sorted(rows.values())


def exports_out(project: Project) -> list[tuple[int, str, str]]:
    """(export id, folder, manifest digest) of every export so far."""
    return [
        (int(i), str(p), str(d))
        for i, p, d in project.conn.execute(
            "SELECT id, out_path, manifest_sha256 FROM exports ORDER BY id"
        )
    ]


def looks_like(project: Project, ident: int) -> list[tuple[int, int]]:
    """(face id, identity it is filed under) of the faces a ``suspect_identity`` check found to
    look more like identity ``ident`` than like their own."""
    return [
        (int(f), int(i))
        for f, i in project.conn.execute(
            "SELECT l.face_id, f.identity_id FROM face_looks_like l JOIN faces f ON f.id = l.face_id"
            " WHERE l.identity_id = ? ORDER BY l.face_id",
            (ident,),
        )
    ]


def same_person_identities(project: Project, ident: int) -> list[int]:
    """Identities whose centre is close to ``ident``'s ("probably the same person")."""
    return [
        int(r[0])
        for r in project.conn.execute(
            "SELECT b FROM same_person WHERE a = ?1 UNION SELECT a FROM same_person WHERE b = ?1",
            (ident,),
        )
    ]


def bump_data_version(project: Project) -> int:
    """Count one more takedown-sized change (inside the caller's transaction)."""
    with project.tx() as c:
        row = c.execute("SELECT value FROM meta WHERE key = ?", (DATA_VERSION,)).fetchone()
        v = int(row[0]) + 1 if row else 1
        c.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (DATA_VERSION, str(v)),
        )
        return v


def data_version(project: Project) -> int:
    row = project.conn.execute("SELECT value FROM meta WHERE key = ?", (DATA_VERSION,)).fetchone()
    return int(row[0]) if row else 0


def notes_after(project: Project, event_id: int) -> list[tuple[int, str]]:
    """(event id, note) of the events after ``event_id`` that have a note."""
    return [
        (int(i), str(n))
        for i, n in project.conn.execute(
            "SELECT id, note FROM events WHERE id > ? AND note IS NOT NULL AND note != ''",
            (event_id,),
        )
    ]


def clear_notes(project: Project, event_ids: Sequence[int]) -> None:
    ids = list(event_ids)
    project.conn.execute("PRAGMA secure_delete = ON")  # the old note's bytes are zeroed
    with project.tx() as c:
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            c.execute(
                f"UPDATE events SET note = NULL WHERE id IN ({','.join('?' * len(chunk))})", chunk
            )


def last_event_id(project: Project) -> int:
    return int(project.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])


def named_candidates(project: Project, text: str) -> list[tuple[int, str, str]]:
    """(identity id, key, name) of the identities with a name whose words start with the words
    of ``text`` (the name search's index); core keeps those whose whole name is ``text``."""
    match, args = name_match_sql(text)
    if not match:
        return []
    return [
        (int(i), str(k), str(n))
        for i, k, n in project.conn.execute(
            "SELECT i.id, i.key, n.name FROM identity_names n JOIN identities i"
            f" ON i.id = n.identity_id WHERE i.id IN ({match})",
            args,
        )
    ]


def face_sha256(project: Project) -> list[tuple[int, str]]:
    """(face id, hex SHA-256) of every hashed face (a package's, at pack or purge time)."""
    return [
        (int(f), str(h))
        for f, h in project.conn.execute(
            "SELECT face_id, hex(sha256) FROM face_hashes WHERE sha256 IS NOT NULL"
        )
    ]


def set_package_digest(package: Project, digest: str) -> None:
    """In a package file: its record's content digest, after a purge changed the content."""
    with package.tx() as c:
        c.execute("UPDATE package_info SET digest = ?", (digest,))


def set_package_record_digest(home: Project, package_id: str, digest: str) -> bool:
    """At home: the digest of a package sent out, after its file was purged. False when home
    has no record of that package."""
    with home.tx() as c:
        return (
            c.execute("UPDATE packages SET digest = ? WHERE id = ?", (digest, package_id)).rowcount
            > 0
        )


def all_names(project: Project) -> Iterator[tuple[str, str]]:
    """(key, name) of every named identity (a bulk request's name look-up, one pass)."""
    for k, n in project.conn.execute(
        "SELECT i.key, n.name FROM identity_names n JOIN identities i ON i.id = n.identity_id"
        " WHERE n.name != ''"
    ):
        yield str(k), str(n)


_PARTIAL = "pack_partial:"  # meta key prefix: a package file being written (core/review/pack.py)


def note_partial(project: Project, path: str) -> None:
    with project.tx() as c:
        c.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
            " SET value = excluded.value",
            (_PARTIAL + path, now()),
        )


def clear_partial(project: Project, path: str) -> None:
    with project.tx() as c:
        c.execute("DELETE FROM meta WHERE key = ?", (_PARTIAL + path,))


def partials(project: Project) -> list[str]:
    return [
        str(k)[len(_PARTIAL) :]
        for (k,) in project.conn.execute(
            "SELECT key FROM meta WHERE key >= ? AND key < ? ORDER BY key",
            (_PARTIAL, _PARTIAL[:-1] + ";"),
        )
    ]
