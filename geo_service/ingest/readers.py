"""Read the accepted geodata formats into a WGS84 GeoDataFrame, through pyogrio / geopandas /
pandas, with the file handled as untrusted input.

The content decides the format (``uploads.sniff``), never the suffix alone: ``READERS`` is the
one table from a kind of content to its reader; a suffix that names another format than the
content is refused. GDAL only ever opens a file the sniffer recognised as GeoJSON, GeoPackage
or Shapefile. Caps (features, unpacked bytes, expansion ratio) hold while reading. What the
client sees of a failure is a fixed sentence; GDAL's / pandas' own text goes to the log.
No format is parsed by hand.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pyogrio._err
import pyogrio.raw
import shapely
import shapely.errors
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from geo_service.errors import LimitExceededError
from geo_service.geo.crs import geometry_to_wgs84
from geo_service.geo.transformations import (
    MAX_TRANSFORMATION_ERROR_M,
    Transformation,
    transformation_to_wgs84,
)
from geo_service.i18n import N_, format_message, gettext
from geo_service.ingest.uploads import (
    SNIFF_BYTES,
    ImportFileError,
    ReadLimits,
    Sniffed,
    UnsupportedFileError,
    check_geojson,
    check_geopackage,
    check_kml,
    check_shapefile,
    check_xlsx,
    extract_kml,
    extract_shapefile,
    kmz_other_documents,
    open_text_stream,
    sniff,
    upload_workspace,
    xml_encoding,
    xml_to_utf8,
)

log = logging.getLogger(__name__)

CHINESE_CRS = ("gcj02", "bd09")
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "x_coord")
LAT_NAMES = ("lat", "latitude", "y", "y_coord")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
PARQUET_SUFFIXES = (".parquet", ".geoparquet")
# GDAL is told to stay off the network and to leave directories alone. It is process-wide
# (pyogrio has no per-read switch) and harmless for our other GDAL uses, all local files.
GDAL_HARDENING = {
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".geo-service-no-remote-reads",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_TIMEOUT": "5",
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
}
DBF_SAMPLE_BYTES = 8 << 20  # of a DBF's records, to detect their encoding
GEOMETRY_ERROR = "__geometry_error__"  # why GEOS could not build a feature's geometry
ROW_ERROR = "__row_error__"  # why a row of a table could not be read (its field count)
PART_ERROR = "__part_error__"  # why a field joined from several columns is incomplete
# Share of rows whose coordinates may fall outside +-180/+-90 before the whole file is taken
# to be in a projected CRS (a few stray rows are rejected one by one instead).
PROJECTED_SHARE = 0.5
# Fixed text for a CRS that names no place on Earth (the Moon, a unit sphere, a local
# engineering frame, a zero unit): PROJ's own text is logged, never shown.
# a placeholder's words: translated where they are worded in (gettext(NOT_EARTH_CRS))
NOT_EARTH_CRS = N_("is not an Earth CRS, or cannot be transformed to WGS84 (EPSG:4326)")


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
            text = f"EPSG:{value}" if value.isascii() and value.isdigit() else value
            crs = CRS.from_user_input(text)
        except CRSError:
            raise ImportFileError(
                format_message(
                    "unknown CRS {value!r}: give an EPSG code (e.g. 4326, EPSG:32650), WKT, or "
                    "gcj02 / bd09",
                    value=value,
                )
            ) from None
        check_earth_crs(
            crs,
            format_message(
                "the given CRS {not_earth_crs}: give an EPSG code (e.g. 4326, EPSG:32650), "
                "WKT, or gcj02 / bd09",
                not_earth_crs=gettext(NOT_EARTH_CRS),
            ),
        )
        return cls(crs=crs)


def check_earth_crs(crs: CRS, message: str) -> None:
    """Raise ImportFileError(``message``) unless ``crs`` is a horizontal CRS of the Earth
    that PROJ can transform to WGS84 (the only way its coordinates become ours)."""
    try:
        # A vertical or engineering CRS has no ellipsoid: nothing horizontal to transform.
        earth = crs.ellipsoid is not None
        if earth:
            Transformer.from_crs(crs, 4326, always_xy=True)
    except (CRSError, ProjError) as exc:
        log.warning("CRS refused: %s: %s", type(exc).__name__, exc)
        earth = False
    if not earth:
        raise ImportFileError(message)


@dataclass(frozen=True)
class _Request:
    """One read: where the file is, what to call it, and the caller's reading options."""

    path: Path
    name: str
    suffix: str
    sniffed: Sniffed
    layer: str | None
    lon_column: str | None
    lat_column: str | None
    limits: ReadLimits
    encoding: str | None = None  # of a Shapefile's DBF: given by the client, else detected


@dataclass(frozen=True)
class Reader:
    """How one kind of content is read: its label, the suffixes that name it, the function."""

    label: str
    suffixes: tuple[str, ...]
    read: Callable[[_Request], gpd.GeoDataFrame]
    points_only: bool = False  # a table holds points as lon/lat columns, nothing else


def _suffix(name: str) -> str:
    name = name.lower()
    for suffix in (".shp.zip", *TABLE_SUFFIXES, *PARQUET_SUFFIXES):
        if name.endswith(suffix):
            return suffix
    return Path(name).suffix


def _find_column(columns: list[str], names: tuple[str, ...]) -> str | None:
    lowered = {c.lower().strip(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _unreadable(request: _Request, exc: Exception) -> ImportFileError:
    """The fixed answer for a file its reader failed on; the reader's own text is logged."""
    label = READERS[request.sniffed.kind].label
    log.warning("cannot read upload %r as %s: %s: %s", request.name, label, type(exc).__name__, exc)
    hint = " (UTF-8 text with a header row)" if request.sniffed.kind == "table" else ""
    return ImportFileError(
        format_message(
            "cannot read {name}: it is not a readable {label} file{hint}",
            name=request.name,
            label=label,
            hint=hint,
        )
    )


def read_source(
    path: Path,
    *,
    crs: SourceCrs,
    layer: str | None = None,
    lon_column: str | None = None,
    lat_column: str | None = None,
    name: str | None = None,
    limits: ReadLimits | None = None,
    points_only_ok: bool = True,
    encoding: str | None = None,
    swap_xy: bool = False,
    accept_approximate_transform: bool = False,
) -> gpd.GeoDataFrame:
    """Read ``path`` into a GeoDataFrame in WGS84 with every attribute as read.

    ``name`` is what messages call the file (default: its own name; an upload passes the
    client's). The content picks the reader from ``READERS``; ``points_only_ok=False`` refuses
    tables (lon/lat columns), for kinds that need lines or polygons. CSV/TSV rows keep their
    coordinates as text so that missing or garbled values reach the per-row validation (and
    the reject file) instead of failing the whole file. The transformation to WGS84 is the
    best PROJ has for the data's area (``geo.transformations``); an approximate one (unknown
    accuracy, or worse than 5 m) is refused unless ``accept_approximate_transform``; the CRS,
    the transformation and its accuracy (metres) go to ``frame.attrs["assumptions"]``.
    Raises ImportFileError for problems of
    the whole file, UnsupportedFileError (415) for content not on the allow-list and
    LimitExceededError (413) for a file past the caps.
    """
    name = name or path.name
    if not path.is_file():
        raise ImportFileError(format_message("{name} does not exist", name=name))
    sniffed = sniff(path, name=name)
    reader = READERS[sniffed.kind]
    suffix = _suffix(name)
    named = next((r for r in READERS.values() if suffix in r.suffixes), None)
    if named is not None and named is not reader:
        raise UnsupportedFileError(
            format_message(
                "cannot read {name}: its name says {label} but its content is {label2}",
                name=name,
                label=named.label,
                label2=reader.label,
            )
        )
    if reader.points_only and not points_only_ok:
        raise UnsupportedFileError(
            format_message(
                "{name}: a {label} table holds points only; this import needs lines or polygons "
                "(GeoJSON, GeoPackage, zipped Shapefile or GeoParquet)",
                name=name,
                label=reader.label,
            )
        )
    if encoding:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise ImportFileError(
                format_message(
                    "unknown encoding {encoding!r}: give e.g. utf-8, gb18030, gbk, big5, cp1252",
                    encoding=encoding,
                )
            ) from None
    request = _Request(
        path,
        name,
        suffix,
        sniffed,
        layer,
        lon_column,
        lat_column,
        limits or ReadLimits(),
        encoding,
    )
    frame = reader.read(request)
    if len(frame) > request.limits.max_features:
        raise LimitExceededError(
            format_message(
                "{name} has more than {max_features:,} features; at most {max_features:,} per "
                "import (split the file)",
                name=name,
                max_features=request.limits.max_features,
            )
        )
    if not reader.points_only and (
        not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame
    ):
        raise ImportFileError(format_message("{name} has no geometry column", name=name))
    used = frame.attrs.get("encoding")
    dropped = _drop_z_m(frame)
    if swap_xy:  # the client says the file's x/y (lon/lat) columns are the other way round
        _swap_xy(frame)
    frame = _to_wgs84(frame, crs, name, accept_approximate=accept_approximate_transform)
    frame.attrs["encoding"] = used
    if dropped:
        frame.attrs["dimensions_dropped"] = dropped
    return frame


def _swap_xy(frame: gpd.GeoDataFrame) -> None:
    """Swap x and y of every (2D) geometry, in place."""
    values = np.asarray(frame.geometry.values, dtype=object)
    present = pd.notna(values)
    flat = values.copy()
    flat[present] = shapely.transform(values[present], lambda xy: xy[:, ::-1])
    frame[frame.geometry.name] = gpd.GeoSeries(flat, index=frame.index, crs=frame.crs)


def _drop_z_m(frame: gpd.GeoDataFrame) -> list[str]:
    """Keep x/y only, in place: Z (heights) and M (measures) of any geometry type are
    dropped, as our columns are 2D. Returns what was dropped ("Z", "M") for the summary."""
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
        return []
    values = np.asarray(frame.geometry.values, dtype=object)
    present = pd.notna(values)
    if not present.any():
        return []
    geoms = values[present]
    dropped = [
        label
        for label, has in (("Z", shapely.has_z(geoms)), ("M", shapely.has_m(geoms)))
        if has.any()
    ]
    if dropped:
        flat = values.copy()
        flat[present] = shapely.force_2d(geoms)
        frame[frame.geometry.name] = gpd.GeoSeries(flat, index=frame.index, crs=frame.crs)
    return dropped


@functools.cache
def _harden_gdal() -> None:
    pyogrio.set_gdal_config_options(GDAL_HARDENING)


_THREAD = threading.local()


def _gdal_warnings_in_this_thread() -> None:
    """Let GDAL's warnings reach Python's ``warnings`` in the calling thread too.

    pyogrio registers its GDAL error handler for the importing thread only (GDAL keeps
    handlers per thread); an upload is read in a worker thread, where GDAL would print to
    stderr instead. pyogrio has no public call for this, hence its private one, guarded.
    """
    register = getattr(pyogrio._err, "_register_error_handler", None)
    if register is not None and not getattr(_THREAD, "gdal_warnings", False):
        register()
        _THREAD.gdal_warnings = True


def _read_ogr(request: _Request, path: Path | None = None) -> gpd.GeoDataFrame:
    """Read through GDAL, keeping features whose geometry GEOS cannot even build.

    geopandas.read_file fails the whole file on one malformed geometry (an unclosed ring);
    reading the raw WKB lets that feature be rejected alone, with GEOS's reason. At most
    ``max_features + 1`` features are read: one more than the cap is enough to refuse.
    """
    _harden_gdal()
    try:
        # GDAL's warnings ("Non closed ring detected") are kept from the user, but looked at.
        if request.sniffed.kind == "geojson":
            _gdal_warnings_in_this_thread()  # a repeated Feature id is said by a warning
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always", RuntimeWarning)
            meta, fids, wkb, fields = pyogrio.raw.read(
                path or request.path,
                layer=request.layer,
                max_features=request.limits.max_features + 1,
                return_fids=request.sniffed.kind == "geojson",  # Feature "id" members
                # Date/time fields as the file's own text, offsets kept (GDAL's parsed values
                # drop them); a GeoJSON's exactly as written, so --date-format applies to it.
                datetime_as_string=True,
                **({"DATE_AS_STRING": "YES"} if request.sniffed.kind == "geojson" else {}),
                **({"encoding": request.encoding} if request.encoding else {}),
            )
    except Exception as exc:  # noqa: BLE001 - GDAL raises many types; all mean "unreadable"
        raise _unreadable(request, exc) from None
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    errors = np.full(len(wkb), None, dtype=object)
    for i in np.flatnonzero(pd.isna(geoms) & pd.notna(wkb)):
        try:
            shapely.from_wkb(wkb[i])
        except shapely.errors.GEOSException as exc:
            message = str(exc).split(": ", 1)[-1]
            errors[i] = "unclosed ring" if "closed linestring" in message else message
    try:
        crs = CRS.from_user_input(meta["crs"]) if meta["crs"] else None
    except CRSError as exc:
        log.warning("upload %r: CRS refused: %s", request.name, exc)
        raise ImportFileError(
            format_message(
                "{name}: its CRS {not_earth_crs}",
                name=request.name,
                not_earth_crs=gettext(NOT_EARTH_CRS),
            )
        ) from None
    frame = gpd.GeoDataFrame(
        dict(zip(meta["fields"], fields, strict=True)), geometry=gpd.GeoSeries(geoms), crs=crs
    )
    if pd.notna(errors).any():
        frame[GEOMETRY_ERROR] = errors
    frame.attrs["encoding"] = request.encoding
    if fids is not None:
        _feature_ids(frame, fids, [str(w.message) for w in warned])
    return frame


def _feature_ids(frame: gpd.GeoDataFrame, fids: np.ndarray, gdal_warnings: list[str]) -> None:
    """A GeoJSON Feature's ``id`` member (RFC 7946 section 3.2) as the ``id`` column.

    GDAL takes integer feature ids as its FIDs (a string id becomes an ``id`` field) and
    numbers features without one 0, 1, 2...: FIDs equal to the row numbers are no ids. An
    ``id`` in the properties wins. Ids GDAL had to change (repeated in the file) are not
    used: the rows then get content keys, and the summary says so. The FIDs of other formats
    (a Shapefile's record number, a GeoPackage's ``fid`` renumbered by every export) are
    not stable ids and are never read.
    """
    if "id" in frame.columns or len(frame) == 0 or np.array_equal(fids, np.arange(len(frame))):
        return
    said = frame.attrs.setdefault("assumptions", {})
    if any("Altering it to be unique" in w for w in gdal_warnings):
        said["feature_ids"] = "repeated in the file: not used (keys from content)"
        return
    frame["id"] = np.asarray(fids).astype(str)
    said["feature_ids"] = "GeoJSON Feature id"


def _read_geojson(request: _Request) -> gpd.GeoDataFrame:
    check_geojson(request.path, name=request.name)
    return _read_ogr(request)


def _read_geopackage(request: _Request) -> gpd.GeoDataFrame:
    check_geopackage(request.path, name=request.name)
    _harden_gdal()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # GDAL: an upload's suffix
            layers = [str(row[0]) for row in pyogrio.list_layers(request.path)]
    except Exception as exc:  # noqa: BLE001 - GDAL raises many types; all mean "unreadable"
        raise _unreadable(request, exc) from None
    _check_layer(request, layers)
    return _read_ogr(request)


def _check_layer(request: _Request, layers: list[str]) -> None:
    """One layer, or the one named: a file with several is refused with their list."""
    listed = ", ".join(repr(layer) for layer in layers[:50])
    if request.layer is None and len(layers) > 1:
        raise ImportFileError(
            format_message(
                "{name} has {n} layers ({listed}); choose one with --layer NAME",
                name=request.name,
                n=len(layers),
                listed=listed,
            )
        )
    if request.layer is not None and request.layer not in layers:
        raise ImportFileError(
            format_message(
                "{name} has no layer {layer!r}; layers: {listed}",
                name=request.name,
                layer=request.layer,
                listed=listed,
            )
        )


# Columns GDAL makes of KML's display settings (how Google Earth draws a placemark): nothing
# an import stores, so not listed among "ignored columns". Name, description, timestamp,
# begin, end and ExtendedData fields stay, for --map.
KML_DISPLAY_FIELDS = ("altitudeMode", "tessellate", "extrude", "visibility", "drawOrder", "icon")


def _read_kml(request: _Request, path: Path | None = None) -> gpd.GeoDataFrame:
    """A KML document: each Folder (or the Document's own placemarks) is a layer, as GDAL's
    KML drivers read it; several layers with placemarks are refused like a GeoPackage's."""
    path = path or request.path
    with path.open("rb") as fh:
        encoding = xml_encoding(fh.read(SNIFF_BYTES))
    if encoding is None:
        return _read_kml_utf8(request, path)
    with upload_workspace() as scratch:
        frame = _read_kml_utf8(
            request, xml_to_utf8(path, scratch / "doc.kml", encoding, name=request.name)
        )
    frame.attrs["encoding"] = encoding
    return frame


def _read_kml_utf8(request: _Request, path: Path) -> gpd.GeoDataFrame:
    links = check_kml(path, name=request.name)
    _harden_gdal()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            layers = [
                str(row[0])
                for row in pyogrio.list_layers(path)
                if pyogrio.read_info(path, layer=str(row[0]))["features"] != 0
            ]
    except Exception as exc:  # noqa: BLE001 - GDAL raises many types; all mean "unreadable"
        raise _unreadable(request, exc) from None
    if not layers:
        raise ImportFileError(
            format_message("{name}: the KML holds no placemarks", name=request.name)
        )
    _check_layer(request, layers)
    chosen = request.layer or layers[0]
    frame = _read_ogr(_Request(**{**request.__dict__, "layer": chosen}), path)
    drop = [c for c in KML_DISPLAY_FIELDS if c in frame.columns]
    if "id" in frame.columns and frame["id"].isna().all():
        drop.append("id")  # no Placemark carried an id attribute
    frame = frame.drop(columns=drop)
    assumed = frame.attrs.setdefault("assumptions", {})
    assumed["layer"] = chosen
    if links:
        assumed["network_links_ignored"] = links
    return frame


def _read_kmz(request: _Request) -> gpd.GeoDataFrame:
    # Our own extraction, as for zipped shapefiles: only the document comes out, capped.
    with upload_workspace() as scratch:
        kml = extract_kml(request.path, scratch, limits=request.limits, name=request.name)
        frame = _read_kml(request, kml)
    others = kmz_other_documents(request.path)
    if others:  # read as KML 2.2 says (doc.kml is the document), but never silently
        frame.attrs.setdefault("assumptions", {})["kmz_documents_not_read"] = others[:20]
    return frame


def _dbf_encoding(request: _Request, shp: Path) -> str | None:
    """The encoding of a Shapefile's DBF text: the client's, the .cpg's, else detected from
    the records (strict UTF-8, else GB18030, a superset of GBK/GB2312, the usual encoding of
    Chinese data without a .cpg); None leaves it to GDAL (the DBF's language driver byte)."""
    if request.encoding:
        return request.encoding
    dbf = next((p for p in (shp.with_suffix(".dbf"), shp.with_suffix(".DBF")) if p.is_file()), None)
    cpg = next((p for p in (shp.with_suffix(".cpg"), shp.with_suffix(".CPG")) if p.is_file()), None)
    if dbf is None or cpg is not None:
        return None
    with dbf.open("rb") as fh:
        header = fh.read(32)
        if len(header) < 32 or header[29] != 0:
            return None  # not a DBF, or its language driver byte names the code page
        fh.seek(int.from_bytes(header[8:10], "little"))
        records = fh.read(DBF_SAMPLE_BYTES)
    return _detect_encoding(records)


def _decodes(sample: bytes, encoding: str) -> bool:
    try:  # final=False: a character cut at the end of the sample is no error
        codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _detect_encoding(sample: bytes) -> str | None:
    """The encoding of a sample of text (a DBF's records, a CSV's first bytes).

    None for ASCII; else strict UTF-8; else GB18030 (a superset of GBK/GB2312, mainland
    files) or Big5 as Windows writes it (cp950, Big5 with Microsoft's additions; Taiwan,
    Hong Kong, Macau files). Most Big5 bytes are also valid GB18030 (and decode to
    nonsense), so when both decode, charset-normalizer's language model chooses between the
    two; None when neither decodes.

    >>> _detect_encoding("1,臺北市中正區重慶南路一段122號,噪音擾民".encode("big5"))
    'cp950'
    >>> _detect_encoding("1,武汉市江岸区解放大道1号,噪音扰民".encode("gbk"))
    'gb18030'
    """
    if sample.isascii():
        return None
    if _decodes(sample, "utf-8"):
        return "utf-8"
    candidates = [e for e in ("gb18030", "cp950") if _decodes(sample, e)]
    if len(candidates) == 2:
        from charset_normalizer import from_bytes  # loads its models on first use only

        best = from_bytes(sample, cp_isolation=candidates).best()
        if best is not None and best.encoding == "cp950":
            return "cp950"
    return candidates[0] if candidates else None


def _with_encoding(request: _Request, shp: Path) -> _Request:
    return _Request(**{**request.__dict__, "encoding": _dbf_encoding(request, shp)})


def _read_shapefile(request: _Request) -> gpd.GeoDataFrame:
    check_shapefile(request.path, name=request.name)
    return _read_ogr(_with_encoding(request, request.path))


def _read_shapefile_zip(request: _Request) -> gpd.GeoDataFrame:
    # Our own extraction, not GDAL's /vsizip/: only the chosen shapefile's parts come out,
    # under fixed names, with the byte and ratio caps; nothing else in the zip is opened.
    with upload_workspace() as scratch:
        shp = extract_shapefile(
            request.path, scratch, layer=request.layer, limits=request.limits, name=request.name
        )
        return _read_ogr(
            # one layer: the one extracted
            _with_encoding(_Request(**{**request.__dict__, "layer": None}), shp),
            shp,
        )


def _read_geoparquet(request: _Request) -> gpd.GeoDataFrame:
    try:
        meta = pq.ParquetFile(request.path).metadata
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise _unreadable(request, exc) from None
    if meta.num_rows > request.limits.max_features:
        raise LimitExceededError(
            format_message(
                "{name} has {num_rows:,} features; at most {max_features:,} per import (split "
                "the file)",
                name=request.name,
                num_rows=meta.num_rows,
                max_features=request.limits.max_features,
            )
        )
    unpacked = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if unpacked > request.limits.max_uncompressed_bytes:
        raise LimitExceededError(
            format_message(
                "{name} unpacks to {unpacked:,} bytes; at most {max_uncompressed_bytes:,} "
                "(split the file)",
                name=request.name,
                unpacked=unpacked,
                max_uncompressed_bytes=request.limits.max_uncompressed_bytes,
            )
        )
    try:
        return gpd.read_parquet(request.path)
    except Exception as exc:  # noqa: BLE001
        raise _unreadable(request, exc) from None


TABLE_DELIMITERS = (",", ";", "\t", "|")
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True)
class _TableText:
    """How a CSV/TSV/TXT is read: its codec (for pandas), the encoding reported (None: plain
    ASCII, nothing assumed), its delimiter and its header's column names."""

    codec: str
    reported: str | None
    sep: str
    header: list[str]


def _table_text(request: _Request) -> _TableText:
    """Encoding (the client's; else a UTF-16 BOM; else strict UTF-8, BOM ok, else GB18030 as
    ``_detect_encoding`` finds on the first bytes), delimiter (the one of , ; tab | the header
    line holds most of; the suffix's on a tie) and header of a table. A header naming a
    column twice is refused: which of the two is read would be a guess."""
    with open_text_stream(
        request.path, gzipped=request.sniffed.gzipped, limits=request.limits, name=request.name
    ) as stream:
        sample = stream.read(DBF_SAMPLE_BYTES)
    if request.encoding:
        reported: str | None = request.encoding
        codec = "utf-8-sig" if request.encoding == "utf-8" else request.encoding
    elif sample.startswith(UTF16_BOMS):
        reported = codec = "utf-16"
    else:
        reported = _detect_encoding(sample)
        codec = reported if reported and reported != "utf-8" else "utf-8-sig"
    text = codecs.getincrementaldecoder(codec)(errors="replace").decode(sample, final=False)
    line = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    default = "\t" if request.suffix.startswith(".tsv") else ","
    sep = max(TABLE_DELIMITERS, key=lambda c: (line.count(c), c == default))
    if line.count(sep) == 0:
        sep = default
    header = next(csv.reader([line], delimiter=sep), [])
    names = [h.strip() for h in header]
    repeated = sorted({h for h in names if h and names.count(h) > 1})
    if repeated:
        raise ImportFileError(
            format_message(
                "{name}: the header names the column {value!r} more than once; rename or remove "
                "the copy (a column is read by its name)",
                name=request.name,
                value=repeated[0],
            )
        )
    return _TableText(codec, reported, sep, header)


def _read_table(request: _Request) -> gpd.GeoDataFrame:
    # CSV, TSV and TXT go through pandas' C parser, the delimiter taken from the header line.
    # A row with another number of fields than the header (pandas refuses the file, or pads
    # a short row silently) sends the file to the csv module, which rejects just that row.
    # Rows stop at the feature cap + 1; bytes pass a CappedReader.
    try:
        table = _table_text(request)
        raw = _read_table_fast(request, table)
        if raw is None:
            raw = _read_table_rows(request, table)
    except (LimitExceededError, ImportFileError):
        raise
    except Exception as exc:  # noqa: BLE001 - pandas and codecs raise many types
        if isinstance(exc.__context__, LimitExceededError):
            raise exc.__context__ from None  # the cap, seen through pandas' C parser
        if UnicodeDecodeError in (type(exc), type(exc.__context__)):
            log.warning("cannot read upload %r: %s", request.name, exc)
            shown = request.encoding or "UTF-8, GB18030 or Big5"
            raise ImportFileError(
                format_message(
                    "cannot read {name}: it is not {shown} text; give its encoding with "
                    "--encoding (form field encoding), e.g. utf-8, gb18030, gbk, big5, utf-16",
                    name=request.name,
                    shown=shown,
                )
            ) from None
        raise _unreadable(request, exc) from None
    points = _table_points(request, raw, decimal_comma=table.sep != ",")
    points.attrs["encoding"] = table.reported
    if table.reported:
        points.attrs.setdefault("assumptions", {})["encoding"] = table.reported
    return points


def _read_table_fast(request: _Request, table: _TableText) -> pd.DataFrame | None:
    """The table through pandas' C parser; None when a row has another number of fields
    than the header (too many: pandas' ParserError or ParserWarning; too few: a row whose
    last column came out empty, then the slow path decides)."""
    try:
        with (
            open_text_stream(
                request.path,
                gzipped=request.sniffed.gzipped,
                limits=request.limits,
                name=request.name,
            ) as stream,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("error", pd.errors.ParserWarning)
            raw = pd.read_csv(
                stream,
                sep=table.sep,
                dtype=str,
                keep_default_na=False,
                encoding=table.codec,  # utf-8-sig: a UTF-8 BOM (Excel) is not in the header
                engine="c",
                index_col=False,  # a long first row never turns the first column into an index
                nrows=request.limits.max_features + 1,
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning):
        return None
    if len(raw.columns) > 1 and (raw.iloc[:, -1] == "").any():
        return None  # maybe a short row, padded by pandas
    return raw


def _read_table_rows(request: _Request, table: _TableText) -> pd.DataFrame:
    """The table through the csv module: a row with another number of fields than the header
    is kept (padded or cut to the header) with its reason in ``ROW_ERROR``, so that it
    alone is rejected, with its line number."""
    width = len(table.header)
    rows: list[list[str]] = []
    errors: list[str | None] = []
    with open_text_stream(
        request.path, gzipped=request.sniffed.gzipped, limits=request.limits, name=request.name
    ) as stream:
        text = io.TextIOWrapper(stream, encoding=table.codec, newline="")
        reader = csv.reader(text, delimiter=table.sep)
        next(reader, None)  # the header, read by _table_text
        for fields in reader:
            if not fields:
                continue  # a blank line, as pandas skips it
            if len(fields) == width:
                errors.append(None)
            else:
                errors.append(
                    f"line {reader.line_num} has {len(fields)} fields, the header has {width}"
                )
                fields = (fields + [""] * width)[:width]
            rows.append(fields)
            if len(rows) > request.limits.max_features:
                break
    columns = [h if h.strip() else f"Unnamed: {i}" for i, h in enumerate(table.header)]
    raw = pd.DataFrame(rows, columns=columns, dtype=str)
    if any(errors):
        raw[ROW_ERROR] = errors
    return raw


def _read_xlsx(request: _Request) -> gpd.GeoDataFrame:
    # An Excel workbook reads like a CSV: the first sheet (or --layer SHEET), first row the
    # header, every cell as text. The zip's unpacked size is capped before openpyxl opens it.
    try:
        check_xlsx(request.path, limits=request.limits, name=request.name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # openpyxl: styles, data validation
            raw = pd.read_excel(
                request.path,
                sheet_name=request.layer or 0,
                dtype=str,
                keep_default_na=False,
                engine="openpyxl",
                nrows=request.limits.max_features + 1,
            )
    except LimitExceededError:
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl / zipfile raise many types
        raise _unreadable(request, exc) from None
    return _table_points(request, raw)


def _read_xls(request: _Request) -> gpd.GeoDataFrame:
    # A legacy Excel 97-2003 workbook (an OLE2 file) reads like a CSV too, through pandas'
    # calamine engine (Rust; pandas' own successor to xlrd). Another OLE2 file (a .doc) is
    # not a workbook: calamine refuses it and the client gets the fixed sentence. The file
    # is not compressed, so the upload cap bounds what it can hold.
    try:
        raw = pd.read_excel(
            request.path,
            sheet_name=request.layer or 0,
            dtype=str,
            keep_default_na=False,
            engine="calamine",
            nrows=request.limits.max_features + 1,
        )
    except Exception as exc:  # noqa: BLE001 - calamine raises its own error types
        raise _unreadable(request, exc) from None
    return _table_points(request, raw)


_DECIMAL_COMMA = r"[+-]?\d+,\d+"


def _coordinate_numbers(values: pd.Series, decimal_comma: bool) -> tuple[np.ndarray, bool]:
    """A coordinate column as floats (NaN where unreadable) and whether a decimal comma was
    read. ``decimal_comma`` (a table delimited by ; tab or |, as Excel writes CSV where the
    comma is the decimal sign: most of Europe) reads ``114,305`` as 114.305; in a
    comma-delimited file a quoted ``500,123`` may be a thousands separator, so it stays
    unreadable and its row is rejected with the reason."""
    text_ = values.str.strip()
    numbers = pd.to_numeric(text_, errors="coerce")
    if not decimal_comma:
        return numbers.to_numpy(float), False
    comma = numbers.isna() & text_.str.fullmatch(_DECIMAL_COMMA, na=False)
    if not comma.any():
        return numbers.to_numpy(float), False
    numbers[comma] = pd.to_numeric(text_[comma].str.replace(",", ".", regex=False))
    return numbers.to_numpy(float), True


def _table_points(
    request: _Request, raw: pd.DataFrame, *, decimal_comma: bool = False
) -> gpd.GeoDataFrame:
    """A table's rows as points from its lon/lat columns (kept as text for validation);
    ``decimal_comma`` as ``_coordinate_numbers`` reads it."""
    name = request.name
    raw.columns = [str(c).lstrip("\ufeff") for c in raw.columns]
    columns = list(raw.columns)
    lon_col = request.lon_column or _find_column(columns, LON_NAMES)
    lat_col = request.lat_column or _find_column(columns, LAT_NAMES)
    if lon_col not in columns or lat_col not in columns:
        raise ImportFileError(
            format_message(
                "{name}: no coordinate columns found (looked for {values} and {values2}); name "
                "them with --map SRC=lon --map SRC=lat",
                name=name,
                values="/".join(LON_NAMES),
                values2="/".join(LAT_NAMES),
            )
        )
    lon, lon_comma = _coordinate_numbers(raw[lon_col], decimal_comma)
    lat, lat_comma = _coordinate_numbers(raw[lat_col], decimal_comma)
    if lon_comma or lat_comma:
        assumed = raw.attrs.setdefault("assumptions", {})
        assumed["decimal_comma"] = [
            c for c, used in ((lon_col, lon_comma), (lat_col, lat_comma)) if used
        ]
    ok = np.isfinite(lon) & np.isfinite(lat)
    geoms = np.full(len(raw), None, dtype=object)
    geoms[ok] = shapely.points(lon[ok], lat[ok])
    raw = raw.rename(columns={lon_col: "lon", lat_col: "lat"})
    points = gpd.GeoDataFrame(raw, geometry=gpd.GeoSeries(geoms, index=raw.index), crs=None)
    points.attrs.update(raw.attrs)
    # The file's own names of "lon" / "lat" (X / Y, ...): the rejects file shows them back.
    points.attrs["coordinate_columns"] = {"lon": lon_col, "lat": lat_col}
    return points


# The allow-list: a kind of content (as ``uploads.sniff`` names it) -> its reader. A new
# format is one sniffer branch in uploads.py and one row here.
READERS: dict[str, Reader] = {
    "geojson": Reader("GeoJSON", (".geojson", ".json"), _read_geojson),
    "gpkg": Reader("GeoPackage", (".gpkg",), _read_geopackage),
    "shapefile-zip": Reader("zipped Shapefile", (".zip", ".shp.zip"), _read_shapefile_zip),
    "shapefile": Reader("Shapefile", (".shp",), _read_shapefile),
    "geoparquet": Reader("GeoParquet", PARQUET_SUFFIXES, _read_geoparquet),
    "table": Reader("CSV/TSV", TABLE_SUFFIXES, _read_table, points_only=True),
    "xlsx": Reader("Excel .xlsx", (".xlsx",), _read_xlsx, points_only=True),
    "xls": Reader("Excel .xls", (".xls",), _read_xls, points_only=True),
    "kml": Reader("KML", (".kml",), _read_kml),
    "kmz": Reader("KMZ", (".kmz",), _read_kmz),
}


def _to_wgs84(
    frame: gpd.GeoDataFrame, source: SourceCrs, name: str, *, accept_approximate: bool = False
) -> gpd.GeoDataFrame:
    """``frame`` in WGS84, by the best transformation PROJ has for the data's area.

    The report's ``crs``, ``transformation`` and ``transformation_accuracy_m`` are put in
    ``frame.attrs["assumptions"]``. A transformation whose accuracy is unknown (PROJ's
    ballpark) or worse than ``MAX_TRANSFORMATION_ERROR_M`` raises ImportFileError naming the
    CRS, the operation and its accuracy, unless ``accept_approximate``.
    """
    frame = frame.reset_index(drop=True)
    if source.chinese:
        values = frame.geometry.values
        present = ~(frame.geometry.isna() | frame.geometry.is_empty).to_numpy()
        _check_lonlat(values[present], name)
        converted = np.array(values, dtype=object)
        converted[present] = geometry_to_wgs84(
            np.asarray(values[present], dtype=object), source.chinese
        )
        frame = frame.set_geometry(gpd.GeoSeries(converted, crs=4326))
        frame.attrs.setdefault("assumptions", {}).update(CHINESE_TRANSFORMATIONS[source.chinese])
        return frame
    if source.crs is not None:
        frame = frame.set_crs(source.crs, allow_override=True)  # checked by SourceCrs.parse
    elif frame.crs is None:
        frame = frame.set_crs(4326)
    else:
        message = format_message(
            "{name}: its CRS {not_earth_crs}; give the file's CRS with --crs",
            name=name,
            not_earth_crs=gettext(NOT_EARTH_CRS),
        )
        check_earth_crs(frame.crs, message)
    geographic = frame.crs.is_geographic
    present = ~(frame.geometry.isna() | frame.geometry.is_empty).to_numpy()
    if geographic:
        _check_lonlat(frame.geometry.values[present], name)
    # X=Y=0 is "no coordinates" in any CRS: kept at (0, 0) so it is rejected as zero
    # coordinates, not transformed to some point far from the city (nor widening the area
    # the transformation is chosen for).
    wgs84 = frame.crs.to_epsg() == 4326
    zero = (
        np.zeros(len(frame), dtype=bool) if wgs84 else _zero_points(frame.geometry.values, present)
    )
    try:
        area = None if wgs84 else _area_lonlat(frame, present & ~zero)
        chosen = transformation_to_wgs84(frame.crs, area)
    except (CRSError, ProjError) as exc:
        log.warning("upload %r: no transformation to WGS84: %s", name, exc)
        raise ImportFileError(
            format_message(
                "{name}: its CRS {not_earth_crs}", name=name, not_earth_crs=gettext(NOT_EARTH_CRS)
            )
        ) from None
    if chosen.approximate and not accept_approximate:
        log.warning(
            "upload %r: approximate transformation refused: %s (%s m)",
            name,
            chosen.description,
            chosen.accuracy_m,
        )
        raise ImportFileError(_approximate_message(name, chosen))
    attrs = dict(frame.attrs)
    if chosen.transformer is not None:
        transformer = chosen.transformer
        geoms = np.array(frame.geometry.values, dtype=object)

        def to_wgs84(xy: np.ndarray) -> np.ndarray:
            x, y = transformer.transform(xy[:, 0], xy[:, 1], errcheck=False)
            return np.column_stack([x, y])

        try:
            geoms[present] = shapely.transform(geoms[present], to_wgs84)
        except (CRSError, ProjError) as exc:  # a check passed, the transformation did not
            log.warning("upload %r: CRS transformation failed: %s", name, exc)
            raise ImportFileError(
                format_message(
                    "{name}: its CRS {not_earth_crs}",
                    name=name,
                    not_earth_crs=gettext(NOT_EARTH_CRS),
                )
            ) from None
        geoms[zero] = shapely.Point(0, 0)
        frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=4326))
    frame.attrs.update(attrs)
    frame.attrs.setdefault("assumptions", {}).update(chosen.assumptions())
    return frame


# gcj02 / bd09 are offsets of WGS 84 by published formulas, not datums PROJ knows:
# ``geo.crs.to_wgs84`` inverts them by iteration to under 1e-9 degrees (< 0.1 mm).
CHINESE_TRANSFORMATIONS: dict[str, dict[str, str | float]] = {
    "gcj02": {
        "crs": "GCJ-02 (the offset of WGS 84 that Amap/Gaode and Tencent maps publish)",
        "transformation": "inverse of the public GCJ-02 formula, iterated "
        "(geo_service.geo.crs.gcj02_to_wgs84)",
        "transformation_accuracy_m": 0.001,
    },
    "bd09": {
        "crs": "BD-09 (Baidu's offset of GCJ-02)",
        "transformation": "inverse of Baidu's BD-09 formula, then of GCJ-02, iterated "
        "(geo_service.geo.crs.to_wgs84)",
        "transformation_accuracy_m": 0.001,
    },
}


def _area_lonlat(
    frame: gpd.GeoDataFrame, present: np.ndarray
) -> tuple[float, float, float, float] | None:
    """The data's extent in degrees on its own datum (no datum shift: exact), or None."""
    if not present.any():
        return None
    bounds = shapely.total_bounds(np.asarray(frame.geometry.values, dtype=object)[present])
    if not np.isfinite(bounds).all():
        return None
    crs = frame.crs
    try:
        if not crs.is_geographic:
            base = crs.geodetic_crs
            if base is None:
                return None
            to_base = Transformer.from_crs(crs, base, always_xy=True)
            bounds = to_base.transform_bounds(
                bounds[0], bounds[1], bounds[2], bounds[3], errcheck=True
            )
    except (CRSError, ProjError):
        return None
    west, south, east, north = (float(v) for v in bounds)
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        return None
    return west, south, east, north


def _approximate_message(name: str, chosen: Transformation) -> str:
    """Why an approximate transformation is refused, and how to accept it."""
    accuracy = (
        gettext("PROJ gives it no accuracy (a ballpark shift: often tens of metres or more)")
        if chosen.accuracy_m is None
        else format_message(
            "accurate only to {accuracy_m} m (more than the {limit_m} m accepted)",
            accuracy_m=f"{chosen.accuracy_m:g}",
            limit_m=f"{MAX_TRANSFORMATION_ERROR_M:g}",
        )
    )
    grids = ""
    if chosen.better and chosen.missing_grids:
        grids = format_message(
            " A more accurate operation, {better}, needs the PROJ grid file(s) {grids}, which "
            "are not installed on this server (an administrator can install them with "
            "projsync --file NAME).",
            better=chosen.better,
            grids=", ".join(chosen.missing_grids),
        )
    return format_message(
        "{name}: its CRS {crs} reaches WGS 84 only by the transformation '{description}'; "
        "{accuracy}.{grids} To accept the approximation, import again with "
        "--accept-approximate-transform (form field accept_approximate_transform=true); or "
        "convert the file to WGS 84 or CGCS2000 with the parameters your survey office gives",
        name=name,
        crs=chosen.crs_label,
        description=chosen.description,
        accuracy=accuracy,
        grids=grids,
    )


def _zero_points(geoms: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Which geometries are the point X=Y=0 (before any transformation)."""
    values = np.asarray(geoms, dtype=object)
    zero = np.zeros(len(values), dtype=bool)
    points = present & (shapely.get_type_id(values) == 0)
    if points.any():
        zero[points] = (shapely.get_x(values[points]) == 0) & (shapely.get_y(values[points]) == 0)
    return zero


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
        swapped = (np.abs(bounds[:, [1, 3]]) > 180).any(axis=1) | (
            np.abs(bounds[:, [0, 2]]) > 90
        ).any(axis=1)
        if swapped.mean() <= PROJECTED_SHARE:
            raise ImportFileError(
                format_message(
                    "{name}: x (longitude) reaches only {x:,.4g} but y (latitude) reaches "
                    "{y:,.4g}, past 90: the lon and lat columns look swapped; import again with "
                    "--swap-xy (form field swap_xy), or name them with --map SRC=lon --map "
                    "SRC=lat",
                    name=name,
                    x=x,
                    y=y,
                )
            )
        raise ImportFileError(
            format_message(
                "{name}: coordinates reach x={x:,.0f}, y={y:,.0f}, far outside lon/lat range; "
                "the file looks projected: give its CRS with --crs EPSG:xxxx",
                name=name,
                x=x,
                y=y,
            )
        )
