"""Project settings: every threshold of the flag rules and the identity check, with its default,
its bounds and its meaning, set per project (``annotator config``).

Values live in the project's ``meta`` table (``setting:<key>``; a key not set there has its
default). The modules that use a threshold read it from a :class:`Values` (``values.tiny_px``)
that the scan or embed run loads once; each run records the values it used
(``settings_used:scan`` / ``settings_used:embed``) and an export manifest copies them, so a
flag or an exported set can always say which values made it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from annotator.model import AnnotatorError
from annotator.store.db import Project

SCAN, EMBED = "scan", "embed"  # the steps that use settings (and record what they used)
KEEPER = "keeper"  # read each time a keeper is proposed (nothing to run again, nothing recorded)
STEPS = {SCAN: "scan", EMBED: "scan, embed", KEEPER: "keeper"}  # what uses a setting of that step
RERUN = {
    SCAN: "annotator scan -p {project}  (recomputes the flags; no image is hashed again)",
    EMBED: "annotator scan -p {project}  (or the end of the next `annotator embed`)",
    KEEPER: "nothing to run: the G dialog, `flags --json` and an export propose keepers with it",
}


@dataclass(frozen=True)
class Setting:
    key: str
    default: int | float
    low: float
    high: float
    step: str  # the step that uses it: changing it asks for that step again
    meaning: str

    @property
    def kind(self) -> type:
        return int if isinstance(self.default, int) else float


SETTINGS: tuple[Setting, ...] = (
    Setting("radius", 8, 0, 32, SCAN, "near-copy candidates: pHash distance in bits at most"),
    Setting("dhash_max", 10, 0, 64, SCAN, "near copy: dHash distance in bits at most"),
    Setting("ssim_min", 0.96, -1.0, 1.0, SCAN, "near copy: SSIM of 16x16 gray thumbnails at least"),
    Setting(
        "colour_max", 0.075, 0.0, 1.0, SCAN,
        "near copy: brightness-normalised 8x8 colour distance at most",
    ),
    Setting(
        "crop_radius", 8, 0, 32, SCAN,
        "cropped-copy candidates: pHash distance to another face's crop pHash at most",
    ),
    Setting(
        "crop_thumb_ssim_min", 0.94, -1.0, 1.0, SCAN,
        "cropped copy: blurred SSIM of the registered 16x16 thumbnails at least",
    ),
    Setting(
        "crop_photo_ssim_min", 0.91, -1.0, 1.0, SCAN,
        "cropped copy: SSIM of the photos' middles at 64 px, registered, at least",
    ),
    Setting("tiny_px", 48, 1, 1 << 16, SCAN, "`tiny` flag: smaller side in pixels below"),
    Setting(
        "blurry_sharpness", 60.0, 0.0, 1e9, SCAN, "`blurry` flag: sharpness (Laplacian) below"
    ),
    Setting(
        "outlier_z", 3.0, 0.0, 1e3, SCAN,
        "`outlier` flag: robust z of the pHash distance to the identity's majority at least",
    ),
    Setting(
        "outlier_min_faces", 5, 2, 1 << 31, SCAN,
        "`outlier` flag: only identities with at least this many decodable faces",
    ),
    Setting(
        "suspect_margin", 0.15, 0.0, 100.0, EMBED,
        "`suspect_identity` look-alike: nearer another identity's centre by more than this x "
        "the identity's spread",
    ),
    Setting(
        "same_person_ratio", 1.4, 0.0, 100.0, EMBED,
        "probably the same person: centres closer than this x two samples of one person",
    ),
    Setting(
        "keeper_margin", 0.1, 0.0, 10.0, KEEPER,
        "keeper of copies under several identities: the nearest identity centre nearer the "
        "photo than the next by at least this",
    ),
    Setting(
        "keeper_same_person", 0.6, 0.0, 10.0, KEEPER,
        "keeper of copies under several identities: the nearest centre within this of the "
        "photo (dlib: one person < 0.6)",
    ),
    Setting(
        "keeper_min_faces", 1, 1, 1 << 31, KEEPER,
        "keeper of copies under several identities: other embedded faces an identity needs "
        "for a centre (1: its one other photo is compared with the copy)",
    ),
)  # fmt: skip
BY_KEY = {s.key: s for s in SETTINGS}
META = "setting:"
USED = "settings_used:"


class Values(Mapping[str, "int | float"]):
    """The values in force: ``values.tiny_px`` or ``values["tiny_px"]``."""

    def __init__(self, values: Mapping[str, int | float] | None = None) -> None:
        self._v = {s.key: s.default for s in SETTINGS} | dict(values or {})

    def __getattr__(self, key: str):
        try:
            return self.__dict__["_v"][key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key: str) -> int | float:
        return self._v[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._v)

    def __len__(self) -> int:
        return len(self._v)

    def __repr__(self) -> str:
        return f"Values({self._v!r})"

    def of(self, step: str) -> dict[str, int | float]:
        return {s.key: self._v[s.key] for s in SETTINGS if s.step == step}


DEFAULTS = Values()


def setting(key: str) -> Setting:
    s = BY_KEY.get(key)
    if s is None:
        raise AnnotatorError(f"unknown setting {key!r} (one of: {', '.join(BY_KEY)})")
    return s


def parse(key: str, text: str) -> int | float:
    """``text`` as the value of ``key``; a bad value is one line naming the key and the range."""
    s = setting(key)
    try:
        v = s.kind(text.strip())
    except ValueError:
        raise AnnotatorError(
            f"{key}: {text!r} is not {'an integer' if s.kind is int else 'a number'}"
        ) from None
    if isinstance(v, float) and not math.isfinite(v):
        raise AnnotatorError(f"{key}: {text!r} is not a finite number")
    if not s.low <= v <= s.high:
        raise AnnotatorError(f"{key}: {v} is outside {s.kind(s.low)}..{s.kind(s.high)}")
    return v


def load(project: Project) -> Values:
    """The project's values (the default where it sets none; a stored value that no longer
    parses — written by hand — is refused with one line)."""
    got: dict[str, int | float] = {}
    for s in SETTINGS:
        text = project.meta(META + s.key)
        if text is not None:
            got[s.key] = parse(s.key, text)
    return Values(got)


def set_value(project: Project, key: str, text: str | None) -> tuple[int | float, int | float]:
    """Set ``key`` to ``text`` (None: back to its default); returns (old, new)."""
    s = setting(key)
    new = s.default if text is None else parse(key, text)
    old = load(project)[key]
    if text is None:
        project.delete_meta(META + key)
    else:
        project.set_meta(META + key, repr(new))
    return old, new


def record(project: Project, step: str, values: Mapping[str, int | float]) -> None:
    """What a ``step`` run used (kept until the next run of that step), with its time."""
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    project.set_meta(USED + step, json.dumps({"at": at, "values": dict(values)}, sort_keys=True))


def used(project: Project) -> dict[str, dict | None]:
    """Each step's last run: {"at": UTC time, "values": what it used}, or None when it has not
    run since settings were recorded."""
    out: dict[str, dict | None] = {}
    for step in (SCAN, EMBED):
        text = project.meta(USED + step)
        out[step] = json.loads(text) if text else None
    return out


def stale(project: Project, values: Values | None = None) -> dict[str, int | float]:
    """Settings whose value differs from what the project's flags were made with: key -> the
    value the last run used. An identity-check value counts as used by the later of the last
    scan and the last embed."""
    values = values or load(project)
    last = used(project)
    if last[SCAN] is None and project.meta("flags_state") is not None:
        last[SCAN] = {"at": "", "values": dict(DEFAULTS)}  # a scan made before settings were
    out: dict[str, int | float] = {}
    for s in SETTINGS:
        if s.step == KEEPER:  # read when a keeper is proposed: never out of date
            continue
        runs = [r for r in (last[SCAN], last[EMBED]) if r and s.key in r["values"]]
        if s.step == SCAN:
            runs = [r for r in runs if r is last[SCAN]]
        if runs:
            made = max(runs, key=lambda r: r["at"])["values"][s.key]
            if made != values[s.key]:
                out[s.key] = made
    return out


def for_manifest(project: Project) -> dict[str, object]:
    """What an export records: the values that made the flags it relies on (the last scan's,
    the last embed's identity check) and the project's values now."""
    last = used(project)
    return {
        "scan": last[SCAN]["values"] if last[SCAN] else None,
        "embed": last[EMBED]["values"] if last[EMBED] else None,
        "project": dict(load(project)),
    }


def rerun_hint(key: str, project_path: object) -> str:
    return RERUN[setting(key).step].format(project=project_path)
