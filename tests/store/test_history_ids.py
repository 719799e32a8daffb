"""m015: batch and event ids are never given twice (issue 20 finding 3), also in a project
migrated from before the step, whose sequences start above every package's recorded base."""

import sqlite3

from sqlite_utils import Database

from annotator.core.review import ops
from annotator.store.db import APPLICATION_ID, open_project
from annotator.store.migrations import migrations


def test_an_older_project_keeps_its_history_and_never_reuses_an_id(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA foreign_keys = ON")
    migrations.apply(Database(conn), stop_before="m015_merge_by_content")
    conn.executescript(
        """
        INSERT INTO reviewers VALUES (1, 'alice', 't');
        INSERT INTO batches(id, reviewer_id, at, kind, target, description)
            VALUES (1, 1, 't', 'do', NULL, 'a'), (2, 1, 't', 'undo', 1, 'b');
        INSERT INTO events(id, batch_id, reviewer_id, at, kind, face_id, identity_id, value)
            VALUES (1, 1, 1, 't', 'review', NULL, 1, '1'), (2, 2, 1, 't', 'review', NULL, 1, '0');
        INSERT INTO packages(id, out_path, packed_at, base_batch, base_event, identities, faces,
            with_images, digest) VALUES ('p', 'x', 't', 40, 50, 0, 0, 0, 'd');
        """
    )
    conn.close()
    with open_project(path) as p:
        got = p.conn.execute("SELECT id, batch_id, value FROM events ORDER BY id").fetchall()
        assert got == [(1, 1, "1"), (2, 2, "0")]
        assert p.conn.execute("SELECT target FROM batches WHERE id = 2").fetchone() == (1,)
        seq = dict(p.conn.execute("SELECT name, seq FROM sqlite_sequence"))
        assert (seq["batches"], seq["events"]) == (40, 50)
        assert p.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert p.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with p.tx() as c:  # the highest rows go (as a takedown does): no id comes back
            c.execute("DELETE FROM events WHERE id = 2")
            c.execute("DELETE FROM batches WHERE id = 2")
            b = c.execute(
                "INSERT INTO batches(reviewer_id, at, kind, description) VALUES (1, 't', 'do', 'c')"
            ).lastrowid
            e = c.execute(
                "INSERT INTO events(batch_id, reviewer_id, at, kind) VALUES (?, 1, 't', 'x')", (b,)
            ).lastrowid
        assert (b, e) == (41, 51)
    with open_project(path):  # opens again: the schema is what the migrations make
        pass


def test_a_new_project_gives_ids_in_order(tmp_path):
    from tests.core.test_pack import make_home

    db = make_home(tmp_path)
    with open_project(db) as p:
        ops.label_faces(p, [1], "correct", "alice")
        ops.label_faces(p, [2], "correct", "alice")
        with p.tx() as c:
            c.execute("DELETE FROM events WHERE id = 2")
        ops.label_faces(p, [3], "correct", "alice")
        assert [r[0] for r in p.conn.execute("SELECT id FROM events ORDER BY id")] == [1, 3]


def test_a_project_that_had_a_later_numbered_step_first_opens_and_migrates(tmp_path):
    """A project made by a version with m016 (another branch's step) but without m015 gets
    m015 on open: the schema check knows which steps the file has, not only a prefix."""
    path = tmp_path / "m016first.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db = Database(conn)
    migrations.ensure_migrations_table(db)
    for step in migrations._migrations:
        if step.name == "m015_merge_by_content":
            continue
        with db.atomic():
            step.fn(db)
            db["_sqlite_migrations"].insert(
                {"migration_set": "annotator", "name": step.name, "applied_at": "t"}
            )
    conn.close()
    with open_project(path) as p:
        names = {r[0] for r in p.conn.execute("SELECT name FROM _sqlite_migrations")}
        assert "m015_merge_by_content" in names
        assert p.conn.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'events'").fetchone()
    with open_project(path):
        pass
