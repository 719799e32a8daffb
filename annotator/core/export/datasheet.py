"""README.md of an export: a datasheet for the test set (what it is, how it was made, label
and QA figures, exclusions as counts, the files and their layout, known limitations)."""

from __future__ import annotations

import json

from annotator import __version__
from annotator.core.export.selection import Selection
from annotator.core.export.sinks import CLASSES_NAME, REC_NAME, TSV_NAME


def datasheet(
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
    """README.md: what the set is, how it was made, label and QA figures, what was left out
    and why (counts only), the files, known limitations."""
    per = [i.count for i in sel.idents]
    n, k = len(sel), len(per)
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
        why = sel.qa.get("not_passed_why") or {}
        detail = "; ".join(f"{r}: {c}" for r, c in why.items())  # type: ignore[union-attr]
        add(
            "Only identities that passed QA are included (every sampled face of the identity "
            "agreed with its label, or the disagreement was adjudicated). Included: "
            f"{sel.qa['identities_passed']}; left out: {sel.qa['identities_not_passed']}"
            + (f" ({detail})" if detail else "")
            + ".\n"
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
    add("## Withdrawal policy\n")
    add(
        "People withdrawn from the project before this export: "
        f"{totals['withdrawn_identities']} (a count only; the project keeps salted digests of "
        "their keys, names and photos, never the plain values, so that no later import, merge or package brings them back). "
        "A person in this set can ask to be removed: write to whoever published this set, "
        "naming the identity key or name; they run `annotator takedown KEY` (or `--from` a "
        "list of requests) on the project, which removes the person and every copy of their "
        "photos it can find, lists the packages and earlier exports that still hold them, and "
        "re-export this set without them.\n"
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
            f"`{k},{h},{w}`.\n- `{CLASSES_NAME}`: class index -> identity key, one class a line "
            "(in a key, a backslash is written `\\\\`, tab `\\t`, newline `\\n`, carriage return "
            "`\\r`, any other control character or line separator `\\xHH` or `\\uHHHH`)."
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
