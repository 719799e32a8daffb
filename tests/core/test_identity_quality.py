"""How well the face embeddings find the demo's faces of another person (issue 8, goals of
items 5 and 6): ``annotator demo`` -> scan -> ``embed`` on a small demo, measured against
truth.json. The same measurement at >= 8k faces is tests/bench/bench_identity_quality.py (too
slow for the default run: ~100 ms of dlib per face per core).

Measured (see :func:`measure`):

* precision of ``suspect_identity``: flagged faces that are another person's face (a
  ``wrong_identity`` face, or a cross-identity copy of another identity's photo — truth.json's
  ``true_identity``), over all flagged faces; ``strict_precision`` leaves the cross-identity
  copies out altogether (they are the cross_identity_dup flag's to find) and counts only
  ``wrong_identity`` faces as right;
* recall: flagged ``wrong_identity`` faces over all of them;
* AUC of the identity suspicion ranking for "the identity holds another person's face".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from annotator.core.identity import embed as E
from annotator.core.importer import import_source
from annotator.core.scan import scan
from annotator.demo.dataset import generate_demo
from annotator.store.db import Project, open_project


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a positive outranks a negative (ties count half)."""
    s = np.asarray(score, float)
    y = np.asarray(positive, bool)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return float("nan")
    gt = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
    return float(gt / (len(pos) * len(neg)))


def measure(p: Project, truth: dict) -> dict[str, float]:
    """Precision, strict precision and recall of suspect_identity, identity ranking AUC."""
    other = {int(k) for k in truth["true_identity"]}
    wrong = set(truth["wrong_identity"])
    flagged = {
        int(r)
        for (r,) in p.conn.execute(
            "SELECT f.record FROM flags fl JOIN flag_faces ff ON ff.flag_id = fl.id "
            "JOIN faces f ON f.id = ff.face_id WHERE fl.kind = 'suspect_identity'"
        )
    }
    tp = len(flagged & other)
    strict = flagged - (other - wrong)
    holders = {k for k, v in truth["identities"].items() if set(v["lines"]) & other}
    rows = p.conn.execute("SELECT key, suspicion FROM identities").fetchall()
    return {
        "faces": p.conn.execute("SELECT count(*) FROM face_embeddings").fetchone()[0],
        "identities": len(rows),
        "wrong": len(wrong),
        "flags": len(flagged),
        "precision": tp / max(len(flagged), 1),
        "strict_precision": len(strict & wrong) / max(len(strict), 1),
        "recall": len(flagged & wrong) / max(len(wrong), 1),
        "recall_other": tp / max(len(other), 1),
        "auc": auc(np.array([s for _k, s in rows]), np.array([k in holders for k, _s in rows])),
    }


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> tuple[Path, dict, str]:
    """A demo of 12 invented people (~250 faces), scanned and embedded with the default
    alignment (``template``): (project, truth, model id)."""
    d = tmp_path_factory.mktemp("quality")
    r = generate_demo(d, identities=12, seed=1)
    with open_project(d / "p.db", create=True) as p:
        import_source(p, "msceleb", r.faces_tsv)
        scan(p, workers=2)
        res = E.embed(p, workers=2)
        assert res.embedded > 200 and not res.cancelled
        assert res.align == E.DEFAULT_ALIGN and res.note == ""
    return d / "p.db", json.loads(Path(r.truth_json).read_text()), res.model


def test_suspect_identity_finds_the_wrong_faces(small_demo) -> None:
    db, truth, _model = small_demo
    with open_project(db) as p:
        m = measure(p, truth)
    print(m)
    # the rule of core/identity/rule.py on these drawn faces (template alignment): 17 flags,
    # recall 1.0 (7 of 7), precision 0.76 (strict 0.64), AUC 1.0 — drawn people lie far
    # closer together in dlib's space than real ones (their other-person faces sit 0.28-0.45
    # from the centre), which is why the look-alike rule is relative to the identity's spread
    assert m["wrong"] >= 5
    assert m["recall"] >= 0.8 and m["precision"] >= 0.6  # the goal
    assert m["auc"] >= 0.9  # the goal (12 people, 9 holding another's face)


def test_one_person_under_two_keys_is_suggested(small_demo) -> None:
    """Each person split into two random halves (two keys) is suggested as one person; the
    demo itself (distinct people) gives no suggestion."""
    from annotator.core.identity import identity_check as ic
    from annotator.core.identity import rule
    from annotator.store import embeddings as emb

    db, _truth, model = small_demo
    with open_project(db) as p:
        face, ident, vec = emb.load_embeddings(p, model)
    assert ic.check(face, ident, vec).same_person == []
    rng = np.random.default_rng(0)
    found = tried = 0
    for g in np.unique(ident).tolist():
        idx = np.flatnonzero(ident == g)
        if len(idx) < 2 * rule.MIN_FACES:
            continue
        split = ident.copy()
        split[rng.permutation(idx)[: len(idx) // 2]] = -1
        pairs = {(a, b) for a, b, _d in ic.check(face, split, vec).same_person}
        found += (-1, g) in pairs
        tried += 1
    assert tried >= 8 and found >= 0.7 * tried
