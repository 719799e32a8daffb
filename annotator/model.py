"""The ground floor: records, locators, label names, errors shared by every layer.

Imports nothing of the project; every package may import it, it imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Label vocabulary. The order is the keyboard order (1..5) in the reviewer.
LABELS: tuple[str, ...] = ("correct", "wrong_identity", "duplicate", "unusable", "unsure")

# One colour per label (hex), the same everywhere: the reviewer's grid, dialogs and legends,
# and the charts of `annotator stats` / the dashboard.
LABEL_COLORS: dict[str, str] = {
    "correct": "#2e9e44",
    "wrong_identity": "#d62f2f",
    "duplicate": "#f08c00",
    "unusable": "#8a8a8a",
    "unsure": "#2f6fd6",
}
UNLABELED_COLOR = "#c8c8c8"

# How a label (a batch of the history) was made: its provenance. A batch records the channel it
# was written through (``batches.origin``: gui, cli, import + the file); "merge" (a reviewer
# package's batch, by package id) and "adjudication" (a QA adjudication) are read from the
# history itself; "unknown" is a batch written before provenance was recorded (m014).
ORIGIN_GUI, ORIGIN_CLI, ORIGIN_IMPORT = "gui", "cli", "import"
PROVENANCE: dict[str, str] = {
    "gui": "reviewed in the desktop reviewer",
    "cli": "labelled with an annotator command",
    "import": "imported from a label file",
    "merge": "merged from a reviewer package",
    "adjudication": "decided by a QA adjudication",
    "unknown": "made before annotator recorded how labels were made",
}
# The provenances in which a person judged each face one at a time (what the activity figures
# of `stats` count and what lets a datasheet say a human looked at a face).
HUMAN_PROVENANCE = frozenset({"gui", "adjudication"})

# Source formats understood by `annotator import`.
FORMATS: tuple[str, ...] = ("msceleb", "devset", "names", "rec", "folder")

# Labels that keep a face out of its identity's centre and out of the evidence of its person.
NOT_IN_CENTRE: tuple[str, ...] = ("wrong_identity", "unusable")
# Two face vectors (dlib's metric) this near are one photo stored twice, not two photos of a
# person: no evidence of who it is (the identity check's look-alike test, the inspector's).
COPY_VECTOR_DIST = 0.12

# Long work takes these two callbacks (DESIGN convention 4).
ProgressFn = Callable[[int, int], None]  # progress(done, total)
CancelledFn = Callable[[], bool]  # cancelled() -> True to stop


def no_progress(done: int, total: int) -> None:  # pragma: no cover - trivial
    """A progress callback that does nothing."""


def never_cancelled() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Locator:
    """Where a face's bytes live inside its source, for random access.

    * TSV sources: ``offset``/``length`` of the base64 FaceData field in the file.
    * RecordIO: ``offset`` of the record (its magic number) in the .rec and the
      ``length`` of the whole payload (IRHeader + labels + image).
    * Folders: ``relpath`` relative to the source root; ``length`` is the file's size and
      ``offset`` its mtime in ns at import, so a file changed later is noticed on reading.
    """

    offset: int | None = None
    length: int | None = None
    relpath: str | None = None


@dataclass(slots=True)
class FaceRecord:
    """One face as a format reader yields it. Pixels are not included."""

    identity_key: str
    locator: Locator
    record: int | None  # 1-based line (TSV) or 0-based record index (RecordIO); None for folders
    rank: int | None = None
    image_url: str | None = None
    page_url: str | None = None
    face_ref: str | None = None  # MS-Celeb "FaceID"
    rect: tuple[float, float, float, float] | None = None  # relative x0, y0, x1, y1
    names: dict[str, str] = field(default_factory=dict)  # lang -> display name (devset)


@dataclass(frozen=True, slots=True)
class NameRecord:
    """One entity name (Top1M_MidList.Name.tsv): a MID's display name in one language."""

    identity_key: str
    lang: str
    name: str
    record: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A bad row: reported with where it was and why, then skipped."""

    origin: str
    reason: str
    record: int | None = None


def origin_of(source_name: str, fmt: str, record: int | None, relpath: str | None) -> str:
    """The one origin string used everywhere a face is reported.

    ``faces.tsv:17`` for text sources (1-based line), ``train.rec#42`` for RecordIO
    records, and the relative path for folder sources.
    """
    if fmt == "folder":
        return relpath or "?"
    if fmt == "rec":
        return f"{source_name}#{record}"
    return f"{source_name}:{record}"


class AnnotatorError(Exception):
    """An error meant for the user: the CLI prints its message as one line and exits non-zero."""


MAX_REVIEWER_NAME = 200
# characters that make a name display as something else: bidi embeddings, overrides and
# isolates, line/paragraph separators, the BOM (a ZWNJ/ZWJ, used in Persian names, is fine)
_HIDING = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029\ufeff")


def check_reviewer(name: str) -> str:
    """A reviewer name as recorded with every label: surrounding blanks removed; a name that is
    empty or blank, holds a control character or is absurdly long is refused (one line)."""
    clean = name.strip()
    if not clean:
        raise AnnotatorError("the reviewer name is empty; give your name (e.g. --reviewer alice)")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in _HIDING for ch in clean):
        raise AnnotatorError("the reviewer name contains a control or direction character")
    if len(clean) > MAX_REVIEWER_NAME:
        raise AnnotatorError(f"the reviewer name is longer than {MAX_REVIEWER_NAME} characters")
    return clean


def label_problem(label: str, what: str = "") -> str | None:
    """Why ``label`` is not a label name (``None`` when it is one): the one wording of the
    "unknown label" error; ``what`` says where it came from (e.g. "for the other faces")."""
    if label in LABELS:
        return None
    where = f" {what}" if what else ""
    return f"unknown label {label!r}{where} (expected one of {', '.join(LABELS)})"


def check_label(label: str, what: str = "") -> None:
    """Raise :class:`AnnotatorError` when ``label`` is not a label name."""
    problem = label_problem(label, what)
    if problem is not None:
        raise AnnotatorError(problem)
