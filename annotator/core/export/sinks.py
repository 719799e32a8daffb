"""One sink per export format: takes each selected identity with its faces' bytes, hands them
to the format's writer in ``formats/`` (which knows no project) and records every face in
the manifest. ``csv`` writes only the manifest."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from annotator.core.export.manifest import HashingFile, ManifestWriter, file_sha256
from annotator.core.export.selection import ExportFace, Sink
from annotator.formats import msceleb, recordio
from annotator.formats.folder import FolderWriter
from annotator.model import AnnotatorError

TSV_NAME = "faces.tsv"
REC_NAME = "train.rec"
CLASSES_NAME = "identities.tsv"
DEFAULT_IMAGE_SIZE = (112, 112)


class CsvSink(Sink):
    """Writes ``manifest.csv`` for every face (``file``: the folder-layout path); the format
    sinks below add the images. ``files``: relative path -> sha256 of the other files."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.manifest = ManifestWriter(tmp)
        self.files = self.manifest.files
        self.image_size: tuple[int, int] | None = None  # (height, width) written in `property`

    @property
    def image_files(self) -> int:
        return self.manifest.image_files

    def identity(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        self.write_images(key, dirname, faces)
        self.manifest.add_faces(faces)

    def write_images(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        for f, _b in faces:  # csv: the manifest names the folder-layout path
            f.file = f.rel

    def finish(self) -> None:
        self.manifest.finish()

    def abort(self) -> None:
        self.manifest.abort()

    def write_manifest(self, manifest: dict[str, object]) -> str:
        return self.manifest.write_json(manifest)


class FolderSink(CsvSink):
    def __init__(self, tmp: Path):
        super().__init__(tmp)
        self._out = FolderWriter(tmp)

    def write_images(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        self._out.write_identity(dirname, [(f.rel.partition("/")[2], b) for f, b in faces])
        for f, _b in faces:
            f.file = f.rel
            self.manifest.list_image(f.rel, f.sha256)  # hashed when read


class MscelebSink(CsvSink):
    need_names = False

    def __init__(self, tmp: Path):
        super().__init__(tmp)
        self._tsv = HashingFile(tmp / TSV_NAME)
        self._line = 0

    def write_images(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        for f, b in faces:
            c = f.cand
            # Faces from rec/folder sources have no URL or FaceID: the origin stands in for the
            # URL and "0" for the FaceID so every row has a unique (ImageURL, FaceID) key.
            url, ref = (c.image_url, c.face_ref) if c.image_url else (f.origin, c.face_ref or "0")
            msceleb.write_row(self._tsv, f.identity_key, c.rank, url, c.page_url, ref, c.rect, b)  # type: ignore[arg-type]
            self._line += 1
            f.file = f"{TSV_NAME}:{self._line}"

    def finish(self) -> None:
        self.files[TSV_NAME] = self._tsv.close()
        super().finish()

    def abort(self) -> None:
        self._tsv.close()
        super().abort()


class RecSink(CsvSink):
    """train.rec/.idx/property (the image size in ``property`` is the most common one) and
    identities.tsv (class index -> escaped key, see :func:`annotator.formats.recordio.escape_key`)."""

    need_size = True
    need_names = False

    def __init__(self, tmp: Path):
        super().__init__(tmp)
        self._rec = recordio.RecordStreamWriter(tmp / REC_NAME)
        self._classes = HashingFile(tmp / CLASSES_NAME)
        self._classes.write(recordio.CLASS_LIST_HEADER)
        self._n = 0
        self.sizes: Counter[tuple[int, int]] = Counter()
        self.image_size = DEFAULT_IMAGE_SIZE

    def write_images(self, key: str, dirname: str, faces: list[tuple[ExportFace, bytes]]) -> None:
        cls = self._n
        self._n += 1
        self._classes.write(recordio.class_line(cls, key))
        for f, b in faces:
            try:
                k = self._rec.add(cls, b)
            except ValueError as e:
                raise AnnotatorError(f"cannot write {REC_NAME}: {e}") from None
            f.file = f"{REC_NAME}#{k}"
            if f.size is not None:
                self.sizes[f.size] += 1

    def finish(self) -> None:
        if self.sizes:
            self.image_size = max(self.sizes.items(), key=lambda kv: (kv[1], kv[0]))[0]
        self._rec.close(self.image_size)
        # the header record is rewritten at the end, so the .rec is hashed once written
        for name in (REC_NAME, "train.idx", "property"):
            self.files[name] = file_sha256(self.tmp / name)
        self.files[CLASSES_NAME] = self._classes.close()
        super().finish()

    def abort(self) -> None:
        self._rec.abort()
        self._classes.close()
        super().abort()


SINKS: dict[str, type[CsvSink]] = {
    "folder": FolderSink,
    "msceleb": MscelebSink,
    "rec": RecSink,
    "csv": CsvSink,
}
EXPORT_FORMATS: tuple[str, ...] = tuple(SINKS)
