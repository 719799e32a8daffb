"""Export the verified faces as a clean test set: folder, msceleb TSV, InsightFace rec, or csv.

Selection (see :func:`select_faces`): a face is included when its current label is ``correct``,
it is not corrupt (scan) and its bytes are an image, it is the one kept of its duplicate group,
(with ``require_qa``) its identity passed QA, and its identity keeps at least ``min_faces`` faces
after these filters. Withdrawn identities are deleted from the project by a takedown, so they
cannot be exported. The identity is the face's current identity (after moves).

Duplicate groups: the face marked keeper by the scan is kept when it is labeled ``correct``;
otherwise (the reviewer chose another keeper, which makes the old one ``duplicate``) the
lowest-id ``correct`` face of the group is kept. A group never contributes two faces.

Output is deterministic: the same project and arguments give byte-identical files (stable
ordering, no timestamps, seeded pairs). Writing happens in a temporary folder beside ``out``
that is renamed into place at the end.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pickle
import random
import re
import shutil
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from annotator import __version__
from annotator.core.models import (
    AnnotatorError,
    CancelledFn,
    ProgressFn,
    never_cancelled,
    no_progress,
    origin_of,
)
from annotator.formats import image_kind
from annotator.store import export as store
from annotator.store.db import Project

EXPORT_FORMATS: tuple[str, ...] = ("folder", "msceleb", "rec", "csv")
EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp", "gif": ".gif"}
MAX_NAME_BYTES = 96
TSV_NAME = "faces.tsv"
REC_NAME = "train.rec"

_BAD_CHARS = frozenset('/\\:*?"<>|')
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in (*range(10), "¹", "²", "³")
}


class ExportCancelled(AnnotatorError):
    """The export was cancelled; nothing was written to the output folder."""


# -- file names -----------------------------------------------------------------------------


def safe_component(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """One safe path component: no separators, no '..', no control or whitespace characters,
    no leading dot, not a Windows device name, at most ``max_bytes`` UTF-8 bytes, never empty."""
    name = unicodedata.normalize("NFC", name)
    chars = []
    for ch in name:
        cat = unicodedata.category(ch)
        if ch in _BAD_CHARS or ch.isspace() or cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            chars.append("_")
        else:
            chars.append(ch)
    s = re.sub(r"\.{2,}", "_", "".join(chars))
    s = s.lstrip(".").rstrip(".")
    if s.split(".")[0].upper() in _RESERVED:
        s = "_" + s
    b = s.encode("utf-8")
    if len(b) > max_bytes:
        s = b[:max_bytes].decode("utf-8", "ignore").rstrip(".")
    return s or "_"


class Namer:
    """Unique names within one folder, compared case-insensitively (Windows/macOS file systems)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, stem: str, ext: str = "") -> str:
        base = safe_component(stem, MAX_NAME_BYTES - len(ext.encode()) - 8)
        name, n = base + ext, 1
        while name.casefold() in self._used:
            n += 1
            name = f"{base}~{n}{ext}"
        self._used.add(name.casefold())
        return name


# -- selection ------------------------------------------------------------------------------


@dataclass
class ExportFace:
    face_id: int
    identity_key: str
    origin: str
    data: bytes
    ext: str
    cand: store.Candidate
    sha256: str = ""
    file: str = ""  # path (or tsv:line / rec#key) in the export, for manifest.csv
    rel: str = ""  # folder-layout relative path (identity dir / name)


@dataclass
class Selection:
    faces: list[ExportFace]  # in identity-key order, then face id
    excluded: dict[str, int]  # reason -> faces
    excluded_identities: dict[str, int]  # reason -> identities
    reviewers: dict[str, int]  # reviewer -> included faces labeled by them
    qa: dict[str, object] | None = None

    @property
    def identities(self) -> dict[str, list[ExportFace]]:
        out: dict[str, list[ExportFace]] = {}
        for f in self.faces:
            out.setdefault(f.identity_key, []).append(f)
        return out


def _qa_status(project: Project) -> dict[int, bool]:
    import importlib

    try:
        qa = importlib.import_module("annotator.core.qa")  # H5a
    except ImportError:
        raise AnnotatorError(
            "--require-qa needs the QA module (annotator.core.qa), which is not installed"
        ) from None
    return {int(k): bool(v) for k, v in qa.identity_qa_status(project).items()}


def _image_size(face: ExportFace) -> tuple[int, int] | None:
    c = face.cand
    if c.width and c.height:
        return int(c.height), int(c.width)
    try:
        from PIL import Image

        with Image.open(io.BytesIO(face.data)) as im:  # reads the header only
            w, h = im.size
        return h, w
    except Exception:  # noqa: BLE001 - a size we cannot tell is just not counted
        return None


def select_faces(
    project: Project,
    require_qa: bool = False,
    min_faces: int = 1,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> Selection:
    """Apply the export filters and read the included faces' bytes (never re-encoded)."""
    from annotator.formats.access import FaceBytes

    excluded: Counter[str] = Counter()
    for lab, n in store.label_counts(project).items():
        if lab != "correct":
            excluded[f"label {lab}"] += n
    cands = store.correct_faces(project)
    # duplicate groups: one face per group
    by_group: dict[int, list[store.Candidate]] = {}
    for c in cands:
        if c.dup_group is not None:
            by_group.setdefault(c.dup_group, []).append(c)
    keep_of_group: dict[int, int] = {}
    for g, members in by_group.items():
        keepers = [m.face_id for m in members if m.is_keeper]
        keep_of_group[g] = min(keepers) if keepers else min(m.face_id for m in members)
    qa_status = _qa_status(project) if require_qa else None
    kept: list[store.Candidate] = []
    for c in cands:
        if c.corrupt is not None:
            excluded["corrupt"] += 1
        elif c.dup_group is not None and keep_of_group[c.dup_group] != c.face_id:
            excluded["duplicate (not the keeper of its group)"] += 1
        elif qa_status is not None and not qa_status.get(c.identity_id, False):
            excluded["identity did not pass QA"] += 1
        else:
            kept.append(c)
    faces: list[ExportFace] = []
    with FaceBytes(project) as fb:
        total = len(kept)
        for i in range(0, total, 256):
            if cancelled():
                raise ExportCancelled("export cancelled; nothing was written")
            chunk = kept[i : i + 256]
            for c, data in zip(chunk, fb.read_many([c.face_id for c in chunk]), strict=True):
                kind = image_kind(data[:16])
                if kind is None:
                    excluded["not an image"] += 1
                    continue
                origin = origin_of(Path(c.source_path).name, c.source_format, c.record, c.relpath)
                faces.append(
                    ExportFace(
                        c.face_id,
                        c.identity_key,
                        origin,
                        data,
                        EXTENSIONS[kind],
                        c,
                        hashlib.sha256(data).hexdigest(),
                    )
                )
            progress(min(i + 256, total), total)
    counts = Counter(f.identity_key for f in faces)
    small = {k for k, n in counts.items() if n < min_faces}
    excl_ident: Counter[str] = Counter()
    if small:
        excluded[f"identity with fewer than {min_faces} faces"] += sum(counts[k] for k in small)
        excl_ident[f"fewer than {min_faces} faces"] = len(small)
        faces = [f for f in faces if f.identity_key not in small]
    if qa_status is not None:
        failed = {c.identity_key for c in cands if not qa_status.get(c.identity_id, False)}
        if failed:
            excl_ident["did not pass QA"] = len(failed)
    reviewers = Counter(f.cand.reviewer or "?" for f in faces)
    sel = Selection(
        faces,
        dict(sorted(excluded.items())),
        dict(sorted(excl_ident.items())),
        dict(sorted(reviewers.items())),
    )
    if qa_status is not None:
        passed = sum(1 for v in qa_status.values() if v)
        sel.qa = {"identities_passed": passed, "identities_not_passed": len(qa_status) - passed}
    return sel


# -- pairs ------------------------------------------------------------------------------------

Pair = tuple[int, int, int, int]  # identity index a, face index a, identity index b, face index b


def make_pairs(sizes: list[int], n: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """``n`` distinct genuine and ``n`` distinct impostor pairs over identities of ``sizes`` faces."""
    rng = random.Random(seed)
    multi = [i for i, s in enumerate(sizes) if s >= 2]
    max_gen = sum(s * (s - 1) // 2 for s in sizes)
    tot = sum(sizes)
    max_imp = (tot * tot - sum(s * s for s in sizes)) // 2
    if n > max_gen:
        raise AnnotatorError(f"--pairs {n}: only {max_gen} genuine pairs are possible in this set")
    if n > max_imp:
        raise AnnotatorError(f"--pairs {n}: only {max_imp} impostor pairs are possible in this set")

    def gen() -> Pair:
        i = rng.choice(multi)
        a, b = sorted(rng.sample(range(sizes[i]), 2))
        return (i, a, i, b)

    def imp() -> Pair:
        i, j = sorted(rng.sample(range(len(sizes)), 2))
        return (i, rng.randrange(sizes[i]), j, rng.randrange(sizes[j]))

    def all_gen() -> list[Pair]:
        return [
            (i, a, i, b) for i in multi for a in range(sizes[i]) for b in range(a + 1, sizes[i])
        ]

    def all_imp() -> list[Pair]:
        k = len(sizes)
        return [
            (i, a, j, b)
            for i in range(k)
            for j in range(i + 1, k)
            for a in range(sizes[i])
            for b in range(sizes[j])
        ]

    def draw(fn, everything) -> list[Pair]:  # noqa: ANN001
        seen: set[Pair] = set()
        out: list[Pair] = []
        attempts = 0
        while len(out) < n and attempts < 20 * n + 100:
            attempts += 1
            p = fn()
            if p not in seen:
                seen.add(p)
                out.append(p)
        if len(out) < n:  # nearly every possible pair is wanted: draw from the rest
            rest = [p for p in everything() if p not in seen]
            rng.shuffle(rest)
            out += rest[: n - len(out)]
        return out

    genuine = draw(gen, all_gen) if n else []
    impostor = draw(imp, all_imp) if n else []
    return genuine, impostor


def pair_folds(n: int) -> int:
    """LFW layout: 10 folds when n is a multiple of 10, else one."""
    return 10 if n >= 10 and n % 10 == 0 else 1


def ordered_pairs(genuine: list[Pair], impostor: list[Pair]) -> list[tuple[Pair, bool]]:
    """LFW order: per fold, its genuine pairs then its impostor pairs."""
    n = len(genuine)
    folds = pair_folds(n) if n else 1
    per = n // folds if n else 0
    out: list[tuple[Pair, bool]] = []
    for k in range(folds):
        out += [(p, True) for p in genuine[k * per : (k + 1) * per]]
        out += [(p, False) for p in impostor[k * per : (k + 1) * per]]
    return out


# -- writing ------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    out: str
    format: str
    faces: int
    identities: int
    pairs: int
    excluded: dict[str, int]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    manifest_sha256: str = ""
    export_id: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "out": self.out,
            "format": self.format,
            "faces": self.faces,
            "identities": self.identities,
            "pairs": self.pairs,
            "excluded": self.excluded,
            "files": len(self.files),
            "manifest_sha256": self.manifest_sha256,
            "export_id": self.export_id,
        }


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _inside(root: Path, rel: str) -> Path:
    p = (root / rel).resolve()
    if not p.is_relative_to(root.resolve()):  # defence in depth: sanitising should prevent this
        raise AnnotatorError(f"refusing to write outside the export folder: {rel!r}")
    return p


def _assign_names(sel: Selection) -> dict[str, str]:
    """Folder-layout names: identity key -> directory, and ExportFace.rel for every face."""
    dirs = Namer()
    dirmap: dict[str, str] = {}
    for key, faces in sel.identities.items():
        d = dirmap[key] = dirs.take(key)
        files = Namer()
        for f in faces:
            c = f.cand
            if c.source_format == "folder" and c.relpath:
                stem = Path(c.relpath).stem
            elif c.rank is not None and c.face_ref:
                stem = f"{c.rank}-{c.face_ref}"
            else:
                stem = f.origin
            f.rel = f"{d}/{files.take(stem, f.ext)}"
    return dirmap


def _write_folder(tmp: Path, sel: Selection, progress: ProgressFn, cancelled: CancelledFn) -> None:
    total = len(sel.faces)
    made: set[str] = set()
    for i, f in enumerate(sel.faces, 1):
        if cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
        d, _sep, name = f.rel.partition("/")
        if d not in made:  # check each identity folder once (names are sanitised already)
            _inside(tmp, d).mkdir()
            made.add(d)
        with open(tmp / d / name, "xb") as fh:  # "x": never overwrite, never follow a link
            fh.write(f.data)
        f.file = f.rel
        if i % 256 == 0 or i == total:
            progress(i, total)


def _write_msceleb(tmp: Path, sel: Selection) -> None:
    from annotator.formats import msceleb

    with open(tmp / TSV_NAME, "wb") as fh:
        for line, f in enumerate(sel.faces, 1):
            c = f.cand
            # Faces from rec/folder sources have no URL or FaceID: the origin stands in for the
            # URL and "0" for the FaceID so every row has a unique (ImageURL, FaceID) key.
            url, ref = (c.image_url, c.face_ref) if c.image_url else (f.origin, c.face_ref or "0")
            msceleb.write_row(fh, f.identity_key, c.rank, url, c.page_url, ref, c.rect, f.data)
            f.file = f"{TSV_NAME}:{line}"


def _write_rec(tmp: Path, sel: Selection) -> tuple[int, int]:
    from annotator.formats.recordio import RecordWriter

    sizes = Counter(s for f in sel.faces if (s := _image_size(f)) is not None)
    size = max(sizes.items(), key=lambda kv: (kv[1], kv[0]))[0] if sizes else (112, 112)
    classes = {k: i for i, k in enumerate(sel.identities)}
    w = RecordWriter(tmp / REC_NAME, with_header=True, image_size=size)
    for key_no, f in enumerate(sel.faces, 1):  # faces are in class order already
        w.add(classes[f.identity_key], f.data)
        f.file = f"{REC_NAME}#{key_no}"
    w.close()
    with open(tmp / "identities.tsv", "w", encoding="utf-8", newline="\n") as fh:
        fh.write("class\tidentity\n")
        for k, i in classes.items():
            fh.write(f"{i}\t{k}\n")
    return size


def _write_manifest_csv(tmp: Path, sel: Selection) -> None:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["origin", "identity", "file", "sha256"])
    for f in sel.faces:
        w.writerow([f.origin, f.identity_key, f.file or f.rel, f.sha256])
    (tmp / "manifest.csv").write_bytes(buf.getvalue().encode("utf-8"))


def _write_pairs(
    tmp: Path, sel: Selection, dirmap: dict[str, str], n: int, seed: int
) -> list[tuple[Pair, bool]]:
    idents = list(sel.identities.items())
    genuine, impostor = make_pairs([len(fs) for _k, fs in idents], n, seed)
    pairs = ordered_pairs(genuine, impostor)
    folds = pair_folds(n)
    lines = [f"{folds}\t{n // folds}"]
    bins: list[bytes] = []
    issame: list[bool] = []
    for (i, a, j, b), same in pairs:
        ki, kj = idents[i][0], idents[j][0]
        if same:
            lines.append(f"{dirmap[ki]}\t{a + 1}\t{b + 1}")
        else:
            lines.append(f"{dirmap[ki]}\t{a + 1}\t{dirmap[kj]}\t{b + 1}")
        bins += [idents[i][1][a].data, idents[j][1][b].data]
        issame.append(same)
    (tmp / "pairs.txt").write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    (tmp / "pairs.bin").write_bytes(pickle.dumps((bins, issame), protocol=4))
    return pairs


def _fingerprint(sel: Selection) -> str:
    h = hashlib.sha256()
    for f in sel.faces:
        c = f.cand
        h.update(
            f"{f.face_id}\t{f.identity_key}\tcorrect\t{c.source_fingerprint}\t{f.sha256}\n".encode()
        )
    return h.hexdigest()


def _readme(
    fmt: str,
    sel: Selection,
    params: dict[str, object],
    labels: dict[str, int],
    totals: dict[str, int],
    sources: dict[str, int],
    qa: dict[str, object],
    npairs: int,
    image_size: tuple[int, int] | None,
) -> str:
    per = [len(v) for v in sel.identities.values()]
    n, k = len(sel.faces), len(per)
    L: list[str] = []
    add = L.append
    add("# Verified face-identity test set — datasheet\n")
    add("## What this is\n")
    add(
        f"{n} face images of {k} identities, exported by annotator {__version__} in the "
        f"`{fmt}` format. Every face was looked at by a human reviewer and labeled `correct` "
        "(it shows the identity it is filed under). Images are the original bytes of the source "
        "data set, never re-encoded.\n"
    )
    if per:
        add(
            f"Faces per identity: min {min(per)}, median {sorted(per)[len(per) // 2]}, max {max(per)}.\n"
        )
    add("## How it was made\n")
    src = ", ".join(f"{v} {fmt_} file(s)" for fmt_, v in sorted(sources.items())) or "none"
    add(
        f"- Sources imported into the project: {src}. The project held "
        f"{totals['faces']} faces of {totals['identities']} identities; "
        f"{totals['reviewed_identities']} identities were marked reviewed.\n"
        "- Near-duplicate and corrupt images were found by a perceptual-hash scan; reviewers "
        "labeled faces `correct`, `wrong_identity`, `duplicate`, `unusable` or `unsure`, and "
        "moved misfiled faces to their identity.\n"
        f"- Export filters: {json.dumps(params, sort_keys=True)}.\n"
    )
    add("## Label statistics (whole project)\n")
    add("| label | faces |\n|---|---|")
    for lab, c in sorted(labels.items()):
        add(f"| {lab} | {c} |")
    add("")
    if sel.reviewers:
        add("Included faces by the reviewer who gave their label:\n")
        add("| reviewer | faces |\n|---|---|")
        for r, c in sel.reviewers.items():
            add(f"| {r} | {c} |")
        add("")
    add("## Quality assurance\n")
    if qa.get("items"):
        agreed, judged = int(qa.get("agreed", 0)), int(qa.get("judged", 0))  # type: ignore[call-overload]
        pct = f"{100 * agreed / judged:.1f}%" if judged else "n/a"
        add(
            f"A second reviewer re-labeled a blind sample of {qa['items']} faces; {judged} were "
            f"judged, {agreed} agreed with the original label ({pct}); "
            f"{qa.get('adjudicated', 0)} disagreements were adjudicated.\n"
        )
    else:
        add("No QA pass was run on this project.\n")
    if sel.qa:
        add(
            f"Identities that passed QA: {sel.qa['identities_passed']}; not passed: "
            f"{sel.qa['identities_not_passed']}.\n"
        )
    add("## What was excluded and why (counts only)\n")
    add("| reason | faces |\n|---|---|")
    for r, c in sel.excluded.items():
        add(f"| {r} | {c} |")
    add("")
    for r, c in sel.excluded_identities.items():
        add(f"- identities left out ({r}): {c}")
    add(
        f"- identities withdrawn at their request (privacy takedown): {totals['withdrawn_identities']}\n"
    )
    add("## Files\n")
    if fmt == "folder":
        add("- `<identity>/<name>.<ext>`: one folder per identity (names made file-system safe).")
    elif fmt == "msceleb":
        add(
            f"- `{TSV_NAME}`: MS-Celeb-1M aligned format, 7 tab-separated columns "
            "(MID, rank, ImageURL, PageURL, FaceID, FaceRectangle, base64 FaceData)."
        )
    elif fmt == "rec":
        h, w = image_size or (112, 112)
        add(
            f"- `{REC_NAME}`, `train.idx`, `property`: InsightFace RecordIO (header record 0, "
            "image records, one range record per identity); `property` says "
            f"`{k},{h},{w}`.\n- `identities.tsv`: class index -> identity key."
        )
    else:
        add("- Only the manifest: no images are copied.")
    add(
        "- `manifest.csv`: origin, identity, file, sha256 of every face (for `csv`, `file` is the "
        "path the face would have in a `folder` export)."
    )
    if npairs:
        add(
            f"- `pairs.txt` (LFW layout: `folds<TAB>pairs per fold`, then per fold the genuine "
            f"pairs `name n1 n2` and impostor pairs `name1 n1 name2 n2`; n is the 1-based position "
            f"of the face within its identity in `manifest.csv`) and `pairs.bin` (InsightFace "
            f"verification pickle (list of image bytes, list of is-same)); {npairs} genuine and "
            f"{npairs} impostor pairs."
        )
    add(
        "- `manifest.json`: tool version, project fingerprint, filters, counts, SHA-256 of every file.\n"
    )
    add("## Known limitations\n")
    add(
        "- Labels are human judgements from face crops; look-alikes and very young/old photos "
        "of the same person can be mislabeled. QA figures above estimate how often.\n"
        "- Faces never scanned are only excluded as corrupt if their bytes are not an image.\n"
        "- Only faces of identities present in the source are included; the set inherits the "
        "demographic skew of the web-scraped source and should not be read as representative.\n"
        "- Identity keys are the source's keys (e.g. Freebase MIDs); no names are included."
    )
    return "\n".join(L) + "\n"


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise AnnotatorError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise AnnotatorError(f"{out} is not empty (use --force to replace it)")
    if not out.parent.is_dir():
        raise AnnotatorError(f"folder {out.parent} does not exist")


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished temp folder to ``out``; an old ``out`` is renamed aside, then deleted."""
    old = None
    if out.exists():
        if any(out.iterdir()):
            old = out.with_name(f".{out.name}.old-{os.getpid()}-{os.urandom(4).hex()}")
            os.rename(out, old)
        else:
            out.rmdir()
    try:
        os.rename(tmp, out)
    except OSError:
        if old is not None:
            os.rename(old, out)  # put the previous export back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_dataset(
    project: Project,
    out: str | os.PathLike[str],
    fmt: str,
    *,
    require_qa: bool = False,
    min_faces: int = 1,
    pairs: int = 0,
    seed: int = 0,
    force: bool = False,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> ExportResult:
    """Write the export; see the module docstring. Raises AnnotatorError on bad arguments."""
    if fmt not in EXPORT_FORMATS:
        raise AnnotatorError(
            f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})"
        )
    if min_faces < 1:
        raise AnnotatorError("--min-faces must be at least 1")
    if pairs < 0:
        raise AnnotatorError("--pairs must not be negative")
    outp = Path(out).expanduser().absolute()
    _prepare_out(outp, force)
    sel = select_faces(project, require_qa, min_faces, progress, cancelled)
    if not sel.faces:
        raise AnnotatorError(
            "nothing to export: no face passes the filters (label faces `correct` first)"
        )
    params: dict[str, object] = {
        "format": fmt,
        "require_qa": require_qa,
        "min_faces": min_faces,
        "pairs": pairs,
        "seed": seed,
    }
    tmp = outp.with_name(f".{outp.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    tmp.mkdir()
    try:
        dirmap = _assign_names(sel)
        image_size = None
        if fmt == "folder":
            _write_folder(tmp, sel, progress, cancelled)
        elif fmt == "msceleb":
            _write_msceleb(tmp, sel)
        elif fmt == "rec":
            image_size = _write_rec(tmp, sel)
        if cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
        _write_manifest_csv(tmp, sel)
        if pairs:
            _write_pairs(tmp, sel, dirmap, pairs, seed)
        labels = store.label_counts(project)
        totals = store.project_totals(project)
        qa = store.qa_agreement(project)
        readme = _readme(
            fmt, sel, params, labels, totals, store.source_formats(project), qa, pairs, image_size
        )
        (tmp / "README.md").write_bytes(readme.encode("utf-8"))
        known = {f.file: f.sha256 for f in sel.faces} if fmt == "folder" else {}
        files = {}
        for p in sorted(tmp.rglob("*"), key=lambda q: q.relative_to(tmp).as_posix()):
            rel = p.relative_to(tmp).as_posix()
            if rel in known:
                files[rel] = known[rel]  # image bytes hashed when read
            elif p.is_file():
                files[rel] = _sha(p)
        per_identity = {k: len(v) for k, v in sel.identities.items()}
        manifest = {
            "tool": "annotator",
            "version": __version__,
            "project_fingerprint": _fingerprint(sel),
            "filters": params,
            "counts": {
                "faces": len(sel.faces),
                "identities": len(per_identity),
                "pairs": {"genuine": pairs, "impostor": pairs},
                "per_identity": per_identity,
                "project_labels": labels,
                "project": totals,
            },
            "excluded": {"faces": sel.excluded, "identities": sel.excluded_identities},
            "reviewers": sel.reviewers,
            "qa": {**qa, **(sel.qa or {})},
            "image_size": list(image_size) if image_size else None,
            "files": files,
        }
        mbytes = (
            json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        ).encode()
        (tmp / "manifest.json").write_bytes(mbytes)
        if cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
        _swap_in(tmp, outp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    msha = hashlib.sha256(mbytes).hexdigest()
    files["manifest.json"] = msha
    eid = store.record_export(
        project, fmt, str(outp), params, len(sel.faces), len(per_identity), msha
    )
    return ExportResult(
        str(outp), fmt, len(sel.faces), len(per_identity), pairs, sel.excluded, files, msha, eid
    )
