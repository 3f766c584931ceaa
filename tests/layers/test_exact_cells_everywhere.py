"""Exact H3 cells everywhere (issue 16, "an independent H3 count equals every heatmap").

On real Chicago crimes (``/work/shared/data``) imported into a tiny hierarchy (district D1,
community C1, grids G1 and G2), an independent count with ``h3.latlng_to_cell`` equals every
heatmap-like output at each resolution it serves: ``/heatmap/h3``, ``/heatmap/download``
(GeoJSON, CSV), the OGC heatmap and hot spot items (res 8, paged), the heatmap, incidents
(below zoom 14) and hot spot tile layers' cells (decoded with mapbox-vector-tile), hot spot
counts and batch heatmap runs (res 6..10); the household and rental-unit aggregates
(res 5..10, exact for admins and published for analysts) and the planning atoms (res 9, 10),
with homes planted where a point's cell is not the parent of its res-11 cell (like case R2).
Migration 0025 fills the homes' cells of existing rows, and the demo loader writes them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import h3
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
import shapely.geometry
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session

from geo_service.api.app import create_app
from geo_service.db.engine import make_engine
from geo_service.db.migrate import alembic_config
from geo_service.demo.city import DemoCity
from geo_service.services.access import disclosure
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.batch.engine import compute_engine
from geo_service.services.batch.execute import compute_batch
from geo_service.services.batch.export import export_dataset
from geo_service.services.batch.request import BatchRequest
from geo_service.services.boundaries.publish import publish_version
from geo_service.services.ingest.imports import ImportOptions, import_file, read_mapping_csv
from geo_service.services.planning.parents import load_parents, parent_fragments
from geo_service.settings import (
    ApiSettings,
    DatabaseSettings,
    DispatchSettings,
    LimitSettings,
    Settings,
)
from tests.conftest import REPO, SHARED_DATA, make_database, role_url
from tests.layers.test_exact_cells import CASES, COMMON, R2, R2_PARENT, R2_TRUE

CHICAGO_CRIMES = SHARED_DATA / "chicago" / "chicago_crimes_2019_sample50k.csv.gz"
CATEGORY_MAP = REPO / "data" / "category_maps" / "chicago_crimes.csv"
INCIDENT_RES = range(6, 11)  # heatmaps, hot spots, tiles, batch
HOME_RES = range(5, 11)  # household and rental-unit aggregates
ATOM_RES = (9, 10)  # planning atoms (res 11 is the stored cell itself)
BOX = (-87.70, 41.75, -87.60, 41.85)  # the tiny district; G1 | G2 split at -87.65
INSIDE = 0.0006  # points kept ~50 m inside the box and off the grids' shared edge
YEAR = ("2019-01-01T00:00:00Z", "2020-01-01T00:00:00Z")
SINCE, UNTIL = (datetime(2019, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC))
N_INCIDENTS, N_HOUSEHOLDS, N_RENTALS = 3000, 1500, 800
TILE_ZOOM = 10
MIN_COUNT = 5

pytestmark = [
    pytest.mark.skipif(not CASES.is_dir(), reason="shared field cases not present"),
    pytest.mark.skipif(not CHICAGO_CRIMES.exists(), reason="shared Chicago data not present"),
]


@dataclass
class City:
    """The tiny Chicago city: owner engine, clients and the points it holds."""

    engine: Engine
    admin: TestClient
    analyst: dict[str, str]
    incidents: pd.DataFrame  # lon, lat
    households: pd.DataFrame  # lon, lat, household_size, planted
    rentals: pd.DataFrame  # lon, lat, unit_count, planted


def _true(
    lon: list[float], lat: list[float], res: int, weights: list[int] | None = None
) -> Counter:
    """The independent count: H3 itself on the points (optionally weighted)."""
    out: Counter = Counter()
    w = weights or [1] * len(lon)
    for x, y, n in zip(lon, lat, w, strict=True):
        out[h3.latlng_to_cell(y, x, res)] += n
    return out


def _parent(lon: list[float], lat: list[float], res: int) -> Counter:
    """What was served before: the res-``res`` parent of each point's res-11 cell."""
    return Counter(
        h3.cell_to_parent(h3.latlng_to_cell(y, x, 11), res) for x, y in zip(lon, lat, strict=True)
    )


def _inside(frame: pd.DataFrame) -> pd.Series:
    return (
        frame.longitude.between(BOX[0] + INSIDE, BOX[2] - INSIDE)
        & frame.latitude.between(BOX[1] + INSIDE, BOX[3] - INSIDE)
        & ((frame.longitude + 87.65).abs() > INSIDE)
    )


def _planted(n: int) -> tuple[list[float], list[float]]:
    """Case R2's point, then points of the box whose cell at some resolution 5..10 is not
    the parent of their res-11 cell (a fixed lattice: deterministic)."""
    r2 = pd.read_csv(R2).iloc[0]
    lon, lat = [float(r2.longitude)], [float(r2.latitude)]
    xs, ys = np.meshgrid(
        np.linspace(BOX[0] + INSIDE, BOX[2] - INSIDE, 53),
        np.linspace(BOX[1] + INSIDE, BOX[3] - INSIDE, 53),
    )
    for x, y in zip(xs.ravel().tolist(), ys.ravel().tolist(), strict=True):
        if abs(x + 87.65) <= INSIDE:
            continue
        fine = h3.latlng_to_cell(y, x, 11)
        if any(h3.latlng_to_cell(y, x, r) != h3.cell_to_parent(fine, r) for r in HOME_RES):
            lon.append(round(x, 6))
            lat.append(round(y, 6))
        if len(lon) == n:
            break
    assert len(lon) == n
    return lon, lat


def _hierarchy(tmp: Path) -> tuple[Path, Path, Path]:
    """The cases' tiny district, one community C1 over it, and its two grids under C1."""
    district = COMMON / "tiny_district.geojson"
    community = json.loads(district.read_text())
    community["features"][0]["properties"] = {
        "code": "C1",
        "name": "Tiny community",
        "parent_code": "D1",
    }
    grids = json.loads((COMMON / "tiny_grids.geojson").read_text())
    for feature in grids["features"]:
        feature["properties"]["parent_code"] = "C1"
    (tmp / "community.geojson").write_text(json.dumps(community))
    (tmp / "grids.geojson").write_text(json.dumps(grids))
    return district, tmp / "community.geojson", tmp / "grids.geojson"


def _import_boundaries(engine: Engine, tmp: Path) -> None:
    district, community, grids = _hierarchy(tmp)
    report = import_file(
        engine,
        "boundaries",
        district,
        ImportOptions(level="district", version_name="tiny", rejects_path=tmp / "d.csv"),
        actor="test",
    )
    version = report.version_id
    assert version is not None
    for path, level, parent in ((community, "community", "district"), (grids, "grid", "community")):
        done = import_file(
            engine,
            "boundaries",
            path,
            ImportOptions(
                level=level,
                parent_level=parent,
                version_id=version,
                rejects_path=tmp / f"{level}.csv",
            ),
            actor="test",
        )
        assert done.rejected == 0, done
    publish_version(engine, version, datetime(2000, 1, 1, tzinfo=UTC), actor="test", force=True)


def _import_points(engine: Engine, tmp: Path, crimes: pd.DataFrame) -> tuple:
    """Incidents, households and rental units at real crime locations (disjoint rows), the
    homes with points planted where parent and exact cells differ."""
    rows = crimes[_inside(crimes)]
    incidents = rows.iloc[:N_INCIDENTS]
    path = tmp / "incidents.csv"
    incidents.to_csv(path, index=False)
    report = import_file(
        engine,
        "incidents",
        path,
        ImportOptions(
            field_map={"primary_type": "category", "date": "reported_at"},
            category_map=read_mapping_csv(CATEGORY_MAP),
            tz="America/Chicago",
            status="closed",
            rejects_path=tmp / "incidents_rejects.csv",
        ),
        actor="test",
    )
    assert report.inserted == N_INCIDENTS, report
    plant_lon, plant_lat = _planted(41)
    homes = rows.iloc[N_INCIDENTS : N_INCIDENTS + N_HOUSEHOLDS]
    households = pd.DataFrame(
        {
            "longitude": [*homes.longitude, *plant_lon[:21]],
            "latitude": [*homes.latitude, *plant_lat[:21]],
            "planted": [False] * len(homes) + [True] * 21,
        }
    )
    households["id"] = [f"h{i}" for i in range(len(households))]
    households["household_size"] = [1 + i % 5 for i in range(len(households))]
    path = tmp / "households.csv"
    households.drop(columns="planted").to_csv(path, index=False)
    report = import_file(
        engine, "households", path, ImportOptions(rejects_path=tmp / "hh.csv"), actor="test"
    )
    assert report.inserted == len(households), report
    start = N_INCIDENTS + N_HOUSEHOLDS
    units = rows.iloc[start : start + N_RENTALS]
    # the R2 point again (the first planted one), and 19 more lattice points
    rentals = pd.DataFrame(
        {
            "longitude": [*units.longitude, plant_lon[0], *plant_lon[21:]],
            "latitude": [*units.latitude, plant_lat[0], *plant_lat[21:]],
            "planted": [False] * len(units) + [True] * 21,
        }
    )
    rentals["id"] = [f"r{i}" for i in range(len(rentals))]
    rentals["unit_count"] = [1 + i % 3 for i in range(len(rentals))]
    path = tmp / "rentals.csv"
    rentals.drop(columns="planted").to_csv(path, index=False)
    report = import_file(
        engine, "rental-units", path, ImportOptions(rejects_path=tmp / "ru.csv"), actor="test"
    )
    assert report.inserted == len(rentals), report
    frame = pd.DataFrame({"lon": incidents.longitude, "lat": incidents.latitude})
    return (
        frame.reset_index(drop=True),
        households.rename(columns={"longitude": "lon", "latitude": "lat"}),
        rentals.rename(columns={"longitude": "lon", "latitude": "lat"}),
    )


@pytest.fixture(scope="module")
def city(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """A database holding only the tiny Chicago city and its points, with an admin client and
    an analyst's key (published counts)."""
    url = make_database("geo_test_exact_all")
    name = make_url(url).database
    assert name is not None
    engine = make_engine(url)
    tmp = tmp_path_factory.mktemp("exact_all")
    _import_boundaries(engine, tmp)
    crimes = pd.read_csv(CHICAGO_CRIMES, dtype={"id": str, "beat": str})
    incidents, households, rentals = _import_points(engine, tmp, crimes)
    with Session(engine) as session:
        admin = create_user(session, name="exact-admin", role="admin", area_code=None, actor="t")
        analyst = create_user(
            session, name="exact-analyst", role="analyst", area_code=None, actor="t"
        )
        admin_key = create_key(session, admin, actor="t")[1]
        analyst_key = create_key(session, analyst, actor="t")[1]
        session.commit()
    settings = Settings(
        database=DatabaseSettings(database_url=role_url(name, "app"), database_owner_url=url),
        api=ApiSettings(map_tiles="none"),
        limits=LimitSettings(requests_per_minute=100_000, burst=10_000, auth_failures_per_minute=0),
        dispatch=DispatchSettings(escalation_interval_s=0),
    )
    assert settings.auth.min_cell_count == MIN_COUNT
    with TestClient(create_app(settings), headers={"X-API-Key": admin_key}) as client:
        yield City(engine, client, {"X-API-Key": analyst_key}, incidents, households, rentals)
    engine.dispose()


# --- incidents: every heatmap-like output ----------------------------------------------------


def _ok(response) -> object:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return response


def _heatmap(client: TestClient, res: int) -> Counter:
    body = _ok(
        client.get(
            "/heatmap/h3",
            params={"res": res, "since": YEAR[0], "until": YEAR[1], "format": "json"},
        )
    ).json()
    return Counter({c["h3"]: c["count"] for c in body["cells"]})


def _download(client: TestClient, res: int, fmt: str) -> Counter:
    response = _ok(
        client.get(
            "/heatmap/download",
            params={"res": res, "since": YEAR[0], "until": YEAR[1], "format": fmt},
        )
    )
    if fmt == "geojson":
        features = response.json()["features"]
        return Counter({f["properties"]["h3"]: f["properties"]["count"] for f in features})
    rows = csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    return Counter({r["h3"]: int(r["count"]) for r in rows})


def _hotspot_counts(client: TestClient, res: int) -> Counter:
    body = _ok(
        client.get("/hotspots", params={"res": res, "since": YEAR[0], "until": YEAR[1]})
    ).json()
    return Counter(
        {
            f["properties"]["h3"]: f["properties"]["count"]
            for f in body["features"]
            if f["properties"]["count"]
        }
    )


def _tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _tile_counts(client: TestClient, layer: str, res: int) -> Counter:
    """A hexagon tile layer over the box: each cell's count, decoded from every tile the box
    touches (a hexagon cut by a tile edge is in both tiles with the same count)."""
    x0, y0 = _tile_xy(BOX[0], BOX[3], TILE_ZOOM)
    x1, y1 = _tile_xy(BOX[2], BOX[1], TILE_ZOOM)
    seen: dict[str, int] = {}
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            response = _ok(
                client.get(
                    f"/tiles/{layer}/{TILE_ZOOM}/{x}/{y}.mvt",
                    params={"res": res, "since": YEAR[0], "until": YEAR[1]},
                )
            )
            decoded = mapbox_vector_tile.decode(response.content)
            for f in decoded.get(layer, {"features": []})["features"]:
                cell, count = f["properties"]["h3"], f["properties"]["count"]
                assert seen.setdefault(cell, count) == count
    return Counter({c: n for c, n in seen.items() if n})


def _ogc_counts(client: TestClient, collection: str) -> Counter:
    """An OGC collection of res-8 cells, paged through its ``next`` links."""
    counts: Counter = Counter()
    url: str | None = f"/collections/{collection}/items"
    params: dict | None = {"datetime": f"{YEAR[0]}/{YEAR[1]}", "limit": 50}
    pages = 0
    while url:
        body = _ok(client.get(url, params=params)).json()
        for f in body["features"]:
            assert f["properties"]["h3"] not in counts
            counts[f["properties"]["h3"]] = f["properties"]["count"]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        params, pages = None, pages + 1
    assert pages > 1  # the paging was exercised
    return +counts


def test_every_incident_heatmap_equals_an_independent_h3_count_on_chicago(
    city: City, tmp_path: Path
) -> None:
    lon, lat = city.incidents.lon.tolist(), city.incidents.lat.tolist()
    root = tmp_path / "dataset"
    export_dataset(city.engine, "incidents", root)
    moved = 0
    with compute_engine("local") as local, Session(city.engine) as session:
        for res in INCIDENT_RES:
            expected = _true(lon, lat, res)
            assert sum(expected.values()) == N_INCIDENTS
            assert _heatmap(city.admin, res) == expected, res
            assert _download(city.admin, res, "geojson") == expected, res
            assert _download(city.admin, res, "csv") == expected, res
            assert _hotspot_counts(city.admin, res) == expected, res
            # the heatmap layer, the incidents layer's hexagons below zoom 14, hot spots
            for layer in ("heatmap", "incidents", "hotspots"):
                assert _tile_counts(city.admin, layer, res) == expected, (layer, res)
            batch = compute_batch(
                BatchRequest("heatmap", root, res=res, since=SINCE, until=UNTIL), session, local
            )["cells"]
            served = {
                h3.int_to_str(int(c)): int(n)
                for c, n in zip(batch.cell, batch["count"], strict=True)
            }
            assert served == expected, res
            moved += sum((_parent(lon, lat, res) - expected).values())
    for collection in ("heatmap-h3-res8", "hotspots-h3-res8"):
        assert _ogc_counts(city.admin, collection) == _true(lon, lat, 8), collection
    # the data can tell exact cells from parents: a real share of points is outside its parent
    assert moved > 0.03 * N_INCIDENTS


# --- households and rental units -------------------------------------------------------------


def _aggregate(client: TestClient, res: int, headers: dict | None = None) -> list[dict]:
    response = client.get("/households/aggregate", params={"res": res}, headers=headers)
    return _ok(response).json()["features"]


def _home_counts(city: City, res: int) -> dict[str, dict[str, int]]:
    """The independent count per cell: households, residents and rental units."""
    hh, ru = city.households, city.rentals
    households = _true(hh.lon.tolist(), hh.lat.tolist(), res)
    residents = _true(hh.lon.tolist(), hh.lat.tolist(), res, hh.household_size.tolist())
    rentals = _true(ru.lon.tolist(), ru.lat.tolist(), res)
    return {
        cell: {
            "households": households[cell],
            "residents": residents[cell],
            "rental_units": rentals[cell],
        }
        for cell in households.keys() | rentals.keys()
    }


def test_home_aggregates_count_each_home_in_the_cell_that_contains_it(city: City) -> None:
    planted = pd.concat(
        [city.households[city.households.planted], city.rentals[city.rentals.planted]]
    )
    differs = []
    for res in HOME_RES:
        expected = _home_counts(city, res)
        features = _aggregate(city.admin, res)
        served = {
            f["properties"]["h3"]: {
                k: f["properties"][k] for k in ("households", "residents", "rental_units")
            }
            for f in features
        }
        assert served == expected, res
        # the hexagon drawn holds every planted home counted in it
        shapes = {f["properties"]["h3"]: shapely.geometry.shape(f["geometry"]) for f in features}
        for x, y in zip(planted.lon, planted.lat, strict=True):
            assert shapes[h3.latlng_to_cell(y, x, res)].contains(shapely.Point(x, y)), res
        differs.append(
            _parent(planted.lon.tolist(), planted.lat.tolist(), res)
            != _true(planted.lon.tolist(), planted.lat.tolist(), res)
        )
    assert sum(differs) >= 4  # the planted homes tell exact cells from parents
    # case R2 as a household and a rental unit: in 882664cd59fffff, not its parent cell
    r2 = pd.read_csv(R2).iloc[0]
    at8 = _home_counts(city, 8)
    features = {f["properties"]["h3"]: f for f in _aggregate(city.admin, 8)}
    assert features[R2_TRUE]["properties"]["households"] == at8[R2_TRUE]["households"] >= 1
    assert shapely.geometry.shape(features[R2_TRUE]["geometry"]).contains(
        shapely.Point(float(r2.longitude), float(r2.latitude))
    )
    assert h3.cell_to_parent(h3.latlng_to_cell(r2.latitude, r2.longitude, 11), 8) == R2_PARENT
    assert at8.get(R2_PARENT, {"households": 0})["households"] == (
        features[R2_PARENT]["properties"]["households"] if R2_PARENT in features else 0
    )


def test_analysts_see_the_exact_cells_published_with_the_cells_own_keys(city: City) -> None:
    """Disclosure unchanged: an analyst's figure per cell is ``disclosure.publish`` of the
    true count of the homes the hexagon contains, keyed by ``h3:<cell>`` as before."""
    hidden = 0
    with Session(city.engine) as session:
        for res in (5, 8, 10):
            expected = _home_counts(city, res)
            cells = sorted(expected)
            keys = disclosure.identity_keys(session, [f"h3:{h3.str_to_int(c)}" for c in cells])
            published = {
                cell: disclosure.publish_or_exact(
                    expected[cell], exact=False, household_key=key, rental_key=key, base=MIN_COUNT
                )
                for cell, key in zip(cells, keys, strict=True)
            }
            served = {
                f["properties"]["h3"]: {k: v for k, v in f["properties"].items() if k != "h3"}
                for f in _aggregate(city.admin, res, city.analyst)
            }
            assert served == published, res
            hidden += sum(bool(v["suppressed"]) for v in served.values())
    assert hidden > 0  # small counts are hidden at the fine resolutions


# --- planning atoms --------------------------------------------------------------------------


def _held_by(
    tree: shapely.STRtree, lon: list[float], lat: list[float], weights: list[int] | None = None
) -> dict[int, int]:
    """What each polygon of ``tree`` holds of the points (``weights`` each, default 1): a
    point on a shared border counts once, in the lowest-numbered polygon."""
    hit, piece = tree.query(shapely.points(lon, lat), predicate="intersects")
    first: dict[int, int] = {}
    for h, f in zip(hit.tolist(), piece.tolist(), strict=True):
        first[h] = min(f, first.get(h, f))
    counts: Counter = Counter()
    for h, f in first.items():
        counts[f] += weights[h] if weights is not None else 1
    return dict(counts)


def test_planning_atoms_hold_the_homes_and_incidents_their_polygons_contain(city: City) -> None:
    """Planning fragments (street blocks cut by H3 cells; this city loads no roads, so its
    blocks are the whole parent) count each record in the fragment whose polygon holds it,
    checked here with shapely on the records' own coordinates, never in a parent cell."""
    hh, ru, inc = city.households, city.rentals, city.incidents
    with Session(city.engine) as session:
        (parent,) = load_parents(session, ["C1"], [])
        for res in ATOM_RES:
            frags = parent_fragments(session, parent, res=res, since=SINCE, until=UNTIL)
            # every block cut: what each fragment holds (read as a plan cutting it reads it)
            per = frags.fragment_terms(np.ones(len(frags.blocks), dtype=bool))[0]
            tree = shapely.STRtree(frags.pieces)
            for term, expected in (
                ("households", _held_by(tree, hh.lon.tolist(), hh.lat.tolist())),
                (
                    "rental_units",
                    _held_by(tree, ru.lon.tolist(), ru.lat.tolist(), ru.unit_count.tolist()),
                ),
                ("history", _held_by(tree, inc.lon.tolist(), inc.lat.tolist())),
            ):
                held = {i: int(v) for i, v in enumerate(per[term]) if v}
                assert held == expected, (res, term)
            # the fragments tile the parent and every home lies in one: a new grid (a union of
            # fragments) holds the homes it is published with
            assert shapely.union_all(frags.pieces).symmetric_difference(parent.geom).area < 1e-12
            assert sum(_held_by(tree, hh.lon.tolist(), hh.lat.tolist()).values()) == len(hh)
    planted = hh[hh.planted]
    assert any(
        _parent(planted.lon.tolist(), planted.lat.tolist(), r)
        != _true(planted.lon.tolist(), planted.lat.tolist(), r)
        for r in ATOM_RES
    )


# --- writers: migration 0025 and the demo loader ---------------------------------------------


def test_migration_0025_fills_the_exact_cells_of_existing_homes(database_url: str) -> None:
    url = make_database("geo_test_exact_homes_migration")
    config = alembic_config(url)
    command.downgrade(config, "0024")
    engine = make_engine(url)
    lon, lat = _planted(25)
    try:
        with engine.begin() as conn:
            for i, (x, y) in enumerate(zip(lon, lat, strict=True)):
                params = {"x": x, "y": y, "h": h3.str_to_int(h3.latlng_to_cell(y, x, 11))}
                conn.execute(
                    text(
                        "INSERT INTO households (location, household_size, h3) "
                        "VALUES (ST_SetSRID(ST_MakePoint(:x, :y), 4326), 2, :h)"
                    ),
                    params,
                )
                conn.execute(
                    text(
                        "INSERT INTO rental_units (location, unit_count, occupants, status, h3) "
                        "VALUES (ST_SetSRID(ST_MakePoint(:x, :y), 4326), 1, 0, 'registered', :h)"
                    ),
                    {**params, "i": i},
                )
        command.upgrade(config, "heads")  # every branch (0031 and 0033 follow 0027)
        with engine.connect() as conn:
            for table in ("households", "rental_units"):
                for res in HOME_RES:
                    stored = Counter(
                        h3.int_to_str(c)
                        for c in conn.execute(text(f"SELECT h3_{res} FROM {table}")).scalars()
                    )
                    assert stored == _true(lon, lat, res), (table, res)
                nullable = conn.execute(
                    text(
                        "SELECT count(*) FROM information_schema.columns WHERE table_name = :t "
                        "AND column_name LIKE 'h3\\_%' AND is_nullable = 'YES'"
                    ),
                    {"t": table},
                ).scalar_one()
                assert nullable == 0, table
        assert any(_parent(lon, lat, r) != _true(lon, lat, r) for r in HOME_RES)
        command.downgrade(config, "0024")  # and back: the columns go
        with engine.connect() as conn:
            left = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.columns "
                    "WHERE table_name IN ('households', 'rental_units') "
                    "AND column_name LIKE 'h3\\_%'"
                )
            ).scalar_one()
        assert left == 0
    finally:
        engine.dispose()


def test_demo_loader_writes_each_homes_own_cells(engine: Engine, loaded_city: DemoCity) -> None:
    with engine.connect() as conn:
        for table in ("households", "rental_units"):
            rows = conn.execute(
                text(
                    f"SELECT ST_X(location), ST_Y(location), h3_5, h3_6, h3_7, h3_8, h3_9, "
                    f"h3_10 FROM {table}"
                )
            ).all()
            assert len(rows) > 100
            for x, y, *cells in rows:
                assert cells == [h3.str_to_int(h3.latlng_to_cell(y, x, r)) for r in HOME_RES]
