"""WGS84 <-> GCJ-02 <-> BD-09, vectorised over numpy arrays and shapely geometries.

GCJ-02 is the obfuscated datum that Chinese map providers (Amap/Gaode, Tencent) publish; BD-09
is Baidu's further offset of it. The forward WGS84 -> GCJ-02 formula is public; its inverse has
no closed form, so it is solved by fixed-point iteration to well under a millimetre (the usual
one-step inverse is about 1-2 m off). Written here because the PyPI converters (eviltransform,
coord-convert, prcoords) work one point at a time in pure Python and are not maintained together
with numpy/shapely 2; this is numpy throughout. Points outside China pass through unchanged,
as the providers do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeGuard

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

SUPPORTED: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as GCJ-02 uses
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0
_INVERSE_TOL_DEG = 1e-12
_INVERSE_MAX_ITER = 30

Array = NDArray[np.float64]


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """True where a point lies outside the rectangle in which GCJ-02 offsets apply.

    The rectangle (72.004..137.8347 E, 0.8293..55.8271 N) is the one the public GCJ-02
    implementations use; it is coarse (it holds parts of neighbouring countries), and the
    providers apply it the same way, so points in it are offset whatever country they are in.

    Parameters
    ----------
    lon, lat : array_like of float, shape (n,)
        Longitudes and latitudes in degrees (any datum: the test is a plain rectangle).

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True where the point is outside the rectangle (no offset applies there).

    Examples
    --------
    >>> out_of_china([114.30, -87.63], [30.59, 41.88]).tolist()
    [False, True]
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _delta(lon: Array, lat: Array) -> tuple[Array, Array]:
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """Convert WGS84 to GCJ-02.

    The forward formula is the public one (as in wandergis/coordtransform, whose reference
    values ``tests/geo/test_crs.py`` checks to 1e-9 degrees), on the Krasovsky 1940 ellipsoid.
    The offset is a few hundred metres, different everywhere.

    Parameters
    ----------
    lon, lat : array_like of float, shape (n,)
        WGS84 (EPSG:4326) longitudes and latitudes in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray of float, shape (n,)
        GCJ-02 degrees; points outside China (``out_of_china``) unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02([114.30], [30.59])
    >>> round(float(lon[0]), 5), round(float(lat[0]), 5)
    (114.30544, 30.58758)
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    return _unchanged_outside_china(lon, lat, (lon + dlon, lat + dlat))


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """Convert GCJ-02 to WGS84 exactly (iterated inverse, residual < 1e-9 degrees).

    The forward formula has no closed-form inverse; this starts from the usual one-step
    estimate (1-2 m off) and iterates ``x <- x - (forward(x) - target)`` until every point's
    residual is under 1e-12 degrees (at most 30 rounds; 3-4 are typical).

    Parameters
    ----------
    lon, lat : array_like of float, shape (n,)
        GCJ-02 longitudes and latitudes in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray of float, shape (n,)
        WGS84 degrees; points outside China unchanged.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02([114.30], [30.59]))
    >>> round(float(lon[0]), 9), round(float(lat[0]), 9)
    (114.3, 30.59)
    """
    glon = np.asarray(lon, dtype=float)
    glat = np.asarray(lat, dtype=float)
    dlon, dlat = _delta(glon, glat)
    wgs84 = _invert(wgs84_to_gcj02, glon, glat, start=(glon - dlon, glat - dlat))
    return _unchanged_outside_china(glon, glat, wgs84)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """Convert GCJ-02 to BD-09 (Baidu).

    Baidu's published formula: a small rotation and scaling about the origin plus a fixed
    shift (0.0065, 0.006) degrees. It applies everywhere (Baidu offsets points outside China
    too); ``from_wgs84`` is where points outside China are kept unchanged.

    Parameters
    ----------
    lon, lat : array_like of float, shape (n,)
        GCJ-02 longitudes and latitudes in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray of float, shape (n,)
        BD-09 degrees.

    Examples
    --------
    >>> lon, lat = gcj02_to_bd09([116.404], [39.915])  # wandergis/coordtransform's test point
    >>> round(float(lon[0]), 8), round(float(lat[0]), 8)
    (116.41036949, 39.92133699)
    """
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[Array, Array]:
    """Convert BD-09 to GCJ-02 (closed form, then refined so the round trip is exact).

    Parameters
    ----------
    lon, lat : array_like of float, shape (n,)
        BD-09 longitudes and latitudes in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray of float, shape (n,)
        GCJ-02 degrees, within 1e-12 degrees of the point ``gcj02_to_bd09`` maps to the input.

    Examples
    --------
    >>> lon, lat = bd09_to_gcj02(*gcj02_to_bd09([116.404], [39.915]))
    >>> round(float(lon[0]), 9), round(float(lat[0]), 9)
    (116.404, 39.915)
    """
    blon = np.asarray(lon, dtype=float)
    blat = np.asarray(lat, dtype=float)
    x = blon - 0.0065
    y = blat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(gcj02_to_bd09, blon, blat, start=(z * np.cos(theta), z * np.sin(theta)))


def _invert(
    forward: Callable[[Array, Array], tuple[Array, Array]],
    lon: Array,
    lat: Array,
    *,
    start: tuple[Array, Array],
) -> tuple[Array, Array]:
    """The point ``forward`` maps to (lon, lat), by fixed-point iteration from ``start``
    (``x <- x - (forward(x) - target)``) until every residual is under 1e-12 degrees, at most
    30 rounds: both offsets are small and smooth, so it converges in a few."""
    xlon, xlat = start
    for _ in range(_INVERSE_MAX_ITER):
        flon, flat = forward(xlon, xlat)
        elon, elat = flon - lon, flat - lat
        xlon, xlat = xlon - elon, xlat - elat
        if np.all(np.abs(elon) < _INVERSE_TOL_DEG) and np.all(np.abs(elat) < _INVERSE_TOL_DEG):
            break
    return xlon, xlat


def _unchanged_outside_china(
    lon: Array, lat: Array, converted: tuple[Array, Array]
) -> tuple[Array, Array]:
    """``converted`` where (lon, lat) is inside ``out_of_china``'s rectangle, (lon, lat)
    outside it: the providers leave points outside China as they are."""
    outside = out_of_china(lon, lat)
    return np.where(outside, lon, converted[0]), np.where(outside, lat, converted[1])


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str = "wgs84") -> tuple[Array, Array]:
    """Convert coordinates given in ``crs`` (wgs84, gcj02 or bd09) to WGS84.

    Parameters
    ----------
    lon, lat : array_like of float, shape (n,)
        Longitudes and latitudes in degrees, in ``crs``.
    crs : {"wgs84", "gcj02", "bd09"}, default "wgs84"
        The coordinates' system; case, ``-`` and ``_`` are ignored (``"GCJ-02"`` works).

    Returns
    -------
    lon, lat : numpy.ndarray of float, shape (n,)
        WGS84 (EPSG:4326) degrees; points outside China unchanged.

    Raises
    ------
    ValueError
        If ``crs`` is none of the three.

    Examples
    --------
    >>> lon, lat = to_wgs84([114.30544], [30.58758], "GCJ-02")
    >>> round(float(lon[0]), 4), round(float(lat[0]), 4)
    (114.3, 30.59)
    >>> to_wgs84([114.3], [30.6], "epsg:3857")
    Traceback (most recent call last):
    ...
    ValueError: unsupported crs 'epsg:3857'; use one of wgs84, gcj02, bd09
    """
    crs = _check(crs)
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if crs == "wgs84":
        return lon, lat
    if crs == "bd09":
        lon, lat = _unchanged_outside_china(lon, lat, bd09_to_gcj02(lon, lat))
    return gcj02_to_wgs84(lon, lat)


def from_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str = "wgs84") -> tuple[Array, Array]:
    """Convert WGS84 coordinates to ``crs`` (wgs84, gcj02 or bd09).

    Parameters
    ----------
    lon, lat : array_like of float, shape (n,)
        WGS84 (EPSG:4326) longitudes and latitudes in degrees.
    crs : {"wgs84", "gcj02", "bd09"}, default "wgs84"
        The system to convert to; case, ``-`` and ``_`` are ignored.

    Returns
    -------
    lon, lat : numpy.ndarray of float, shape (n,)
        Degrees in ``crs``; points outside China unchanged (for BD-09 too).

    Raises
    ------
    ValueError
        If ``crs`` is none of the three.

    Examples
    --------
    >>> lon, lat = from_wgs84([114.30], [30.59], "bd09")
    >>> round(float(lon[0]), 5), round(float(lat[0]), 5)
    (114.31201, 30.59325)
    >>> from_wgs84([-87.63], [41.88], "bd09")[0].tolist()  # Chicago: no offset
    [-87.63]
    """
    crs = _check(crs)
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if crs == "wgs84":
        return lon, lat
    glon, glat = wgs84_to_gcj02(lon, lat)
    if crs == "gcj02":
        return glon, glat
    return _unchanged_outside_china(lon, lat, gcj02_to_bd09(glon, glat))


def geometry_to_wgs84(geoms: ArrayLike, crs: str) -> NDArray[np.object_]:
    """Convert shapely geometries whose coordinates are in ``crs`` to WGS84.

    Every vertex is converted (``to_wgs84``); the geometry types and vertex counts stay.

    Parameters
    ----------
    geoms : array_like of shapely.Geometry, shape (n,)
        Geometries in ``crs`` (lon/lat degrees).
    crs : {"wgs84", "gcj02", "bd09"}
        Their coordinate system.

    Returns
    -------
    numpy.ndarray of shapely.Geometry, shape (n,)
        The geometries in WGS84.

    Raises
    ------
    ValueError
        If ``crs`` is none of the three.

    Examples
    --------
    >>> (point,) = geometry_to_wgs84([shapely.Point(114.30544, 30.58758)], "gcj02")
    >>> round(point.x, 4), round(point.y, 4)
    (114.3, 30.59)
    """
    return _transform_geometries(geoms, lambda lon, lat: to_wgs84(lon, lat, crs))


def geojson_from_wgs84(document: Any, crs: str) -> Any:
    """A GeoJSON document (RFC 7946, WGS84) with every position converted to ``crs``.

    Every geometry type is converted, at any depth: ``Point``, ``MultiPoint``,
    ``LineString``, ``MultiLineString``, ``Polygon``, ``MultiPolygon`` and the members of a
    ``GeometryCollection``, in a ``Feature``, a ``FeatureCollection`` (with any foreign
    members, which are kept) or bare. A position keeps its third (height) value. So the
    answer stays consistent, a feature's numeric ``lon``/``lat`` properties (a point
    repeated as numbers) and ``bbox`` members (both corners) are converted too. All positions
    of the document go through ``from_wgs84`` in one vectorised call. The input is not
    changed: converted nodes are new dicts and lists, so cached layers stay WGS84.

    Parameters
    ----------
    document : dict
        A GeoJSON object (``FeatureCollection``, ``Feature`` or a geometry) whose coordinates
        are WGS84 lon/lat degrees; positions may be lists or tuples.
    crs : {"wgs84", "gcj02", "bd09"}
        The system to convert to (case, ``-`` and ``_`` ignored); ``wgs84`` returns
        ``document`` itself.

    Returns
    -------
    dict
        The document with positions in ``crs`` (degrees); points outside China unchanged.

    Raises
    ------
    ValueError
        If ``crs`` is none of the three.

    Examples
    --------
    >>> fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "id": 1,
    ...       "geometry": {"type": "Point", "coordinates": [114.30, 30.59]},
    ...       "properties": {"name": "a"}}]}
    >>> out = geojson_from_wgs84(fc, "gcj02")
    >>> [round(v, 5) for v in out["features"][0]["geometry"]["coordinates"]]
    [114.30544, 30.58758]
    >>> fc["features"][0]["geometry"]["coordinates"]  # the input is left as it was
    [114.3, 30.59]
    """
    name = _check(crs)
    if name == "wgs84":
        return document
    flat: list[float] = []
    _gather(document, flat)
    if not flat:
        return document
    xy = np.asarray(flat, dtype=float).reshape(-1, 2)
    lon, lat = from_wgs84(xy[:, 0], xy[:, 1], name)
    return _rebuild(document, iter(zip(lon.tolist(), lat.tolist(), strict=True)))


def rows_from_wgs84(
    rows: list[dict[str, Any]],
    crs: str,
    *,
    lon_key: str = "lon",
    lat_key: str = "lat",
    decimals: int | None = None,
) -> list[dict[str, Any]]:
    """JSON rows (not GeoJSON) whose WGS84 ``lon_key``/``lat_key`` members are given in ``crs``.

    The JSON answers that carry a position as two numbers (the console's incidents, an
    incident, the nearest responders, Open311's ``lat``/``long``, household rows) honour
    ``crs=gcj02|bd09`` through this, as GeoJSON answers do through ``geojson_from_wgs84``:
    every row's position goes through ``from_wgs84`` in one vectorised call. Rows whose
    position is null (a responder before its first fix) are left as they are. The input is
    not changed: converted rows are shallow copies.

    Parameters
    ----------
    rows : list of dict, length n
        Rows with WGS84 lon/lat degrees (or None) under ``lon_key`` and ``lat_key``.
    crs : {"wgs84", "gcj02", "bd09"}
        The system to convert to (case, ``-`` and ``_`` ignored); ``wgs84`` returns ``rows``.
    lon_key, lat_key : str
        The members holding the position (Open311 says ``long`` and ``lat``).
    decimals : int, optional
        Round the converted degrees to this many decimals (a coarsened public position stays
        as coarse in the other system).

    Returns
    -------
    list of dict, length n
        The rows with positions in ``crs`` (degrees); points outside China unchanged.

    Raises
    ------
    ValueError
        If ``crs`` is none of the three.

    Examples
    --------
    >>> rows = [{"id": 1, "lon": 114.30, "lat": 30.59}, {"id": 2, "lon": None, "lat": None}]
    >>> out = rows_from_wgs84(rows, "gcj02", decimals=5)
    >>> out[0]["lon"], out[0]["lat"], out[1]["lon"], rows[0]["lon"]
    (114.30544, 30.58758, None, 114.3)
    """
    name = _check(crs)
    if name == "wgs84":
        return rows
    placed = [
        i
        for i, row in enumerate(rows)
        if isinstance(row.get(lon_key), int | float) and isinstance(row.get(lat_key), int | float)
    ]
    if not placed:
        return rows
    lon, lat = from_wgs84(
        [rows[i][lon_key] for i in placed], [rows[i][lat_key] for i in placed], name
    )
    if decimals is not None:
        lon, lat = np.round(lon, decimals), np.round(lat, decimals)
    out = list(rows)
    for i, x, y in zip(placed, lon.tolist(), lat.tolist(), strict=True):
        out[i] = {**rows[i], lon_key: x, lat_key: y}
    return out


_GEOMETRY_TYPES = frozenset(
    ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
)


def _is_position(value: Any) -> bool:
    return len(value) >= 2 and isinstance(value[0], int | float)


def _gather(node: Any, flat: list[float]) -> None:
    """Append every lon, lat of ``node`` to ``flat``, in the order ``_rebuild`` reads them."""
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    bbox = node.get("bbox")
    if isinstance(bbox, list | tuple) and len(bbox) == 4:
        flat.extend(bbox)
    if kind == "FeatureCollection":
        for feature in node.get("features") or ():
            _gather(feature, flat)
    elif kind == "Feature":
        _gather(node.get("geometry"), flat)
        props = node.get("properties")
        if _has_point_properties(props):
            flat.extend((props["lon"], props["lat"]))
    elif kind == "GeometryCollection":
        for geometry in node.get("geometries") or ():
            _gather(geometry, flat)
    elif kind in _GEOMETRY_TYPES:
        _gather_positions(node.get("coordinates") or (), flat)


def _gather_positions(coords: Any, flat: list[float]) -> None:
    if _is_position(coords):
        flat.extend((coords[0], coords[1]))
        return
    for part in coords:
        _gather_positions(part, flat)


def _rebuild(node: Any, converted: Iterator[tuple[float, float]]) -> Any:
    if not isinstance(node, dict):
        return node
    out = dict(node)
    kind = node.get("type")
    bbox = node.get("bbox")
    if isinstance(bbox, list | tuple) and len(bbox) == 4:
        (x0, y0), (x1, y1) = next(converted), next(converted)
        out["bbox"] = [x0, y0, x1, y1]
    if kind == "FeatureCollection":
        out["features"] = [_rebuild(f, converted) for f in node.get("features") or ()]
    elif kind == "Feature":
        out["geometry"] = _rebuild(node.get("geometry"), converted)
        props = node.get("properties")
        if _has_point_properties(props):
            x, y = next(converted)
            out["properties"] = {**props, "lon": x, "lat": y}
    elif kind == "GeometryCollection":
        out["geometries"] = [_rebuild(g, converted) for g in node.get("geometries") or ()]
    elif kind in _GEOMETRY_TYPES:
        out["coordinates"] = _rebuild_positions(node.get("coordinates") or [], converted)
    return out


def _rebuild_positions(coords: Any, converted: Iterator[tuple[float, float]]) -> Any:
    if _is_position(coords):
        x, y = next(converted)
        return [x, y, *coords[2:]]
    return [_rebuild_positions(part, converted) for part in coords]


def _has_point_properties(props: Any) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(props, dict)
        and isinstance(props.get("lon"), int | float)
        and isinstance(props.get("lat"), int | float)
    )


def _transform_geometries(
    geoms: ArrayLike, fn: Callable[[Array, Array], tuple[Array, Array]]
) -> NDArray[np.object_]:
    def apply(coords: Array) -> Array:
        lon, lat = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(np.asarray(geoms, dtype=object), apply)


def crs_name(value: object) -> object:
    """The canonical name of a CRS a client wrote (``"GCJ02"``, ``"GCJ-02"``, ``"gcj_02"``
    are ``"gcj02"``): case, ``-`` and ``_`` are ignored. Anything not in ``SUPPORTED`` (and
    any non-string) comes back unchanged, for the caller's validation to refuse.

    >>> crs_name("GCJ-02"), crs_name("WGS84"), crs_name("epsg:3857")
    ('gcj02', 'wgs84', 'epsg:3857')
    """
    if not isinstance(value, str):
        return value
    name = value.lower().replace("-", "").replace("_", "")
    return name if name in SUPPORTED else value


def _check(crs: str) -> str:
    name = crs.lower().replace("-", "").replace("_", "")
    if name not in SUPPORTED:
        raise ValueError(f"unsupported crs {crs!r}; use one of {', '.join(SUPPORTED)}")
    return name
