"""Which operation takes a CRS to WGS 84, and how accurate it is (pure: PROJ through pyproj).

PROJ knows many operations between two datums (EPSG's transformations, grid shifts, and, when
it knows none, a "ballpark" offset that only swaps ellipsoids: tens to hundreds of metres off
for Xian 1980 or Beijing 1954). ``transformation_to_wgs84`` asks pyproj for the operations that
apply to the data's own area, best first, takes the best one whose grids are installed, and
says how accurate it is (EPSG's accuracy, metres). Network grid downloads are never enabled:
an import does not reach the Internet.

Decisions (documented in the README, "Files from the field"):

- *Ballpark* (PROJ accuracy -1, unknown) or worse than ``MAX_TRANSFORMATION_ERROR_M`` is
  approximate: the importer refuses it unless the user accepts it.
- *CGCS2000* (EPSG datum 1043, China's geodetic datum since 2008) is realised in ITRF97 at
  epoch 2000.0, as WGS 84 (G1150 and later) is in ITRF; the two agree to about a metre
  (Yang Y., 2009, "Chinese geodetic coordinate system 2000", Chinese Science Bulletin 54,
  2714-2721). PROJ 9 offers only a ballpark (null) offset between them; that null shift is
  what both agree on, so it is reported as accurate to 1 m.
- *TOWGS84* in a file's CRS is the provider's own Helmert shift and PROJ applies it as written.
  Its accuracy is not in the file: it is unknown, so approximate, unless every parameter is
  zero — a declared "same as WGS 84", which is judged like the datum without the clause (EPSG
  says how close NAD83 or ETRS89 are; a zero shift for Xian 1980 stays a ballpark).
"""

from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass, field

import pyproj.network
from pyproj import CRS, Transformer
from pyproj.transformer import AreaOfInterest, TransformerGroup

# A transformation less accurate than this (metres, EPSG's accuracy) is approximate: the
# demo city's grids are ~100 m across and a street address is ~10 m; 5 m keeps a point on
# its side of a street. NAD83 -> WGS 84 (EPSG:1188, 4 m) passes; Beijing 1954 (15 m) does not.
MAX_TRANSFORMATION_ERROR_M = 5.0
CGCS2000_ACCURACY_M = 1.0
CGCS2000_DATUM_CODE = "1043"
WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class Transformation:
    """The operation chosen to take one CRS to WGS 84 (EPSG:4326), with its accuracy.

    ``accuracy_m`` is EPSG's accuracy in metres, ``None`` when unknown (a ballpark offset, or
    a file's own TOWGS84); ``transformer`` is ``None`` when nothing is to be done (WGS 84).
    ``better`` names a more accurate operation PROJ knows for the area whose grid files are
    not installed, and ``missing_grids`` those files.
    """

    crs_label: str
    description: str
    accuracy_m: float | None
    transformer: Transformer | None = None
    better: str | None = None
    missing_grids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def approximate(self) -> bool:
        """True when the accuracy is unknown or worse than ``MAX_TRANSFORMATION_ERROR_M``."""
        return self.accuracy_m is None or self.accuracy_m > MAX_TRANSFORMATION_ERROR_M

    def assumptions(self) -> dict[str, str | float]:
        """The report's ``crs``, ``transformation`` and ``transformation_accuracy_m``."""
        return {
            "crs": self.crs_label,
            "transformation": self.description,
            "transformation_accuracy_m": (
                "unknown" if self.accuracy_m is None else round(self.accuracy_m, 3)
            ),
        }


def crs_label(crs: CRS) -> str:
    """A CRS's name with its EPSG code when PROJ identifies one: 'WGS 84 (EPSG:4326)'."""
    code = crs.to_epsg()
    return f"{crs.name} (EPSG:{code})" if code else crs.name


@functools.cache
def _network_off() -> None:
    # PROJ_NETWORK=ON in the environment would let PROJ fetch grids from cdn.proj.org while
    # an import runs; imports never reach the Internet.
    pyproj.network.set_network_enabled(active=False)


def _zero_towgs84(crs: CRS) -> bool:
    """A bound CRS whose TOWGS84 parameters are all zero."""
    operation = crs.coordinate_operation if crs.is_bound else None
    return operation is not None and all(p.value == 0 for p in operation.params)


CGCS2000_DATUM_NAME = "China 2000"  # EPSG:1043's name; PROJJSON without ids carries only it


def _is_cgcs2000(crs: CRS) -> bool:
    """Whether ``crs`` is on the CGCS2000 datum, by the datum's EPSG id or, when the
    container dropped the id (GeoParquet's PROJJSON), by its EPSG name.

    >>> _is_cgcs2000(CRS.from_epsg(4547)), _is_cgcs2000(CRS.from_epsg(4326))
    (True, False)
    >>> no_ids = {k: v for k, v in CRS.from_epsg(4490).to_json_dict().items() if k != "id"}
    >>> _is_cgcs2000(CRS.from_json_dict(no_ids))
    True
    """
    datum = crs.datum
    if datum is None:
        return False
    ident = datum.to_json_dict().get("id") or {}
    if str(ident.get("code")) == CGCS2000_DATUM_CODE:
        return True
    return datum.name in (CGCS2000_DATUM_NAME, "China Geodetic Coordinate System 2000")


def transformation_to_wgs84(
    crs: CRS, area_lonlat: tuple[float, float, float, float] | None = None
) -> Transformation:
    """The best available operation from ``crs`` to WGS 84 for the data's area.

    Parameters
    ----------
    crs : pyproj.CRS
        The data's CRS (any Earth CRS PROJ can transform to WGS 84).
    area_lonlat : (west, south, east, north) in degrees, optional
        The data's extent on its own datum; operations are chosen for it (EPSG's
        transformations are valid in an area of use). ``None``: PROJ's default choice.

    Returns
    -------
    Transformation
        Its label, PROJ's description, accuracy in metres (``None``: unknown) and the
        transformer (``always_xy``: lon/lat, x/y order), or no transformer for WGS 84.

    Raises
    ------
    pyproj.exceptions.ProjError, pyproj.exceptions.CRSError
        When PROJ finds no operation at all.

    Examples
    --------
    >>> transformation_to_wgs84(CRS.from_epsg(32650)).accuracy_m
    0.0
    >>> transformation_to_wgs84(CRS.from_epsg(2383), (114.2, 30.5, 114.4, 30.7)).approximate
    True
    """
    _network_off()
    label = crs_label(crs)
    if crs.to_epsg() == 4326:
        return Transformation(label, "none (the data is in WGS 84)", 0.0)
    chosen = crs.source_crs if _zero_towgs84(crs) and crs.source_crs is not None else crs
    area = AreaOfInterest(*area_lonlat) if area_lonlat is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "best transformation is not available"
        group = TransformerGroup(chosen, WGS84, always_xy=True, area_of_interest=area)
    if not group.transformers:
        # Nothing PROJ can instantiate here: let PROJ's own choice raise or stand.
        transformer = Transformer.from_crs(chosen, WGS84, always_xy=True)
        return Transformation(label, transformer.description, None, transformer)
    transformer = group.transformers[0]
    accuracy: float | None = transformer.accuracy if transformer.accuracy >= 0 else None
    # PROJ's steps, without the axis swaps that always_xy adds (they move nothing).
    description = " + ".join(
        step for step in transformer.description.split(" + ") if step != "axis order change (2D)"
    )
    if accuracy is None and _is_cgcs2000(chosen):
        accuracy = CGCS2000_ACCURACY_M
        description = re.sub(
            r"Ballpark geographic offset from (.+?) to WGS 84",
            r"null shift from \1 to WGS 84 (CGCS2000 and WGS 84 agree to about 1 m)",
            description,
        )
    elif accuracy is None and chosen.is_bound:
        description += " (the file's own TOWGS84 parameters)"
    better = next(
        (
            op
            for op in group.unavailable_operations
            if op.accuracy is not None
            and op.accuracy >= 0
            and (accuracy is None or op.accuracy < accuracy)
        ),
        None,
    )
    return Transformation(
        label,
        description,
        accuracy,
        transformer,
        better=f"{better.name} ({better.accuracy:g} m)" if better is not None else None,
        missing_grids=tuple(g.short_name for g in better.grids if not g.available)
        if better is not None
        else (),
    )
