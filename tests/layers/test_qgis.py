"""Real QGIS (Debian bookworm's PyQGIS 3.22) loads geo-service's OGC API - Features layers.

PyQGIS lives in Debian's ``/usr/bin/python3``, not in the project's virtualenv: each test runs
tests/layers/qgis_read.py there in a child process (offscreen, a throw-away QGIS profile),
against a live uvicorn server, and checks what QGIS read against the database and the JSON API.
QGIS 3.22 cannot put an API key in a layer's URI or an authentication configuration, so the
script adds it with a request preprocessor on QGIS's network access manager (see its
docstring). ``scripts/install_system_deps.sh`` installs python3-qgis; without it these tests
fail, they do not skip.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import as_role

SCRIPT = Path(__file__).with_name("qgis_read.py")
QGIS_PYTHON = "/usr/bin/python3"  # Debian's Python 3.11, where python3-qgis installs PyQGIS


@pytest.fixture(scope="module")
def qgis_python() -> str:
    """Debian's Python with PyQGIS; a clear failure (never a skip) when it is missing."""
    probe = subprocess.run(
        [QGIS_PYTHON, "-c", "import qgis.core; print(qgis.core.Qgis.QGIS_VERSION)"],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
    )
    if probe.returncode != 0:
        pytest.fail(
            f"PyQGIS is not importable by {QGIS_PYTHON} (Debian package python3-qgis): run "
            "scripts/install_system_deps.sh (as root, or with sudo) or "
            "`apt-get install --no-install-recommends python3-qgis`.\n" + probe.stderr[-2000:]
        )
    return probe.stdout.strip()


def _qgis(
    url: str, key: str, auth: str, layers: list[dict[str, Any]], profile: Path
) -> dict[str, Any]:
    """What QGIS read from ``layers`` of the server at ``url`` (qgis_read.py's JSON)."""
    spec = {"url": url, "auth": auth, "profile": str(profile), "layers": layers}
    env = {**os.environ, "GEO_QGIS_KEY": key, "QT_QPA_PLATFORM": "offscreen", "HOME": str(profile)}
    proc = subprocess.run(
        [QGIS_PYTHON, str(SCRIPT), json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    out: dict[str, Any] = json.loads(proc.stdout)
    assert out["qgis"].startswith("3."), out["qgis"]
    return out


def _count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def _small_box(loaded_city: DemoCity) -> tuple[float, float, float, float]:
    """A box around the city's centre, one part of the city (as tests/layers/test_ogc_clients)."""
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    return (cx - 0.01, cy - 0.01, cx + 0.01, cy + 0.01)


def _items(client: TestClient, headers: dict[str, str], cid: str, **params: Any) -> dict:
    response = client.get(f"/collections/{cid}/items", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


def test_qgis_loads_grids_hotspots_and_incidents_with_an_api_key(
    qgis_python: str,
    live_server: str,
    role_keys: dict[str, str],
    engine: Engine,
    client: TestClient,
    loaded_city: DemoCity,
    tmp_path: Path,
) -> None:
    analyst = as_role(role_keys, "analyst")
    layers = [
        {"id": "grids", "sample": 100},
        {"id": "hotspots-h3-res8", "sample": 5},
        {"id": "incidents", "sample": 5},
    ]
    out = _qgis(live_server, role_keys["analyst"], "x-api-key", layers, tmp_path)
    assert out["qgis"] == qgis_python
    read = out["layers"]
    for cid in ("grids", "hotspots-h3-res8", "incidents"):
        assert read[cid]["valid"], (cid, read[cid])
        # every feature read, with its geometry; the provider's count is the features' count
        assert read[cid]["read"] == read[cid]["feature_count"] == read[cid]["with_geometry"], cid
        assert read[cid]["crs"] == "EPSG:4326", cid
    # every request went to this server, over the OGC API paths, and paged through the items
    assert all(u.startswith(live_server) for u in out["asked"]), out["asked"]
    assert any("/collections/incidents/items?" in u and "offset=" in u for u in out["asked"])
    assert out["answered"] and {status for _, status in out["answered"]} == {200}, out

    # grids: every grid of the loaded city, with the API's attributes and the DB's extent
    grids = read["grids"]
    city_grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    db_grids = _count(engine, "SELECT count(*) FROM areas WHERE level = 'grid'")
    assert grids["read"] == db_grids == len(city_grids)
    assert grids["geometry_type"] == 2  # QgsWkbTypes.PolygonGeometry
    assert {"code", "name", "level"} <= set(grids["fields"]), grids["fields"]
    assert sorted(f["code"] for f in grids["sample"]) == sorted(city_grids.code)
    api_grids = _items(client, analyst, "grids", limit=1000)["features"]
    by_code = {f["properties"]["code"]: f["properties"] for f in api_grids}
    for feature in grids["sample"]:
        served = by_code[feature["code"]]
        assert feature["name"] == served["name"] and feature["level"] == "grid", feature
    with engine.connect() as conn:
        box = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom)::geometry AS e FROM areas WHERE level = 'grid') s"
            )
        ).one()
    assert grids["extent"] == pytest.approx(list(box), abs=1e-6)

    # hot spots: numberMatched of the JSON items, the JSON properties as fields, same values
    hot = read["hotspots-h3-res8"]
    served_hot = _items(client, analyst, "hotspots-h3-res8", limit=1)
    assert hot["read"] == served_hot["numberMatched"] > 1
    assert hot["geometry_type"] == 2
    properties = served_hot["features"][0]["properties"]
    assert set(properties) <= set(hot["fields"]), (hot["fields"], properties)
    for feature in hot["sample"]:
        one = client.get(f"/collections/hotspots-h3-res8/items/{feature['h3']}", headers=analyst)
        assert one.status_code == 200, one.text
        expected = one.json()["properties"]
        for name in ("h3", "count", "class"):
            assert feature[name] == expected[name], (name, feature, expected)
        for name in ("z", "p", "p_fdr"):
            assert feature[name] == pytest.approx(expected[name]), (name, feature, expected)

    # incidents: an analyst reads them as data points (no descriptions), every one of them
    inc = read["incidents"]
    served_inc = _items(client, analyst, "incidents", limit=1)
    assert (
        inc["read"]
        == served_inc["numberMatched"]
        == _count(engine, "SELECT count(*) FROM incidents")
    )
    assert inc["geometry_type"] == 0  # points
    assert "description" not in inc["fields"]
    assert set(served_inc["features"][0]["properties"]) <= set(inc["fields"]), inc["fields"]
    with engine.connect() as conn:
        for feature in inc["sample"]:
            row = conn.execute(
                text("SELECT category, priority, status FROM incidents WHERE id = :i"),
                {"i": feature["id"]},
            ).one()
            assert (feature["category"], feature["priority"], feature["status"]) == tuple(row)


def test_qgis_sends_the_bbox_of_its_view_and_counts_what_the_api_counts(
    qgis_python: str,
    live_server: str,
    role_keys: dict[str, str],
    engine: Engine,
    client: TestClient,
    loaded_city: DemoCity,
    tmp_path: Path,
) -> None:
    """A filter rectangle, as QGIS asks when the map is panned (``restrictToRequestBBOX``):
    the request carries ``bbox`` and QGIS counts what the API counts for that box."""
    analyst = as_role(role_keys, "analyst")
    x0, y0, x1, y1 = box = _small_box(loaded_city)
    cids = ("grids", "hotspots-h3-res8", "incidents")
    layers = [{"id": cid, "bbox": list(box), "restrict_to_bbox": True, "sample": 0} for cid in cids]
    out = _qgis(live_server, role_keys["analyst"], "x-api-key", layers, tmp_path)
    for cid in cids:
        info = out["layers"][cid]
        assert info["valid"], (cid, info)
        served = _items(client, analyst, cid, bbox=f"{x0},{y0},{x1},{y1}", limit=1)
        assert info["in_bbox"] == served["numberMatched"] > 0, (cid, info["in_bbox"], served)
        assert info["in_bbox"] < info["read"], cid  # the box is one part of the city
        asked = [u for u in out["asked"] if f"/collections/{cid}/items?" in u and "bbox=" in u]
        assert asked, (cid, out["asked"])
    in_box = _count(
        engine,
        "SELECT count(*) FROM incidents "
        "WHERE ST_Intersects(location, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
        a=x0,
        b=y0,
        c=x1,
        d=y1,
    )
    assert out["layers"]["incidents"]["in_bbox"] == in_box


def test_qgis_sends_the_key_as_a_bearer_header_and_reads_nothing_without_one(
    qgis_python: str, live_server: str, role_keys: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    grids = _count(engine, "SELECT count(*) FROM areas WHERE level = 'grid'")
    bearer = _qgis(
        live_server, role_keys["analyst"], "bearer", [{"id": "grids"}], tmp_path / "bearer"
    )
    assert bearer["layers"]["grids"]["valid"], bearer["layers"]["grids"]
    assert bearer["layers"]["grids"]["read"] == grids
    assert {status for _, status in bearer["answered"]} == {200}, bearer["answered"]
    # no key: the landing page answers 401 and QGIS gives up on the layer
    anonymous = _qgis(live_server, "", "none", [{"id": "grids"}], tmp_path / "anonymous")
    assert not anonymous["layers"]["grids"]["valid"], anonymous["layers"]["grids"]
    assert anonymous["answered"] == [[live_server, 401]], anonymous
