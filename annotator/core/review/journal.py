"""The window's journal of queued labels: what a reviewer labelled while another process held
the project's write lock, kept in a file beside the project until it lands, and replayed by the
next window that opens the project — so a SIGTERM (or a crash) while labels wait loses nothing.

One JSON object a line, appended and flushed to disk as each label is queued: ``{"seq", "faces",
"label", "reviewer"}``; ``{"done": seq}`` once that write landed or was refused. Only face ids,
label names and the reviewer's name are written — nothing of the people in the data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from annotator.core.review import ops
from annotator.model import LABELS, AnnotatorError
from annotator.store import labels as labels_store
from annotator.store.db import Project


def journal_path(project_path: str | os.PathLike[str]) -> Path:
    p = Path(project_path)
    return p.with_name(p.name + ".journal")


class Journal:
    """Append-only record of queued label writes for one project file."""

    def __init__(self, project_path: str | os.PathLike[str]):
        self.path = journal_path(project_path)

    def _append(self, obj: dict[str, object]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(obj, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def add(self, seq: int, faces: list[int], label: str | None, reviewer: str) -> None:
        self._append(
            {"seq": seq, "faces": [int(x) for x in faces], "label": label, "reviewer": reviewer}
        )

    def done(self, seq: int) -> None:
        if self.path.exists():
            self._append({"done": seq})

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def waiting(self) -> list[dict[str, object]]:
        """The queued labels that never landed, in the order they were given. A damaged line (a
        write cut off by a kill) is skipped: it was never flushed whole, so never promised."""
        if not self.path.exists():
            return []
        entries: dict[int, dict[str, object]] = {}
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(obj, dict):
                    continue
                if isinstance(obj.get("done"), int):
                    entries.pop(obj["done"], None)
                elif _valid(obj):
                    entries[int(obj["seq"])] = obj
        return [entries[k] for k in sorted(entries)]


def _valid(obj: dict[str, object]) -> bool:
    faces = obj.get("faces")
    return (
        isinstance(obj.get("seq"), int)
        and isinstance(faces, list)
        and all(isinstance(f, int) and not isinstance(f, bool) for f in faces)
        and (obj.get("label") is None or obj.get("label") in LABELS)
        and isinstance(obj.get("reviewer"), str)
    )


@dataclass
class Replayed:
    labels: int = 0  # queued label actions written now
    faces: int = 0
    skipped: int = 0  # actions that could not be applied (e.g. faces taken down since)


def replay(project: Project) -> Replayed:
    """Write the journal's waiting labels into ``project`` (one undo step each, in order), then
    remove the journal. Faces no longer in the project are left out. A busy write lock
    propagates (sqlite3.OperationalError) and the journal stays for the next try."""
    j = Journal(project.path)
    out = Replayed()
    for e in j.waiting():
        faces = [int(f) for f in e["faces"]]  # type: ignore[union-attr]
        present = labels_store.face_states(project, faces)
        faces = [f for f in faces if f in present]  # taken down since: nothing to label
        if not faces:
            out.skipped += 1
            continue
        try:
            ch = ops.label_faces(project, faces, e["label"], str(e["reviewer"]))  # type: ignore[arg-type]
        except AnnotatorError:
            out.skipped += 1
            continue
        out.labels += 1
        out.faces += len(ch.labels)
    j.clear()
    return out
