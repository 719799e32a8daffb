"""suspect_identity and the identity suspicion ranking at demo scale (issue 8 items 5-6).

Embedding the 8.4k decodable faces of a 400-person demo took 39 min with 1 worker (36 min with
2) on the shared (loaded) 2-core test machine, far too slow for the test run, so this bench
works on a project that is already demo'd, scanned and embedded:

    annotator demo /tmp/d400 --identities 400
    annotator scan -p /tmp/d400/demo.db
    annotator embed -p /tmp/d400/demo.db                  # --align template (the default)
    python3 tests/bench/bench_identity_quality.py /tmp/d400/demo.db /tmp/d400/truth.json

It recomputes the embeddings' flags with the current code (``identity_check.refresh``) on a
copy, then prints the measurement of tests/core/test_identity_quality.py (precision, strict
precision, recall, identity AUC) as JSON. With ``--complete-only`` a partly embedded project
is measured on the identities whose faces are all embedded (the others are left out of the
check and of the measurement), and the output says how many faces that is.

Figures go to docs/MEASUREMENTS.md. (The figures this docstring used to hold measured the
identity check before core/identity/rule.py; they no longer describe it.)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from annotator.core.identity import identity_check  # noqa: E402
from annotator.store.db import open_project  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "iq", Path(__file__).parent.parent / "core" / "test_identity_quality.py"
)
iq = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(iq)  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("project")
    ap.add_argument("truth")
    ap.add_argument("--complete-only", action="store_true")
    a = ap.parse_args()
    truth = json.loads(Path(a.truth).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "p.db"
        with open_project(a.project) as p:  # a consistent copy (WAL checkpointed by backup)
            import sqlite3

            dst = sqlite3.connect(db)
            p.conn.backup(dst)
            dst.close()
        with open_project(db) as p:
            if a.complete_only:
                # drop identities with an unembedded decodable face (and their faces)
                part = [
                    int(i)
                    for (i,) in p.conn.execute(
                        "SELECT DISTINCT f.identity_id FROM faces f JOIN face_hashes h "
                        "ON h.face_id = f.id LEFT JOIN face_embeddings e ON e.face_id = f.id "
                        "WHERE h.corrupt IS NULL AND e.face_id IS NULL"
                    )
                ]
                keys = (
                    {
                        k
                        for (k,) in p.conn.execute(
                            f"SELECT key FROM identities WHERE id IN ({','.join(map(str, part))})"
                        )
                    }
                    if part
                    else set()
                )
                with p.tx() as c:
                    c.execute(
                        f"DELETE FROM faces WHERE identity_id IN ({','.join(map(str, part))})"
                    ) if part else None
                    c.execute(
                        f"DELETE FROM identities WHERE id IN ({','.join(map(str, part))})"
                    ) if part else None
                lines = {ln for k in keys for ln in truth["identities"][k]["lines"]}
                truth["wrong_identity"] = [x for x in truth["wrong_identity"] if x not in lines]
                truth["true_identity"] = {
                    k: v for k, v in truth["true_identity"].items() if int(k) not in lines
                }
                for k in keys:
                    del truth["identities"][k]
            t0 = time.perf_counter()
            res = identity_check.refresh(p)
            secs = time.perf_counter() - t0
            m = iq.measure(p, truth)
    m["same_person_pairs"] = 0 if res is None else len(res.same_person)
    m["refresh_seconds"] = round(secs, 2)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in m.items()}))


if __name__ == "__main__":
    main()
