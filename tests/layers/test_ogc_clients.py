"""Real OGC API - Features clients against a live server: OWSLib, Debian's GDAL 3.6 (ogrinfo)
and the GDAL of the pyogrio wheel (3.12), with the README's recipe for the API key.

Every count is compared with an independent count from the database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from owslib.ogcapi.features import Features
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity

COLLECTIONS = (
    "districts",
    "streets",
    "communities",
    "grids",
    "incidents",
    "heatmap-h3-res8",
    "hotspots-h3-res8",
    "emerging-hotspots-h3-res8",
)


def _count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def _expected_counts(engine: Engine) -> dict[str, int]:
    """Features per collection counted from the tables (hot spot layers: the study area is
    every cell covering the city, as served; checked through the JSON API's numberMatched)."""
    out = {
        cid: _count(engine, "SELECT count(*) FROM areas WHERE level = :l", l=level)
        for cid, level in (
            ("districts", "district"),
            ("streets", "street"),
            ("communities", "community"),
            ("grids", "grid"),
        )
    }
    out["incidents"] = _count(engine, "SELECT count(*) FROM incidents")
    out["heatmap-h3-res8"] = _count(engine, "SELECT count(DISTINCT h3_8) FROM incidents")
    return out


@pytest.fixture
def header_file(tmp_path: Path, role_keys: dict[str, str]) -> Path:
    """The README's recipe: the API key in a header file (GDAL_HTTP_HEADER_FILE)."""
    path = tmp_path / "headers.txt"
    path.write_text(f"X-API-Key: {role_keys['analyst']}\n")
    return path


def _gdal_env(header_file: Path) -> dict[str, str]:
    env = {**os.environ, "GDAL_HTTP_HEADER_FILE": str(header_file), "GDAL_HTTP_TIMEOUT": "60"}
    env.pop("GDAL_HTTP_HEADERS", None)
    return env


def _ogrinfo(header_file: Path, *args: str) -> str:
    """Debian's ogrinfo (GDAL 3.6, /usr/bin)."""
    proc = subprocess.run(
        ["/usr/bin/ogrinfo", "-ro", *args],
        capture_output=True,
        text=True,
        env=_gdal_env(header_file),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _gdal36_features(header_file: Path, url: str, layer: str, *args: str) -> int:
    """How many features Debian's GDAL reads from a layer, paging through the next links."""
    out = _ogrinfo(header_file, "-al", "-q", "-geom=NO", *args, f"OAPIF:{url}", layer)
    return out.count("OGRFeature(")


PYOGRIO = """
import json, sys, pyogrio
url, layer, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if "bbox" in options:
    options["bbox"] = tuple(options["bbox"])
frame = pyogrio.read_dataframe(url, layer=layer, **options)
info = pyogrio.read_info(url, layer=layer)
print(json.dumps({"gdal": pyogrio.__gdal_version_string__, "rows": len(frame),
                  "columns": list(frame.columns), "info_features": info["features"]}))
"""


def _gdal312(header_file: Path, url: str, layer: str, **options: Any) -> dict[str, Any]:
    """The pyogrio wheel's GDAL (3.12) in a child process (its own GDAL configuration)."""
    proc = subprocess.run(
        [sys.executable, "-c", PYOGRIO, f"OAPIF:{url}", layer, json.dumps(options)],
        capture_output=True,
        text=True,
        env=_gdal_env(header_file),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def _window(loaded_city: DemoCity) -> tuple[str, str, str]:
    """A datetime interval over the second half of the city's incidents, and its ends."""
    first = loaded_city.incidents.reported_at.min().to_pydatetime()
    last = loaded_city.incidents.reported_at.max().to_pydatetime()
    start = (first + (last - first) / 2).replace(microsecond=0)
    end = last + timedelta(days=1)
    a, b = start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{a}/{b}", a, b


def _small_box(loaded_city: DemoCity) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = loaded_city.areas.total_bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    return (cx - 0.01, cy - 0.01, cx + 0.01, cy + 0.01)


# --- OWSLib ---------------------------------------------------------------------------------


def test_owslib_lists_pages_and_fetches_single_features(
    live_server: str, role_keys: dict[str, str], engine: Engine
) -> None:
    api = Features(live_server, headers={"X-API-Key": role_keys["analyst"]})
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in (api.conformance()["conformsTo"])
    )
    listed = {c["id"] for c in api.collections()["collections"]}
    assert set(COLLECTIONS) <= listed
    expected = _expected_counts(engine)
    for cid in COLLECTIONS:
        first = api.collection_items(cid, limit=1)
        matched = first["numberMatched"]
        if cid in expected:
            assert matched == expected[cid], cid
        # page with limit/offset, as an OWSLib notebook does
        limit = max(1, -(-matched // 3))
        ids: list[Any] = []
        for offset in range(0, matched, limit):
            page = api.collection_items(cid, limit=limit, offset=offset)
            ids += [f["id"] for f in page["features"]]
        assert len(ids) == len(set(ids)) == matched, cid
        one = api.collection_item(cid, str(ids[-1]))
        assert one["id"] == ids[-1] and one["type"] == "Feature", cid
    # a limit above the maximum is clamped, not refused (OWSLib asks for what it wants)
    assert api.collection_items("grids", limit=100_000)["numberReturned"] == expected["grids"]


# --- GDAL 3.6 (Debian) ----------------------------------------------------------------------


def test_gdal_36_reads_every_collection_and_pages_through_it(
    live_server: str, header_file: Path, engine: Engine
) -> None:
    listing = _ogrinfo(header_file, f"OAPIF:{live_server}")
    for cid in COLLECTIONS:
        assert cid in listing, listing
    expected = _expected_counts(engine)
    for cid in COLLECTIONS:
        # 250 a page: several pages for every layer, in a test's time
        read = _gdal36_features(header_file, live_server, cid, "-oo", "PAGE_SIZE=250")
        summary = _ogrinfo(header_file, "-so", f"OAPIF:{live_server}", cid)
        assert f"Feature Count: {read}" in summary, (cid, summary)
        if cid in expected:
            assert read == expected[cid], cid
        assert read > 1, cid


def test_gdal_36_filters_by_bbox_and_datetime(
    live_server: str,
    header_file: Path,
    engine: Engine,
    loaded_city: DemoCity,
    client: Any,
) -> None:
    x0, y0, x1, y1 = _small_box(loaded_city)
    in_box = _count(
        engine,
        "SELECT count(*) FROM incidents "
        "WHERE ST_Intersects(location, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
        a=x0,
        b=y0,
        c=x1,
        d=y1,
    )
    spat = ("-spat", str(x0), str(y0), str(x1), str(y1))
    assert 0 < in_box < _count(engine, "SELECT count(*) FROM incidents")
    assert _gdal36_features(header_file, live_server, "incidents", *spat) == in_box
    for cid in ("grids", "heatmap-h3-res8", "hotspots-h3-res8"):
        served = client.get(
            f"/collections/{cid}/items", params={"bbox": f"{x0},{y0},{x1},{y1}", "limit": 1}
        ).json()["numberMatched"]
        assert _gdal36_features(header_file, live_server, cid, *spat) == served > 0, cid
    # datetime: GDAL 3.6 has no DATETIME option (3.10 added it) and asks the collection's
    # own URL without the query given; a -where on the temporal property is what it offers
    _, start, end = _window(loaded_city)
    in_window = _count(
        engine,
        "SELECT count(*) FROM incidents WHERE reported_at >= :a AND reported_at < :b",
        a=start,
        b=end,
    )
    assert 0 < in_window < _count(engine, "SELECT count(*) FROM incidents")
    where = f"reported_at >= '{start}' AND reported_at < '{end}'"
    read = _gdal36_features(header_file, live_server, "incidents", "-where", where)
    assert read == in_window


# --- GDAL 3.12 (the pyogrio wheel) ----------------------------------------------------------


def test_gdal_312_reads_pages_and_filters_every_collection(
    live_server: str, header_file: Path, engine: Engine, loaded_city: DemoCity, client: Any
) -> None:
    expected = _expected_counts(engine)
    x0, y0, x1, y1 = _small_box(loaded_city)
    interval, start, end = _window(loaded_city)
    for cid in COLLECTIONS:
        served = client.get(f"/collections/{cid}/items", params={"limit": 1}).json()
        out = _gdal312(header_file, live_server, cid)
        assert out["gdal"].startswith("3.") and int(out["gdal"].split(".")[1]) >= 10, out
        assert out["rows"] == out["info_features"] == served["numberMatched"], cid
        if cid in expected:
            assert out["rows"] == expected[cid], cid
        boxed = client.get(
            f"/collections/{cid}/items", params={"bbox": f"{x0},{y0},{x1},{y1}", "limit": 1}
        ).json()["numberMatched"]
        small = _gdal312(header_file, live_server, cid, bbox=(x0, y0, x1, y1))
        assert small["rows"] == boxed > 0, cid
        assert boxed < out["rows"] or out["rows"] <= 2, cid  # the box is one part of the city
    # datetime through the DATETIME open option (GDAL >= 3.10)
    in_window = _count(
        engine,
        "SELECT count(*) FROM incidents WHERE reported_at >= :a AND reported_at < :b",
        a=start,
        b=end,
    )
    timed = _gdal312(header_file, live_server, "incidents", DATETIME=interval)
    assert timed["rows"] == in_window
    heat = _gdal312(header_file, live_server, "heatmap-h3-res8", DATETIME=interval)
    cells = _count(
        engine,
        "SELECT count(DISTINCT h3_8) FROM incidents WHERE reported_at >= :a AND reported_at < :b",
        a=start,
        b=end,
    )
    assert heat["rows"] == cells
