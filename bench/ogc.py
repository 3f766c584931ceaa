"""Benchmark: copying the hot spot layer over OGC API - Features with Debian's GDAL 3.6.

``ogr2ogr -f GPKG out.gpkg OAPIF:<server> hotspots-h3-res8`` at GDAL's defaults (GDAL 3.6 asks
for 10 features a page and follows the ``next`` links), against ``geo-service serve`` over the
demo city (1,500 grids, 500,000 incidents, in the scratch database ``geo_ogc``):

- ours: the layer computed once per parameter set and paged from that result
  (``GEO_OGC_LAYER_CACHE=true``, the default);
- baseline: the same server and copy with the layer cache off (``GEO_OGC_LAYER_CACHE=false``),
  every page recomputing Gi*, as issue 16 measured it (42 s over 114 requests).

Ours is timed cold (its first page computes the layer) and again warm; every copy must hold
the same features (the layer's numberMatched). Goal: ours <= 2 s. Prints the ratio; writes
bench/results/ogc.json.

    .venv/bin/python bench/ogc.py [--incidents 500000] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import httpx
from common import geo_server, scratch_database
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.engine import make_engine
from geo_service.demo.city import generate_city
from geo_service.demo.load import load_city
from geo_service.services.access.auth import create_key, create_user
from geo_service.settings import DatabaseSettings

RESULTS = Path(__file__).resolve().parent / "results"
LAYER = "hotspots-h3-res8"
OGR2OGR = "/usr/bin/ogr2ogr"  # Debian's GDAL 3.6: 10 features a page by default


def _database(name: str, incidents: int, reuse: bool) -> str:
    """The demo city in ``name``: made afresh, or the one there with ``--reuse``."""
    if reuse:
        settings = DatabaseSettings()
        from geo_service.db.cluster import EmbeddedCluster

        server = settings.database_url or EmbeddedCluster(settings.data_dir).url("geo")
        return server.rsplit("/", 1)[0] + f"/{name}"
    url = scratch_database(name)
    engine = make_engine(url)
    load_city(
        engine, generate_city(seed=42, grids=1500, incidents=incidents, end_date=date.today())
    )
    engine.dispose()
    return url


def _key(url: str) -> str:
    engine = make_engine(url)
    with Session(engine) as session:
        user = create_user(
            session, name=f"ogc-bench-{os.getpid()}", role="analyst", area_code=None, actor="bench"
        )
        key = create_key(session, user, actor="bench")[1]
        session.commit()
        incidents = session.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    engine.dispose()
    print(f"demo city: {incidents:,} incidents")
    return key


def _copy(base: str, headers: Path, out: Path) -> tuple[float, int]:
    """Seconds for one ogr2ogr copy of the layer to a GeoPackage, and the features copied."""
    out.unlink(missing_ok=True)
    env = {**os.environ, "GDAL_HTTP_HEADER_FILE": str(headers), "GDAL_HTTP_TIMEOUT": "300"}
    env.pop("GDAL_HTTP_HEADERS", None)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [OGR2OGR, "-f", "GPKG", str(out), f"OAPIF:{base}", LAYER],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    info = subprocess.run(
        ["/usr/bin/ogrinfo", "-ro", "-so", str(out), LAYER], capture_output=True, text=True
    ).stdout
    count = int(info.split("Feature Count: ", 1)[1].split()[0])
    return seconds, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=500_000)
    parser.add_argument("--database", default="geo_ogc")
    parser.add_argument("--reuse", action="store_true", help="use the city already loaded")
    args = parser.parse_args()
    url = _database(args.database, args.incidents, args.reuse)
    key = _key(url)
    work = Path(tempfile.mkdtemp(prefix="ogc-bench-"))
    headers = work / "headers.txt"
    headers.write_text(f"X-API-Key: {key}\n")
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    with (
        geo_server(url) as ours,
        geo_server(url, env={"GEO_OGC_LAYER_CACHE": "false"}) as baseline,
    ):
        for base in (ours, baseline):
            # warm both processes alike: the OpenAPI document GDAL reads, and the first Gi*
            # (scipy loads on first use) under another parameter set than the copy's
            for path, params in (
                ("/openapi.json", {}),
                (
                    f"/collections/{LAYER}/items",
                    {"limit": 1, "datetime": "2000-01-01T00:00:00Z/.."},
                ),
            ):
                httpx.get(
                    f"{base}{path}", params=params, headers={"X-API-Key": key}, timeout=300
                ).raise_for_status()
        page = httpx.get(
            f"{baseline}/collections/{LAYER}/items",
            params={"limit": 1},
            headers={"X-API-Key": key},
            timeout=300,
        )
        page.raise_for_status()
        matched = page.json()["numberMatched"]
        # ours first, cold: its first page computes the layer (as the first copy after a
        # minute does in production); then the baseline; then ours again, from the cache
        for name, base in (("ours", ours), ("baseline", baseline), ("ours_warm", ours)):
            seconds[name], counts[name] = _copy(base, headers, work / f"{name}.gpkg")
            print(f"{name:<9} {seconds[name]:7.2f} s  {counts[name]:,} features")
    assert set(counts.values()) == {matched}, (counts, matched)
    ratio = seconds["baseline"] / seconds["ours"]
    requests = -(-matched // 10)
    print(
        f"{LAYER}: {matched:,} features, ~{requests} pages of 10: ours {seconds['ours']:.2f} s "
        f"(cold; {seconds['ours_warm']:.2f} s warm), baseline (no layer cache) "
        f"{seconds['baseline']:.2f} s: {ratio:.1f}x faster (goal: ours <= 2 s)"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ogc.json").write_text(
        json.dumps(
            {
                "benchmark": "ogc",
                "layer": LAYER,
                "client": "ogr2ogr (GDAL 3.6, Debian) to GeoPackage, default page size",
                "features": matched,
                "seconds": {name: round(v, 3) for name, v in seconds.items()},
                "speedup": round(ratio, 1),
                "goal_s": 2.0,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
