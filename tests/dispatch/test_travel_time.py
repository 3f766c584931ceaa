"""Travel time: the road graph's ETAs equal a full Dijkstra from every origin, the river makes
road and straight line disagree, points off the network walk, ``by=travel_time`` ranks exactly,
and ``import roads`` validates, upserts and refuses bad rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer
from scipy.sparse.csgraph import dijkstra
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from geo_service.cli.main import app as cli
from geo_service.db.engine import make_engine
from geo_service.demo.city import CENTRE_LAT, CENTRE_LON, METRIC_CRS, DemoCity
from geo_service.demo.roads import river_y
from geo_service.errors import InvalidInputError
from geo_service.geo.roads import RoadGraph, line_lengths_m, partial_time
from geo_service.services.dispatch.responders import NearestQuery
from geo_service.services.dispatch.routing import nearest_by_travel_time, road_graph
from tests.conftest import make_database, problem


@pytest.fixture(scope="module")
def graph(demo_city: DemoCity) -> RoadGraph:
    roads = demo_city.roads
    return RoadGraph.build(
        roads.geometry.values,
        roads.speed_kmh.values,
        roads.oneway.values,
        line_lengths_m(roads.geometry.values),
    )


def _full_dijkstra_eta(g: RoadGraph, lon: float, lat: float, lon0: float, lat0: float) -> float:
    """One origin at a time, searching forward from it over the whole network."""
    (s,), (f,), (w,) = g.snap([lon], [lat])
    (t,), (tf,), (tw,) = g.snap([lon0], [lat0])
    starts = {
        g.seg_b[s]: partial_time(1 - f, g.time_ab[s]),
        g.seg_a[s]: partial_time(f, g.time_ba[s]),
    }
    ends = {
        g.seg_a[t]: partial_time(tf, g.time_ab[t]),
        g.seg_b[t]: partial_time(1 - tf, g.time_ba[t]),
    }
    best = np.inf
    for node, lead in starts.items():
        dist = dijkstra(g.forward, indices=node)
        for end, tail in ends.items():
            best = min(best, lead + dist[end] + tail)
    if s == t:  # both on one segment
        best = min(
            best,
            partial_time(tf - f, g.time_ab[s]) if f <= tf else partial_time(f - tf, g.time_ba[s]),
        )
    eta = (w + tw) / g.walking_speed_mps + best
    x, y = g.to_metric.transform([lon, lon0], [lat, lat0])
    return min(eta, float(np.hypot(x[1] - x[0], y[1] - y[0])) / g.walking_speed_mps)


def test_etas_equal_full_dijkstra_from_each_origin(graph: RoadGraph, demo_city: DemoCity) -> None:
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = demo_city.areas.total_bounds
    lon = rng.uniform(minx, maxx, 25)
    lat = rng.uniform(miny, maxy, 25)
    for lon0, lat0 in ((lon[0], lat[0]), ((minx + maxx) / 2, (miny + maxy) / 2)):
        ours = graph.etas_to(lon, lat, lon0, lat0)["eta_s"]
        full = [_full_dijkstra_eta(graph, x, y, lon0, lat0) for x, y in zip(lon, lat, strict=True)]
        np.testing.assert_allclose(ours, full, rtol=1e-9, atol=1e-6)
        assert ours[0] >= 0
        straight = graph.straight_m(lon, lat, lon0, lat0)
        assert np.all(ours >= straight / graph.top_speed_mps * 0.99)  # the prefilter's bound


def test_the_river_makes_road_and_straight_line_disagree(
    graph: RoadGraph, demo_city: DemoCity
) -> None:
    to_metric = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)
    to_wgs = Transformer.from_crs(METRIC_CRS, "EPSG:4326", always_xy=True)
    minx, miny, maxx, maxy = demo_city.areas.total_bounds
    cx, _ = to_metric.transform((minx + maxx) / 2, (miny + maxy) / 2)
    centre = to_metric.transform(CENTRE_LON, CENTRE_LAT)  # what the generator winds it around
    ratios = []
    for x in np.linspace(cx - 6000, cx + 6000, 7):
        ry = float(river_y(x, *centre))
        (a_lon, b_lon), (a_lat, b_lat) = to_wgs.transform([x, x], [ry - 250, ry + 250])
        eta = graph.etas_to([a_lon], [a_lat], b_lon, b_lat)["eta_s"][0]
        ratios.append(eta / (500 / (25 / 3.6)))  # vs driving the 500 m on a local street
    assert max(ratios) > 4  # somewhere the nearest bridge is far away


def test_a_point_off_the_network_walks(graph: RoadGraph, demo_city: DemoCity) -> None:
    minx, miny, maxx, maxy = demo_city.areas.total_bounds
    far = graph.etas_to([minx - 0.01], [miny - 0.01], (minx + maxx) / 2, (miny + maxy) / 2)
    assert far["walk_m"][0] > 500 and np.isfinite(far["eta_s"][0])


def test_by_travel_time_equals_ranking_every_responder(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    rng = np.random.default_rng(8)
    features = client.get("/responders", params={"status": "available"}).json()["features"]
    now = datetime.now(UTC).isoformat()
    fixes = [
        {"id": f["id"], "lon": rng.uniform(minx, maxx), "lat": rng.uniform(miny, maxy), "at": now}
        for f in features
    ]
    assert client.post("/responders/positions", json={"positions": fixes}).status_code == 200
    fresh = {
        f["id"]: f["geometry"]["coordinates"]
        for f in client.get("/responders", params={"status": "available"}).json()["features"]
        if not f["properties"]["stale"]
    }
    with Session(engine) as session:
        g = road_graph(session)
    ids = sorted(fresh)
    for lon0, lat0 in ((fixes[0]["lon"], fixes[0]["lat"]), ((minx + maxx) / 2, miny + 0.01)):
        etas = [_full_dijkstra_eta(g, fresh[i][0], fresh[i][1], lon0, lat0) for i in ids]
        expected = [i for _, i in sorted(zip(etas, ids, strict=True))][:5]
        got = client.get(
            "/responders/nearest",
            params={"lon": lon0, "lat": lat0, "k": 5, "by": "travel_time"},
        ).json()["candidates"]
        assert [c["id"] for c in got] == expected
        assert all(c["eta_basis"] == "road_network" and c["walk_m"] >= 0 for c in got)
        by_id = dict(zip(ids, etas, strict=True))
        for c in got:
            assert abs(c["eta_s"] - by_id[c["id"]]) < 0.1
    incident = client.post(
        "/incidents",
        json={"category": "traffic", "location": {"lon": fixes[0]["lon"], "lat": fixes[0]["lat"]}},
    )
    if incident.status_code == 201:  # the random point may fall outside every grid
        cands = client.get(
            f"/incidents/{incident.json()['id']}/candidates",
            params={"by": "travel_time", "k": 3},
        ).json()
        assert cands["by"] == "travel_time" and len(cands["candidates"]) == 3
    bad = client.get("/responders/nearest", params={"lon": 1, "lat": 1, "by": "car"})
    assert problem(bad)["status"] == 422


def _roads_file(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _line(coords, **props) -> dict:  # noqa: ANN001, ANN003
    return {
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "LineString", "coordinates": coords},
    }


def test_import_roads_validates_and_upserts(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    url = make_database("geo_test_roads")
    engine = make_engine(url)
    with Session(engine) as session, pytest.raises(InvalidInputError, match="road network"):
        nearest_by_travel_time(session, NearestQuery(lon=114.3, lat=30.6), scope=None, stale_s=60)
    good = [
        _line([[114.30, 30.60], [114.31, 30.60]], id="a", speed_kmh=40, oneway="yes"),
        _line([[114.31, 30.60], [114.31, 30.61]], id="b", **{"class": "residential"}),
        {
            "type": "Feature",
            "properties": {"id": "c"},
            "geometry": {
                "type": "MultiLineString",
                "coordinates": [
                    [[114.31, 30.61], [114.32, 30.61]],
                    [[114.32, 30.61], [114.32, 30.62]],
                ],
            },
        },
    ]
    bad = [
        _line([[114.3, 30.6], [114.35, 30.6]], id="d", speed_kmh=500),
        _line([[114.3, 30.6], [114.35, 30.6]], id="e", oneway="sometimes"),
        {
            "type": "Feature",
            "properties": {"id": "f"},
            "geometry": {"type": "Point", "coordinates": [114.3, 30.6]},
        },
    ]
    path = _roads_file(tmp_path / "roads.geojson", good + bad)
    monkeypatch.setenv("GEO_DATABASE_URL", url)
    runner = CliRunner()
    first = runner.invoke(cli, ["import", "roads", str(path)])
    assert first.exit_code == 3, first.output  # some rows rejected, the rest imported
    with engine.connect() as conn:
        rows = {
            ref: (speed, oneway, round(length))
            for ref, speed, oneway, length in conn.exec_driver_sql(
                "SELECT external_ref, speed_kmh, oneway, length_m FROM road_segments"
            )
        }
    assert set(rows) == {"roads:a", "roads:b", "roads:c"}
    assert rows["roads:a"] == (40, 1, 959)  # 0.01 degree of longitude at 30.6 N
    assert rows["roads:b"][:2] == (25, 0)  # a residential street's default speed
    rejects = (tmp_path / "roads.geojson.rejects.csv").read_text()
    for reason in ("speed_kmh must be 0..200", "oneway must be", "expected LineString"):
        assert reason in rejects
    again = runner.invoke(cli, ["import", "roads", str(path)])
    assert again.exit_code == 3 and "already present" in again.output
    good[0]["properties"]["speed_kmh"] = 60
    _roads_file(path, good)
    runner.invoke(cli, ["import", "roads", str(path)])
    with engine.connect() as conn:
        speed = conn.exec_driver_sql(
            "SELECT speed_kmh FROM road_segments WHERE external_ref = 'roads:a'"
        ).scalar_one()
    assert speed == 60
    with Session(engine) as session:
        g = road_graph(session)
    assert g is not None and g.nodes == 4  # c: two parts joined into one segment, 2 ends
    engine.dispose()
