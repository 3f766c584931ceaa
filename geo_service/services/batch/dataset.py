"""The exported GeoParquet dataset as a batch run reads it: the partition files that can matter.

Partitions are keyed by month and by the H3 res-3 parent of each row's cell
(``services.batch.export``); a run reads only those that can hold rows in its window and bbox.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np

from geo_service.errors import InvalidInputError
from geo_service.geo.bbox import BBox
from geo_service.geo.h3cells import cells_in_bbox
from geo_service.i18n import format_message
from geo_service.services.batch.export import kind_folder, month_bounds, read_manifest

# How far past its res-3 parent's outline a descendant cell reaches (measured: ~10.6 km;
# H3 children are not nested exactly): a partition is read when its outline comes this
# close to the bbox, so no cell that intersects the bbox is ever pruned.
PARTITION_REACH_KM = 20.0


def partition_files(
    dataset: Path,
    kind: str,
    since: datetime | None = None,
    until: datetime | None = None,
    bbox: BBox | None = None,
) -> list[str]:
    """The files of an exported kind that can hold rows in the window and bbox (pruned by the
    partition keys: month, and the res-3 parent cell)."""
    folder = Path(dataset) / kind_folder(kind)
    manifest = read_manifest(folder)
    if not manifest["partitions"]:
        raise InvalidInputError(
            format_message("no exported {kind} under {dataset}", kind=kind, dataset=dataset)
        )
    entries = sorted(manifest["partitions"].items())
    keep = np.ones(len(entries), dtype=bool)
    for i, (_, meta) in enumerate(entries):
        if meta.get("month"):
            start, end = month_bounds(meta["month"], manifest.get("time_zone", "UTC"))
            keep[i] = not ((since and end <= since) or (until and start >= until))
    if bbox is not None and entries:
        parents = np.array([int(meta["h3_3"], 16) for _, meta in entries], dtype=np.int64)
        keep &= cells_in_bbox(parents, bbox.buffered(PARTITION_REACH_KM))
    return [
        str(folder / rel / "part-0.parquet")
        for (rel, _), wanted in zip(entries, keep, strict=True)
        if wanted
    ]


def optional_files(dataset: Path, kind: str) -> list[str]:
    """``partition_files`` of a kind that may not have been exported (none then)."""
    if not (Path(dataset) / kind_folder(kind) / "_manifest.json").exists():
        return []
    return partition_files(dataset, kind)
