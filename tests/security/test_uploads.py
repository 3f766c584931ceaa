"""Issue 13 items 1, 8 and 9 (uploads): GDAL indirection, SSRF, decompression bombs, left-over
temporary files, hostile file names and empty drafts, each reproduced and shown closed.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import mmap
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_service.api.app import create_app
from geo_service.api.routes import imports as imports_route
from geo_service.demo.city import DemoCity
from geo_service.ingest.uploads import (
    WORKSPACE_PREFIX,
    sweep_stale_uploads,
    upload_root,
)
from geo_service.settings import Settings
from tests.conftest import as_role, grid_point, problem, scalar

SECRET = "jwt-secret-7f3a9c1e-do-not-leak"


def _post(client: TestClient, name: str, content: bytes, kind: str = "households", **kw):  # noqa: ANN003, ANN202
    return client.post(
        f"/imports/{kind}", files={"file": (name, content, "application/octet-stream")}, **kw
    )


class _Listener:
    """A loopback TCP port that records every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.connections.append(conn.recv(200))
                except OSError:
                    self.connections.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    server = _Listener()
    yield server
    server.close()


def _vrt(source: str) -> str:
    """A GDAL VRT that serves the lines of ``source`` as a layer with a point geometry."""
    layer = source.rsplit("/", 1)[-1].split(".")[0]
    return (
        f"<OGRVRTDataSource><OGRVRTLayer name='{layer}'>"
        f"<SrcDataSource>{source}</SrcDataSource>"
        "</OGRVRTLayer></OGRVRTDataSource>"
    )


def _assert_no_leak(response, *needles: str) -> None:  # noqa: ANN001
    for needle in (*needles, str(upload_root()), "/tmp/", "CPLE", "pyogrio", "Traceback"):
        assert needle not in response.text, (needle, response.text)


# --- item 1: VRT indirection and SSRF ------------------------------------------------------


def test_vrt_reading_a_server_file_is_refused_and_echoes_nothing(
    client: TestClient,
    role_keys: dict[str, str],
    engine: Engine,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = tmp_path / "jwt-secret"
    secret.write_text(SECRET + "\n")
    vrt = tmp_path / "evil.vrt"
    vrt.write_text(_vrt(f"CSV:{secret}"))
    # The attack is real: GDAL itself, handed this file, reads the secret as a column name.
    meta, *_ = pyogrio.raw.read(vrt)
    assert SECRET in meta["fields"]
    before = scalar(engine, "SELECT count(*) FROM households")
    for name in ("evil.vrt", "evil.csv", "evil.geojson", "evil.gpkg", "evil"):
        response = _post(client, name, vrt.read_bytes(), headers=as_role(role_keys, "grid_worker"))
        body = problem(response)
        assert response.status_code == 415, (name, body)
        assert body["code"] == "unsupported-file"
        assert "XML" in body["detail"] or "content" in body["detail"]
        _assert_no_leak(response, SECRET, str(secret))
    assert scalar(engine, "SELECT count(*) FROM households") == before
    # The refusal is logged with who tried (4xx are otherwise not logged).
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("import households by test-grid_worker" in m and "XML" in m for m in refused)


def test_vsicurl_and_linked_crs_uploads_make_no_connection(
    client: TestClient, role_keys: dict[str, str], listener: _Listener, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{listener.port}/x.csv"
    point = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Point", "coordinates": [1, 2]},
    }
    linked = json.dumps(
        {
            "type": "FeatureCollection",
            "crs": {"type": "link", "properties": {"href": url, "type": "ogcwkt"}},
            "features": [point],
        }
    )
    named_url = json.dumps(
        {
            "type": "FeatureCollection",
            "features": [{**point, "properties": {"src": f"/vsicurl/{url}"}}],
        }
    )
    attacks = {
        "fetch.vrt": _vrt(f"CSV:/vsicurl/{url}"),
        "fetch.geojson": linked,
        "url_crs.geojson": linked.replace('"link"', '"url"').replace('"href"', '"url"'),
        "vsi.geojson": named_url,
        # GDAL matches member names caselessly and JSON may escape any character.
        "upper.geojson": linked.replace('"crs"', '"CRS"'),
        "escaped.geojson": linked.replace('"crs"', '"\\u0063rs"'),
        "escaped_type.geojson": linked.replace('"link"', '"\\u006cink"'),
    }
    for name, content in attacks.items():
        response = _post(client, name, content.encode(), headers=as_role(role_keys, "grid_worker"))
        assert response.status_code == 415, (name, response.text)
        _assert_no_leak(response, url)
    import time

    time.sleep(1.0)
    assert listener.connections == []
    # The listener does see GDAL when GDAL is handed the linked-CRS file directly.
    path = tmp_path / "direct.geojson"
    path.write_text(linked)
    pyogrio.raw.read(path)
    deadline = time.time() + 5
    while not listener.connections and time.time() < deadline:
        time.sleep(0.05)
    assert listener.connections and listener.connections[0].startswith(b"GET /x.csv")


def test_kml_entities_network_links_and_kmz_bombs_are_held(
    client: TestClient,
    role_keys: dict[str, str],
    loaded_city: DemoCity,
    listener: _Listener,
    engine: Engine,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    url = f"http://127.0.0.1:{listener.port}/more.kml"
    secret = tmp_path / "jwt-secret"
    secret.write_text(SECRET + "\n")
    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    kml = '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>{}</Document></kml>'
    placemark = (
        "<Placemark><name>{}</name><ExtendedData><Data name='household_size'><value>2</value>"
        f"</Data></ExtendedData><Point><coordinates>{lon},{lat}</coordinates></Point></Placemark>"
    )
    headers = as_role(role_keys, "grid_worker")
    # External and internal entities need a DOCTYPE: refused before GDAL or expat expands any.
    for name, doctype in {
        "xxe.kml": f'<!DOCTYPE kml [<!ENTITY s SYSTEM "file://{secret}">]>',
        "remote_dtd.kml": f'<!DOCTYPE kml SYSTEM "{url}">',
        "laughs.kml": '<!DOCTYPE kml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>',
    }.items():
        content = head + doctype + kml.format(placemark.format("&s;"))
        response = _post(client, name, content.encode(), headers=headers, data={"map": "Name=id"})
        body = problem(response)
        assert response.status_code == 415 and "DOCTYPE" in body["detail"], (name, body)
        _assert_no_leak(response, SECRET, str(secret), url)
    # A NetworkLink (and a remote icon) is never followed: the placemarks beside it import.
    before = scalar(engine, "SELECT count(*) FROM households")
    linked = kml.format(
        f"<NetworkLink><name>more</name><Link><href>{url}</href></Link></NetworkLink>"
        + placemark.format("nl-1")
        + f"<Style><IconStyle><Icon><href>{url}.png</href></Icon></IconStyle></Style>"
    )
    for name, content in {"linked.kml": linked.encode(), "linked.kmz": _kmz(linked)}.items():
        response = _post(
            client, name, content, headers=as_role(role_keys, "admin"), data={"map": "Name=id"}
        )
        assert response.status_code == 200, (name, response.text)
        assert response.json()["assumptions"]["network_links_ignored"] == 1
    assert scalar(engine, "SELECT count(*) FROM households") == before + 1
    import time

    time.sleep(1.0)
    assert listener.connections == []
    # A KMZ is unpacked with the caps of a zipped shapefile: a bomb stops after ~1 MB.
    bomb = kml.format("<!--" + " " * 50_000_000 + "-->" + placemark.format("b-1"))
    body = problem(_post(client, "bomb.kmz", _kmz(bomb), headers=headers))
    assert body["status"] == 413 and "decompression bomb" in body["detail"], body
    assert scalar(engine, "SELECT count(*) FROM households") == before + 1


def _kmz(document: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doc.kml", document)
    return buffer.getvalue()


def test_unreadable_upload_answers_a_fixed_message_without_server_paths(
    client: TestClient, loaded_city: DemoCity
) -> None:
    truncated = b'{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
    response = _post(client, "broken.geojson", truncated)
    body = problem(response)
    assert response.status_code == 422
    assert body["detail"] == "cannot read broken.geojson: it is not a readable GeoJSON file"
    _assert_no_leak(response)
    damaged = bytearray(b"SQLite format 3\x00" + bytes(84) + b"garbage" * 200)
    damaged[68:72] = b"GPKG"
    response = _post(client, "broken.gpkg", bytes(damaged))
    assert problem(response)["detail"].startswith("broken.gpkg: a damaged GeoPackage")
    _assert_no_leak(response)
    utf16 = "lon,lat,name\n114.3,30.6,caf\xe9\n".encode("utf-16")  # with its BOM
    read = _post(client, "utf16.csv", utf16)  # Excel's "Unicode Text": read, not refused
    assert read.status_code == 200 and "café" in read.json()["rejects_csv"]
    no_bom = "lon,lat,name\n114.3,30.6,caf\xe9\n".encode("utf-16-le")
    body = problem(_post(client, "utf16.csv", no_bom))
    assert body["status"] == 415  # NUL bytes and no BOM: not text we read
    junk_csv = b'lon,lat\n"1,2\n' + b"x" * 10  # an unclosed quote to the end of the file
    response = _post(client, "junk.csv", junk_csv)
    assert response.status_code == 200  # the one malformed row is rejected, with its line
    assert response.json()["rejects"][0]["reason"].startswith("wrong number of fields")
    _assert_no_leak(response)


def test_format_is_chosen_by_content_and_by_the_endpoint(
    client: TestClient, loaded_city: DemoCity, engine: Engine, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    csv = f"id,household_size,lon,lat\nc1,2,{lon},{lat}\n".encode()
    # A known suffix that contradicts the content is refused ...
    body = problem(_post(client, "households.geojson", csv))
    assert (
        body["status"] == 415
        and "its name says GeoJSON but its content is CSV/TSV" in body["detail"]
    )
    # ... an unknown one does not matter: the content decides.
    ok = _post(client, "households.data", csv)
    assert ok.status_code == 200, ok.text
    assert ok.json()["inserted"] == 1 and ok.json()["file"] == "households.data"
    # Boundaries need polygons: a lon/lat table is refused up front.
    body = problem(_post(client, "areas.csv", csv, kind="boundaries", data={"level": "grid"}))
    assert body["status"] == 415 and "points only" in body["detail"]
    # SQLite that is not a GeoPackage, a GeoPackage with a view, XML, a JSON array, binary junk.
    plain = tmp_path / "plain.sqlite"
    sqlite3.connect(plain).execute("CREATE TABLE t (a)").connection.commit()
    gpkg = tmp_path / "viewed.gpkg"
    gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(lon, lat)], crs=4326).to_file(gpkg)
    db = sqlite3.connect(gpkg)
    db.execute("CREATE VIEW v AS SELECT * FROM viewed")
    db.commit()
    db.close()
    refused = {
        "db.sqlite": plain.read_bytes(),
        "viewed.gpkg": gpkg.read_bytes(),
        "doc.kml": b"<?xml version='1.0'?><gml:FeatureCollection/>",
        "list.json": b"[1, 2, 3]",
        "blob.bin": b"\x7fELF\x02\x01\x01\x00" + bytes(100),
        "empty.csv": b"",
    }
    for name, content in refused.items():
        body = problem(_post(client, name, content))
        assert body["status"] == 415, (name, body)
        assert "Accepted: GeoJSON, GeoPackage" in body["detail"]


def test_a_zip_opens_only_its_shapefile(
    client: TestClient, loaded_city: DemoCity, tmp_path: Path
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    folder = tmp_path / "shp"
    folder.mkdir()
    gpd.GeoDataFrame(
        {"id": ["z1"], "size": [3]}, geometry=[shapely.Point(lon, lat)], crs=4326
    ).to_file(folder / "hh.shp")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in folder.iterdir():
            archive.write(part, f"data/{part.name}")
        archive.writestr("data/evil.vrt", _vrt("CSV:/etc/passwd"))
    response = _post(client, "hh.zip", buffer.getvalue(), data={"map": ["size=household_size"]})
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1
    only_vrt = io.BytesIO()
    with zipfile.ZipFile(only_vrt, "w") as archive:
        archive.writestr("evil.vrt", _vrt("CSV:/etc/passwd"))
    body = problem(_post(client, "evil.zip", only_vrt.getvalue()))
    assert body["status"] == 415 and "no shapefile" in body["detail"]
    assert "root:" not in body["detail"]


# --- item 8: decompression bombs and caps while reading ------------------------------------


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_decompression_bomb_is_refused_with_bounded_memory(
    client: TestClient, role_keys: dict[str, str], engine: Engine, tmp_path: Path
) -> None:
    rows = 5_500_000
    bomb = tmp_path / "bomb.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write(b"lon,lat\n")
        block = b"0,0\n" * 100_000
        for _ in range(rows // 100_000):
            out.write(block)
    data = bomb.read_bytes()
    assert len(data) < 60_000  # ~22 MB of CSV in a few tens of KB
    before = scalar(engine, "SELECT count(*) FROM households")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    baseline_kb = _status_kb("VmRSS")
    response = _post(client, "bomb.csv.gz", data, headers=as_role(role_keys, "grid_worker"))
    growth_mb = (_status_kb("VmHWM") - baseline_kb) / 1024
    print(
        f"decompression bomb: {len(data):,} bytes, {rows:,} rows; "
        f"peak RSS growth {growth_mb:.1f} MB"
    )
    body = problem(response)
    assert response.status_code == 413, body
    assert "expands more than 100 times" in body["detail"]
    assert growth_mb < 300
    assert scalar(engine, "SELECT count(*) FROM households") == before
    # The gauge itself works: 64 MB written after a reset shows up in the peak.
    Path("/proc/self/clear_refs").write_text("5")
    baseline_kb = _status_kb("VmRSS")
    # fresh pages from the kernel, each touched: freed memory the allocator still holds would
    # not raise the peak (the gauge's own check failed once that way late in a long suite)
    ballast = mmap.mmap(-1, 64 << 20)
    for offset in range(0, 64 << 20, mmap.PAGESIZE):
        ballast[offset] = 1
    assert (_status_kb("VmHWM") - baseline_kb) / 1024 > 50
    ballast.close()


def test_rows_and_unpacked_bytes_are_capped_while_reading(
    client: TestClient,
    settings: Settings,
    loaded_city: DemoCity,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    monkeypatch.setattr(settings.limits, "features_per_upload", 100)
    rows = "".join(f"r{i},1,{lon},{lat}\n" for i in range(101))
    csv = ("id,household_size,lon,lat\n" + rows).encode()
    body = problem(_post(client, "many.csv", csv))
    assert body["status"] == 413 and "more than 100 features" in body["detail"]
    frame = gpd.GeoDataFrame(
        {"id": [f"g{i}" for i in range(101)], "household_size": 1},
        geometry=[shapely.Point(lon, lat)] * 101,
        crs=4326,
    )
    for suffix, driver in ((".geojson", "GeoJSON"), (".gpkg", "GPKG"), (".parquet", None)):
        path = tmp_path / f"many{suffix}"
        frame.to_parquet(path) if driver is None else frame.to_file(path, driver=driver)
        body = problem(_post(client, path.name, path.read_bytes()))
        assert body["status"] == 413 and "100" in body["detail"], (suffix, body)
    monkeypatch.setattr(settings.limits, "features_per_upload", 5_000_000)
    monkeypatch.setattr(settings.limits, "upload_uncompressed_bytes", 50_000)
    body = problem(_post(client, "wide.csv.gz", gzip.compress(csv * 30)))
    assert body["status"] == 413 and "unpacks to more than 50,000 bytes" in body["detail"]
    # A zip member that inflates past the ratio cap (a zip bomb) stops while extracting.
    monkeypatch.setattr(settings.limits, "upload_uncompressed_bytes", 2_000_000_000)
    folder = tmp_path / "shp"
    folder.mkdir()
    frame.to_file(folder / "hh.shp")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(folder / "hh.shp", "hh.shp")
        archive.write(folder / "hh.shx", "hh.shx")
        archive.writestr("hh.dbf", bytes(50_000_000))
    assert len(buffer.getvalue()) < 200_000
    body = problem(_post(client, "bomb.zip", buffer.getvalue()))
    assert body["status"] == 413 and "decompression bomb" in body["detail"]


# --- item 8: temporary files ---------------------------------------------------------------


def _our_workspaces() -> set[str]:
    prefix = f"{WORKSPACE_PREFIX}{os.getpid()}-"
    return {p.name for p in upload_root().iterdir() if p.name.startswith(prefix)}


def test_upload_workspace_is_removed_on_success_and_on_failure(
    client: TestClient, loaded_city: DemoCity, monkeypatch: pytest.MonkeyPatch
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    csv = f"id,household_size,lon,lat\nw1,2,{lon},{lat}\nw2,0,{lon},{lat}\n".encode()
    seen: list[Path] = []
    original = imports_route.save_upload

    def spy(source, workspace: Path) -> Path:  # noqa: ANN001
        with pytest.raises(RuntimeError):
            asyncio.get_running_loop()  # the copy runs in the threadpool, not on the loop
        seen.append(workspace)
        return original(source, workspace)

    monkeypatch.setattr(imports_route, "save_upload", spy)
    assert _post(client, "ok.csv", csv).status_code == 200
    assert problem(_post(client, "bad.csv", b"a,b\n1,2\n"))["status"] == 422

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("process dies mid-import")

    monkeypatch.setattr("geo_service.services.ingest.imports.import_file", explode)
    with pytest.raises(RuntimeError):
        _post(client, "boom.csv", csv)
    assert len(seen) == 3
    assert all(w.parent == upload_root() and not w.exists() for w in seen)
    assert _our_workspaces() == set()


def test_uploads_left_by_a_killed_process_are_swept_at_start_up(settings: Settings) -> None:
    script = (
        "import os, signal\n"
        "from geo_service.ingest.uploads import upload_workspace\n"
        "context = upload_workspace()\n"
        "workspace = context.__enter__()\n"
        "(workspace / 'upload.bin').write_text('lon,lat\\n114.3,30.6\\n')\n"
        "print(workspace, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert killed.returncode == -9, killed.stderr
    left = Path(killed.stdout.strip())
    assert (left / "upload.bin").exists() and left.parent == upload_root()
    live = upload_root() / f"{WORKSPACE_PREFIX}{os.getpid()}-inflight"
    live.mkdir()
    try:
        with TestClient(create_app(settings)):
            pass  # start-up (the lifespan) sweeps
        assert not left.exists()
        assert live.exists()  # a live process's import in flight is left alone
    finally:
        live.rmdir()
    assert sweep_stale_uploads() == 0


# --- item 9: file names and empty drafts ---------------------------------------------------


def test_hostile_upload_file_names_answer_422_not_500(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    csv = f"id,household_size,lon,lat\nn1,2,{lon},{lat}\n".encode()
    before = scalar(engine, "SELECT count(*) FROM households")
    for name in (".", "..", "a" * 300 + ".csv", "../../etc/passwd", "dir\\x.csv"):
        response = _post(client, name, csv)
        assert response.status_code == 422, (name, response.status_code, response.text)
        assert "file's name must be 1 to 255 characters" in problem(response)["detail"]
    # httpx escapes control characters in names; a raw body carries them as a browser may.
    for name in (b"x\x00.csv", b"x\x01.csv", b"x\x1b[31m.csv"):
        body = (
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="'
            + name
            + b'"\r\nContent-Type: text/csv\r\n\r\n'
            + csv
            + b"\r\n--B--\r\n"
        )
        response = client.post(
            "/imports/households",
            content=body,
            headers={"Content-Type": "multipart/form-data; boundary=B"},
        )
        assert response.status_code == 422, (name, response.status_code, response.text)
    assert scalar(engine, "SELECT count(*) FROM households") == before
    long_ok = "b" * 251 + ".csv"
    long_id = f"id,household_size,lon,lat\nn2,2,{lon},{lat}\n{'9' * 150},2,{lon},{lat}\n"
    response = _post(client, long_ok, long_id.encode())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["file"] == long_ok and body["inserted"] == 1
    assert body["rejects"] == [
        {"row": 2, "reason": "id too long (source name, ':' and id over 200 characters)"}
    ]
    for field in ({"source_name": "s" * 101}, {"version_name": "v" * 201, "level": "grid"}):
        kind = "boundaries" if "level" in field else "households"
        assert problem(_post(client, "ok.csv", csv, kind=kind, data=field))["status"] == 422


def test_an_import_whose_every_row_is_rejected_creates_no_draft(
    client: TestClient, loaded_city: DemoCity, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    lines = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": f"L{i}", "name": "line"},
                "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.001, lat]]},
            }
            for i in range(3)
        ],
    }
    before = scalar(engine, "SELECT count(*) FROM boundary_versions")
    response = _post(
        client,
        "lines.geojson",
        json.dumps(lines).encode(),
        kind="boundaries",
        data={"level": "grid", "version_name": "all rejected"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["read"], body["inserted"], body["rejected"]) == (3, 0, 3)
    assert body["version_id"] is None
    assert scalar(engine, "SELECT count(*) FROM boundary_versions") == before
