"""Per-row validation of imported records: each kind's fields, types, ranges and geometry.

Input is a GeoDataFrame whose columns already carry our field names (after ``--map`` and
``--set``). Output is the accepted rows in canonical form and the rejected rows with the first
reason that applies. Columns that are not fields of the kind are dropped, never stored: that is
how imports keep to the minimal household schema. The point kinds are checked here, polygons
and lines in ``shapes``; what every kind shares is in ``rows``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_service.i18n import format_message, gettext
from geo_service.ingest.parsing import parse_bools, parse_ints, parse_timestamps
from geo_service.ingest.rows import (
    KIND_FIELDS,
    Checked,
    Reasons,
    content_hashes,
    content_refs,
    coordinate_text,
    duplicates,
    external_ref,
    finish,
    geometry_errors,
    key_column,
    occurrences,
    per_row,
    text_column,
)
from geo_service.ingest.shapes import check_boundaries, check_roads
from geo_service.vocabulary import (
    AREA_LEVELS,
    INCIDENT_STATUSES,
    OPEN_INCIDENT_STATUSES,
    RENTAL_STATUSES,
    RESPONDER_KINDS,
    RESPONDER_STATUSES,
)

# Callers import these from here: the kinds' fields, the outcome, and the checks by kind.
__all__ = ["CHECKS", "KIND_FIELDS", "LEVELS", "Checked"]

MAX_DESCRIPTION = 4000
MAX_ADDRESS = 200  # households.address (0034)
# The two service-need flags of a household: true, false, or NULL when the file does not say.
HOUSEHOLD_FLAGS = ("elderly_living_alone", "needs_assistance")
# As for a reported incident through the API: a time later than now by more than clock skew is
# a mistake (a wrong time zone, a typo), and one far-future row would also make every cell carry
# its counts into each year up to it (incident_cum_year).
MAX_CLOCK_SKEW = pd.Timedelta(minutes=5)


def _point_checks(frame: gpd.GeoDataFrame, reasons: Reasons) -> tuple[np.ndarray, np.ndarray]:
    geometry_errors(frame, reasons)
    geoms = frame.geometry.values
    missing = np.asarray(pd.isna(geoms) | shapely.is_empty(geoms), dtype=bool)
    # A table's coordinates arrive as text: a value that is there but is no number (a
    # decimal comma, degrees and minutes, full-width digits) is unreadable, not missing.
    lon_text, lat_text = text_column(frame, "lon"), text_column(frame, "lat")
    given = ((lon_text != "") & (lat_text != "")).to_numpy()
    reasons.add(
        missing & given,
        per_row(
            "unreadable coordinates '{lon}', '{lat}' (decimal degrees with a decimal point "
            "expected)",
            frame.index,
            lon=lon_text,
            lat=lat_text,
        ),
    )
    reasons.add(missing, gettext("missing coordinates"))
    types = shapely.get_type_id(geoms)
    reasons.add(
        ~missing & (types != 0),
        pd.Series(
            [
                f"wrong geometry type ({g.geom_type}), expected Point" if g is not None else ""
                for g in geoms
            ],
            index=frame.index,
        ),
    )
    is_point = ~missing & (types == 0)
    lon = np.full(len(frame), np.nan)
    lat = np.full(len(frame), np.nan)
    lon[is_point] = shapely.get_x(geoms[is_point])
    lat[is_point] = shapely.get_y(geoms[is_point])
    reasons.add(is_point & (lon == 0) & (lat == 0), gettext("zero coordinates"))
    # NaN or infinite (a transformation that fails point by point) is out of range too.
    in_range = (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    reasons.add(is_point & ~in_range, gettext("coordinates out of range"))
    return lon, lat


# Incident stages that exist only with a responder assigned (the dispatch lifecycle).
RESPONDER_STAGES = tuple(s for s in OPEN_INCIDENT_STATUSES if s != "reported")


def check_incidents(
    frame: gpd.GeoDataFrame,
    *,
    categories: dict[str, int],
    category_map: dict[str, str] | None,
    tz: str,
    date_format: str | Sequence[str] | None,
    default_status: str,
    source_name: str,
    ambiguous_time: str = "reject",
    **_: object,
) -> Checked:
    """Validate incidents; ``categories`` maps our codes to their default priority."""
    reasons = Reasons(frame.index)
    lon, lat = _point_checks(frame, reasons)
    raw_cat = text_column(frame, "category")
    reasons.add(raw_cat == "", gettext("missing category"))
    category = raw_cat.map(category_map) if category_map is not None else raw_cat
    unknown = (raw_cat != "") & ~category.isin(list(categories))
    reasons.add(unknown, per_row("unknown category {code!r}", frame.index, code=raw_cat))
    when, why = parse_timestamps(
        text_column(frame, "reported_at"),
        tz=tz,
        date_format=date_format,
        ambiguous_time=ambiguous_time,
        name="reported_at",
    )
    reasons.merge(why)
    later = pd.Series(when, index=frame.index) > pd.Timestamp.now(tz="UTC") + MAX_CLOCK_SKEW
    reasons.add(later.fillna(False).astype(bool), gettext("reported_at lies in the future"))
    default_priority = category.map(categories).fillna(4).astype(int)
    prio_text = text_column(frame, "priority")
    priority, why = parse_ints(
        prio_text.where(prio_text != "", default_priority.astype(str)),
        name="priority",
        low=1,
        high=4,
    )
    reasons.merge(why)
    status = text_column(frame, "status").replace("", default_status)
    reasons.add(
        ~status.isin(INCIDENT_STATUSES),
        per_row("unknown status {status!r}", frame.index, status=status),
    )
    # An import names no responder: a stage that needs one (dispatched, accepted, on scene)
    # would be an assignment to nobody that the API itself never makes.
    reasons.add(
        status.isin(RESPONDER_STAGES),
        per_row(
            "status {status!r} needs a responder, which an import cannot assign; import it as "
            "reported (then dispatch it) or as closed",
            frame.index,
            status=status,
        ),
    )
    description = text_column(frame, "description")
    reasons.add(
        description.str.len() > MAX_DESCRIPTION,
        format_message(
            "description longer than {max_description} characters", max_description=MAX_DESCRIPTION
        ),
    )
    ids = key_column(frame, "id")
    has_ids = (ids != "").any()
    if has_ids:
        reasons.add(ids == "", gettext("missing id"))
        key = f"{source_name}:" + ids
        duplicates(key.rename("key"), reasons, "id")
    else:
        # No ids in the source: the row's content is its identity, so a re-run adds nothing.
        # (A missing part is "" here, never NaN: such a row is rejected by its own check.)
        content = content_hashes(
            [
                category,
                when.astype(str),
                coordinate_text(lon, frame.index),
                coordinate_text(lat, frame.index),
                description,
            ]
        )
        # Identical rows are distinct incidents (two thefts at one corner in one minute): the
        # occurrence of that content in the file tells them apart, and a re-run yields the same
        # keys. The first keeps the bare hash, the key of imports before occurrences counted.
        nth = occurrences(content)
        key = "import:" + content + ("-" + nth.astype(str)).where(nth > 1, "")
    accepted = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "category": category.values,
            "priority": priority.values,
            "status": status.values,
            "description": description.replace("", None).values,
            "reported_at": when.array,
            "idempotency_key": key.values,
        }
    )
    return finish(frame, reasons, accepted, "incidents")


def check_households(frame: gpd.GeoDataFrame, *, source_name: str, **_: object) -> Checked:
    """Validate households: location, size 1..50, two service-need flags (None: unknown),
    the address (where to knock; up to ``MAX_ADDRESS`` characters, None when blank)."""
    reasons = Reasons(frame.index)
    lon, lat = _point_checks(frame, reasons)
    size, why = parse_ints(
        text_column(frame, "household_size"), name="household_size", low=1, high=50
    )
    reasons.merge(why)
    flags, stored = {}, {}
    for name in HOUSEHOLD_FLAGS:
        given = text_column(frame, name)
        flags[name], why = parse_bools(given, name=name)
        reasons.merge(why)
        # A flag the file does not give (no column, or a blank cell) is unknown, never "no":
        # stored NULL. The content key keeps the parsed value (blank as false), as before.
        stored[name] = pd.array(flags[name].where(given != ""), dtype="boolean")
    address = text_column(frame, "address")
    reasons.add(
        address.str.len() > MAX_ADDRESS,
        format_message("address longer than {n} characters", n=MAX_ADDRESS),
    )
    # the content key stays as before the address (0034): a file imported again is the same rows
    ref = external_ref(frame, reasons, source_name)
    if ref.isna().all():
        at = [coordinate_text(lon, frame.index), coordinate_text(lat, frame.index)]
        ref = content_refs([*at, size, *flags.values()])
    accepted = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "household_size": size.values,
            **stored,
            "address": address.replace("", None).values,
            "external_ref": ref.values,
        }
    )
    return finish(frame, reasons, accepted, "households")


def check_rental_units(
    frame: gpd.GeoDataFrame,
    *,
    tz: str,
    date_format: str | Sequence[str] | None,
    source_name: str,
    ambiguous_time: str = "reject",
    **_: object,
) -> Checked:
    """Validate rental units: location, counts, status, registration time."""
    reasons = Reasons(frame.index)
    lon, lat = _point_checks(frame, reasons)
    units, why = parse_ints(
        text_column(frame, "unit_count"), name="unit_count", low=1, high=10_000, default=1
    )
    reasons.merge(why)
    occupants, why = parse_ints(
        text_column(frame, "occupants"), name="occupants", low=0, high=100_000, default=0
    )
    reasons.merge(why)
    status = text_column(frame, "status").replace("", "registered")
    reasons.add(
        ~status.isin(RENTAL_STATUSES),
        per_row("unknown status {status!r}", frame.index, status=status),
    )
    reg_text = text_column(frame, "registered_at")
    registered, why = parse_timestamps(
        reg_text,
        tz=tz,
        date_format=date_format,
        ambiguous_time=ambiguous_time,
        name="registered_at",
    )
    reasons.merge(why.where(reg_text != ""))
    landlord = text_column(frame, "landlord_ref")
    ref = external_ref(frame, reasons, source_name)
    if ref.isna().all():
        at = [coordinate_text(lon, frame.index), coordinate_text(lat, frame.index)]
        parts = [units, occupants, status, registered.astype(str), landlord]
        ref = content_refs([*at, *parts])
    accepted = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "unit_count": units.values,
            "occupants": occupants.values,
            "status": status.values,
            "registered_at": registered.array,
            "landlord_ref": landlord.replace("", None).values,
            "external_ref": ref.values,
        }
    )
    return finish(frame, reasons, accepted, "rental-units")


def check_responders(frame: gpd.GeoDataFrame, **_: object) -> Checked:
    """Validate responders: callsign (unique), kind, status, skills, position, and ``fixed``
    (a station whose position never goes stale; true/false, blank false)."""
    reasons = Reasons(frame.index)
    lon, lat = _point_checks(frame, reasons)
    callsign = text_column(frame, "callsign")
    reasons.add(callsign == "", gettext("missing callsign"))
    reasons.add(callsign.str.len() > 64, gettext("callsign longer than 64 characters"))
    duplicates(callsign.where(callsign != "").rename("callsign"), reasons, "callsign")
    kind = text_column(frame, "kind")
    reasons.add(
        ~kind.isin(RESPONDER_KINDS),
        per_row(
            "kind must be one of {kinds}; got {kind!r}",
            frame.index,
            kinds=", ".join(RESPONDER_KINDS),
            kind=kind,
        ),
    )
    status = text_column(frame, "status").replace("", "available")
    reasons.add(
        ~status.isin(RESPONDER_STATUSES),
        per_row("unknown status {status!r}", frame.index, status=status),
    )
    skills = (
        text_column(frame, "skills")
        .str.split(r"[,;|]\s*", regex=True)
        .map(lambda parts: [p for p in parts if p] if isinstance(parts, list) else [])
    )
    fixed, why = parse_bools(text_column(frame, "fixed"), name="fixed")
    reasons.merge(why)
    accepted = pd.DataFrame(
        {
            "lon": lon,
            "lat": lat,
            "callsign": callsign.values,
            "kind": kind.values,
            "status": status.values,
            "skills": skills.values,
            "fixed": fixed.values,
        }
    )
    return finish(frame, reasons, accepted, "responders")


CHECKS: dict[str, Callable[..., Checked]] = {
    "incidents": check_incidents,
    "households": check_households,
    "rental-units": check_rental_units,
    "responders": check_responders,
    "boundaries": check_boundaries,
    "roads": check_roads,
}
LEVELS = AREA_LEVELS
