"""Every bbox filter over H3 cells means "the hexagon intersects the box": the heatmap API, the
OGC heatmap and hot spot collections, and the tiles' batch layers read through it."""

from __future__ import annotations

import h3.api.basic_int as h3i
from fastapi.testclient import TestClient

from geo_service.demo.city import DemoCity

EPS = 1e-5  # degrees: a box about 2 m a side


def _meeting_at(vertex: tuple[float, float], cell: int) -> set[str]:
    """The hexagons that have ``vertex`` as a corner (three, away from pentagons)."""
    lat, lng = vertex
    return {
        h3i.int_to_str(c)
        for c in h3i.grid_disk(cell, 1)
        if any(abs(a - lat) < 1e-9 and abs(b - lng) < 1e-9 for a, b in h3i.cell_to_boundary(c))
    }


def _corner_with_incidents(counts: dict[str, int]) -> tuple[str, set[str]]:
    """A box around a corner where three hexagons that all have incidents meet."""
    for name in sorted(counts, key=counts.__getitem__, reverse=True):
        cell = h3i.str_to_int(name)
        for vertex in h3i.cell_to_boundary(cell):
            three = _meeting_at(vertex, cell)
            if len(three) == 3 and three <= counts.keys():
                lat, lng = vertex
                return f"{lng - EPS},{lat - EPS},{lng + EPS},{lat + EPS}", three
    raise AssertionError("no corner shared by three counted hexagons")


def test_a_box_on_a_corner_returns_the_three_hexagons_in_heatmap_and_ogc(
    client: TestClient, loaded_city: DemoCity
) -> None:
    whole = client.get("/heatmap/h3", params={"res": 8, "format": "json"}).json()
    counts = {c["h3"]: c["count"] for c in whole["cells"]}
    box, three = _corner_with_incidents(counts)
    compact = client.get("/heatmap/h3", params={"res": 8, "bbox": box, "format": "json"}).json()
    assert {c["h3"] for c in compact["cells"]} == three  # no centre is in the box
    assert compact["total"] == sum(counts[c] for c in three)
    geojson = client.get("/heatmap/h3", params={"res": 8, "bbox": box}).json()
    assert {f["properties"]["h3"] for f in geojson["features"]} == three
    for collection in ("heatmap-h3-res8", "hotspots-h3-res8"):
        items = client.get(
            f"/collections/{collection}/items", params={"bbox": box, "limit": 100}
        ).json()
        assert {f["properties"]["h3"] for f in items["features"]} == three, collection
        assert items["numberMatched"] == 3
