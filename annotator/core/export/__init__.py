"""Export the verified faces as a clean test set: folder, msceleb TSV, InsightFace rec, or csv.

One job a module:

* :mod:`.selection` — which faces go in (filters, duplicate keepers, QA states), streamed with
  their bytes to a sink; the compact :class:`Selection` that stays.
* :mod:`.names` — safe, unique file names from identity keys and source names.
* :mod:`.sinks` — one sink per format, handing the faces to the writers in ``formats/``
  (folder tree, MS-Celeb TSV, RecordIO + identities.tsv) and recording them in the manifest.
* :mod:`.manifest` — manifest.csv and manifest.json, written as faces arrive; how an earlier
  export is recognised.
* :mod:`.pairs` — genuine/impostor pairs (seeded), pairs.txt and pairs.bin.
* :mod:`.datasheet` — README.md.
* :mod:`.outdir` — which output folders may be written or replaced, leftovers of killed
  exports, the atomic swap.
* :mod:`.run` — :func:`export_dataset`, tying them together, and :class:`ExportResult`.
"""
