"""Schema of the project file, as sqlite-utils migration steps.

Rules: a released step is never edited; a schema change is a new step appended here.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from annotator.store.names import rebuild_name_words

migrations = Migrations("annotator")

# Steps once named out of the order they apply; a project made before the rename has the old
# names in its ``_sqlite_migrations`` table, which ``store.db`` rewrites before migrating.
RENAMED = {
    "m040_packages": "m005_packages",
    "m060_verified_duplicates": "m006_verified_duplicates",
    "m030_embeddings": "m007_embeddings",
    "m070_identity_check": "m008_identity_check",
}


@migrations()
def m001_initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );

        CREATE TABLE reviewers (
            id         INTEGER PRIMARY KEY,
            name       TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );

        -- The user's files. Never modified, never copied.
        CREATE TABLE sources (
            id            INTEGER PRIMARY KEY,
            path          TEXT NOT NULL,          -- absolute path
            format        TEXT NOT NULL,          -- msceleb | devset | names | rec | folder
            size          INTEGER NOT NULL,
            mtime         REAL NOT NULL,
            fingerprint   TEXT NOT NULL,          -- sha256 of size + head + tail (see formats.fingerprint)
            added_at      TEXT NOT NULL,
            complete      INTEGER NOT NULL DEFAULT 0,
            resume_pos    INTEGER NOT NULL DEFAULT 0,  -- byte offset / record index to resume from
            resume_record INTEGER NOT NULL DEFAULT 0,  -- line / record number already done
            UNIQUE (path, format)
        );

        CREATE TABLE import_runs (
            id          INTEGER PRIMARY KEY,
            source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            status      TEXT NOT NULL,            -- running | done | cancelled | failed
            imported    INTEGER NOT NULL DEFAULT 0,
            skipped     INTEGER NOT NULL DEFAULT 0,
            rejected    INTEGER NOT NULL DEFAULT 0
        );

        CREATE TABLE rejected_rows (
            id        INTEGER PRIMARY KEY,
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            record    INTEGER,                    -- line / record number; NULL for folder entries
            origin    TEXT NOT NULL,
            reason    TEXT NOT NULL,
            UNIQUE (source_id, origin)
        );

        CREATE TABLE identities (
            id           INTEGER PRIMARY KEY,
            key          TEXT NOT NULL UNIQUE,    -- Freebase MID, RecordIO class index, folder name
            face_count   INTEGER NOT NULL DEFAULT 0,  -- denormalised, kept by store functions
            labeled_count INTEGER NOT NULL DEFAULT 0,
            flagged_count INTEGER NOT NULL DEFAULT 0,
            suspicion    REAL NOT NULL DEFAULT 0,
            reviewed     INTEGER NOT NULL DEFAULT 0,
            reviewed_by  INTEGER REFERENCES reviewers(id),
            reviewed_at  TEXT
        );
        CREATE INDEX identities_suspicion ON identities (reviewed, suspicion DESC);

        CREATE TABLE identity_names (
            identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
            lang        TEXT NOT NULL,
            name        TEXT NOT NULL,
            PRIMARY KEY (identity_id, lang)
        );
        -- Names may arrive (names list) before any face of the identity.

        CREATE TABLE faces (
            id               INTEGER PRIMARY KEY,
            identity_id      INTEGER NOT NULL REFERENCES identities(id),  -- current (after moves)
            orig_identity_id INTEGER NOT NULL REFERENCES identities(id),  -- as imported
            source_id        INTEGER NOT NULL REFERENCES sources(id),
            record           INTEGER,             -- 1-based line / 0-based record; NULL for folders
            relpath          TEXT,                -- folder sources
            offset           INTEGER,             -- TSV: FaceData field; rec: record start
            length           INTEGER,
            rank             INTEGER,
            image_url        TEXT,
            page_url         TEXT,
            face_ref         TEXT,                -- MS-Celeb FaceID
            rect_x0 REAL, rect_y0 REAL, rect_x1 REAL, rect_y1 REAL,
            label            TEXT,                -- current label, materialised from events
            label_event_id   INTEGER
        );
        CREATE UNIQUE INDEX faces_source_record ON faces (source_id, record);
        CREATE UNIQUE INDEX faces_source_relpath ON faces (source_id, relpath);
        CREATE INDEX faces_identity ON faces (identity_id, id);
        CREATE INDEX faces_label ON faces (label);

        -- Filled by `annotator scan`.
        CREATE TABLE face_hashes (
            face_id    INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
            sha256     BLOB,
            phash      INTEGER,                   -- 64-bit, stored as signed int64
            dhash      INTEGER,
            width      INTEGER,
            height     INTEGER,
            grayscale  INTEGER,
            sharpness  REAL,
            corrupt    TEXT,                      -- decoder's reason, NULL when it decodes
            scanned_at TEXT NOT NULL
        );
        CREATE INDEX face_hashes_sha256 ON face_hashes (sha256);

        CREATE TABLE flags (
            id          INTEGER PRIMARY KEY,
            kind        TEXT NOT NULL,  -- exact_dup near_dup cross_identity_dup outlier corrupt tiny grayscale blurry
            distance    INTEGER,
            score       REAL NOT NULL,
            fingerprint TEXT NOT NULL UNIQUE,     -- kind + sorted face ids: re-scans do not duplicate
            created_at  TEXT NOT NULL
        );
        CREATE INDEX flags_kind ON flags (kind, score DESC);
        CREATE TABLE flag_faces (
            flag_id INTEGER NOT NULL REFERENCES flags(id) ON DELETE CASCADE,
            face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
            PRIMARY KEY (flag_id, face_id)
        );
        CREATE INDEX flag_faces_face ON flag_faces (face_id);

        -- Duplicate groups (connected components of near/exact duplicate pairs).
        CREATE TABLE dup_groups (
            face_id   INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
            group_id  INTEGER NOT NULL,
            is_keeper INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX dup_groups_group ON dup_groups (group_id);

        -- Append-only history. A batch is one user action (one undo step).
        CREATE TABLE batches (
            id          INTEGER PRIMARY KEY,
            reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
            at          TEXT NOT NULL,
            kind        TEXT NOT NULL,            -- do | undo | redo
            target      INTEGER REFERENCES batches(id),  -- the batch an undo/redo compensates
            description TEXT NOT NULL
        );
        CREATE TABLE events (
            id          INTEGER PRIMARY KEY,
            batch_id    INTEGER NOT NULL REFERENCES batches(id),
            reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
            at          TEXT NOT NULL,
            kind        TEXT NOT NULL,            -- label | move | review | qa | adjudicate
            face_id     INTEGER,
            identity_id INTEGER,
            value       TEXT,                     -- new label / new identity id / review state
            prev_value  TEXT,
            note        TEXT
        );
        CREATE INDEX events_face ON events (face_id);
        CREATE INDEX events_batch ON events (batch_id);
        CREATE INDEX events_identity ON events (identity_id);

        CREATE TABLE qa_passes (
            id          INTEGER PRIMARY KEY,
            reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
            created_at  TEXT NOT NULL,
            seed        INTEGER NOT NULL,
            params      TEXT NOT NULL             -- JSON
        );
        CREATE TABLE qa_items (
            pass_id          INTEGER NOT NULL REFERENCES qa_passes(id) ON DELETE CASCADE,
            face_id          INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
            position         INTEGER NOT NULL,
            orig_label       TEXT NOT NULL,
            orig_reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
            orig_event_id    INTEGER NOT NULL,
            verdict          TEXT,
            verdict_event_id INTEGER,
            adjudicated      TEXT,                -- final label chosen by an adjudicator
            adjudicated_event_id INTEGER,
            PRIMARY KEY (pass_id, face_id)
        );

        CREATE TABLE exports (
            id          INTEGER PRIMARY KEY,
            at          TEXT NOT NULL,
            format      TEXT NOT NULL,
            out_path    TEXT NOT NULL,
            params      TEXT NOT NULL,            -- JSON
            faces       INTEGER NOT NULL,
            identities  INTEGER NOT NULL,
            manifest_sha256 TEXT NOT NULL
        );

        -- Privacy takedowns: the identity and everything about it is deleted; only a
        -- salted digest of its key stays, so a re-import skips it.
        CREATE TABLE takedowns (
            id            INTEGER PRIMARY KEY,
            at            TEXT NOT NULL,
            reviewer_id   INTEGER REFERENCES reviewers(id),
            key_digest    TEXT NOT NULL UNIQUE,
            faces_removed INTEGER NOT NULL,
            reason        TEXT
        );
        """
    )


@migrations()
def m002_name_search(db: Database) -> None:
    """Name search by word prefix, case- and accent-insensitive (see the name search in store/faces.py)."""

    db.execute(
        """
        CREATE TABLE name_words (
            word        TEXT NOT NULL,            -- a word of a name, case-folded, no accents
            identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
            PRIMARY KEY (word, identity_id)
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE INDEX name_words_identity ON name_words (identity_id)")
    rebuild_name_words(db.conn)


@migrations()
def m003_faces_orig_identity(db: Database) -> None:
    """Faces by the identity they were imported under (clean-list label import, takedown):
    without it each lookup scans every face."""
    db.execute("CREATE INDEX IF NOT EXISTS faces_orig_identity ON faces (orig_identity_id, id)")


@migrations()
def m004_qa_items_face(db: Database) -> None:
    """QA items by face: drawing a sample checks every candidate face against earlier passes, and
    deleting a face (takedown) cascades into qa_items; without it both scan the whole table
    (a second QA pass on 300k labels took 38 s)."""
    db.execute("CREATE INDEX IF NOT EXISTS qa_items_face ON qa_items (face_id, orig_event_id)")


@migrations()
def m005_packages(db: Database) -> None:
    """Reviewer packages (see store/packages.py): a stable id for every project (a package
    names the project it comes from); at home, the packages sent out and the package batches
    merged back; in a package, its record and (optionally) the faces' bytes. A QA pass
    listed in merge_passes holds conflicts a merge queued for adjudication, not a sample."""
    import uuid

    db.execute(
        "INSERT INTO meta(key, value) VALUES ('project_id', ?) ON CONFLICT(key) DO NOTHING",
        [str(uuid.uuid4())],
    )
    db.executescript(
        """
        CREATE TABLE packages (
            id          TEXT PRIMARY KEY,         -- package UUID
            out_path    TEXT NOT NULL,
            packed_at   TEXT NOT NULL,
            base_batch  INTEGER NOT NULL,         -- last home batch id at pack time
            base_event  INTEGER NOT NULL,         -- last home event id at pack time
            identities  INTEGER NOT NULL,
            faces       INTEGER NOT NULL,
            with_images INTEGER NOT NULL,
            digest      TEXT NOT NULL,            -- sha256 over the packed content
            merges      INTEGER NOT NULL DEFAULT 0,
            last_merged_at TEXT
        );
        CREATE TABLE package_identities (
            package_id  TEXT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
            identity_id INTEGER NOT NULL,
            PRIMARY KEY (package_id, identity_id)
        ) WITHOUT ROWID;
        CREATE INDEX package_identities_identity ON package_identities (identity_id);
        CREATE TABLE merged_batches (
            package_id       TEXT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
            package_batch_id INTEGER NOT NULL,
            home_batch_id    INTEGER,             -- NULL: nothing of it came home (conflicts)
            batch_key        TEXT NOT NULL,       -- time|reviewer|kind: a copy's other batch differs
            PRIMARY KEY (package_id, package_batch_id)
        ) WITHOUT ROWID;
        CREATE INDEX merged_batches_home ON merged_batches (home_batch_id, package_id);

        -- In a package file: its one record, and the faces' original bytes (--with-images).
        CREATE TABLE package_info (
            id              TEXT PRIMARY KEY,
            home_project_id TEXT NOT NULL,
            home_path       TEXT NOT NULL,
            packed_at       TEXT NOT NULL,
            home_base_batch INTEGER NOT NULL,
            home_base_event INTEGER NOT NULL,
            base_batch      INTEGER NOT NULL,     -- last batch id in the package at pack time
            base_event      INTEGER NOT NULL,
            with_images     INTEGER NOT NULL,
            digest          TEXT NOT NULL
        );
        CREATE TABLE face_blobs (
            face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
            data    BLOB NOT NULL
        );
        -- QA passes that hold the conflicts of a merge (for adjudication), not a QA sample
        CREATE TABLE merge_passes (
            pass_id    INTEGER PRIMARY KEY REFERENCES qa_passes(id) ON DELETE CASCADE,
            package_id TEXT NOT NULL
        );
        """
    )


@migrations()
def m006_verified_duplicates(db: Database) -> None:
    """Verified duplicate groups (core/dedup/verify.py): small thumbnails per decodable face (16x16 gray
    + 8x8 RGB, 448 bytes: the pixel test of a candidate pair) and a flag's verification figure (the group's lowest
    thumbnail similarity). Faces scanned before this step have no thumbnail: the next scan
    hashes just those again (store.hashes.unhashed_face_ids)."""
    db.executescript(
        """
        ALTER TABLE face_hashes ADD COLUMN thumb BLOB;
        ALTER TABLE flags ADD COLUMN similarity REAL;
        """
    )


@migrations()
def m007_embeddings(db: Database) -> None:
    """Face embeddings (`annotator embed`, the optional [embed] extra): one row per face that
    was tried, with the model that made it. ``vector`` is 128 little-endian float16 values
    (256 bytes) when ``status`` is 'ok'; 'failed' keeps the reason and no vector."""
    db.executescript(
        """
        CREATE TABLE face_embeddings (
            face_id     INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
            model       TEXT NOT NULL,            -- model and alignment, see core/identity/embed.py
            status      TEXT NOT NULL,            -- ok | failed
            reason      TEXT,                     -- why it failed; NULL when ok
            vector      BLOB,                     -- float16[128] when ok
            embedded_at TEXT NOT NULL
        );
        CREATE INDEX face_embeddings_model ON face_embeddings (model, status);
        """
    )


@migrations()
def m008_identity_check(db: Database) -> None:
    """What the embeddings say about identities (core/identity/identity_check.py): for a face flagged
    ``suspect_identity``, the identity it looks more like and its margin; and pairs of
    identities whose centres are close ("probably the same person"). Both are recomputed by
    every scan flag step and every ``embed``; both go with the identities they name."""
    db.executescript(
        """
        CREATE TABLE face_looks_like (
            face_id     INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
            identity_id INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
            margin      REAL NOT NULL     -- distance to own centre minus to that identity's
        );
        CREATE INDEX face_looks_like_identity ON face_looks_like (identity_id);
        CREATE TABLE same_person (
            a        INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
            b        INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
            distance REAL NOT NULL,       -- between the two identities' robust centres
            PRIMARY KEY (a, b)
        );
        CREATE INDEX same_person_b ON same_person (b);
        """
    )


def _never_reused(db: Database, table: str, floor_sql: str) -> None:
    """Rebuild ``table`` with ``id INTEGER PRIMARY KEY AUTOINCREMENT`` (same columns, same
    indexes), its sequence starting at least at ``floor_sql``'s value."""
    conn = db.conn
    sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()[0]
    if "AUTOINCREMENT" in sql:  # done before a kill between the commit and the record
        return
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL"
            " ORDER BY name",
            (table,),
        )
    ]
    new_sql = sql.replace(f"CREATE TABLE {table} (", f"CREATE TABLE {table}_new (", 1).replace(
        "id          INTEGER PRIMARY KEY,", "id          INTEGER PRIMARY KEY AUTOINCREMENT,", 1
    )
    assert "AUTOINCREMENT" in new_sql and f"{table}_new" in new_sql, table
    conn.execute(new_sql)
    conn.execute(f"INSERT INTO {table}_new SELECT * FROM {table} ORDER BY id")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
    for ix in indexes:
        conn.execute(ix)
    conn.execute(
        "INSERT INTO sqlite_sequence(name, seq) SELECT ?, max(coalesce((SELECT max(id) FROM"
        f" {table}), 0), coalesce(({floor_sql}), 0))"
        " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
        (table, table),
    )
    conn.execute(
        f"UPDATE sqlite_sequence SET seq = max(seq, coalesce(({floor_sql}), 0)) WHERE name = ?",
        (table,),
    )


@migrations()
def m014_provenance(db: Database) -> None:
    """How each batch of the history was made (its provenance): the channel it was written
    through (``gui``, ``cli``, ``import``) and a detail (the label file's name for ``import``).
    Batches written before this step keep NULL: their provenance is unknown. A package's
    merged batches are known by ``merged_batches``, an adjudication by its batch kind.
    Also the QA passes drawn uniformly at random (estimate passes: core/review/qa.py)."""
    db.executescript(
        """
        ALTER TABLE batches ADD COLUMN origin TEXT;
        ALTER TABLE batches ADD COLUMN origin_detail TEXT;

        -- QA passes drawn uniformly at random from every face of the project (`qa start
        -- --sample random`): the population they stand for, when they were drawn. Their items
        -- ask about each face under the identity it was imported with; an item of a face with
        -- no label has orig_label 'unlabeled' and the pass's reviewer as orig_reviewer_id.
        CREATE TABLE estimate_passes (
            pass_id    INTEGER PRIMARY KEY REFERENCES qa_passes(id) ON DELETE CASCADE,
            population INTEGER NOT NULL          -- faces in the project when it was drawn
        );
        """
    )


@migrations(transactional=False)
def m015_merge_by_content(db: Database) -> None:
    """Reviewer packages that cannot corrupt a project (issue 20). Batch and event ids are
    never given twice (AUTOINCREMENT; starting above every package's recorded base), so "home
    changed this face since the pack" cannot be hidden by a takedown lowering the highest id.
    In a package: ``package_faces``, what each packed face is (its content digest at pack
    time), so a merge matches faces by source, origin and content, never by a reusable id.
    Tables are rebuilt with foreign keys off in one transaction of its own (SQLite cannot
    drop a referenced table otherwise); a rerun after a kill finds the work done."""
    conn = db.conn
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            _never_reused(db, "batches", "SELECT max(base_batch) FROM packages")
            _never_reused(db, "events", "SELECT max(base_event) FROM packages")
            conn.execute(
                """
                CREATE TABLE IF NOT EXISTS package_faces (
                    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
                    sha256  BLOB NOT NULL     -- of the face's bytes at pack time
                )
                """
            )
            bad = conn.execute("PRAGMA foreign_key_check").fetchone()
            if bad is not None:
                raise RuntimeError(f"foreign key check failed after rebuilding: {bad}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


@migrations()
def m016_withdrawal_ledger(db: Database) -> None:
    """The withdrawal ledger (core/review/withdrawal.py): per takedown, salted digests of the
    person's key, names (folded words) and photos (their SHA-256) — never the plain values — so
    import, merge and pack can refuse what matches; what the takedown removed and where copies
    may still be (exports by folder and manifest digest, packages by id and file), as JSON."""
    db.executescript(
        """
        CREATE TABLE withdrawn (
            digest      TEXT PRIMARY KEY,      -- sha256 of salt, kind and value
            kind        TEXT NOT NULL,         -- key | name | photo
            takedown_id INTEGER NOT NULL REFERENCES takedowns(id)
        ) WITHOUT ROWID;
        CREATE INDEX withdrawn_takedown ON withdrawn (takedown_id);
        ALTER TABLE takedowns ADD COLUMN removed TEXT;     -- JSON: counts of what went
        ALTER TABLE takedowns ADD COLUMN copies_out TEXT;  -- JSON: exports and packages out
        """
    )


@migrations()
def m017_crop_hashes(db: Database) -> None:
    """Crop-proof near copies (core/dedup/crops.py): the pHashes and dHashes of two centred
    crops of each decodable face (0.95 and 0.90 of its side), the flag step's second candidate
    source and its cheap test. Faces scanned before this step have none: the next scan hashes
    just those again (store.hashes.unhashed_face_ids)."""
    db.executescript(
        """
        ALTER TABLE face_hashes ADD COLUMN crop_phash1 INTEGER;
        ALTER TABLE face_hashes ADD COLUMN crop_phash2 INTEGER;
        ALTER TABLE face_hashes ADD COLUMN crop_dhash1 INTEGER;
        ALTER TABLE face_hashes ADD COLUMN crop_dhash2 INTEGER;
        """
    )


@migrations()
def m018_identity_centres(db: Database) -> None:
    """Each identity's robust centre and what the identity check needs of it without reading
    all its faces again (core/identity/identity_check.py), so a refresh recomputes only the
    identities whose faces, labels or vectors changed (triggers note those in
    ``identity_centres_stale``; no foreign key: a deleted identity's note is harmless) and
    those with a face a changed centre can now flag."""
    db.executescript(
        """
        CREATE TABLE identity_centres (
            identity_id INTEGER PRIMARY KEY REFERENCES identities(id) ON DELETE CASCADE,
            centre      BLOB NOT NULL,    -- float32[dim], the robust centre
            kept        INTEGER NOT NULL, -- faces in it
            faces       INTEGER NOT NULL, -- embedded faces of the identity
            spread      REAL NOT NULL,    -- median distance of its kept faces to it
            far         REAL NOT NULL,    -- the least stranger limit of its faces
            score       REAL NOT NULL,    -- its worst flagged face (identity suspicion)
            -- its faces another centre could flag (look-alike candidates): ids (int64), how
            -- near another centre must be (float64), vectors (float16), for the refresh
            cand_faces  BLOB NOT NULL,
            cand_t      BLOB NOT NULL,
            cand_vec    BLOB NOT NULL
        );
        CREATE TABLE identity_centres_stale (identity_id INTEGER PRIMARY KEY);
        CREATE TRIGGER centres_stale_embedding_in AFTER INSERT ON face_embeddings BEGIN
            INSERT OR IGNORE INTO identity_centres_stale
                SELECT identity_id FROM faces WHERE id = NEW.face_id;
        END;
        CREATE TRIGGER centres_stale_embedding_up AFTER UPDATE ON face_embeddings BEGIN
            INSERT OR IGNORE INTO identity_centres_stale
                SELECT identity_id FROM faces WHERE id IN (NEW.face_id, OLD.face_id);
        END;
        CREATE TRIGGER centres_stale_embedding_out AFTER DELETE ON face_embeddings BEGIN
            INSERT OR IGNORE INTO identity_centres_stale
                SELECT identity_id FROM faces WHERE id = OLD.face_id;
        END;
        CREATE TRIGGER centres_stale_face_up AFTER UPDATE OF identity_id, label ON faces
        WHEN NEW.identity_id IS NOT OLD.identity_id OR NEW.label IS NOT OLD.label BEGIN
            INSERT OR IGNORE INTO identity_centres_stale VALUES (OLD.identity_id);
            INSERT OR IGNORE INTO identity_centres_stale VALUES (NEW.identity_id);
        END;
        CREATE TRIGGER centres_stale_face_out AFTER DELETE ON faces BEGIN
            INSERT OR IGNORE INTO identity_centres_stale VALUES (OLD.identity_id);
        END;
        """
    )


@migrations()
def m019_candidate_reach(db: Database) -> None:
    """How far each stored look-alike candidate face can reach (core/identity/identity_check.py):
    per candidate (in the order of ``identity_centres.cand_faces``) |face - its centre| + t and
    its t, and the largest reach per identity, so an incremental refresh reads and compares
    only the candidates a changed centre can come near (the triangle bound: |c - c_own| <
    reach). A project from before has none until its next full refresh; meanwhile every
    candidate is compared, as before."""
    db.executescript(
        """
        CREATE TABLE candidate_reach (
            identity_id INTEGER PRIMARY KEY
                        REFERENCES identity_centres(identity_id) ON DELETE CASCADE,
            reach       REAL NOT NULL,  -- the largest of cand_reach (0: no candidates)
            cand_reach  BLOB NOT NULL,  -- float32 per candidate: |face - centre| + t
            cand_t      BLOB NOT NULL   -- float32 per candidate: its t (rounded up)
        );
        """
    )
