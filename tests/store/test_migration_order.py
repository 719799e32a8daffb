"""Migration steps are named in the order they apply, and a project made under the old names
opens without any step running twice."""

import sqlite3

from sqlite_utils import Database

from annotator.store.db import open_project
from annotator.store.migrations import RENAMED, migrations


def test_names_sort_in_the_order_steps_apply():
    names = [m.name for m in migrations._migrations]
    assert names == sorted(names)
    assert len({n.split("_")[0] for n in names}) == len(names), "two steps share a number"


def test_a_project_with_the_old_step_names_opens_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.db"
    project = open_project(path, create=True)
    with project.tx() as c:
        c.execute("INSERT INTO meta(key, value) VALUES ('marker', 'kept')")
    project.close()
    conn = sqlite3.connect(path)
    with conn:
        for old, new in RENAMED.items():
            conn.execute(
                "UPDATE _sqlite_migrations SET name = ? WHERE migration_set = 'annotator' "
                "AND name = ?",
                (old, new),
            )
    assert {r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")} >= set(RENAMED)
    conn.close()

    project = open_project(path)  # a step that ran twice would fail on CREATE TABLE
    assert project.meta("marker") == "kept"
    project.close()
    conn = sqlite3.connect(path)
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
    conn.close()
    assert not set(RENAMED) & set(names)
    assert sorted(names) == sorted(m.name for m in migrations._migrations)
    assert not migrations.pending(Database(sqlite3.connect(path)))


def test_opening_a_current_project_needs_no_write_lock(tmp_path):
    """Reading a project while another process writes it (a scan, an import) must not wait for
    its lock: opening writes nothing when no step has an old name."""
    path = tmp_path / "p.db"
    open_project(path, create=True).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with open_project(path) as p:
            assert p.meta("app") == "annotator"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
