"""Every GeoJSON answer follows RFC 7946 §3.1.6 (issue 16): exterior rings counter-clockwise,
holes clockwise, on every endpoint that serves polygons."""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity


def _rings(geometry: dict[str, Any]) -> list[tuple[list, bool]]:
    """(ring, is exterior) of every ring of a Polygon / MultiPolygon."""
    if geometry["type"] == "Polygon":
        polygons = [geometry["coordinates"]]
    elif geometry["type"] == "MultiPolygon":
        polygons = geometry["coordinates"]
    else:
        return []
    return [(ring, k == 0) for polygon in polygons for k, ring in enumerate(polygon)]


def _wrong_order(features: list[dict[str, Any]]) -> list[str]:
    wrong = []
    for feature in features:
        for ring, exterior in _rings(feature["geometry"] or {"type": "None"}):
            ccw = shapely.LinearRing(ring).is_ccw
            if ccw != exterior:
                wrong.append(f"{feature.get('id')}: {'exterior' if exterior else 'hole'}")
    return wrong


ENDPOINTS = [
    "/areas?level=grid",
    "/areas?level=community",
    "/areas?level=district",
    "/heatmap/h3?res=8",
    "/heatmap/grids?level=community",
    "/hotspots?res=7",
    "/hotspots/grids",
    "/collections/grids/items?limit=200",
    "/collections/districts/items",
    "/collections/heatmap-h3-res8/items?limit=200",
    "/collections/hotspots-h3-res8/items?limit=200",
]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_polygons_are_served_in_rfc7946_ring_order(
    client: TestClient, loaded_city: DemoCity, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text[:300]
    features = response.json()["features"]
    assert any(_rings(f["geometry"]) for f in features if f["geometry"]), "no polygons served"
    assert _wrong_order(features) == []


def test_a_clockwise_polygon_with_a_hole_is_stored_in_rfc7946_order(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    """Whatever the writer sends (here a clockwise shell with a counter-clockwise hole, the
    ESRI order of a Shapefile), the database keeps and serves the RFC 7946 order."""
    grid_id = client.get("/areas?level=grid").json()["features"][0]["id"]
    with engine.begin() as conn:
        before = conn.execute(
            text("SELECT ST_AsText(geom) FROM areas WHERE id = :i"), {"i": grid_id}
        ).scalar_one()
        conn.execute(
            text(
                "UPDATE areas SET geom = ST_Multi(ST_ForcePolygonCW(ST_Difference(geom, "
                "ST_Buffer(ST_PointOnSurface(geom), 0.0002)))) WHERE id = :i"
            ),
            {"i": grid_id},
        )
    try:
        (served,) = [
            f for f in client.get("/areas?level=grid").json()["features"] if f["id"] == grid_id
        ]
        rings = _rings(served["geometry"])
        assert any(not exterior for _, exterior in rings), "the hole was lost"
        assert _wrong_order([served]) == []
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE areas SET geom = ST_GeomFromText(:w, 4326) WHERE id = :i"),
                {"w": before, "i": grid_id},
            )
