"""Field cases F04 (Google Earth KML/KMZ) and F05 (a datum shift known only roughly) of issue
15 (``../shared/cases/import``), each as a kind of input: the shared file through the CLI and
``POST /imports/{kind}``, and files of the same kind made here (points, holes, MultiGeometry,
KMZ, folders; Xian 1980, Beijing 1954, CGCS2000, NAD27, a .prj with TOWGS84, GCJ-02)."""

from __future__ import annotations

import codecs
import io
import zipfile
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import CRS
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_service.cli.main import app
from geo_service.demo.city import DemoCity
from geo_service.geo.crs import from_wgs84
from geo_service.geo.transformations import MAX_TRANSFORMATION_ERROR_M, transformation_to_wgs84
from tests.conftest import as_role, grid_point
from tests.ingest.helpers import CASES, post_import, zip_shapefile

F04 = CASES / "import" / "F04_kml_kmz_google_earth" / "community.kml"
F05 = CASES / "import" / "F05_xian1980_ballpark_transform" / "incidents_xian80_gk114.shp"
R6 = CASES / "hidden_data" / "R6_zero_xy_utm.csv"
R6_MAP = CASES / "hidden_data" / "R6_catmap.csv"
OGC = "http://www.opengis.net/kml/2.2"
GOOGLE = "http://earth.google.com/kml/2.1"

pytestmark = pytest.mark.skipif(not CASES.is_dir(), reason="shared field cases not present")


def _scalar(engine: Engine, sql: str, **params: object):  # noqa: ANN202
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one_or_none()


def _area_count(engine: Engine, code: str) -> int:
    return _scalar(engine, "SELECT count(*) FROM areas WHERE code = :c", c=code)


def _household(engine: Engine, ref: str) -> tuple[float, float] | None:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT ST_X(location), ST_Y(location) FROM households WHERE external_ref = :r"),
            {"r": ref},
        ).one_or_none()
    return None if row is None else (row[0], row[1])


# --- F04: KML and KMZ from Google Earth ---------------------------------------------------


def _kml(body: str, namespace: str = OGC) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="{namespace}"><Document>'
        f"<name>doc</name>{body}</Document></kml>"
    ).encode()


def _ring(coords: list[tuple[float, float]], z: bool = False) -> str:
    closed = [*coords, coords[0]]
    return " ".join(f"{x:.7f},{y:.7f}" + (",25" if z else "") for x, y in closed)


def _square(lon: float, lat: float, half: float) -> list[tuple[float, float]]:
    return [
        (lon - half, lat - half),
        (lon + half, lat - half),
        (lon + half, lat + half),
        (lon - half, lat + half),
    ]


def _household_placemark(name: str, lon: float, lat: float, size: int) -> str:
    return (
        f"<Placemark><name>{name}</name><description>from Google Earth</description>"
        f'<ExtendedData><Data name="household_size"><value>{size}</value></Data></ExtendedData>'
        f"<Point><coordinates>{lon:.7f},{lat:.7f},0</coordinates></Point></Placemark>"
    )


def _kmz(kml: bytes, member: str = "doc.kml", extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, kml)
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_f04_shared_kml_imports_as_boundaries_over_http_and_cli(
    client: TestClient, role_keys: dict[str, str], cli: CliRunner, engine: Engine
) -> None:
    before = _area_count(engine, "KML-C01")
    response = post_import(
        client, role_keys, "boundaries", F04.name, F04.read_bytes(), level="grid", map="Name=code"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["inserted"] == 1 and body["rejected"] == 0, body
    assert body["dimensions_dropped"] == ["Z"]  # the ",0" altitudes
    assert body["assumptions"]["layer"] == "communities"
    assert body["assumptions"]["transformation_accuracy_m"] == 0
    # KML's display settings are not reported as ignored data.
    assert "tessellate" not in body["ignored_columns"]
    assert _area_count(engine, "KML-C01") == before + 1
    result = cli.invoke(
        app, ["import", "boundaries", str(F04), "--level", "grid", "--map", "Name=code"]
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "communities" in result.output
    assert _area_count(engine, "KML-C01") == before + 2


def test_f04_kml_polygon_with_hole_and_multigeometry_in_google_namespace(
    client: TestClient, role_keys: dict[str, str], cli: CliRunner, engine: Engine, tmp_path: Path
) -> None:
    lon, lat = 114.30, 30.59
    hole = (
        "<Placemark><name>KMLH-1</name><description>with a hole</description><Polygon>"
        f"<outerBoundaryIs><LinearRing><coordinates>{_ring(_square(lon, lat, 0.004), z=True)}"
        "</coordinates></LinearRing></outerBoundaryIs><innerBoundaryIs><LinearRing>"
        f"<coordinates>{_ring(_square(lon, lat, 0.001), z=True)}</coordinates></LinearRing>"
        "</innerBoundaryIs></Polygon></Placemark>"
    )
    multi = (
        "<Placemark><name>KMLM-1</name><MultiGeometry>"
        + "".join(
            f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{_ring(_square(x, lat, 0.001))}"
            "</coordinates></LinearRing></outerBoundaryIs></Polygon>"
            for x in (lon + 0.01, lon + 0.02)
        )
        + "</MultiGeometry></Placemark>"
    )
    content = _kml(f"<Folder><name>areas</name>{hole}{multi}</Folder>", GOOGLE)
    response = post_import(
        client,
        role_keys,
        "boundaries",
        "areas.kml",
        content,
        level="grid",
        map=["Name=code", "description=name"],
    )
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2 and response.json()["dimensions_dropped"] == ["Z"]
    rings = _scalar(
        engine, "SELECT ST_NumInteriorRings(ST_GeometryN(geom, 1)) FROM areas WHERE code = 'KMLH-1'"
    )
    parts = _scalar(engine, "SELECT ST_NumGeometries(geom) FROM areas WHERE code = 'KMLM-1'")
    assert rings == 1 and parts == 2
    assert _scalar(engine, "SELECT name FROM areas WHERE code = 'KMLH-1'") == "with a hole"
    path = tmp_path / "areas.kml"
    path.write_bytes(content)
    result = cli.invoke(
        app, ["import", "boundaries", str(path), "--level", "grid", "--map", "Name=code"]
    )
    assert result.exit_code == 0, result.output
    assert _area_count(engine, "KMLM-1") == 2


def test_f04_kml_and_kmz_points_import_as_households(
    client: TestClient,
    role_keys: dict[str, str],
    cli: CliRunner,
    engine: Engine,
    loaded_city: DemoCity,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    kml = _kml(
        _household_placemark("kml-hh-1", lon, lat, 3)
        + _household_placemark("kml-hh-2", lon + 1e-5, lat, 2)
    )
    response = post_import(client, role_keys, "households", "homes.kml", kml, map="Name=id")
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 2, response.text
    assert _household(engine, "homes:kml-hh-1") == pytest.approx((lon, lat), abs=1e-7)
    # The same document zipped as a KMZ (with an icon beside it), under a folder.
    kmz = _kmz(
        _kml(_household_placemark("kmz-hh-1", lon, lat, 4)),
        member="files/doc.kml",
        extra={"files/icon.png": b"\x89PNG\r\n"},
    )
    response = post_import(client, role_keys, "households", "homes.kmz", kmz, map="Name=id")
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1
    # Any one .kml when there is no doc.kml; through the CLI.
    path = tmp_path / "survey.kmz"
    path.write_bytes(_kmz(_kml(_household_placemark("kmz-hh-2", lon, lat, 1)), "survey.kml"))
    result = cli.invoke(app, ["import", "households", str(path), "--map", "Name=id"])
    assert result.exit_code == 0, result.output
    assert _household(engine, "survey:kmz-hh-2") is not None
    # Two documents and no doc.kml: refused, with their names.
    two = _kmz(_kml(""), "a.kml", extra={"b.kml": _kml("")})
    refused = post_import(client, role_keys, "households", "two.kmz", two)
    assert refused.status_code == 415 and "'a.kml', 'b.kml'" in refused.json()["detail"]
    # doc.kml and another document: doc.kml is read (KML 2.2), and the other one is named.
    lon2 = lon + 2e-5
    both = _kmz(
        _kml(_household_placemark("kmz-doc-1", lon2, lat, 2)),
        "doc.kml",
        extra={"layers/more.kml": _kml(_household_placemark("kmz-more-1", lon2, lat, 2))},
    )
    read = post_import(client, role_keys, "households", "both.kmz", both, map="Name=id")
    assert read.status_code == 200, read.text
    assert read.json()["inserted"] == 1
    assert read.json()["assumptions"]["kmz_documents_not_read"] == ["layers/more.kml"]
    path = tmp_path / "both.kmz"
    path.write_bytes(both)
    result = cli.invoke(app, ["import", "households", str(path), "--map", "Name=id"])
    assert result.exit_code == 0, result.output
    assert "KMZ documents not read (only doc.kml)" in result.output
    assert "layers/more.kml" in result.output


def test_f04_kml_with_two_folders_is_refused_with_the_list_then_read_by_layer(
    client: TestClient,
    role_keys: dict[str, str],
    cli: CliRunner,
    engine: Engine,
    loaded_city: DemoCity,
    tmp_path: Path,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    content = _kml(
        f"<Folder><name>north</name>{_household_placemark('kf-n1', lon, lat, 2)}</Folder>"
        f"<Folder><name>south</name>{_household_placemark('kf-s1', lon, lat, 5)}</Folder>"
    )
    refused = post_import(client, role_keys, "households", "folders.kml", content, map="Name=id")
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert "2 layers ('north', 'south')" in detail and "--layer" in detail
    assert _household(engine, "folders:kf-n1") is None
    path = tmp_path / "folders.kml"
    path.write_bytes(content)
    result = cli.invoke(app, ["import", "households", str(path), "--map", "Name=id"])
    assert result.exit_code == 2 and "2 layers" in result.output, result.output
    result = cli.invoke(
        app, ["import", "households", str(path), "--map", "Name=id", "--layer", "south"]
    )
    assert result.exit_code == 0, result.output
    assert _household(engine, "folders:kf-s1") is not None
    assert _household(engine, "folders:kf-n1") is None
    chosen = post_import(
        client, role_keys, "households", "folders.kml", content, map="Name=id", layer="north"
    )
    assert chosen.status_code == 200 and chosen.json()["assumptions"]["layer"] == "north"
    assert _household(engine, "folders:kf-n1") is not None


@pytest.mark.parametrize(("encoding", "name"), [("GBK", "水果湖社区"), ("Big5", "水果湖社區")])
def test_f04_kml_declared_in_a_chinese_encoding_keeps_its_names(
    client: TestClient,
    role_keys: dict[str, str],
    cli: CliRunner,
    engine: Engine,
    tmp_path: Path,
    encoding: str,
    name: str,
) -> None:
    code = f"KMLE-{encoding}"
    placemark = (
        f"<Placemark><name>{code}</name><description>{name}</description><Polygon>"
        f"<outerBoundaryIs><LinearRing><coordinates>{_ring(_square(114.35, 30.55, 0.002))}"
        "</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
    )
    content = _kml(placemark).decode().replace('encoding="UTF-8"', f'encoding="{encoding}"')
    raw = content.encode(encoding)
    assert raw != content.encode()  # the names really are in that encoding
    response = post_import(
        client,
        role_keys,
        "boundaries",
        "chinese.kml",
        raw,
        level="grid",
        map=["Name=code", "description=name"],
    )
    assert response.status_code == 200, response.text
    assert response.json()["encoding"] == codecs.lookup(encoding).name
    assert _scalar(engine, "SELECT name FROM areas WHERE code = :c", c=code) == name
    path = tmp_path / "chinese.kml"
    path.write_bytes(raw)
    result = cli.invoke(
        app, ["import", "boundaries", str(path), "--level", "grid", "--map", "Name=code"]
    )
    assert result.exit_code == 0, result.output
    assert _area_count(engine, code) == 2


def test_f04_xml_that_is_not_kml_is_still_refused(
    client: TestClient, role_keys: dict[str, str]
) -> None:
    for name, content in {
        "gml.kml": b"<?xml version='1.0'?><gml:FeatureCollection xmlns:gml='x'/>",
        "nons.kml": b"<kml><Document/></kml>",  # a kml root outside the KML namespaces
        "other.kml": _kml("").replace(OGC.encode(), b"http://example.org/kml"),
    }.items():
        response = post_import(client, role_keys, "households", name, content)
        assert response.status_code == 415, (name, response.text)
        assert "XML other than KML" in response.json()["detail"]
    broken = post_import(client, role_keys, "households", "broken.kml", _kml("<Placemark>"))
    assert broken.status_code == 422
    assert "not a readable KML file" in broken.json()["detail"]


# --- F05: a datum shift PROJ knows only as a ballpark -------------------------------------


def test_f05_shared_xian1980_is_refused_until_the_approximation_is_accepted(
    client: TestClient, role_keys: dict[str, str], cli: CliRunner, engine: Engine
) -> None:
    count = "SELECT count(*) FROM incidents WHERE idempotency_key LIKE '%x80-1'"
    before = _scalar(engine, count)
    content = zip_shapefile(F05)
    refused = post_import(
        client, role_keys, "incidents", "xian.zip", content, map="reported=reported_at"
    )
    assert refused.status_code == 422, refused.text
    detail = refused.json()["detail"]
    assert "Xian 1980" in detail and "EPSG:2383" in detail and "Ballpark" in detail
    assert "no accuracy" in detail and "accept_approximate_transform" in detail
    assert _scalar(engine, count) == before
    result = cli.invoke(app, ["import", "incidents", str(F05), "--map", "reported=reported_at"])
    assert result.exit_code == 2, result.output
    assert "--accept-approximate-transform" in result.output and "Traceback" not in result.output
    assert _scalar(engine, count) == before
    accepted = post_import(
        client,
        role_keys,
        "incidents",
        "xian.zip",
        content,
        map="reported=reported_at",
        accept_approximate_transform="true",
    )
    assert accepted.status_code == 200, accepted.text
    assumptions = accepted.json()["assumptions"]
    assert assumptions["crs"] == "Xian 1980 / 3-degree Gauss-Kruger CM 114E (EPSG:2383)"
    assert "Ballpark geographic offset from Xian 1980" in assumptions["transformation"]
    assert assumptions["transformation_accuracy_m"] == "unknown"
    result = cli.invoke(
        app,
        [
            "import",
            "incidents",
            str(F05),
            "--map",
            "reported=reported_at",
            "--accept-approximate-transform",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "transformation accuracy" in result.output and "unknown" in result.output


# Households at the city's grid point, written in each CRS; the expected outcome.
TOWGS84_XIAN = (
    'PROJCS["Xian 1980 / GK CM 114E",GEOGCS["Xian 1980",DATUM["Xian_1980",SPHEROID["IAG 1975",'
    "6378140,298.257],TOWGS84[24.0,-123.0,-94.0,0.02,-0.25,-0.13,1.1]],"
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],'
    'PARAMETER["central_meridian",114],PARAMETER["scale_factor",1],'
    'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'
)
ZERO_TOWGS84_WGS = (
    'PROJCS["WGS 84 / UTM zone 50N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",'
    '6378137,298.257223563],TOWGS84[0,0,0,0,0,0,0]],PRIMEM["Greenwich",0],'
    'UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",117],'
    'PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],'
    'PARAMETER["false_northing",0],UNIT["metre",1]]'
)
ZERO_TOWGS84_XIAN = TOWGS84_XIAN.replace("24.0,-123.0,-94.0,0.02,-0.25,-0.13,1.1", "0,0,0,0,0,0,0")
CRS_KINDS = [
    # (label, how the CRS is given, the CRS, accepted without the flag, accuracy reported)
    ("xian80", "crs", "EPSG:2383", False, "unknown"),
    ("beijing54", "crs", "EPSG:2435", False, "unknown"),  # EPSG's shifts end north of Wuhan
    ("cgcs2000gk", "crs", "EPSG:4547", True, 1.0),
    ("cgcs2000", "prj", "EPSG:4490", True, 1.0),
    ("utm50", "prj", "EPSG:32650", True, 0.0),
    ("towgs84", "prj", TOWGS84_XIAN, False, "unknown"),
    ("zerowgs", "prj", ZERO_TOWGS84_WGS, True, 0.0),
    ("zeroxian", "prj", ZERO_TOWGS84_XIAN, False, "unknown"),
    ("gcj02", "crs", "gcj02", True, 0.001),
    ("wgs84", "none", "EPSG:4326", True, 0.0),
]


def _coordinates(crs: str, lon: float, lat: float) -> tuple[float, float]:
    if crs == "gcj02":
        x, y = from_wgs84([lon], [lat], "gcj02")
        return float(x[0]), float(y[0])
    # The inverse of what the importer picks for the area (WGS 84 -> CRS).
    chosen = transformation_to_wgs84(CRS.from_user_input(crs), (lon, lat, lon, lat))
    assert chosen.transformer is not None or crs == "EPSG:4326"
    if chosen.transformer is None:
        return lon, lat
    return chosen.transformer.transform(lon, lat, direction="INVERSE")


@pytest.mark.parametrize(("label", "given", "crs", "accepted", "accuracy"), CRS_KINDS)
def test_f05_every_crs_reports_its_transformation_and_approximate_ones_are_refused(
    client: TestClient,
    role_keys: dict[str, str],
    cli: CliRunner,
    engine: Engine,
    loaded_city: DemoCity,
    tmp_path: Path,
    label: str,
    given: str,
    crs: str,
    accepted: bool,
    accuracy: object,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    x, y = _coordinates(crs, lon, lat)
    if given == "prj":  # the file declares its CRS: a Shapefile with a .prj
        folder = tmp_path / "shp"
        folder.mkdir()
        path = folder / f"{label}.shp"
        gpd.GeoDataFrame(
            {"id": [f"{label}-1"], "size": [2]},
            geometry=[shapely.Point(x, y)],
            crs=CRS.from_user_input(crs),
        ).to_file(path)
        # The .prj as the kind of file has it: ESRI WKT, or GDAL's WKT1 for a TOWGS84 clause
        # (ESRI WKT has none).
        prj = crs if "TOWGS84" in crs else CRS.from_user_input(crs).to_wkt("WKT1_ESRI")
        path.with_suffix(".prj").write_text(prj)
        name, content = f"{label}.zip", zip_shapefile(path)
        extra: dict[str, object] = {}
        args: list[str] = []
    else:
        path = tmp_path / f"{label}.csv"
        path.write_text(f"id,size,x,y\n{label}-1,2,{x!r},{y!r}\n")
        name, content = path.name, path.read_bytes()
        extra = {"crs": crs} if given == "crs" else {}
        args = ["--crs", crs] if given == "crs" else []
    ref = f"{label}:{label}-1"
    response = post_import(
        client, role_keys, "households", name, content, map="size=household_size", **extra
    )
    result = cli.invoke(
        app, ["import", "households", str(path), "--map", "size=household_size", *args]
    )
    if accepted:
        assert response.status_code == 200, response.text
        assumed = response.json()["assumptions"]
        assert assumed["transformation_accuracy_m"] == accuracy, assumed
        assert assumed["crs"] and assumed["transformation"]
        assert _household(engine, ref) == pytest.approx((lon, lat), abs=1e-6)
        assert result.exit_code == 0, result.output
        assert "transformation accuracy" in result.output
        return
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "accept_approximate_transform" in detail and "its CRS" in detail
    if "TOWGS84" in crs and "24.0" in crs:
        assert "TOWGS84" in detail  # the file's own parameters, accuracy unknown
    assert result.exit_code == 2 and "--accept-approximate-transform" in result.output
    assert _household(engine, ref) is None
    response = post_import(
        client,
        role_keys,
        "households",
        name,
        content,
        map="size=household_size",
        accept_approximate_transform="true",
        **extra,
    )
    assert response.status_code == 200, response.text
    assert response.json()["assumptions"]["transformation_accuracy_m"] == accuracy
    assert _household(engine, ref) is not None


def test_f05_nad27_without_its_grids_is_approximate_and_names_the_missing_grid() -> None:
    # Vancouver in NAD27 / UTM 10N: the accurate operations need NTv2 / NADCON grids, which a
    # server without `projsync` lacks; the best left is a 3-parameter shift (8-20 m).
    chosen = transformation_to_wgs84(CRS.from_epsg(26710), (-123.2, 49.2, -123.0, 49.3))
    if chosen.missing_grids:
        assert chosen.approximate and chosen.accuracy_m > MAX_TRANSFORMATION_ERROR_M
        assert chosen.better and chosen.missing_grids[0].endswith(".tif")
    else:  # the grids are installed: then the grid shift is chosen, and it is accurate
        assert not chosen.approximate and "NAD27" in chosen.description


def test_r6_nad83_utm_gets_nad83_to_wgs84_within_the_threshold(
    client: TestClient, role_keys: dict[str, str]
) -> None:
    response = client.post(
        "/imports/incidents",
        files={"file": (R6.name, R6.read_bytes(), "text/csv")},
        data={"crs": "EPSG:26910", "map": ["TYPE=category"], "category_map": _catmap()},
        headers=as_role(role_keys, "admin"),
    )
    assert response.status_code == 200, response.text
    assumed = response.json()["assumptions"]
    assert assumed["crs"] == "NAD83 / UTM zone 10N (EPSG:26910)"
    assert "NAD83 to WGS 84 (1)" in assumed["transformation"]
    assert assumed["transformation_accuracy_m"] == 4.0


def _catmap() -> list[str]:
    lines = [line.split(",") for line in R6_MAP.read_text().splitlines() if "," in line]
    return [f"{a.strip()}={b.strip()}" for a, b in lines if a.strip().lower() != "source"]
