"""Strict, vectorised parsing of text columns: timestamps, integers, booleans.

Every parser returns the parsed values and, per row, the reason it failed (None when it
parsed), so callers can reject rows with a reason instead of misreading them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo_service.instants import CALENDAR_RULE, MAX_YEAR, MIN_YEAR

ISO_NAIVE = r"^\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
ISO_AWARE = r"^\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$"
_TIMES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p")
# Day/month orders a date can be written in; the pairs in CONFLICTS read the same text two ways.
ORDERS: dict[str, tuple[str, ...]] = {
    "ymd": tuple(f"%Y/%m/%d{t}" for t in _TIMES) + tuple(f"%Y.%m.%d{t}" for t in _TIMES),
    "ydm": tuple(f"%Y/%d/%m{t}" for t in _TIMES) + tuple(f"%Y.%d.%m{t}" for t in _TIMES),
    "mdy": tuple(f"%m/%d/%Y{t}" for t in _TIMES) + tuple(f"%m-%d-%Y{t}" for t in _TIMES),
    "dmy": tuple(f"%d/%m/%Y{t}" for t in _TIMES)
    + tuple(f"%d.%m.%Y{t}" for t in _TIMES)
    + tuple(f"%d-%m-%Y{t}" for t in _TIMES),
}
CONFLICTS = (("ymd", "ydm"), ("mdy", "dmy"))
MISSING = ("", "nan", "nat", "none", "null", "na", "n/a")
TRUE = ("true", "t", "yes", "y", "1")
FALSE = ("false", "f", "no", "n", "0", "")


def as_text(values: pd.Series) -> pd.Series:
    """Every value as text, a missing one (None, NaN, NaT, pd.NA) as ``""``, never "nan".

    The one way a column of any dtype (a GeoParquet's Int64, boolean or timestamp columns
    included, whose ``fillna("")`` raises or leaves NaN) becomes text before string code.

    Examples
    --------
    >>> as_text(pd.Series([1, None], dtype="Int64")).tolist()
    ['1', '']
    >>> as_text(pd.Series([" a ", float("nan"), pd.NaT], dtype=object)).tolist()
    [' a ', '', '']
    """
    if pd.api.types.is_float_dtype(values.dtype):
        # A code, id or count stored as Double (Shapefile/DBF "N" fields): 420102001001.0
        # is the code 420102001001, never its float text.
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        integral = np.isfinite(numbers) & (np.mod(numbers, 1) == 0) & (np.abs(numbers) < 2**53)
        if integral.any():
            values = values.astype(object)
            values[integral] = numbers[integral].astype(np.int64)
    values = values.astype(object)
    return values.where(values.notna(), "").astype(str)


def _blank(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower().isin(MISSING)


def _parse_order(text: pd.Series, order: str) -> pd.Series:
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in ORDERS[order]:
        todo = out.isna()
        if not todo.any():
            break
        out[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce")
    return out


def _infer_naive(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse naive local timestamps whose format may vary from row to row.

    Dashed ISO dates are unambiguous. For slashed or dotted dates the column's own
    unambiguous rows (a day above 12) settle the day/month order; ambiguous rows with no
    such evidence, or in a column that shows both orders, are rejected rather than guessed.
    """
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    reason = pd.Series(None, index=text.index, dtype=object)
    iso = text.str.match(ISO_NAIVE)
    result[iso] = pd.to_datetime(text[iso], format="ISO8601", errors="coerce")
    rest = ~iso
    for first, second in CONFLICTS:
        a = _parse_order(text[rest], first)
        b = _parse_order(text[rest], second)
        only_a, only_b = a.notna() & b.isna(), b.notna() & a.isna()
        both = a.notna() & b.notna()
        same = both & (a == b)
        ambiguous = both & ~same
        result.loc[only_a[only_a].index] = a[only_a]
        result.loc[only_b[only_b].index] = b[only_b]
        result.loc[same[same].index] = a[same]
        if ambiguous.any():
            if only_a.any() and not only_b.any():
                result.loc[ambiguous[ambiguous].index] = a[ambiguous]
            elif only_b.any() and not only_a.any():
                result.loc[ambiguous[ambiguous].index] = b[ambiguous]
            else:
                why = (
                    "ambiguous day/month order (the column shows both orders)"
                    if only_a.any()
                    else "ambiguous day/month order (nothing in the column settles it); "
                    "pass --date-format"
                )
                reason.loc[ambiguous[ambiguous].index] = why
        rest = rest & result.isna() & reason.isna()
    return result, reason


def parse_timestamps(
    values: pd.Series, *, tz: str = "UTC", date_format: str | None = None, name: str = "timestamp"
) -> tuple[pd.Series, pd.Series]:
    """Parse a text column into UTC timestamps.

    Values with an explicit offset (``Z``, ``+08:00``) keep it; naive values are read in
    ``tz``. With ``date_format`` naive values must match it exactly. A time outside the years
    the API accepts (``geo_service.instants``) is refused: an import stores nothing the API
    would not take.

    Examples
    --------
    >>> ts, why = parse_timestamps(pd.Series(["2014/01/09", "2014/25/09"]))
    >>> [str(t.date()) for t in ts]  # the second row settles the order: year/day/month
    ['2014-09-01', '2014-09-25']
    >>> ts, why = parse_timestamps(pd.Series(["2014/01/09"]))
    >>> why.iloc[0].startswith("ambiguous")
    True
    """
    text = as_text(values).str.strip()
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    reason = pd.Series(None, index=text.index, dtype=object)
    blank = _blank(text)
    reason[blank] = "missing timestamp"
    aware = ~blank & text.str.match(ISO_AWARE)
    if aware.any():
        result[aware] = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
    naive = ~blank & ~aware
    if naive.any():
        if date_format:
            local = pd.to_datetime(text[naive], format=date_format, errors="coerce")
            why = pd.Series(None, index=local.index, dtype=object)
        else:
            local, why = _infer_naive(text[naive])
        reason[why.notna()[why.notna()].index] = why.dropna()
        try:
            localized = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        except Exception:  # noqa: BLE001 - pytz/zoneinfo raise several types for bad zones
            raise ValueError(f"unknown time zone {tz!r}") from None
        result[naive] = localized.dt.tz_convert("UTC")
        gap = local.notna() & localized.isna()
        reason[gap[gap].index] = f"local time does not exist or is ambiguous in {tz} (DST)"
    unparsed = result.isna() & reason.isna()
    reason[unparsed] = "unparseable timestamp"
    years = result.dt.year
    outside = result.notna() & ((years < MIN_YEAR) | (years > MAX_YEAR))
    reason[outside] = f"{name} {CALENDAR_RULE}"
    return result.where(~outside), reason


def parse_ints(
    values: pd.Series,
    *,
    name: str,
    low: int | None = None,
    high: int | None = None,
    default: int | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Parse integers in [low, high]; blanks take ``default`` (or are rejected without one)."""
    text = as_text(values).str.strip()
    blank = _blank(text)
    number = pd.to_numeric(text.where(~blank), errors="coerce")
    reason = pd.Series(None, index=text.index, dtype=object)
    if default is not None:
        number = number.where(~blank, default)
    else:
        reason[blank] = f"missing {name}"
    bad = number.isna() & reason.isna()
    reason[bad] = f"{name} is not a number"
    fractional = number.notna() & (number % 1 != 0)
    reason[fractional & reason.isna()] = f"{name} is not a whole number"
    if low is not None:
        reason[(number < low) & reason.isna()] = f"{name} below {low}"
    if high is not None:
        reason[(number > high) & reason.isna()] = f"{name} above {high}"
    return number.where(reason.isna()).astype("Int64"), reason


def parse_bools(values: pd.Series, *, name: str) -> tuple[pd.Series, pd.Series]:
    """Parse true/false, yes/no, 1/0, t/f (blank is false)."""
    text = as_text(values).str.strip().str.lower()
    reason = pd.Series(None, index=text.index, dtype=object)
    known = text.isin(TRUE + FALSE)
    reason[~known] = f"{name} is not true/false"
    return text.isin(TRUE), reason
