"""``crs=wgs84|gcj02|bd09`` on every GeoJSON endpoint (issue 19): each position of the answer
is the WGS84 answer's position through ``geo.crs.from_wgs84``, in every geometry type; the
published Wuhan polygons land on their GCJ-02 versions; anything else is a 422 problem;
formats that declare EPSG:4326 refuse GCJ-02; vector tiles say they are WGS84 only."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import shapely.geometry
import shapely.ops
from fastapi.testclient import TestClient
from pyproj import Geod, Transformer
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.geo import crs as crs_module
from geo_service.services.batch.execute import BatchRequest, run_batch
from geo_service.services.batch.export import export_dataset
from geo_service.services.planning.proposals import ProposalRequest, propose
from tests.conftest import SHARED_DATA, as_role, problem
from tests.planning.blocks import a_movable_block, draft_grids

GEOD = Geod(ellps="WGS84")
HUBEI = SHARED_DATA / "hubei"
HELD_AT = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
WINDOW = {"since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}

# Every GeoJSON endpoint over the loaded demo city (around 114.30 E, 30.59 N: Wuhan, where
# GCJ-02 is about 590 m off), with the role that may read it.
ENDPOINTS: list[tuple[str, dict[str, Any], str]] = [
    ("/areas", {"level": "grid"}, "admin"),
    ("/areas", {"level": "district"}, "admin"),
    ("/incidents", {"limit": 200}, "admin"),
    ("/responders", {}, "dispatcher"),
    ("/heatmap/h3", {"res": 8, **WINDOW}, "analyst"),
    ("/heatmap/grids", {"level": "community", **WINDOW}, "analyst"),
    ("/hotspots", {"res": 8, **WINDOW}, "analyst"),
    ("/hotspots/grids", WINDOW, "analyst"),
    ("/hotspots/emerging", {"res": 7, "bin": "week"}, "analyst"),
    ("/households/aggregate", {"level": "community"}, "analyst"),
    ("/households/aggregate", {"res": 8}, "analyst"),
    ("/heatmap/download", {"format": "geojson", "res": 8, **WINDOW}, "analyst"),
    ("/hotspots/download", {"format": "geojson", "res": 8, **WINDOW}, "analyst"),
    ("/hotspots/emerging/download", {"format": "geojson", "res": 7, "bin": "week"}, "analyst"),
]


def _metres(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])[2])


def _features(body: dict[str, Any]) -> list[dict[str, Any]]:
    return body["features"] if body.get("type") == "FeatureCollection" else [body]


def _positions(body: dict[str, Any]) -> np.ndarray:
    """Every position of every feature, read by shapely (not by the code under test)."""
    geometries = [f["geometry"] for f in _features(body) if f["geometry"] is not None]
    shapes = shapely.from_geojson([json.dumps(g) for g in geometries])
    return shapely.get_coordinates(shapes)


def _get(client: TestClient, keys: dict[str, str], path: str, params: dict, role: str) -> Any:
    response = client.get(path, params=params, headers=as_role(keys, role))
    assert response.status_code == 200, (path, response.text[:300])
    return response


def _assert_converted(plain: dict[str, Any], shifted: dict[str, Any], name: str) -> None:
    wgs = _positions(plain)
    assert len(wgs) > 0
    expected = np.column_stack(crs_module.from_wgs84(wgs[:, 0], wgs[:, 1], name))
    got = _positions(shifted)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # the conversion is real: the demo city lies in Wuhan, hundreds of metres off
    assert np.median(_metres(wgs, got)) > 300
    # nothing but positions changes
    for a, b in zip(_features(plain), _features(shifted), strict=True):
        assert a.get("id") == b.get("id")
        keep = {k: v for k, v in a["properties"].items() if k not in ("lon", "lat")}
        assert {k: v for k, v in b["properties"].items() if k not in ("lon", "lat")} == keep


@pytest.mark.parametrize(("path", "params", "role"), ENDPOINTS)
@pytest.mark.parametrize("name", ["gcj02", "bd09"])
def test_every_geojson_endpoint_answers_in_the_crs_asked_for(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    path: str,
    params: dict[str, Any],
    role: str,
    name: str,
) -> None:
    # the service's clock held (a responder's position_age_s is counted from it), not waited on
    clock = client.app.state.runtime.clock  # type: ignore[attr-defined]
    clock.set(HELD_AT)
    try:
        shifted = _get(client, role_keys, path, {**params, "crs": name}, role).json()
        plain = _get(client, role_keys, path, params, role).json()
        # asked for again in WGS84, the answer is unshifted: a cached layer was not converted
        again = _get(client, role_keys, path, {**params, "crs": "wgs84"}, role).json()
    finally:
        clock.release()
    _assert_converted(plain, shifted, name)
    np.testing.assert_array_equal(_positions(again), _positions(plain))


def test_one_area_and_responders_point_properties_follow_the_crs(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    area_id = client.get("/areas", params={"level": "grid"}).json()["features"][0]["id"]
    plain = client.get(f"/areas/{area_id}").json()
    shifted = client.get(f"/areas/{area_id}", params={"crs": "gcj02"}).json()
    _assert_converted(plain, shifted, "gcj02")
    # responders repeat their position as lon/lat properties: those follow the geometry
    body = _get(client, role_keys, "/responders", {"crs": "gcj02"}, "dispatcher").json()
    placed = [f for f in body["features"] if f["geometry"] is not None]
    assert placed
    for feature in placed:
        assert [feature["properties"]["lon"], feature["properties"]["lat"]] == (
            feature["geometry"]["coordinates"][:2]
        )


def test_compact_heatmap_takes_crs_and_has_no_positions(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    params = {"res": 8, "format": "json", **WINDOW}
    plain = _get(client, role_keys, "/heatmap/h3", params, "analyst").json()
    shifted = _get(client, role_keys, "/heatmap/h3", {**params, "crs": "gcj02"}, "analyst")
    assert shifted.json() == plain and plain["cells"]


def test_batch_run_cells_follow_the_crs(
    engine: Engine, client: TestClient, loaded_city: DemoCity, tmp_path: Path
) -> None:
    export_dataset(engine, "incidents", tmp_path)
    run = run_batch(
        engine, BatchRequest("heatmap", tmp_path, res=8), engine_name="local", actor="test"
    )
    path = f"/analytics/runs/{run['run_id']}"
    plain = client.get(path).json()
    shifted = client.get(path, params={"crs": "gcj02"}).json()
    assert plain["run"] == shifted["run"]
    _assert_converted(plain, shifted, "gcj02")


def test_plan_export_follows_the_crs_and_refuses_it_where_the_file_names_wgs84(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    version = client.get("/boundaries/versions").json()["data"][0]["id"]
    path = f"/boundaries/versions/{version}/export"
    plain = _get(client, role_keys, path, {"format": "geojson"}, "planner")
    shifted = _get(client, role_keys, path, {"format": "geojson", "crs": "gcj02"}, "planner")
    assert f"version_{version}_grid_gcj02.geojson" in shifted.headers["content-disposition"]
    _assert_converted(plain.json(), shifted.json(), "gcj02")
    refused = client.get(
        path, params={"format": "gpkg", "crs": "gcj02"}, headers=as_role(role_keys, "planner")
    )
    body = problem(refused)
    assert body["status"] == 422 and "EPSG:4326" in body["detail"]


def test_downloads_in_gcj02_only_in_formats_that_name_no_crs(
    client: TestClient, role_keys: dict[str, str], loaded_city: DemoCity
) -> None:
    params = {"res": 8, **WINDOW, "crs": "gcj02"}
    for fmt in ("gpkg", "shp", "kml", "fgb", "parquet"):
        for path in ("/heatmap/download", "/hotspots/download"):
            got = client.get(
                path, params={**params, "format": fmt}, headers=as_role(role_keys, "analyst")
            )
            body = problem(got)
            assert body["status"] == 422 and "geojson, csv, csv-xy, xlsx" in body["detail"]
    csv = _get(client, role_keys, "/heatmap/download", {**params, "format": "csv-xy"}, "analyst")
    assert "heatmap_res8_gcj02.csv" in csv.headers["content-disposition"]
    import pandas as pd

    table = pd.read_csv(io.BytesIO(csv.content), encoding="utf-8-sig")
    plain = pd.read_csv(
        io.BytesIO(
            _get(
                client,
                role_keys,
                "/heatmap/download",
                {**params, "crs": "wgs84", "format": "csv-xy"},
                "analyst",
            ).content
        ),
        encoding="utf-8-sig",
    )
    moved = _metres(plain[["lon", "lat"]].to_numpy(), table[["lon", "lat"]].to_numpy())
    assert 300 < np.median(moved) < 900


def test_wuhan_published_polygons_come_back_on_their_gcj02_versions(
    client: TestClient, loaded_city: DemoCity
) -> None:
    """The published Wuhan districts (WGS84 file) imported as a draft, then read with
    crs=gcj02, land within 3 m of the GCJ-02 file (both published; the WGS84 one was
    converted by cnmaps' approximate inverse), while the WGS84 answer is hundreds of metres
    off it."""
    path = HUBEI / "wuhan_districts_wgs84.geojson"
    with path.open("rb") as handle:
        report = client.post(
            "/imports/boundaries",
            files={"file": (path.name, handle, "application/geo+json")},
            data={"level": "district", "map": ["adcode=code", "district=name"]},
        )
    assert report.status_code in (200, 201), report.text[:300]
    version = report.json()["version_id"]
    shifted = client.get("/areas", params={"version": version, "crs": "gcj02"}).json()
    plain = client.get("/areas", params={"version": version}).json()
    published = json.loads((HUBEI / "wuhan_districts_gcj02.geojson").read_text())
    theirs = {
        f["properties"]["adcode"]: shapely.geometry.shape(f["geometry"])
        for f in published["features"]
    }
    assert len(shifted["features"]) == len(theirs) == 14

    to_utm = Transformer.from_crs(4326, 32650, always_xy=True).transform  # Wuhan: UTM 50N

    def hausdorff_m(ours: dict[str, Any]) -> list[float]:
        """Per district, the Hausdorff distance (metres) to the published GCJ-02 polygon."""
        return [
            shapely.hausdorff_distance(
                shapely.ops.transform(to_utm, shapely.geometry.shape(f["geometry"])),
                shapely.ops.transform(to_utm, theirs[f["properties"]["code"]]),
            )
            for f in ours["features"]
        ]

    assert max(hausdorff_m(shifted)) < 3.0
    assert min(hausdorff_m(plain)) > 300


@pytest.mark.parametrize(
    "path",
    [
        "/areas",
        "/incidents",
        "/responders",
        "/heatmap/h3",
        "/heatmap/grids",
        "/hotspots",
        "/hotspots/grids",
        "/hotspots/emerging",
        "/households/aggregate?level=grid",
        "/heatmap/download",
        "/tiles/grids.json",
        "/tiles/grids/14/13394/6727.mvt",
    ],
)
# (upper case is a name, not a mistake: ``GCJ02`` is gcj02, tests/dispatch/test_dispatch_fixes.py)
@pytest.mark.parametrize("bad", ["epsg:3857", "GCJ03", "", "wgs84,gcj02"])
def test_unknown_crs_is_a_422_problem(
    client: TestClient, loaded_city: DemoCity, path: str, bad: str
) -> None:
    separator = "&" if "?" in path else "?"
    body = problem(client.get(f"{path}{separator}crs={bad}"))
    assert body["status"] == 422 and body["code"] == "validation-error"
    assert "crs" in body["detail"]


def test_tiles_refuse_gcj02_saying_what_to_use_instead(
    client: TestClient, loaded_city: DemoCity
) -> None:
    for path in ("/tiles/grids.json", "/tiles/grids/14/13394/6727.mvt"):
        body = problem(client.get(path, params={"crs": "gcj02"}))
        assert body["status"] == 422 and "/areas?crs=gcj02" in body["detail"]
        assert client.get(path, params={"crs": "wgs84"}).status_code in (200, 204)


@pytest.fixture(scope="module")
def draft(loaded_city: DemoCity, engine: Engine) -> Iterator[tuple[int, str]]:
    """A proposal's draft for the community with most grids (as test_block_edits.py)."""
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    community = str(grids.parent_code.value_counts().index[0])
    made = propose(engine, ProposalRequest(parent_codes=[community]), actor="test")
    yield made["version_id"], community
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM boundary_versions WHERE id = :v"), {"v": made["version_id"]})


def test_a_block_move_in_gcj02_moves_the_same_block_and_answers_in_gcj02(
    engine: Engine, client: TestClient, role_keys: dict[str, str], draft: tuple[int, str]
) -> None:
    version, parent = draft
    source, target, piece = a_movable_block(engine, version, parent)
    at = piece.representative_point()
    (glon,), (glat,) = crs_module.from_wgs84([at.x], [at.y], "gcj02")
    planner = as_role(role_keys, "planner")
    path = f"/boundaries/versions/{version}/edits"
    move = {"lon": float(glon), "lat": float(glat), "to_grid": target}
    with engine.connect() as conn:
        audits = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
    assert (
        problem(client.post(path, json={**move, "crs": "mars"}, headers=planner))["status"] == 422
    )
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == audits
    moved = client.post(path, json={**move, "crs": "gcj02"}, headers=planner)
    assert moved.status_code == 200, moved.text[:300]
    body = moved.json()
    # the GCJ-02 point was the block's: the same block moved as with its WGS84 point
    assert body["moved"]["from"] == source and body["moved"]["to"] == target
    stored = draft_grids(engine, version, parent)
    for grid in body["grids"]:
        wgs = shapely.get_coordinates(stored[grid["code"]])
        expected = np.column_stack(crs_module.from_wgs84(wgs[:, 0], wgs[:, 1], "gcj02"))
        ours = shapely.get_coordinates(shapely.from_geojson(json.dumps(grid["geometry"])))
        # the answer's polygon has 7 decimals (~1 cm): the stored one converted, to that
        np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-7)


@pytest.mark.parametrize(
    "path",
    [
        "/areas?level=district",
        "/incidents?limit=5",
        "/heatmap/grids",
        "/households/aggregate?level=grid",
    ],
)
@pytest.mark.parametrize("name", ["GCJ02", "GCJ-02", "Gcj_02"])
def test_a_crs_named_in_another_case_answers_as_its_canonical_name(
    client: TestClient, loaded_city: DemoCity, path: str, name: str
) -> None:
    separator = "&" if "?" in path else "?"
    canonical = client.get(f"{path}{separator}crs=gcj02")
    written = client.get(f"{path}{separator}crs={name}")
    assert canonical.status_code == written.status_code == 200, written.text
    assert written.json()["features"] == canonical.json()["features"]
