"""Identity search: key prefixes and name-word prefixes (migration m002, store/faces.py)."""

from __future__ import annotations

from sqlite_utils import Database

from annotator.store import browse, names
from annotator.store.db import APPLICATION_ID, _connect, open_project
from annotator.store.faces import create_identities, insert_names
from annotator.store.migrations import migrations


def _project(tmp_path, names):
    p = open_project(tmp_path / "p.db", create=True)
    with p.tx():
        ids = create_identities(p, [k for k, _lang, _n in names])
        insert_names(p, [(ids[k], lang, n) for k, lang, n in names])
    return p, ids


def test_words_fold_case_and_accents():
    assert names.name_words_of("José Álvarez-Núñez") == ["jose", "alvarez", "nunez"]
    assert names.name_words_of("  ŁUKASZ łukasz  ") == ["łukasz"]  # ł has no decomposition
    assert names.name_words_of("Straße") == ["strasse"]  # casefold, not lower
    assert names.name_words_of("Иван Петров") == ["иван", "петров"]
    assert names.name_words_of("李小龍") == ["李小龍"]
    assert names.name_words_of("") == []


def test_search_by_word_prefixes_and_key_prefix(tmp_path):
    p, ids = _project(
        tmp_path,
        [
            ("m.0abc1", "en", "José Álvarez"),
            ("m.0abc1", "es", "Pepe Álvarez"),
            ("m.0abd2", "en", "Joseph Alvarado"),
            ("m.0xyz9", "ru", "Иван Петров"),
            ("m.0qq", "en", "100% real_name"),
        ],
    )
    a, b, c, d = ids["m.0abc1"], ids["m.0abd2"], ids["m.0xyz9"], ids["m.0qq"]

    def found(text):
        return sorted(browse.identity_ids(p, "all", text))

    assert found("jos") == sorted([a, b])
    assert found("JOSE") == sorted([a, b])  # "jose" is a prefix of "joseph" too
    assert found("josé álvare") == [a]
    assert found("alv jos") == sorted([a, b])  # any order
    assert found("alvarez") == [a]
    assert found("pepe") == [a]  # any language's name
    assert found("ИВАН") == [c] and found("пет") == [c]
    assert found("m.0ab") == sorted([a, b])  # key prefix
    assert found("M.0AB") == sorted([a, b])  # MIDs are lower case
    assert found("m.0abc1") == [a]
    assert found("varez") == []  # the middle of a word is not a match
    assert found("%") == [] and found("real_") == [d]  # no LIKE wildcards
    assert found("  ") == sorted(ids.values())
    # the move dialog's search: exact key first, then key prefixes, then the rest by key
    rows = browse.search_identities(p, "m.0abc1")
    assert [r.id for r in rows] == [a]
    assert [r.id for r in browse.search_identities(p, "jos")] == [a, b]
    p.close()


def test_names_added_later_and_takedown_leave_no_stale_words(tmp_path):
    p, ids = _project(tmp_path, [("m.01", "en", "Ada Lovelace"), ("m.02", "en", "Alan Turing")])
    assert browse.identity_ids(p, "all", "byron") == []
    with p.tx():
        insert_names(p, [(ids["m.01"], "fr", "Ada Byron"), (ids["m.01"], "en", "Ignored")])
    assert browse.identity_ids(p, "all", "byron") == [ids["m.01"]]
    assert browse.identity_ids(p, "all", "ignored") == []  # the first name per language wins
    with p.tx() as c:  # what a takedown does: the identity row goes, its names cascade
        c.execute("DELETE FROM identity_names WHERE identity_id = ?", (ids["m.01"],))
        c.execute("DELETE FROM identities WHERE id = ?", (ids["m.01"],))
    left = p.conn.execute("SELECT DISTINCT identity_id FROM name_words").fetchall()
    assert left == [(ids["m.02"],)]
    p.close()


def test_migration_fills_words_of_an_older_project(tmp_path):
    path = tmp_path / "old.db"
    conn = _connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    migrations.apply(Database(conn), stop_before="m002_name_search")
    assert (
        conn.execute("SELECT name FROM sqlite_master WHERE name = 'name_words'").fetchone() is None
    )
    conn.execute("INSERT INTO identities(id, key) VALUES (1, 'm.0old'), (2, 'm.0new')")
    conn.execute(
        "INSERT INTO identity_names(identity_id, lang, name) VALUES"
        " (1, 'en', 'Grace Hopper'), (1, 'de', 'Grace Brewster Hopper'), (2, 'en', 'Zoë Ø')"
    )
    conn.close()
    p = open_project(path)
    assert browse.identity_ids(p, "all", "brew hop") == [1]
    assert browse.identity_ids(p, "all", "zoe") == [2]
    n = p.conn.execute("SELECT count(*) FROM name_words").fetchone()[0]
    assert n == len({"grace", "hopper", "brewster"}) + 2
    p.close()
