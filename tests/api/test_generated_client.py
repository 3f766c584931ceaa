"""A Python client generated from the app's OpenAPI document (openapi-python-client) builds,
imports, and calls the main operations against the running API with typed models."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import grid_point

PACKAGE = "geo_service_client"
# Binary answers (vector tiles, GeoPackage files, photos) reach the client as bytes.
CONFIG = {
    "package_name_override": PACKAGE,
    "content_type_overrides": {
        "application/vnd.mapbox-vector-tile": "application/octet-stream",
        "application/geopackage+sqlite3": "application/octet-stream",
        "image/jpeg": "application/octet-stream",  # incident photos
    },
}


def _generator() -> str:
    beside_python = Path(sys.executable).parent / "openapi-python-client"
    found = str(beside_python) if beside_python.exists() else shutil.which("openapi-python-client")
    if found is None:
        pytest.fail("openapi-python-client is not installed (pip install -e '.[dev]')")
    return found


@pytest.fixture(scope="module")
def generated(live_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package, generated from the live spec into a temporary directory."""
    out = tmp_path_factory.mktemp("client")
    spec = out / "openapi.json"
    spec.write_text(requests.get(f"{live_server}/openapi.json", timeout=30).text)
    config = out / "config.json"
    config.write_text(json.dumps(CONFIG))
    # the generator formats its output with ruff: the one beside this interpreter
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [
            _generator(),
            "generate",
            "--path",
            str(spec),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(out / PACKAGE),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # every operation made it into the client (the generator skips what it cannot type)
    assert "WARNING" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _op(package: ModuleType, tag: str, operation_id: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.{tag}.{operation_id}")


def test_generated_client_calls_the_main_operations(
    generated: ModuleType,
    live_server: str,
    role_keys: dict[str, str],
    engine: Engine,
    loaded_city: DemoCity,
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    client = generated.AuthenticatedClient(
        base_url=live_server,
        token=role_keys["admin"],
        prefix="",
        auth_header_name="X-API-Key",
        raise_on_unexpected_status=True,
        timeout=120,
    )
    lon, lat, grid_code = grid_point(loaded_city)
    with engine.connect() as conn:
        category = conn.execute(text("SELECT code FROM categories ORDER BY code")).scalar()

    health = _op(generated, "health", "read_health_health_get").sync(client=client)
    assert isinstance(health, models.Health)
    assert health.status.value == "ok" and health.database.value == "ok"

    found = _op(generated, "areas", "lookup_area_areas_lookup_get").sync(
        client=client, lon=lon, lat=lat
    )
    assert isinstance(found, models.LookupResult) and found.grid.code == grid_code

    created = _op(generated, "incidents", "create_incident_incidents_post").sync_detailed(
        client=client,
        body=models.IncidentCreate(
            category=category,
            location=models.LonLat(lon=lon, lat=lat),
            description="from the generated client",
        ),
    )
    assert created.status_code == 201
    incident = created.parsed
    assert isinstance(incident, models.IncidentPublic)
    assert incident.category == category and incident.grid.code == grid_code
    assert abs(incident.lon - lon) < 1e-6 and abs(incident.lat - lat) < 1e-6

    listing = _op(generated, "incidents", "read_incidents_incidents_get").sync(
        client=client, limit=5
    )
    assert isinstance(listing, models.IncidentsPublic)
    assert 1 <= len(listing.features) <= 5

    heatmap = _op(generated, "heatmap", "read_h3_heatmap_heatmap_h3_get").sync(client=client, res=7)
    assert isinstance(heatmap, models.HeatmapCells) and heatmap.res == 7
    assert heatmap.total == sum(f.properties.count for f in heatmap.features) > 0
    assert all(f.id == f.properties.h3 for f in heatmap.features)

    hotspots = _op(generated, "hotspots", "read_hotspots_hotspots_get").sync(client=client, res=7)
    assert isinstance(hotspots, models.HotspotLayer)
    assert hotspots.parameters.res == 7 and hotspots.parameters.cells == len(hotspots.features)
    classes = {f.properties.class_ for f in hotspots.features}
    assert "Not Significant" in classes

    workload = _op(generated, "planning", "read_workload_workload_get").sync(client=client)
    assert isinstance(workload, models.WorkloadPublic)
    assert grid_code in {a.code for a in workload.areas}
    assert all(a.index >= 0 for a in workload.areas)
    assert workload.overall.max_over_mean >= 1
