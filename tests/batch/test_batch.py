"""Province scale: partitioned GeoParquet export and batch analytics, in-process and on a Dask
LocalCluster with 2 worker processes, compared with each other and with the API's own
in-database computations."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from geo_service.cli.main import app as cli
from geo_service.demo.city import DemoCity
from geo_service.geo.bbox import BBox
from geo_service.instants import deployment_zone
from geo_service.runtime import Runtime
from geo_service.services.access.auth import Principal
from geo_service.services.access.scope import Scope
from geo_service.services.batch.dataset import partition_files
from geo_service.services.batch.engine import compute_engine
from geo_service.services.batch.execute import compute_batch, run_batch
from geo_service.services.batch.export import export_dataset
from geo_service.services.batch.request import BatchRequest
from geo_service.services.layers.emerging import emerging
from geo_service.services.layers.heatmap import HeatmapQuery, h3_counts
from geo_service.services.layers.hotspots import HotspotQuery, h3_hotspots
from geo_service.services.planning.workload import workload
from geo_service.settings import ApiSettings, Settings
from tests.batch.test_bbox_filters import _corner_with_incidents
from tests.browser import signed_in_page
from tests.conftest import as_role, grid_point, problem
from tests.layers.test_local_time import _insert

UNTIL = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
SINCE = UNTIL - timedelta(days=200)


@pytest.fixture(scope="module")
def dataset(engine: Engine, loaded_city: DemoCity, tmp_path_factory) -> Path:  # noqa: ANN001
    root = tmp_path_factory.mktemp("export")
    for kind in ("incidents", "households", "rental-units"):
        export_dataset(engine, kind, root)
    return root


@pytest.fixture(scope="module")
def engines() -> Iterator[dict]:
    """Both engines: in-process, and a LocalCluster with 2 worker processes."""
    with compute_engine("local") as local, compute_engine("dask", workers=2) as cluster:
        yield {"local": local, "dask": cluster}


def test_export_is_partitioned_geoparquet_that_plain_tools_read(
    dataset: Path, engine: Engine
) -> None:
    folder = dataset / "incidents"
    files = sorted(folder.glob("h3_3=*/month=*/part-0.parquet"))
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
        months = conn.execute(
            text(
                "SELECT count(DISTINCT date_trunc('month', reported_at AT TIME ZONE :zone)) "
                "FROM incidents"
            ),
            {"zone": deployment_zone().key},
        ).scalar_one()
    assert len(files) >= months  # at least one res-3 cell per month
    # plain geopandas on the whole dataset (Hive partitions become columns)
    gdf = gpd.read_parquet(folder)
    assert len(gdf) == n and gdf.crs.to_epsg() == 4326
    assert {"h3_3", "month", "category", "reported_at"} <= set(gdf.columns)
    assert "description" not in gdf.columns  # free text never leaves the database
    households = pq.read_schema(next((dataset / "households").glob("*/part-0.parquet")))
    assert set(households.names) == {"id", "household_size", "h3", "grid_id", "geometry", "bbox"}
    # GeoParquet 1.1 metadata with the bbox covering column
    meta = json.loads(pq.read_metadata(files[0]).metadata[b"geo"])
    assert meta["version"] == "1.1.0"
    assert meta["columns"]["geometry"]["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
    # rows are Hilbert-sorted inside a partition
    one = gpd.read_parquet(files[-1])
    manifest = json.loads((folder / "_manifest.json").read_text())
    keys = one.geometry.hilbert_distance(total_bounds=manifest["hilbert_bounds"]).to_numpy()
    assert len(one) > 10 and np.all(np.diff(keys) >= 0)
    # pyarrow's dataset API and DuckDB read it as one partitioned table
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == n and table.schema.field("bbox").type.num_fields == 4
    count, parts = (
        duckdb.connect()
        .execute(
            f"SELECT count(*), count(DISTINCT month) FROM read_parquet('{folder}/*/*/*.parquet', "
            "hive_partitioning = true)"
        )
        .fetchone()
    )
    assert count == n and parts == months


def test_second_export_writes_only_what_changed(
    engine: Engine, loaded_city: DemoCity, tmp_path: Path
) -> None:
    first = export_dataset(engine, "incidents", tmp_path)
    assert first["written"] == first["partitions"] > 3
    again = export_dataset(engine, "incidents", tmp_path)
    assert again["written"] == 0 and again["unchanged"] == first["partitions"]
    with engine.begin() as conn:
        changed, was = conn.execute(
            text(
                "UPDATE incidents i SET status = 'closed' FROM (SELECT id, status FROM incidents "
                "WHERE status <> 'closed' ORDER BY reported_at DESC LIMIT 1) o "
                "WHERE i.id = o.id RETURNING i.id, o.status"
            )
        ).one()
    try:
        third = export_dataset(engine, "incidents", tmp_path)
        assert third["written"] == 1 and third["unchanged"] == first["partitions"] - 1
        table = ds.dataset(tmp_path / "incidents", format="parquet", partitioning="hive")
        row = table.to_table(filter=ds.field("id") == str(changed)).to_pylist()
        assert row[0]["status"] == "closed"
    finally:
        with engine.begin() as conn:
            conn.execute(  # as it was (a stage's stamps stay consistent with it)
                text("UPDATE incidents SET status = :s WHERE id = :i"), {"i": changed, "s": was}
            )


def test_months_are_the_deployments_and_a_zone_change_rewrites_them(
    engine: Engine, loaded_city: DemoCity, tmp_path: Path
) -> None:
    """23:30 on 31 August and 00:30 on 1 September in Beijing (both 31 August in UTC) are
    exported into two local months; the same folder exported by a UTC deployment is
    rewritten whole into UTC months, never a folder of two calendars."""
    lon, lat, _ = grid_point(loaded_city)
    beijing = ZoneInfo("Asia/Shanghai")
    with engine.begin() as conn:
        assert not conn.execute(
            text("SELECT count(*) FROM incidents WHERE reported_at < '2019-10-01'")
        ).scalar_one()  # the demo's history starts later: these months hold only the two
        for when in (datetime(2019, 8, 31, 23, 30), datetime(2019, 9, 1, 0, 30)):
            _insert(conn, when.replace(tzinfo=beijing), lon, lat)

    def months(folder: Path) -> dict[str, int]:
        table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
        found: dict[str, int] = {}
        for month in table.column("month").to_pylist():
            found[month] = found.get(month, 0) + 1
        return {m: n for m, n in found.items() if m < "2019-10"}

    local = Runtime(Settings(api=ApiSettings(map_tiles="none", timezone="Asia/Shanghai")))
    utc = Runtime(Settings(api=ApiSettings(map_tiles="none", timezone="UTC")))
    with local.bound():
        first = export_dataset(engine, "incidents", tmp_path)
    folder = tmp_path / "incidents"
    assert months(folder) == {"2019-08": 1, "2019-09": 1}
    assert json.loads((folder / "_manifest.json").read_text())["time_zone"] == "Asia/Shanghai"
    # the reader prunes by the folder's own zone: 1 September's local midnight is its edge
    september = partition_files(tmp_path, "incidents", datetime(2019, 9, 1, tzinfo=beijing))
    assert not any("month=2019-08" in f for f in september)
    assert any("month=2019-09" in f for f in september)
    with utc.bound():
        again = export_dataset(engine, "incidents", tmp_path)
    assert again["written"] == again["partitions"] and again["unchanged"] == 0
    assert again["removed"] == 0 and first["partitions"] != 0
    assert months(folder) == {"2019-08": 2}
    assert not list(folder.glob("h3_3=*/month=2019-09"))
    assert json.loads((folder / "_manifest.json").read_text())["time_zone"] == "UTC"


def _admin() -> Scope:
    return Scope(Principal(user_id=0, name="t", role="admin", area_code=None))


def test_heatmap_and_hotspots_equal_in_process_cluster_and_database(
    engine: Engine, dataset: Path, engines: dict
) -> None:
    with Session(engine) as session:
        heat = {
            name: compute_batch(
                BatchRequest("heatmap", dataset, res=8, since=SINCE, until=UNTIL), session, run
            )["cells"]
            for name, run in engines.items()
        }
        database = h3_counts(session, HeatmapQuery(res=8, since=SINCE, until=UNTIL))
        assert heat["local"].equals(heat["dask"])
        assert dict(zip(heat["dask"].cell, heat["dask"]["count"], strict=True)) == database
        assert sum(database.values()) > 1000
        spots = {
            name: compute_batch(
                BatchRequest("hotspots", dataset, res=9, since=SINCE, until=UNTIL, k=2),
                session,
                run,
            )
            for name, run in engines.items()
        }
        api = h3_hotspots(session, HotspotQuery(res=9, since=SINCE, until=UNTIL, k=2))
    local, cluster = spots["local"]["cells"], spots["dask"]["cells"]
    assert spots["dask"]["summary"]["blocks"] >= 1
    assert np.array_equal(local.cell, cluster.cell)
    np.testing.assert_allclose(local.z, cluster.z, rtol=0, atol=1e-9)
    assert (local["class"] == cluster["class"]).all()
    props = {f["properties"]["h3"]: f["properties"] for f in api["features"]}
    import h3

    assert len(props) == len(cluster)
    for cell, z, klass in zip(cluster.cell, cluster.z, cluster["class"], strict=True):
        mine = props[h3.int_to_str(int(cell))]
        assert abs(mine["z"] - z) < 1e-6 and mine["class"] == klass
    assert (cluster["class"] != "Not Significant").any()


def test_halos_make_block_edges_exact() -> None:
    """Cells split across res-3 blocks still see their neighbours in other blocks."""
    import h3.api.basic_int as h3i

    from geo_service.analytics import partitioned as part
    from geo_service.analytics.hotspots import gi_star_z, h3_ring_weights

    # a disk of res-5 cells around a res-3 edge: several blocks
    centre = h3i.latlng_to_cell(30.59, 114.30, 3)
    edge_cell = h3i.cell_to_center_child(h3i.grid_ring(centre, 1)[0], 5)
    cells = np.array(sorted(h3i.grid_disk(edge_cell, 12)), dtype=np.int64)
    values = np.random.default_rng(3).poisson(3, len(cells)).astype(float)
    pieces = part.blocks(cells, 2)
    assert len(pieces) >= 2 and all(len(halo) for _, halo in pieces)
    whole = gi_star_z(values, h3_ring_weights(cells, 2))
    moments = part.Moments.of(values)
    pos = {c: i for i, c in enumerate(cells.tolist())}
    for own, halo in pieces:
        idx = [pos[c] for c in np.concatenate([own, halo]).tolist()]
        z = part.block_gi_star_z(own, halo, values[idx], moments, 2)
        np.testing.assert_allclose(z, whole[[pos[c] for c in own.tolist()]], atol=1e-12)


def test_emerging_workload_and_reattribute_agree(
    engine: Engine, dataset: Path, engines: dict
) -> None:
    # The batch kind counts 7-day bins back from until; the API's bins are ISO weeks of
    # GEO_TIMEZONE (Asia/Shanghai, no DST): the same bins when until is a local Monday 00:00.
    local = UNTIL.astimezone(ZoneInfo("Asia/Shanghai"))
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), time(), local.tzinfo)
    with Session(engine) as session:
        req = BatchRequest(
            "emerging", dataset, res=8, bin="week", since=monday - timedelta(weeks=40), until=monday
        )
        found = {name: compute_batch(req, session, run)["cells"] for name, run in engines.items()}
        api = emerging(session, res=8, bin="week", since=req.since, until=monday)
        assert (found["local"].pattern == found["dask"].pattern).all()
        np.testing.assert_allclose(found["local"].trend_z, found["dask"].trend_z, atol=1e-9)
        by_cell = {f["properties"]["h3"]: f["properties"]["pattern"] for f in api["features"]}
        import h3

        assert {
            h3.int_to_str(int(c)): p
            for c, p in zip(found["dask"].cell, found["dask"].pattern, strict=True)
        } == by_cell

        wl = {
            name: compute_batch(
                BatchRequest("workload", dataset, window_days=90, until=UNTIL), session, run
            )["workload"]
            for name, run in engines.items()
        }
        assert wl["local"].equals(wl["dask"])
        online = workload(session, window_days=90, until=UNTIL, scope=_admin())
        index = {a["id"]: a["index"] for a in online["areas"]}
        assert len(index) == len(wl["dask"])
        for grid_id, value in zip(wl["dask"].grid_id, wl["dask"]["index"], strict=True):
            assert abs(index[grid_id] - value) < 0.006  # the API rounds to 2 decimals
        version = session.execute(text("SELECT max(id) FROM boundary_versions")).scalar_one()
        moves = {
            name: compute_batch(
                BatchRequest("reattribute", dataset, version_id=version), session, run
            )["crosswalk"]
            for name, run in engines.items()
        }
        assert moves["local"].equals(moves["dask"])
        # against PostGIS's own grid_at() for households
        sql = session.execute(
            text(
                "SELECT h.grid_id, (SELECT min(a.id) FROM areas a WHERE a.version_id = :v "
                "AND a.level = 'grid' AND ST_Intersects(a.geom, h.location)), count(*) "
                "FROM households h GROUP BY 1, 2"
            ),
            {"v": version},
        ).all()
        hh = moves["dask"][moves["dask"].entity == "households"]
        got = {
            (int(o), int(n)): int(c)
            for o, n, c in zip(hh.old_grid_id, hh.new_grid_id, hh["count"], strict=True)
        }
        assert got == {(o, n): c for o, n, c in sql}


def test_run_is_stored_and_served_by_api_ogc_and_tiles(
    engine: Engine, dataset: Path, client: TestClient
) -> None:
    out = run_batch(
        engine,
        BatchRequest("hotspots", dataset, res=8, since=SINCE, until=UNTIL),
        engine_name="local",
        actor="test",
    )
    run_id = out["run_id"]
    listing = client.get("/analytics/runs", params={"kind": "hotspots"}).json()
    assert listing["data"][0]["id"] == run_id and listing["data"][0]["engine"] == "local"
    body = client.get(f"/analytics/runs/{run_id}").json()
    assert body["numberMatched"] == out["summary"]["cells"]
    classes = {f["properties"]["class"] for f in body["features"]}
    assert "Not Significant" in classes and len(classes) > 1
    ogc = client.get("/collections").json()
    assert "batch-hotspots" in {c["id"] for c in ogc["collections"]}
    items = client.get("/collections/batch-hotspots/items", params={"limit": 5}).json()
    assert items["numberMatched"] == body["numberMatched"] and len(items["features"]) == 5
    hot = max(body["features"], key=lambda f: f["properties"]["z"])
    lon, lat = hot["geometry"]["coordinates"][0][0]
    n = 2**12
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    r = client.get(f"/tiles/batch-hotspots/12/{x}/{y}.mvt")
    assert r.status_code == 200
    layer = mapbox_vector_tile.decode(r.content)["batch-hotspots"]
    assert hot["properties"]["h3"] in {f["properties"]["h3"] for f in layer["features"]}
    with engine.connect() as conn:
        audit = conn.execute(
            text("SELECT who FROM audit_log WHERE entity = 'batch_run' AND entity_id = :i"),
            {"i": str(run_id)},
        ).scalar_one()
    assert audit == "test"


def test_batch_bbox_filters_keep_the_hexagons_that_meet_the_box(
    engine: Engine, dataset: Path, engines: dict, client: TestClient
) -> None:
    import h3

    heat = BatchRequest("heatmap", dataset, res=8, since=SINCE, until=UNTIL)
    with Session(engine) as session:
        whole = compute_batch(heat, session, engines["local"])
        cells = whole["cells"]
        counts = {
            h3.int_to_str(int(c)): int(n) for c, n in zip(cells.cell, cells["count"], strict=True)
        }
        box, three = _corner_with_incidents(counts)
        boxed = compute_batch(replace(heat, bbox=BBox.parse(box)), session, engines["local"])
    assert {h3.int_to_str(int(c)) for c in boxed["cells"].cell} == three
    assert boxed["partitions"] <= whole["partitions"]
    spots = BatchRequest("hotspots", dataset, res=8, since=SINCE, until=UNTIL)
    run_batch(engine, spots, engine_name="local", actor="test")
    items = client.get("/collections/batch-hotspots/items", params={"bbox": box}).json()
    assert {f["properties"]["h3"] for f in items["features"]} == three
    assert items["numberMatched"] == 3


def test_bad_batch_requests_are_refused_and_write_nothing(
    engine: Engine,
    dataset: Path,
    client: TestClient,
    database_url: str,
    role_keys: dict,
    monkeypatch,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM batch_runs")).scalar_one()
    assert problem(client.get("/analytics/runs/999999"))["status"] == 404
    assert problem(client.get("/analytics/runs", params={"kind": "nope"}))["status"] == 422
    assert problem(client.get("/analytics/runs/0"))["status"] == 422
    bound = as_role(role_keys, "grid_worker")  # batch layers are city-wide products
    assert problem(client.get("/analytics/runs", headers=bound))["status"] == 403
    assert problem(client.get("/collections/batch-hotspots/items", headers=bound))["status"] in (
        403,
        404,  # no hot spot run yet in this database
    )
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    monkeypatch.setenv("GEO_DATABASE_URL", database_url)
    runner = CliRunner()
    heat = ["analytics", "run", "heatmap", "--dataset", str(dataset)]
    for args in (
        ["analytics", "run", "nope", "--dataset", str(dataset)],
        ["analytics", "run", "heatmap", "--dataset", str(tmp_path / "missing")],
        [*heat, "--engine", "spark"],
        [*heat, "--res", "12"],
        [*heat, "--since", "yesterday"],
        ["analytics", "run", "reattribute", "--dataset", str(dataset)],
        ["export", "people", "--to", str(tmp_path)],
        ["export", "incidents", "--to", str(tmp_path), "--format", "csv"],
        ["export", "incidents", "--to", str(a_file)],
        [*heat, "--engine", "dask", "--workers", "0"],
        [*heat, "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"],  # the discard port
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code != 0, args
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            result.exception,
        )  # a message, not a traceback
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM batch_runs")).scalar_one() == before


def test_cli_export_and_run_on_a_cluster(
    engine: Engine, loaded_city: DemoCity, database_url: str, monkeypatch, tmp_path: Path
) -> None:  # noqa: ANN001
    monkeypatch.setenv("GEO_DATABASE_URL", database_url)
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "incidents", "--to", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "partitions written" in result.output
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    communities = grids.parent_code.value_counts().index[:2].tolist()
    args = ["analytics", "run", "proposals", "--engine", "dask", "--dataset", str(tmp_path)]
    for code in communities:
        args += ["--scope", code]
    from distributed import LocalCluster

    # an existing cluster, reached by its scheduler address as a real deployment would be
    with LocalCluster(n_workers=2, processes=True, dashboard_address=":0") as cluster:
        result = runner.invoke(cli, [*args, "--scheduler", cluster.scheduler_address])
        workers_seen = len(cluster.scheduler.workers)
    assert result.exit_code == 0, result.output
    assert workers_seen == 2
    run_id = int(result.output.split("batch run")[1].split(":")[0])
    with engine.connect() as conn:
        summary = conn.execute(
            text("SELECT summary FROM batch_runs WHERE id = :i"), {"i": run_id}
        ).scalar_one()
        status = conn.execute(
            text("SELECT status FROM boundary_versions WHERE id = :v"),
            {"v": summary["version_id"]},
        ).scalar_one()
    assert status == "draft" and summary["parents"] == 2
    assert summary["contiguous_share"] == 1.0
    assert summary["workload_after"]["max_over_mean"] <= summary["workload_before"]["max_over_mean"]


@pytest.mark.browser
def test_heatmap_page_shows_the_newest_batch_runs(
    engine: Engine, dataset: Path, live_server: str, role_keys: dict[str, str]
) -> None:
    from tests.conftest import ARTIFACTS

    for req in (
        BatchRequest("hotspots", dataset, res=8, since=SINCE, until=UNTIL),
        BatchRequest(
            "emerging", dataset, res=8, bin="month", since=UNTIL - timedelta(days=300), until=UNTIL
        ),
    ):
        run_batch(engine, req, engine_name="local", actor="test")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with signed_in_page(live_server, "/map/heatmap", role_keys["analyst"]) as (
        page,
        errors,
    ):
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('significant cells')"
        )
        page.select_option("#layer", "batch-hotspots")
        page.wait_for_function(
            "() => document.getElementById('status').textContent.includes('batch run')"
        )
        hot_status = page.text_content("#status")
        hot_cells = page.locator("path.leaflet-interactive").count()
        page.select_option("#layer", "batch-emerging")
        page.wait_for_function(
            "(before) => { const s = document.getElementById('status').textContent;"
            " return s.includes('batch run') && s !== before; }",
            arg=hot_status,
        )
        emerging_status = page.text_content("#status")
        legend = page.text_content("#legend")
        page.screenshot(path=str(ARTIFACTS / "heatmap_batch_emerging.png"))
    assert not errors, errors
    assert "(local," in hot_status and hot_cells > 0
    assert int(emerging_status.split(": ")[1].split()[0]) > 0
    assert "Spot" in legend
