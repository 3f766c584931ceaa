"""The WGS84 bounding box of query parameters: one parser and a true area for the size cap."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from geoalchemy2.functions import ST_MakeEnvelope
from pyproj import Geod

from geo_service.errors import InvalidInputError
from geo_service.i18n import format_message, gettext

SRID = 4326
_GEOD = Geod(ellps="WGS84")
# Geodesic edges between points this far apart along a parallel bulge poleward by well under
# 0.01 % of the box's area; strips at most 90° wide keep each ring unambiguous on the globe
# (a ring around the whole world encloses "everything or nothing": its area reads as 0).
_DENSIFY_DEG = 1.0
_STRIP_DEG = 90.0
_KM_PER_DEGREE_LAT = 110.574  # the shortest degree of latitude (at the equator)
_KM_PER_DEGREE_LON = 111.320  # a degree of longitude at the equator; times cos(latitude)


@dataclass(frozen=True)
class BBox:
    """A WGS84 bounding box, ``minx < maxx`` and ``miny < maxy`` (no antimeridian crossing).

    The one bounding-box type of the service: query parameters become one with ``parse``,
    SQL filters take ``envelope()``, and H3 filters take it as it is (``cells_in_bbox``).

    Attributes
    ----------
    minx, miny, maxx, maxy : float
        West, south, east and north edges in EPSG:4326 degrees (the OGC API ``bbox`` order).

    Examples
    --------
    >>> BBox(114.2, 30.5, 114.4, 30.7)
    BBox(minx=114.2, miny=30.5, maxx=114.4, maxy=30.7)
    """

    minx: float
    miny: float
    maxx: float
    maxy: float

    @classmethod
    def parse(cls, value: str, *, max_km2: float | None = None) -> BBox:
        """Parse ``minx,miny,maxx,maxy``; check it is a box on the globe and not too big.

        Parameters
        ----------
        value : str
            Four comma-separated numbers, west, south, east, north in EPSG:4326 degrees (as
            the OGC API Features ``bbox`` parameter, without its 6-number 3D form).
        max_km2 : float, optional
            Largest area allowed, in km² on the ellipsoid (``area_km2``).

        Returns
        -------
        BBox
            The box.

        Raises
        ------
        geo_service.errors.InvalidInputError
            If ``value`` is not four numbers, crosses the antimeridian, leaves the globe, is
            empty (``minx == maxx`` or ``miny == maxy``) or covers more than ``max_km2``.

        Examples
        --------
        >>> BBox.parse("114.2,30.5,114.4,30.7").maxx
        114.4
        >>> BBox.parse("-180,-90,180,90", max_km2=5000)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        geo_service.errors.InvalidInputError: bbox covers 510,065,622 km²; at most 5,000 km² ...
        """
        parts = value.split(",")
        if len(parts) != 4:
            raise InvalidInputError(gettext("bbox must be minx,miny,maxx,maxy (4 numbers)"))
        try:
            minx, miny, maxx, maxy = (float(p) for p in parts)
        except ValueError:
            raise InvalidInputError(
                gettext("bbox must be minx,miny,maxx,maxy (4 numbers)")
            ) from None
        if minx > maxx and -180 <= maxx <= 180 and -180 <= minx <= 180:
            raise InvalidInputError(gettext("bbox may not cross the antimeridian (minx > maxx)"))
        # NaN fails every comparison, so it lands here too
        if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
            raise InvalidInputError(
                gettext("bbox must satisfy -180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90")
            )
        box = cls(minx, miny, maxx, maxy)
        if max_km2 is not None and box.area_km2() > max_km2:
            raise InvalidInputError(
                format_message(
                    "bbox covers {value:,.0f} km²; at most {max_km2:,.0f} km² per query",
                    value=box.area_km2(),
                    max_km2=max_km2,
                )
            )
        return box

    def area_km2(self) -> float:
        """Area on the WGS84 ellipsoid (km²) of the box bounded by two meridians and two
        parallels: pyproj's geodesic polygon area of the box densified along its parallels,
        summed over strips at most 90° wide (the whole world is 510 million km², not 0).

        Returns
        -------
        float
            km² (Karney's geodesic polygon area, via pyproj ``Geod``); 0 for an empty box.

        Examples
        --------
        >>> round(BBox(114.2, 30.5, 114.4, 30.7).area_km2(), 1)
        425.3
        >>> round(BBox(-180, -90, 180, 90).area_km2())  # the WGS84 ellipsoid's surface
        510065622
        """
        width = self.maxx - self.minx
        if width <= 0 or self.maxy <= self.miny:
            return 0.0
        strips = math.ceil(width / _STRIP_DEG)
        edges = np.linspace(self.minx, self.maxx, strips + 1)
        total = 0.0
        for west, east in zip(edges[:-1], edges[1:], strict=True):
            n = max(1, math.ceil((east - west) / _DENSIFY_DEG))
            xs = np.linspace(west, east, n + 1)
            lons = np.concatenate([xs, xs[::-1]])
            lats = np.concatenate([np.full(n + 1, self.miny), np.full(n + 1, self.maxy)])
            total += abs(_GEOD.polygon_area_perimeter(lons, lats)[0])
        return total / 1e6

    def buffered(self, km: float) -> BBox:
        """The box grown by at least ``km`` kilometres on every side, clamped to the globe.

        Parameters
        ----------
        km : float
            The margin in kilometres (>= 0), e.g. how far a cell's vertices reach.

        Returns
        -------
        BBox
            A box at least ``km`` larger on each side (north-south by the shortest degree of
            latitude, east-west at the box's most poleward latitude), clamped to
            [-180, 180] x [-90, 90]; the whole width of the globe near a pole.

        Examples
        --------
        >>> box = BBox(114.2, 30.5, 114.4, 30.7).buffered(11.0574)
        >>> round(box.miny, 4), round(box.maxy, 4), box.maxx - 114.4 > 0.1
        (30.4, 30.8, True)
        """
        dlat = km / _KM_PER_DEGREE_LAT
        # east-west degrees are shortest on the box's most poleward edge
        far = min(90.0, max(abs(self.miny), abs(self.maxy)) + dlat)
        cos = math.cos(math.radians(far))
        dlon = 360.0 if cos < 1e-6 else km / (_KM_PER_DEGREE_LON * cos)
        return BBox(
            max(-180.0, self.minx - dlon),
            max(-90.0, self.miny - dlat),
            min(180.0, self.maxx + dlon),
            min(90.0, self.maxy + dlat),
        )

    def envelope(self):  # noqa: ANN201
        """The box as a PostGIS geometry expression (SRID 4326).

        Returns
        -------
        sqlalchemy.sql.functions.Function
            ``ST_MakeEnvelope(minx, miny, maxx, maxy, 4326)`` with every number bound.

        Examples
        --------
        >>> str(BBox(114.2, 30.5, 114.4, 30.7).envelope()).startswith("ST_MakeEnvelope(:")
        True
        """
        return ST_MakeEnvelope(self.minx, self.miny, self.maxx, self.maxy, SRID)
