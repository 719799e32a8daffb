"""`export_dataset`: select the faces, write them in the chosen format into a temporary folder
beside ``out`` with the pairs, datasheet and manifest, log the export, swap it into place (the
log row first: an export killed after its swap is logged; one killed between the two is logged
once when its rerun lands the same bytes).

Output is deterministic: the same project and arguments give byte-identical files (stable
ordering, no timestamps, seeded pairs)."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from annotator import __version__, settings
from annotator.core.export import outdir
from annotator.core.export import pairs as pairs_mod
from annotator.core.export.datasheet import datasheet
from annotator.core.export.manifest import TOOL
from annotator.core.export.selection import ExportCancelled, select_faces
from annotator.core.export.sinks import EXPORT_FORMATS, SINKS, CsvSink
from annotator.core.infra.access import FaceBytes
from annotator.model import (
    AnnotatorError,
    CancelledFn,
    ProgressFn,
    never_cancelled,
    no_progress,
)
from annotator.store import export as store
from annotator.store import flags as flags_store
from annotator.store import labels as labels_store
from annotator.store.db import Project


@dataclass
class ExportResult:
    out: str
    format: str
    faces: int
    identities: int
    pairs: int
    excluded: dict[str, int]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 (not images)
    manifest_sha256: str = ""
    export_id: int = 0  # 0: not logged (a read-only project)
    image_files: int = 0  # one file per face (folder exports), listed in manifest.json only

    def to_json(self) -> dict[str, object]:
        return {
            "out": self.out,
            "format": self.format,
            "faces": self.faces,
            "identities": self.identities,
            "pairs": self.pairs,
            "excluded": self.excluded,
            "files": len(self.files) + self.image_files,
            "manifest_sha256": self.manifest_sha256,
            "export_id": self.export_id,
        }


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
    """Write the export (see the package docstring). Raises AnnotatorError on bad arguments or
    an output folder it must not write (:func:`outdir.check_out`)."""
    if fmt not in EXPORT_FORMATS:
        raise AnnotatorError(
            f"unknown export format {fmt!r} (expected one of {', '.join(EXPORT_FORMATS)})"
        )
    if min_faces < 1:
        raise AnnotatorError("--min-faces must be at least 1")
    if pairs < 0:
        raise AnnotatorError("--pairs must not be negative")
    if flags_store.flags_state(project) == "updating":
        raise AnnotatorError(
            "the duplicate groups are being rewritten by a scan (or a scan stopped while "
            "writing them): wait for the scan to finish, or run the scan again, then export"
        )
    outp = Path(out).expanduser().absolute()
    outdir.check_out(project, outp, force)
    outdir.remove_leftovers(outp)
    params: dict[str, object] = {
        "format": fmt,
        "require_qa": require_qa,
        "min_faces": min_faces,
        "pairs": pairs,
        "seed": seed,
    }
    tmp = outdir.temp_name(outp, "tmp")
    tmp.mkdir()
    writer: CsvSink | None = None
    try:
        writer = SINKS[fmt](tmp)
        sel = select_faces(project, require_qa, min_faces, progress, cancelled, sink=writer)
        if not len(sel):
            raise AnnotatorError(
                "nothing to export: no face passes the filters (label faces `correct` first)"
            )
        writer.finish()
        files = writer.files
        image_size = writer.image_size
        if cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
        if pairs:
            with FaceBytes(project) as fb:
                pairs_mod.write_pairs(tmp, sel, pairs, seed, fb, files)
        labels = store.label_counts(project)
        totals = store.project_totals(project)
        qa = store.qa_agreement(project)
        readme = datasheet(
            fmt,
            sel,
            params,
            labels,
            totals,
            store.source_formats(project),
            qa,
            pairs,
            image_size,
            labels_store.faces_by_provenance(project),
            labels_store.moves_by_provenance(project),
        ).encode("utf-8")
        (tmp / "README.md").write_bytes(readme)
        files["README.md"] = hashlib.sha256(readme).hexdigest()
        per_identity = {i.key: i.count for i in sel.idents}
        manifest = {
            "tool": TOOL,
            "version": __version__,
            "project_fingerprint": sel.fingerprint,
            "filters": params,
            "counts": {
                "faces": len(sel),
                "identities": len(per_identity),
                "pairs": {"genuine": pairs, "impostor": pairs},
                "per_identity": per_identity,
                "project_labels": labels,
                "project": totals,
            },
            "excluded": {"faces": sel.excluded, "identities": sel.excluded_identities},
            "reviewers": sel.reviewers,
            "provenance": [
                {"provenance": p, "detail": d, "faces": c} for (p, d), c in sel.provenance.items()
            ],
            "qa": {**qa, **(sel.qa or {})},
            "image_size": list(image_size) if image_size else None,
            "settings": settings.for_manifest(project),
        }
        msha = writer.write_manifest(manifest)
        if cancelled():
            raise ExportCancelled("export cancelled; nothing was written")
        # logged before the swap: killed between the two, the log names a folder that may
        # not hold this export (a takedown over-reports a copy), never the other way round
        eid, added = (  # a read-only project cannot keep the log: the export itself is whole
            (0, False)
            if project.read_only
            else store.record_export(
                project, fmt, str(outp), params, len(sel), len(per_identity), msha
            )
        )
        try:
            outdir.swap_in(tmp, outp)
        except BaseException:
            if added:
                store.forget_export(project, eid)
            raise
    except BaseException:
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files["manifest.json"] = msha
    return ExportResult(
        str(outp),
        fmt,
        len(sel),
        len(per_identity),
        pairs,
        sel.excluded,
        files,
        msha,
        eid,
        writer.image_files,
    )
