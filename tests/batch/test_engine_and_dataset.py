"""The batch engine's task graph and the dataset's partition pruning, without a database."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import h3.api.basic_int as h3i
import numpy as np
import pytest

from geo_service.errors import InvalidInputError
from geo_service.geo.bbox import BBox
from geo_service.geo.h3cells import cell_to_str, cells_in_bbox
from geo_service.services.batch.dataset import partition_files
from geo_service.services.batch.engine import compute_engine, task
from geo_service.services.batch.export import MANIFEST


def test_a_task_shared_by_many_is_computed_once() -> None:
    calls: list[int] = []
    lock = threading.Lock()

    def build(n: int) -> int:
        with lock:
            calls.append(n)
        return n * 10

    def add(base: int, x: int) -> int:
        return base + x

    shared = task(build, 4)
    seen: list[tuple[int, int]] = []
    with compute_engine("local", progress=lambda done, total: seen.append((done, total))) as run:
        assert run([task(add, shared, x) for x in range(5)]) == [40, 41, 42, 43, 44]
        assert run([task(sorted, [3, 1, 2]), task(add, 1, x=2)]) == [[1, 2, 3], 3]
    assert calls == [4]
    assert seen[-1][0] == seen[-1][1]  # progress reaches the total


def test_engines_refuse_what_they_cannot_run() -> None:
    for kwargs in ({"engine": "spark"}, {"engine": "dask", "workers": 0}):
        with pytest.raises(InvalidInputError), compute_engine(**kwargs):
            pass


def _dataset(root: Path, parents: list[int], months: tuple[str, ...]) -> Path:
    folder = root / "incidents"
    folder.mkdir(parents=True)
    partitions = {
        f"h3_3={cell_to_str(p)}/month={m}": {"h3_3": cell_to_str(p), "month": m, "rows": 1}
        for p in parents
        for m in months
    }
    (folder / MANIFEST).write_text(json.dumps({"format_version": 1, "partitions": partitions}))
    return root


def test_pruning_keeps_every_partition_whose_cells_can_meet_the_bbox(tmp_path: Path) -> None:
    """A partition is read when any cell under its res-3 parent intersects the box, even where
    the descendants reach ~10 km past the parent's outline (H3 is not nested exactly)."""
    import shapely

    home = h3i.latlng_to_cell(30.59, 114.30, 3)
    parents = sorted(h3i.grid_disk(home, 1))
    root = _dataset(tmp_path, parents, ("2024-01", "2024-02"))
    for parent in parents:
        outline = shapely.Polygon([(x, y) for y, x in h3i.cell_to_boundary(parent)])
        children = h3i.cell_to_children(parent, 7)
        vertices = np.array([(x, y) for c in children for y, x in h3i.cell_to_boundary(c)])
        reach = shapely.distance(outline, shapely.points(vertices))
        x, y = vertices[int(np.argmax(reach))]  # the descendant farthest outside its parent
        assert reach.max() > 0.05  # farther than the margin once used
        box = BBox(x - 1e-4, y - 1e-4, x + 1e-4, y + 1e-4)
        files = partition_files(root, "incidents", bbox=box)
        kept = {int(f.split("h3_3=")[1].split("/")[0], 16) for f in files}
        assert parent in kept
        assert len(kept) < len(parents)  # and it does prune
        assert cells_in_bbox(np.array(children, dtype=np.int64), box).any()


def test_pruning_by_month_and_an_empty_export(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    home = h3i.latlng_to_cell(30.59, 114.30, 3)
    root = _dataset(tmp_path / "a", [home], ("2024-01", "2024-02", "2024-03"))
    files = partition_files(
        root,
        "incidents",
        since=datetime(2024, 2, 1, tzinfo=UTC),
        until=datetime(2024, 2, 15, tzinfo=UTC),
    )
    assert [f.split("month=")[1].split("/")[0] for f in files] == ["2024-02"]
    with pytest.raises(InvalidInputError, match="no exported incidents"):
        partition_files(_dataset(tmp_path / "b", [], ()), "incidents")
