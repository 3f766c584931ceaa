"""Responders: positions, listing, and the exact nearest ranking against brute force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyproj
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.geo.crs import from_wgs84
from tests.conftest import as_role, problem

GEOD = pyproj.Geod(ellps="WGS84")


def _available(client: TestClient) -> dict[int, tuple[float, float]]:
    body = client.get("/responders", params={"status": "available"}).json()
    return {
        f["id"]: tuple(f["geometry"]["coordinates"])
        for f in body["features"]
        if f["geometry"] and not f["properties"]["stale"]
    }


def _brute(points: dict[int, tuple[float, float]], lon: float, lat: float) -> dict[int, float]:
    ids = list(points)
    xy = np.array([points[i] for i in ids])
    _, _, d = GEOD.inv(np.full(len(ids), lon), np.full(len(ids), lat), xy[:, 0], xy[:, 1])
    return dict(zip(ids, d.tolist(), strict=True))


def test_nearest_equals_brute_force_geodesic_ranking(
    client: TestClient, loaded_city: DemoCity
) -> None:
    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    ids = client.get("/responders").json()["features"]
    ids = [f["id"] for f in ids if f["properties"]["status"] == "available"][:120]
    now = datetime.now(UTC)
    fixes = [
        {
            "id": i,
            "lon": rng.uniform(minx, maxx),
            "lat": rng.uniform(miny, maxy),
            "at": now.isoformat(),
        }
        for i in ids
    ]
    fixes[1].update(lon=fixes[0]["lon"], lat=fixes[0]["lat"])  # an exact tie
    stored = client.post("/responders/positions", json={"positions": fixes})
    assert stored.status_code == 200, stored.text
    assert stored.json()["updated"] == len(fixes)
    points = _available(client)
    queries = (
        [(fixes[0]["lon"], fixes[0]["lat"])]
        + [  # the tie, the extent's corners, random
            (x, y) for x in (minx, maxx) for y in (miny, maxy)
        ]
        + [(rng.uniform(minx, maxx), rng.uniform(miny, maxy)) for _ in range(10)]
    )
    for lon, lat in queries:
        got = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 5}).json()
        cands = got["candidates"]
        assert len(cands) == 5
        brute = _brute(points, lon, lat)
        for c in cands:  # the same distances as the geodesic
            assert abs(c["distance_m"] - brute[c["id"]]) < 0.01, (c, brute[c["id"]])
            assert c["status"] == "available" and c["eta_s"] >= 0
        ranked = [c["distance_m"] for c in cands]
        assert ranked == sorted(ranked)
        chosen = {c["id"] for c in cands}
        # nobody left out is nearer than the farthest chosen (ties within a centimetre)
        assert min(d for i, d in brute.items() if i not in chosen) >= ranked[-1] - 0.01
    tie = client.get(
        "/responders/nearest", params={"lon": fixes[0]["lon"], "lat": fixes[0]["lat"], "k": 2}
    ).json()["candidates"]
    assert sorted(c["id"] for c in tie) == sorted(ids[:2]) and tie[0]["id"] < tie[1]["id"]


def test_nearest_filters_stale_busy_and_distance(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    first = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 1}).json()
    rid = first["candidates"][0]["id"]
    newest = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    fix = {"id": rid, "lon": lon, "lat": lat, "at": newest}
    assert client.post("/responders/positions", json={"positions": [fix]}).json()["updated"] == 1
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    late = client.post(
        "/responders/positions",
        json={"positions": [{"id": rid, "lon": lon + 0.1, "lat": lat, "at": hour_ago}]},
    ).json()
    assert late == {"received": 1, "updated": 0, "ignored": 1}  # late delivery ignored
    near = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 1}).json()
    assert near["candidates"][0]["id"] == rid and near["candidates"][0]["distance_m"] < 0.01
    assert client.patch(f"/responders/{rid}", json={"status": "off_duty"}).status_code == 200
    after = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 3}).json()
    assert rid not in {c["id"] for c in after["candidates"]}
    client.patch(f"/responders/{rid}", json={"status": "available"})
    with engine.begin() as conn:  # a position older than the stale limit is not offered
        conn.execute(
            text("UPDATE responders SET position_at = now() - interval '1 hour' WHERE id = :r"),
            {"r": rid},
        )
    stale = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 3}).json()
    assert rid not in {c["id"] for c in stale["candidates"]}
    listed = client.get("/responders").json()["features"]
    assert next(f for f in listed if f["id"] == rid)["properties"]["stale"] is True
    fix["at"] = datetime.now(UTC).isoformat()
    client.post("/responders/positions", json={"positions": [fix]})
    tight = client.get(
        "/responders/nearest", params={"lon": lon, "lat": lat, "k": 5, "max_distance_m": 1}
    ).json()["candidates"]
    assert [c["id"] for c in tight] == [rid]
    # The same place as a Chinese map SDK reports it (GCJ-02) finds the same responder.
    (gx,), (gy,) = from_wgs84([lon], [lat], "gcj02")
    assert abs(gx - lon) + abs(gy - lat) > 1e-4  # the offset is real (hundreds of metres)
    gcj = client.get(
        "/responders/nearest", params={"lon": gx, "lat": gy, "k": 1, "crs": "gcj02"}
    ).json()["candidates"]
    assert gcj[0]["id"] == rid and gcj[0]["distance_m"] < 0.5


def test_bad_positions_write_nothing(client: TestClient, role_keys: dict) -> None:
    features = client.get("/responders").json()["features"]
    rid = features[0]["id"]
    before = client.get("/responders").json()["features"][0]["properties"]["position_at"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    now = datetime.now(UTC).isoformat()
    for body, status in (
        ({"positions": [{"id": rid, "lon": 114.3, "lat": 30.5, "at": future}]}, 422),
        # a naive time is local time (issue 19); an ISO week date is no time at all
        ({"positions": [{"id": rid, "lon": 114.3, "lat": 30.5, "at": "2026-W01-4"}]}, 422),
        (
            {
                "positions": [
                    {"id": rid, "lon": 114.3, "lat": 30.5, "at": now},
                    {"id": 99_999_999, "lon": 114.3, "lat": 30.5, "at": now},
                ]
            },
            422,
        ),
        ({"positions": []}, 422),
        ({"crs": "epsg:3857", "positions": [{"id": rid, "lon": 1, "lat": 2, "at": now}]}, 422),
    ):
        p = problem(client.post("/responders/positions", json=body))
        assert p["status"] == status, body
    after = client.get("/responders").json()["features"][0]["properties"]["position_at"]
    assert after == before
    # a grid worker may report only their own position; an analyst none
    worker = client.post(
        "/responders/positions",
        json={"positions": [{"id": rid, "lon": 114.3, "lat": 30.5, "at": now}]},
        headers=as_role(role_keys, "grid_worker"),
    )
    assert problem(worker)["status"] == 403
    analyst = client.get("/responders", headers=as_role(role_keys, "analyst"))
    assert problem(analyst)["status"] == 403
    for params in ({"lon": 200, "lat": 0}, {"lon": 1, "lat": 1, "k": 0}, {"lon": 1}):
        assert problem(client.get("/responders/nearest", params=params))["status"] == 422
    assert problem(client.patch(f"/responders/{rid}", json={"status": "asleep"}))["status"] == 422
    assert problem(client.patch("/responders/99999999", json={"status": "busy"}))["status"] == 404


def test_when_fewer_are_offered_the_answer_says_why(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    with engine.begin() as conn:  # four new responders with a skill nobody else has
        for status, age in (
            ("available", "0"),
            ("available", "2 hours"),
            ("busy", "0"),
            ("off_duty", "0"),
        ):
            conn.execute(
                text(
                    "INSERT INTO responders (callsign, kind, status, skills, position, "
                    "position_at) VALUES (:c, 'patrol', :s, ARRAY['why-test'], "
                    "ST_SetSRID(ST_MakePoint(:x, :y), 4326), now() - CAST(:a AS interval))"
                ),
                {"c": f"why-{status}-{age}", "s": status, "x": lon + 0.01, "y": lat, "a": age},
            )
    body = client.get(
        "/responders/nearest", params={"lon": lon, "lat": lat, "k": 5, "skill": "why-test"}
    ).json()
    assert len(body["candidates"]) == 1
    why = body["not_offered"]
    assert {k: why[k] for k in ("matching", "busy", "off_duty", "stale", "too_far")} == {
        "matching": 4,
        "busy": 1,
        "off_duty": 1,
        "stale": 1,
        "too_far": 0,
    }
    assert why["offered"] == 1 and "1 busy" in why["message"] and "off duty" in why["message"]
    zh = client.get(
        "/responders/nearest",
        params={"lon": lon, "lat": lat, "k": 5, "skill": "why-test"},
        headers={"Accept-Language": "zh-CN"},
    ).json()["not_offered"]
    assert {k: zh[k] for k in why if k != "message"} == {k: why[k] for k in why if k != "message"}
    head, stale = "4 支处置力量中：1 支忙碌、1 支下班、", zh["message"].split("、")[-1]
    assert zh["message"].startswith(head), zh["message"]
    assert stale.startswith("1 支位置超过 ") and stale.endswith(" 秒未更新"), zh["message"]
    near = client.get(
        "/responders/nearest",
        params={"lon": lon, "lat": lat, "k": 5, "skill": "why-test", "max_distance_m": 10},
    ).json()
    assert near["candidates"] == [] and near["not_offered"]["too_far"] == 1
    nobody = client.get(
        "/responders/nearest", params={"lon": lon, "lat": lat, "skill": "no-such-skill"}
    ).json()
    assert nobody["not_offered"]["matching"] == 0
    assert nobody["not_offered"]["message"] == "no responder of this kind and skill in your area"
    nobody_zh = client.get(
        "/responders/nearest",
        params={"lon": lon, "lat": lat, "skill": "no-such-skill"},
        headers={"Accept-Language": "zh-CN"},
    ).json()
    assert nobody_zh["not_offered"]["message"] == "您的辖区内没有这一类型和技能的处置力量"
    enough = client.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 1}).json()
    assert "not_offered" not in enough  # k were offered: nothing to explain


def test_a_fixed_station_is_never_stale(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    with engine.begin() as conn:  # a station whose position was set a year ago
        rid = conn.execute(
            text(
                "INSERT INTO responders (callsign, kind, status, skills, position, position_at) "
                "VALUES ('Station 9', 'fire', 'available', ARRAY['station-test'], "
                "ST_SetSRID(ST_MakePoint(:x, :y), 4326), now() - interval '365 days') "
                "RETURNING id"
            ),
            {"x": lon, "y": lat},
        ).scalar_one()
    params = {"lon": lon, "lat": lat, "skill": "station-test"}
    assert client.get("/responders/nearest", params=params).json()["candidates"] == []
    patched = client.patch(f"/responders/{rid}", json={"fixed": True})
    assert patched.status_code == 200 and patched.json()["fixed"] is True
    (found,) = client.get("/responders/nearest", params=params).json()["candidates"]
    assert found["id"] == rid and found["fixed"] is True
    listed = client.get("/responders", params={"kind": "fire"}).json()["features"]
    assert next(f for f in listed if f["id"] == rid)["properties"]["stale"] is False
    bad = client.patch(f"/responders/{rid}", json={"fixed": "sometimes"})
    assert bad.status_code == 422


def test_stations_imported_as_fixed_and_bad_flags_rejected(
    client: TestClient, loaded_city: DemoCity, tmp_path
) -> None:  # noqa: ANN001
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    csv = (
        "name,lon,lat,fixed\n"
        f"Fire Station 1,{lon},{lat},true\n"
        f"Fire Station 2,{lon + 0.001},{lat},sometimes\n"
    )
    response = client.post(
        "/imports/responders",
        files={"file": ("stations.csv", csv.encode(), "text/csv")},
        data={"map": ["name=callsign"], "set": ["kind=fire"]},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["inserted"] == 1 and report["rejected"] == 1
    assert "fixed is not true/false" in report["rejects"][0]["reason"]
    listed = client.get("/responders", params={"kind": "fire"}).json()["features"]
    station = next(f for f in listed if f["properties"]["callsign"] == "Fire Station 1")
    assert station["properties"]["fixed"] is True
