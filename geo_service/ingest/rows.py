"""What every kind's row validation shares: the outcome (``Checked``), the first reason each
row fails (``Reasons``), text columns that never hand a missing value to string code, column
names cut short by the DBF format, and stable keys (a source's ids, or a hash of the row's
content with its occurrence in the file).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_service.i18n import gettext
from geo_service.ingest.parsing import as_key_text, as_text
from geo_service.ingest.readers import GEOMETRY_ERROR, PART_ERROR, ROW_ERROR

KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "incidents": ("id", "category", "priority", "status", "description", "reported_at"),
    "households": ("id", "household_size", "elderly_living_alone", "needs_assistance", "address"),
    "rental-units": ("id", "unit_count", "occupants", "status", "registered_at", "landlord_ref"),
    "responders": ("callsign", "kind", "status", "skills", "fixed"),
    # name_en / name_zh: the name per language (areas.names), beside the name as given
    "boundaries": ("code", "name", "parent_code", "name_en", "name_zh"),
    "roads": ("id", "name", "class", "speed_kmh", "oneway"),
}
# A DBF field name holds at most 10 characters (dBase III, the Shapefile's attribute table):
# writers cut longer names, so ``elderly_living_alone`` arrives as ``elderly_li``.
DBF_NAME_CHARS = 10


@dataclass
class Checked:
    """Outcome of validation: accepted rows (canonical columns) and rejects (row, reason)."""

    accepted: pd.DataFrame
    rejects: pd.DataFrame
    ignored_columns: list[str] = field(default_factory=list)
    # Fields of the kind the file carries a column for (after --map / --set): an update
    # changes only these, a field the file does not name is left as stored.
    given: frozenset[str] = frozenset()


def per_row(message: str, index: pd.Index, /, **values: Any) -> pd.Series:
    """``message`` in the current language (the catalogue), its placeholders filled row by
    row: a Series value gives each row its own, any other value is the same for every row.

    Placeholders are ``str.format`` fields by name (``{status!r}``, ``{share:.0%}``), so a
    translation may move them.

    >>> index = pd.RangeIndex(2)
    >>> per_row("unknown status {status!r}", index, status=pd.Series(["x", "y"])).tolist()
    ["unknown status 'x'", "unknown status 'y'"]
    """
    out = pd.Series("", index=index, dtype=object)
    for literal, field_name, spec, conversion in string.Formatter().parse(gettext(message)):
        out = out + literal
        if field_name is None:
            continue
        value = values[field_name]
        template = "{0" + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        template += "}"
        if isinstance(value, pd.Series):
            shown = value.astype(str) if template == "{0}" else value.map(template.format)
            out = out + shown
        else:
            out = out + template.format(value)
    return out


class Reasons:
    """The first reason each row fails, accumulated check by check."""

    def __init__(self, index: pd.Index) -> None:
        self.series = pd.Series(None, index=index, dtype=object)

    def add(self, mask: pd.Series | np.ndarray, reason: str | pd.Series) -> None:
        """Record ``reason`` for rows in ``mask`` that have none yet."""
        mask = pd.Series(np.asarray(mask, dtype=bool), index=self.series.index)
        todo = mask & self.series.isna()
        if isinstance(reason, pd.Series):
            self.series[todo] = reason[todo]
        else:
            self.series[todo] = reason

    def merge(self, reasons: pd.Series) -> None:
        """Record per-row reasons from a parser (None where the row parsed)."""
        self.add(reasons.notna(), reasons)

    @property
    def ok(self) -> pd.Series:
        """Rows with no reason so far."""
        return self.series.isna()


def text_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` as stripped text, a missing value (or column) as ``""``."""
    if name not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return as_text(frame[name]).str.strip()


def key_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """Column ``name`` of codes or ids as ``text_column`` gives it, a whole number without its
    zero fraction (``7.0`` is the id ``7``, ``420102001.0`` the code ``420102001``)."""
    if name not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    return as_key_text(frame[name])


def match_truncated_columns(frame: gpd.GeoDataFrame, kind: str) -> gpd.GeoDataFrame:
    """Rename columns cut to the DBF's 10 characters to the field of ``kind`` they begin.

    A column is renamed only when its name has exactly ``DBF_NAME_CHARS`` characters, is the
    prefix (case aside) of exactly one longer field of ``kind``, and that field is not a column
    already. Each match is said in ``frame.attrs["assumptions"]["truncated_columns"]`` as
    ``"has_elderl -> has_elderly"``; an ambiguous prefix stays an ignored column.

    Examples
    --------
    >>> frame = gpd.GeoDataFrame({"household_": [2], "elderly_li": ["yes"]})
    >>> match_truncated_columns(frame, "households").columns.tolist()
    ['household_size', 'elderly_living_alone']
    """
    fields = KIND_FIELDS[kind]
    present = {c for c in frame.columns if isinstance(c, str)}
    renames: dict[str, str] = {}
    for column in sorted(present):
        if len(column) != DBF_NAME_CHARS or column in fields:
            continue
        longer = [
            f for f in fields if len(f) > DBF_NAME_CHARS and f.lower().startswith(column.lower())
        ]
        if len(longer) == 1 and longer[0] not in present and longer[0] not in renames.values():
            renames[column] = longer[0]
    if not renames:
        return frame
    attrs = dict(frame.attrs)
    frame = frame.rename(columns=renames)
    frame.attrs.update(attrs)
    said = {**attrs.get("assumptions", {})}
    said["truncated_columns"] = [f"{c} -> {f}" for c, f in sorted(renames.items())]
    frame.attrs["assumptions"] = said
    return frame


def content_hashes(parts: list[pd.Series]) -> pd.Series:
    """SHA-1 of each row's parts joined by ``|`` (a missing part as ``""``)."""
    content = as_text(parts[0])
    for part in parts[1:]:
        content = content + "|" + as_text(part)
    return content.map(lambda s: hashlib.sha1(s.encode()).hexdigest())


def coordinate_text(values: np.ndarray, index: pd.Index) -> pd.Series:
    """Coordinates as text to 7 decimals (about 1 cm), the precision of a content key."""
    return pd.Series(np.round(values, 7), index=index).astype(str)


def geometry_errors(frame: gpd.GeoDataFrame, reasons: Reasons) -> None:
    """Reject rows a reader could not read whole (a table row with the wrong number of
    fields, ``ROW_ERROR``) or whose geometry GEOS could not build, each with its reason."""
    if ROW_ERROR in frame:
        errors = frame[ROW_ERROR]
        reasons.add(
            errors.notna(), per_row("wrong number of fields: {error}", frame.index, error=errors)
        )
    if GEOMETRY_ERROR in frame:
        errors = frame[GEOMETRY_ERROR]
        reasons.add(
            errors.notna(), per_row("invalid geometry ({error})", frame.index, error=errors)
        )
    if PART_ERROR in frame:
        errors = frame[PART_ERROR]
        reasons.add(errors.notna(), errors.astype(str))


def duplicates(keys: pd.Series, reasons: Reasons, what: str) -> None:
    """Reject every repeat of a key after its first valid occurrence."""
    valid = keys.where(reasons.ok & keys.notna())
    dup = valid.notna() & valid.duplicated(keep="first")
    if not dup.any():
        return
    firsts = valid[valid.notna() & ~dup]
    first_row = pd.Series(firsts.index + 1, index=firsts.values)
    why = pd.Series(None, index=keys.index, dtype=object)
    template = gettext("duplicate {what}: {key!r} first at row {row}")
    why[dup] = [template.format(what=what, key=k, row=first_row[k]) for k in valid[dup]]
    reasons.add(dup, why)


def finish(frame: gpd.GeoDataFrame, reasons: Reasons, accepted: pd.DataFrame, kind: str) -> Checked:
    """Split validated rows into accepted (canonical columns of ``kind``) and rejected."""
    ok = reasons.ok
    rejects = pd.DataFrame({"row": frame.index[~ok] + 1, "reason": reasons.series[~ok].values})
    known = set(KIND_FIELDS[kind]) | {
        frame.geometry.name,
        "lon",
        "lat",
        GEOMETRY_ERROR,
        ROW_ERROR,
        PART_ERROR,
    }
    ignored = [c for c in frame.columns if c not in known]
    given = frozenset(c for c in frame.columns if c in KIND_FIELDS[kind])
    out = accepted[ok.values].copy()
    out.insert(0, "row", frame.index[ok.values] + 1)
    return Checked(out.reset_index(drop=True), rejects, ignored, given)


def external_ref(frame: pd.DataFrame, reasons: Reasons, source_name: str) -> pd.Series:
    """Stable keys from the source's ``id`` column (``<source>:<id>``), or None without one."""
    ids = key_column(frame, "id")
    if (ids != "").any():
        reasons.add(ids == "", gettext("missing id"))
        ref = f"{source_name}:" + ids
        duplicates(ref.rename("ref"), reasons, "id")
        return ref
    return pd.Series(None, index=frame.index, dtype=object)


# Content keys of rows without ids: ``import:sha1-<hash>-<n>``. Imports before the keys left
# out the file's name stored ``<source>:sha1-<hash>-<n>``; ``CONTENT_KEY_TAIL`` finds the
# part both forms share, so those rows are still known (``staging.insert_new``).
CONTENT_KEY_PREFIX = "import:"
CONTENT_KEY_TAIL = r":(sha1-[0-9a-f]{40}-[0-9]+)$"


def content_refs(parts: list[pd.Series]) -> pd.Series:
    """Stable keys of rows that carry no id: the hash of their parsed content and its
    occurrence in the file (``import:sha1-<hash>-<n>``), whatever the file is called.

    A re-run of the file, under its name or another, yields the same keys, so it adds
    nothing; identical rows within one file (two households of one size at one address) stay
    distinct by their occurrence, and a file with one more copy adds one. As for incidents.
    """
    content = content_hashes(parts)
    return CONTENT_KEY_PREFIX + "sha1-" + content + "-" + occurrences(content).astype(str)


def occurrences(keys: pd.Series) -> pd.Series:
    """The occurrence of each row's key in the file so far: 1 for the first, 2 for its twin.

    Every row counts, rejected ones too, so a row fixed in a later run takes the place it had:
    the keys of the other rows do not move.

    Examples
    --------
    >>> occurrences(pd.Series(["a", "b", "a", "a"])).tolist()
    [1, 1, 2, 3]
    """
    return keys.groupby(keys, sort=False).cumcount() + 1
