"""store.faces: bulk inserts, idempotent inserts, counters, locations, summary."""

from annotator.model import Rejected
from annotator.store import faces as store
from annotator.store.db import open_project


def test_sources_identities_faces(tmp_path):
    with open_project(tmp_path / "p.db", create=True) as pr:
        src = store.add_source(pr, "/data/f.tsv", "msceleb", 100, 1.5, "abc")
        assert store.get_source(pr, "/data/f.tsv", "msceleb") == src
        assert not src.complete and src.resume_pos == 0
        with pr.tx():
            ids = store.create_identities(pr, ["m.1", "m.2"])
            again = store.create_identities(pr, ["m.1"])
            assert again == {"m.1": ids["m.1"]}
            rows = [
                (ids["m.1"], src.id, 1, None, 10, 20, 1, "u", "p", "F1", 0.1, 0.2, 0.3, 0.4),
                (ids["m.1"], src.id, 2, None, 40, 20, 2, None, None, None, None, None, None, None),
                (
                    ids["m.2"],
                    src.id,
                    3,
                    None,
                    70,
                    20,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                ),
            ]
            assert store.insert_faces(pr, rows) == 3
            assert store.insert_faces(pr, rows[:2]) == 0  # same source+record: ignored
            store.refresh_face_counts(pr, ids.values())
            assert (
                store.insert_names(pr, [(ids["m.1"], "en", "One"), (ids["m.1"], "en", "Uno")]) == 1
            )
            store.insert_rejected(pr, src.id, [Rejected("f.tsv:4", "bad", 4)])
            store.insert_rejected(pr, src.id, [Rejected("f.tsv:4", "bad", 4)])
            store.set_resume(pr, src.id, 90, 4, True)
        assert store.identity_ids(pr) == ids
        assert store.source_face_count(pr, src.id) == 3
        assert store.rejected_of_source(pr, src.id) == [Rejected("f.tsv:4", "bad", 4)]
        s2 = store.source_by_id(pr, src.id)
        assert s2.complete and (s2.resume_pos, s2.resume_record) == (90, 4)
        face_ids = [r[0] for r in pr.conn.execute("SELECT id FROM faces ORDER BY id")]
        locs = store.face_locations(pr, face_ids + [999])
        assert set(locs) == set(face_ids)
        assert (locs[face_ids[0]].offset, locs[face_ids[0]].length, locs[face_ids[0]].record) == (
            10,
            20,
            1,
        )
        s = store.summary(pr)
        assert (s["sources"], s["identities"], s["faces"], s["rejected"]) == (1, 2, 3, 1)
        assert s["labels"] == {} and s["flags"] == {} and s["hashed"] == 0
        listing = list(store.identities(pr))
        assert [(i.key, i.face_count, i.names) for i in listing] == [
            ("m.1", 2, {"en": "One"}),
            ("m.2", 1, {}),
        ]
        assert store.source_summaries(pr)[0]["faces"] == 3


def test_runs(tmp_path):
    with open_project(tmp_path / "p.db", create=True) as pr:
        src = store.add_source(pr, "/x", "names", 1, 1.0, "f")
        run = store.start_run(pr, src.id)
        store.finish_run(pr, run, "done", 5, 1, 2)
        assert store.source_run_imported(pr, src.id) == 5
        row = pr.conn.execute(
            "SELECT status, imported, skipped, rejected, finished_at IS NOT NULL FROM import_runs"
        ).fetchone()
        assert row == ("done", 5, 1, 2, 1)
