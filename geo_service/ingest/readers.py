"""Read any common geodata file into a WGS84 GeoDataFrame, through pyogrio / geopandas / pandas.

Formats: GeoJSON, GeoPackage, Shapefile (plain or zipped), GeoParquet, CSV/TSV (optionally
gzipped) with lon/lat or x/y columns. No format is parsed by hand.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio.raw
import shapely
import shapely.errors
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo_service.errors import InvalidInputError
from geo_service.geo.crs import geometry_to_wgs84

CHINESE_CRS = ("gcj02", "bd09")
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "x_coord")
LAT_NAMES = ("lat", "latitude", "y", "y_coord")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".geoparquet")
GEOMETRY_ERROR = "__geometry_error__"  # why GEOS could not build a feature's geometry
# Share of rows whose coordinates may fall outside +-180/+-90 before the whole file is taken
# to be in a projected CRS (a few stray rows are rejected one by one instead).
PROJECTED_SHARE = 0.5


class ImportFileError(InvalidInputError):
    """The file as a whole cannot be imported (format, CRS, missing columns)."""

    code = "import-file-error"
    title = "File cannot be imported"


@dataclass(frozen=True)
class SourceCrs:
    """The CRS a client says the file is in: an EPSG/WKT CRS, or gcj02 / bd09."""

    crs: CRS | None = None
    chinese: str | None = None

    @classmethod
    def parse(cls, value: str | None) -> SourceCrs:
        """Parse ``--crs``: any EPSG code ('4326', 'EPSG:3857'), WKT/PROJ, or gcj02/bd09."""
        if value is None or value == "":
            return cls()
        name = value.lower().replace("-", "").replace("_", "")
        if name in CHINESE_CRS:
            return cls(chinese=name)
        if name == "wgs84":
            return cls(crs=CRS.from_epsg(4326))
        try:
            text = f"EPSG:{value}" if value.isdigit() else value
            return cls(crs=CRS.from_user_input(text))
        except CRSError:
            raise ImportFileError(
                f"unknown CRS {value!r}: give an EPSG code (e.g. 4326, EPSG:32650), "
                "WKT, or gcj02 / bd09"
            ) from None


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in TABLE_SUFFIXES + PARQUET_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _find_column(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.lower().strip(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def read_source(
    path: Path,
    *,
    crs: SourceCrs,
    layer: str | None = None,
    lon_column: str | None = None,
    lat_column: str | None = None,
) -> gpd.GeoDataFrame:
    """Read ``path`` into a GeoDataFrame in WGS84 with every attribute as read.

    CSV/TSV rows keep their coordinates as text so that missing or garbled values reach the
    per-row validation (and the reject file) instead of failing the whole file. Raises
    ImportFileError for problems of the whole file.
    """
    if not path.exists():
        raise ImportFileError(f"{path} does not exist")
    suffix = _suffix(path)
    if suffix in TABLE_SUFFIXES:
        frame = _read_table(path, suffix, lon_column, lat_column)
    else:
        try:
            if suffix in PARQUET_SUFFIXES:
                frame = gpd.read_parquet(path)
            else:
                frame = _read_ogr(path, layer)
        except ImportFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - GDAL raises many types; all mean "unreadable"
            raise ImportFileError(f"cannot read {path.name}: {exc}") from None
        if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
            raise ImportFileError(f"{path.name} has no geometry column")
    return _to_wgs84(frame, crs, path.name)


def _read_ogr(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    """Read through GDAL, keeping features whose geometry GEOS cannot even build.

    geopandas.read_file fails the whole file on one malformed geometry (an unclosed ring);
    reading the raw WKB lets that feature be rejected alone, with GEOS's reason.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GDAL: "Non closed ring detected"
        meta, _, wkb, fields = pyogrio.raw.read(path, layer=layer)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    errors = np.full(len(wkb), None, dtype=object)
    for i in np.flatnonzero(pd.isna(geoms) & pd.notna(wkb)):
        try:
            shapely.from_wkb(wkb[i])
        except shapely.errors.GEOSException as exc:
            message = str(exc).split(": ", 1)[-1]
            errors[i] = "unclosed ring" if "closed linestring" in message else message
    frame = gpd.GeoDataFrame(
        dict(zip(meta["fields"], fields, strict=True)),
        geometry=gpd.GeoSeries(geoms),
        crs=meta["crs"],
    )
    if pd.notna(errors).any():
        frame[GEOMETRY_ERROR] = errors
    return frame


def _read_table(
    path: Path, suffix: str, lon_column: str | None, lat_column: str | None
) -> gpd.GeoDataFrame:
    # CSV and TSV go through pandas' C parser; only .txt needs the (slow) delimiter sniffer.
    sep = {".tsv": "\t", ".tsv.gz": "\t", ".csv": ",", ".csv.gz": ","}.get(suffix)
    try:
        raw = pd.read_csv(
            path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            engine="python" if sep is None else "c",
            compression="infer",
        )
    except Exception as exc:  # noqa: BLE001
        raise ImportFileError(f"cannot read {path.name} as CSV/TSV: {exc}") from None
    columns = list(raw.columns)
    lon_col = lon_column or _find_column(columns, LON_NAMES)
    lat_col = lat_column or _find_column(columns, LAT_NAMES)
    if lon_col not in columns or lat_col not in columns:
        raise ImportFileError(
            f"{path.name}: no coordinate columns found (looked for {'/'.join(LON_NAMES)} and "
            f"{'/'.join(LAT_NAMES)}); name them with --map SRC=lon --map SRC=lat"
        )
    lon = pd.to_numeric(raw[lon_col].str.strip(), errors="coerce").to_numpy(float)
    lat = pd.to_numeric(raw[lat_col].str.strip(), errors="coerce").to_numpy(float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    geoms = np.full(len(raw), None, dtype=object)
    geoms[ok] = shapely.points(lon[ok], lat[ok])
    raw = raw.rename(columns={lon_col: "lon", lat_col: "lat"})
    return gpd.GeoDataFrame(raw, geometry=gpd.GeoSeries(geoms, index=raw.index), crs=None)


def _to_wgs84(frame: gpd.GeoDataFrame, source: SourceCrs, name: str) -> gpd.GeoDataFrame:
    frame = frame.reset_index(drop=True)
    if source.chinese:
        values = frame.geometry.values
        present = ~(frame.geometry.isna() | frame.geometry.is_empty).to_numpy()
        _check_lonlat(values[present], name)
        converted = np.array(values, dtype=object)
        converted[present] = geometry_to_wgs84(
            np.asarray(values[present], dtype=object), source.chinese
        )
        return frame.set_geometry(gpd.GeoSeries(converted, crs=4326))
    if source.crs is not None:
        frame = frame.set_crs(source.crs, allow_override=True)
    elif frame.crs is None:
        frame = frame.set_crs(4326)
    geographic = frame.crs.is_geographic
    present = ~(frame.geometry.isna() | frame.geometry.is_empty).to_numpy()
    if geographic:
        _check_lonlat(frame.geometry.values[present], name)
    if frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    return frame


def _check_lonlat(geoms: np.ndarray, name: str) -> None:
    """Catch a projected CRS read as lon/lat: coordinates far outside +-180 / +-90."""
    if len(geoms) == 0:
        return
    bounds = shapely.bounds(np.asarray(geoms, dtype=object))
    outside = (np.abs(bounds[:, [0, 2]]) > 180).any(axis=1) | (np.abs(bounds[:, [1, 3]]) > 90).any(
        axis=1
    )
    if outside.mean() > PROJECTED_SHARE:
        x, y = np.nanmax(np.abs(bounds[:, 0])), np.nanmax(np.abs(bounds[:, 1]))
        raise ImportFileError(
            f"{name}: coordinates reach x={x:,.0f}, y={y:,.0f}, far outside lon/lat range; "
            "the file looks projected: give its CRS with --crs EPSG:xxxx"
        )
