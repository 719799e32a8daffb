"""Search words of identity names: case- and accent-folded words with an index, so a name
search is a set of index range scans. No Project here: the migration that backfills the words
runs on the raw connection, before a Project exists, and the name-writing functions of
store/faces.py call these inside their transaction.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterable

# -- name search ---------------------------------------------------------------------------
# Name search: every word of every identity name, case-folded and without accents, in the
# ``name_words`` table (migration m002), so "jose", "JOSÉ" and "Jos" all find "José Álvarez" with
# an index range scan instead of a LIKE over every name.
#
# A query matches the identities that have, for each of its words, a name word starting with it
# ("lola rud" finds "Lola Rudoda"). The rows follow ``identity_names``: ``_refresh_name_words`` rewrites
# the words of the identities whose names changed (the importer's ``insert_names`` calls it), and
# deleting an identity deletes its words (ON DELETE CASCADE), so a privacy takedown leaves none.

MAX_WORD = 64  # longer words are cut (a name is not a paragraph)
MAX_QUERY_WORDS = 6
NAME_TOP = "\U0010ffff"  # sorts after every other character: prefix upper bound
_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Case-folded, compatibility-decomposed text without combining marks ("É" -> "e")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_words_of(text: str) -> list[str]:
    """The distinct search words of a name, in order."""
    out: dict[str, None] = {}
    for w in _WORD.findall(fold(text)):
        out[w[:MAX_WORD]] = None
    return list(out)


def refresh_name_words(c: sqlite3.Connection, identity_ids: Iterable[int]) -> None:
    """Rewrite the name words of these identities from their current names (inside the
    caller's transaction)."""
    ids = sorted(set(identity_ids))
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        q = ",".join("?" * len(chunk))
        c.execute(f"DELETE FROM name_words WHERE identity_id IN ({q})", chunk)
        rows = c.execute(
            f"SELECT identity_id, name FROM identity_names WHERE identity_id IN ({q})", chunk
        ).fetchall()
        c.executemany(
            "INSERT OR IGNORE INTO name_words(word, identity_id) VALUES (?, ?)",
            [(w, ident) for ident, name in rows for w in name_words_of(name)],
        )


def rebuild_name_words(c: sqlite3.Connection) -> None:
    """Fill ``name_words`` from every name (the migration's backfill: it runs on the raw
    connection because migrations run before there is a :class:`Project`)."""
    c.execute("DELETE FROM name_words")
    cur = c.execute("SELECT identity_id, name FROM identity_names ORDER BY identity_id")
    while True:
        rows = cur.fetchmany(20_000)
        if not rows:
            break
        c.executemany(
            "INSERT OR IGNORE INTO name_words(word, identity_id) VALUES (?, ?)",
            [(w, ident) for ident, name in rows for w in name_words_of(name)],
        )


def name_match_sql(text: str) -> tuple[str, list[object]]:
    """A subquery selecting the ids of identities whose key starts with ``text`` or whose
    names match its words; every part is an index range scan. ("", []) for blank text."""
    text = text.strip()
    if not text:
        return "", []
    parts = ["SELECT id FROM identities WHERE key >= ? AND key < ?"]
    args: list[object] = [text, text + NAME_TOP]
    low = text.lower()
    if low != text:  # keys are case-sensitive; MIDs are lower case
        parts.append("SELECT id FROM identities WHERE key >= ? AND key < ?")
        args += [low, low + NAME_TOP]
    ws = name_words_of(text)[:MAX_QUERY_WORDS]
    if ws:
        each = " INTERSECT ".join(
            "SELECT identity_id FROM name_words WHERE word >= ? AND word < ?" for _ in ws
        )
        parts.append(f"SELECT * FROM ({each})")
        for w in ws:
            args += [w, w + NAME_TOP]
    return " UNION ALL ".join(parts), args
