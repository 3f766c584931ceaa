"""Layers as the files analysts open: GeoPackage, GeoJSON, zipped Shapefile, CSV (WKT or
lon/lat), KML, FlatGeobuf and GeoParquet; attribute tables as CSV or XLSX.

Every vector format is written by GDAL through pyogrio (GeoParquet by geopandas/pyarrow), in a
private temporary directory removed on every path; nothing is encoded by hand. The bodies
are built in memory: the layers served here are city-sized (tens of thousands of cells), not
province-sized (those go through ``/batch`` exports).
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from fastapi import Response

from geo_service.api.responses import geojson_in_crs
from geo_service.errors import InvalidInputError
from geo_service.i18n import format_message

# format -> (media type, file suffix)
FORMATS: dict[str, tuple[str, str]] = {
    "geojson": ("application/geo+json", "geojson"),
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
    "shp": ("application/zip", "shp.zip"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "csv-xy": ("text/csv; charset=utf-8", "csv"),
    "kml": ("application/vnd.google-earth.kml+xml", "kml"),
    "fgb": ("application/flatgeobuf", "fgb"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
LayerFormat = Literal["geojson", "gpkg", "shp", "csv", "csv-xy", "kml", "fgb", "parquet", "xlsx"]
FORMAT_HELP = (
    "geojson | gpkg (GeoPackage) | shp (zipped Shapefile) | csv (geometry as WKT) | "
    "csv-xy (lon/lat of each feature's centre) | kml | fgb (FlatGeobuf) | parquet (GeoParquet) "
    "| xlsx (the attribute table, lon/lat of the centre)"
)
# OpenAPI: what a download may answer, by media type (GeoJSON: the route's response model)
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The layer as a file (Content-Disposition: attachment)",
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in {v[0] for k, v in FORMATS.items() if k != "geojson"}
        },
    }
}


# Formats that name no CRS of their own, so they may carry GCJ-02 or BD-09 degrees (``crs``):
# GeoPackage, Shapefile (.prj), FlatGeobuf, GeoParquet and KML declare EPSG:4326, which
# GCJ-02 positions would then falsely claim (GCJ-02 and BD-09 have no EPSG code).
CRS_FREE_FORMATS = ("geojson", "csv", "csv-xy", "xlsx")


def check_download_crs(format: str, crs: str) -> None:  # noqa: A002
    """Refuse ``crs`` gcj02/bd09 for a format that declares its CRS as EPSG:4326.

    Raises
    ------
    InvalidInputError
        422 naming the formats that take ``crs``, before any work is done.
    """
    if crs != "wgs84" and format not in CRS_FREE_FORMATS:
        raise InvalidInputError(
            format_message(
                "crs={crs} is offered for the formats {values}: a {format} file declares its "
                "CRS as EPSG:4326 (WGS84), and GCJ-02/BD-09 have no EPSG code",
                crs=crs,
                values=", ".join(CRS_FREE_FORMATS),
                format=format,
            )
        )


def layer_file(
    layer: dict[str, Any],
    name: str,
    format: str,  # noqa: A002
    *,
    integer_fields: Iterable[str] = (),
    shapefile_fields: Mapping[str, str] | None = None,
    crs: str = "wgs84",
) -> Response:
    """A GeoJSON FeatureCollection as a file download.

    Parameters
    ----------
    layer : dict
        An RFC 7946 FeatureCollection (WGS84 lon/lat) as the layer's endpoint serves it; the
        features' properties become attribute columns, and the GeoJSON file is the layer
        as served (its other members included).
    name : str
        The file and layer name, ASCII letters, digits and ``_`` (the caller builds it).
    format : str
        A key of ``FORMATS``.
    integer_fields : iterable of str, optional
        Properties written as integer columns even where some features hold null (a count
        hidden by disclosure control): an empty cell, not a float column.
    shapefile_fields : mapping of str to str, optional
        Names the Shapefile gives properties whose names are longer than its 10 characters
        (the other formats keep the names).
    crs : {"wgs84", "gcj02", "bd09"}, default "wgs84"
        The positions' system in the file (``geojson_in_crs``); gcj02/bd09 only for
        ``CRS_FREE_FORMATS`` (``check_download_crs``), and the file name ends ``_<crs>``.

    Returns
    -------
    fastapi.Response
        The bytes with their media type and ``Content-Disposition: attachment``. CSV is UTF-8
        with a byte-order mark, so Excel on a Chinese Windows opens it right.

    Notes
    -----
    Shapefile field names not in ``shapefile_fields`` are cut to 10 characters by the format
    (GDAL makes them unique); the GeoPackage, FlatGeobuf and GeoParquet files keep them whole.
    The Shapefile's text is UTF-8, and its ``.cpg`` says so.
    """
    import geopandas as gpd  # heavy: only a download needs it

    media, suffix = FORMATS[format]
    if crs != "wgs84":
        check_download_crs(format, crs)
        layer = geojson_in_crs(layer, crs)
        name = f"{name}_{crs}"
    filename = f"{name}.{suffix}"
    features = layer["features"]
    if features:
        frame = gpd.GeoDataFrame.from_features(features, crs=4326)
    else:
        frame = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=4326))
    for field in integer_fields:
        if field in frame.columns:
            frame[field] = frame[field].astype("Int64")
    if format == "shp" and shapefile_fields:
        frame = frame.rename(columns=dict(shapefile_fields))
    if format == "geojson":
        import orjson

        data = orjson.dumps(layer)
    elif format in ("csv-xy", "xlsx"):
        table = _table_with_centres(frame)
        if format == "xlsx":
            buffer = io.BytesIO()
            table.to_excel(buffer, index=False, sheet_name=name[:31], engine="openpyxl")
            data = buffer.getvalue()
        else:
            data = table.to_csv(index=False).encode("utf-8-sig")
    elif format == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    else:
        data = _gdal_file(frame, name, format)
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _table_with_centres(frame: Any) -> Any:  # noqa: ANN401 - geopandas is imported lazily
    """The attribute table with ``lon``/``lat`` of each feature's centre (a point inside
    the feature, ``shapely.point_on_surface``), rounded to 7 decimals (~1 cm)."""
    import shapely

    table = frame.drop(columns="geometry").copy()
    centres = shapely.point_on_surface(frame.geometry.to_numpy())
    table["lon"] = shapely.get_x(centres).round(7)
    table["lat"] = shapely.get_y(centres).round(7)
    return table


def _gdal_file(frame: Any, name: str, format: str) -> bytes:  # noqa: ANN401, A002
    """Write through GDAL (pyogrio) into a private directory and read the bytes back."""
    driver, suffix, options = {
        "gpkg": ("GPKG", "gpkg", {}),
        "shp": ("ESRI Shapefile", "shp", {"ENCODING": "UTF-8"}),
        "csv": ("CSV", "csv", {"GEOMETRY": "AS_WKT", "WRITE_BOM": "YES"}),
        "kml": ("KML", "kml", {}),
        "fgb": ("FlatGeobuf", "fgb", {}),
    }[format]
    with tempfile.TemporaryDirectory(prefix="geo-download-") as tmp:
        path = Path(tmp) / f"{name}.{suffix}"
        frame.to_file(path, driver=driver, layer=name, engine="pyogrio", **options)
        if format != "shp":
            return path.read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(tmp).iterdir()):
                archive.write(part, part.name)
        return buffer.getvalue()
