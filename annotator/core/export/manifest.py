"""The export's own files: ``manifest.csv`` (origin, identity, file, sha256 of every face) and
``manifest.json`` (tool, version, filters, counts, SHA-256 of every file), written as the
faces arrive so nothing per face stays in memory; and how an earlier export is recognised."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from annotator.core.export.selection import ExportFace

MANIFEST = "manifest.json"
FILE_LIST = ".manifest-files.part"  # image entries of manifest.json, written as they come
TOOL = "annotator"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class HashingFile:
    """A new file written through a buffer, hashed while written (no re-read)."""

    def __init__(self, path: Path):
        self._fh = open(path, "xb", buffering=1 << 18)  # noqa: SIM115 - closed by close()
        self._h = hashlib.sha256()

    def write(self, b: bytes) -> int:
        self._h.update(b)
        return self._fh.write(b)

    def close(self) -> str:
        if not self._fh.closed:
            self._fh.close()
        return self._h.hexdigest()


class ManifestWriter:
    """``manifest.csv`` rows as identities arrive; the per-image entries of folder exports go to
    :data:`FILE_LIST` (manifest.json text) and ``files`` (relative path -> sha256) holds the
    other files, until :meth:`write_json` puts them together."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.files: dict[str, str] = {}
        self.image_files = 0
        self._list: HashingFile | None = None
        self._csv = HashingFile(tmp / "manifest.csv")
        self._csv.write(b"origin,identity,file,sha256\n")

    def add_faces(self, faces: list[tuple[ExportFace, bytes]]) -> None:
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        for f, _b in faces:
            w.writerow([f.origin, f.identity_key, f.file or f.rel, f.sha256])
        self._csv.write(buf.getvalue().encode("utf-8"))

    def list_image(self, rel: str, sha: str) -> None:
        if self._list is None:
            self._list = HashingFile(self.tmp / FILE_LIST)
        sep = b",\n" if self.image_files else b""
        self._list.write(sep + f'    {json.dumps(rel, ensure_ascii=False)}: "{sha}"'.encode())
        self.image_files += 1

    def finish(self) -> None:
        self.files["manifest.csv"] = self._csv.close()
        if self._list is not None:
            self._list.close()

    abort = finish  # close what is open; the temp folder is removed by the caller

    def write_json(self, manifest: dict[str, object]) -> str:
        """manifest.json (sorted keys, indent 2) with "files": the image entries in export
        order, then the other files sorted by name. Returns its sha256."""
        text = json.dumps(
            {**manifest, "files": "\0FILES\0"}, sort_keys=True, indent=2, ensure_ascii=False
        )
        head, _sep, tail = text.partition('"\\u0000FILES\\u0000"')
        entries = [
            f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v)}".encode()
            for k, v in sorted(self.files.items())
        ]
        part = self.tmp / FILE_LIST
        out = HashingFile(self.tmp / MANIFEST)
        try:
            out.write(head.encode() + b"{\n")
            if self.image_files:
                with open(part, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        out.write(block)
                out.write(b",\n" if entries else b"")
            out.write(b",\n".join(entries) + b"\n  }" + tail.encode() + b"\n")
        finally:
            sha = out.close()
        if self.image_files:
            part.unlink()
        return sha


def export_entries(folder: Path) -> set[str] | None:
    """The top-level names of an earlier export (see :func:`export_files`)."""
    files = export_files(folder)
    return None if files is None else {rel.split("/", 1)[0] for rel in files}


def export_files(folder: Path) -> set[str] | None:
    """The relative paths of the files an earlier export in ``folder`` consists of (its
    manifest and the files it lists), or None when ``folder/manifest.json`` is not
    a manifest this tool wrote. The file is read line by line in the layout
    :meth:`ManifestWriter.write_json` writes (one file a line), so a manifest of a million
    images is checked without holding it in memory."""
    path = folder / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    names = {MANIFEST}
    tool = in_files = False
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.readline() != "{\n":
                return None
            for line in fh:
                if in_files:
                    if line.startswith("  }"):
                        in_files = False
                        continue
                    if not line.startswith("    "):
                        return None
                    entry = json.loads("{" + line.strip().rstrip(",") + "}")
                    names.update(entry)
                elif line == '  "files": {\n':
                    in_files = True
                elif line.startswith('  "tool": '):
                    tool = json.loads(line.split(":", 1)[1].strip().rstrip(",")) == TOOL
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return names if tool else None
