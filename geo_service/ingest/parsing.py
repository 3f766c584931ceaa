"""Strict, vectorised parsing of text columns: timestamps, integers, booleans.

Every parser returns the parsed values and, per row, the reason it failed (None when it
parsed), so callers can reject rows with a reason instead of misreading them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from geo_service.i18n import format_message, gettext
from geo_service.instants import MAX_YEAR, MIN_YEAR

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
    if values.dtype == object:
        # A column of numbers and text (a GeoJSON's, an Excel sheet's): each whole number
        # (420102001.0) is the number too, never its float text.
        whole = values.map(_whole_float)
        if whole.any():
            values = values.copy()
            values[whole] = [int(v) for v in values[whole]]
    return values.where(values.notna(), "").astype(str)


def _whole_float(value: object) -> bool:
    return isinstance(value, float) and value.is_integer() and abs(value) < 2**53


# A whole number written with a zero fraction: ``420102001.0``, ``7.0`` (GDAL's text of a
# number in a column that also holds strings).
WHOLE_NUMBER_TEXT = r"^([+-]?\d+)\.0*$"


def as_key_text(values: pd.Series) -> pd.Series:
    """``as_text``, stripped, for codes, parent codes and ids: a whole number loses its zero
    fraction in text too, so ``7`` and ``7.0`` are one key.

    Examples
    --------
    >>> as_key_text(pd.Series([420102001.0, "C02", " 7.0 ", "1.5", None], dtype=object)).tolist()
    ['420102001', 'C02', '7', '1.5', '']
    """
    return as_text(values).str.strip().str.replace(WHOLE_NUMBER_TEXT, r"\1", regex=True)


def _blank(values: pd.Series) -> pd.Series:
    return values.str.strip().str.lower().isin(MISSING)


def _in_ns(parsed: pd.Series) -> pd.Series:
    """``parsed`` in nanoseconds, the unit every time column here uses. pandas keeps a
    coarser unit for a date outside the nanosecond range (before 1677 or after 2262, e.g. a
    9999-12-31 sentinel or a mistyped 0219): such a row is outside the calendar the API
    accepts anyway, so it becomes NaT here (and is rejected with the calendar rule) instead
    of overflowing the whole column.
    """
    if parsed.dtype.kind != "M":
        return parsed
    unit = getattr(parsed.dtype, "unit", None) or np.datetime_data(parsed.dtype)[0]
    if unit == "ns":
        return parsed
    years = parsed.dt.year
    kept = parsed.where((years > 1677) & (years < 2262))
    tz = getattr(parsed.dtype, "tz", None)
    return kept.astype(f"datetime64[ns, {tz}]" if tz is not None else "datetime64[ns]")


def _parse_order(text: pd.Series, order: str) -> pd.Series:
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    for fmt in ORDERS[order]:
        todo = out.isna()
        if not todo.any():
            break
        out[todo] = _in_ns(pd.to_datetime(text[todo], format=fmt, errors="coerce"))
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
    result[iso] = _in_ns(pd.to_datetime(text[iso], format="ISO8601", errors="coerce"))
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


AMBIGUOUS_TIME = ("earliest", "latest", "reject")
# Names of the parts a time can be built from (``--map "YEAR+MONTH+DAY+HOUR+MINUTE=..."``).
TIME_PARTS = ("year", "month", "day", "hour", "minute", "second")


def _parse_formats(
    text: pd.Series, formats: Sequence[str]
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse with the client's strptime ``formats``, tried per row in order.

    A row that two formats read as different times is ambiguous; as for inferred orders, the
    column settles it when only one of the two formats reads rows the other cannot take
    (``03/25/2014`` settles ``%m/%d/%Y`` over ``%d/%m/%Y``), else the row is rejected. A
    format with ``%z`` gives aware times: they keep their offset. Returns naive local times,
    UTC times (rows read by an aware format), and per-row reasons.
    """
    reads: list[pd.Series] = []
    aware: list[bool] = []
    for fmt in formats:
        aware.append("%z" in fmt or "%Z" in fmt)
        try:
            parsed = _in_ns(pd.to_datetime(text, format=fmt, errors="coerce", utc=aware[-1]))
        except ValueError as exc:  # a bad directive: the whole file, not a row
            raise ValueError(f"--date-format {fmt!r} is not a strptime format ({exc})") from None
        if aware[-1]:
            parsed = parsed.dt.tz_localize(None)  # UTC wall time, compared as instants
        reads.append(parsed.astype("datetime64[ns]"))
    chosen = pd.Series(-1, index=text.index)
    reason = pd.Series(None, index=text.index, dtype=object)
    matched = [r.notna() for r in reads]
    for i, first in enumerate(reads):
        todo = (chosen < 0) & reason.isna() & matched[i]
        if not todo.any():
            continue
        taken = todo.copy()
        for j in range(len(reads)):
            clash = todo & matched[j] & (first != reads[j]) if j != i else None
            if clash is None or not clash.any():
                continue
            # Column evidence of the pair: which format reads rows the other cannot.
            only_i = bool((matched[i] & ~matched[j]).any())
            only_j = bool((matched[j] & ~matched[i]).any())
            if only_i and not only_j:
                continue  # the column settles it for this format
            taken &= ~clash
            if only_j and not only_i:
                continue  # ... or for the other one, in its turn
            settles = "the column shows both" if only_i else "nothing in the column settles it"
            reason[clash & reason.isna()] = format_message(
                "ambiguous: --date-format {value!r} and {value2!r} read it differently ({settles})",
                value=formats[i],
                value2=formats[j],
                settles=settles,
            )
        chosen[taken & reason.isna()] = i
    local = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    utc = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    for i, read in enumerate(reads):
        rows = chosen == i
        if aware[i]:
            utc[rows] = read[rows].dt.tz_localize("UTC")
        else:
            local[rows] = read[rows]
    return local, utc, reason


def _localize(local: pd.Series, tz: str, ambiguous_time: str) -> tuple[pd.Series, pd.Series]:
    """Read naive local times in ``tz``; the fall-back hour as ``ambiguous_time`` says.

    Returns UTC times and per-row reasons: a time in the spring-forward gap never existed
    on the clocks of ``tz``; one in the fall-back hour occurred twice and is rejected unless
    ``ambiguous_time`` picks the earliest (the daylight-saving reading) or the latest.
    """
    reason = pd.Series(None, index=local.index, dtype=object)
    local = pd.to_datetime(local.astype("datetime64[ns]"))
    # pandas: True means the DST reading of an ambiguous time, the earlier of the two instants.
    flag = {"earliest": True, "latest": False}.get(ambiguous_time)
    try:
        strict = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        chosen = local.dt.tz_localize(
            tz,
            ambiguous=np.full(len(local), bool(flag)) if flag is not None else "NaT",
            nonexistent="NaT",
        )
    except Exception:  # noqa: BLE001 - pytz/zoneinfo raise several types for bad zones
        raise ValueError(f"unknown time zone {tz!r}") from None
    dst_reading = local.dt.tz_localize(tz, ambiguous=np.full(len(local), True), nonexistent="NaT")
    gap = local.notna() & dst_reading.isna()
    twice = local.notna() & strict.isna() & ~gap
    reason[gap] = format_message("does not exist in {tz}: the clocks went forward", tz=tz)
    if flag is None:
        reason[twice] = format_message(
            "occurs twice in {tz}: the clocks went back; choose with --ambiguous-time earliest "
            "or latest",
            tz=tz,
        )
    return chosen.dt.tz_convert("UTC"), reason


def combine_time_parts(parts: dict[str, pd.Series]) -> pd.Series:
    """Build ISO local time text ``YYYY-MM-DD HH:MM:SS`` from whole-number parts.

    ``parts`` maps names of ``TIME_PARTS`` (year, month and day required; hour, minute and
    second default to 0) to columns. A row with a blank part gives ``""`` (a missing time);
    one with a part that is not a whole number gives its parts joined with spaces, which no
    parser reads (an unparseable time): either way the row is rejected with its reason.

    Examples
    --------
    >>> parts = {"year": pd.Series(["2010", "2010"]), "month": pd.Series(["1", "x"]),
    ...          "day": pd.Series(["5", "5"]), "hour": pd.Series(["13.0", "1"])}
    >>> combine_time_parts(parts).tolist()
    ['2010-01-05 13:00:00', '2010 x 5 1']
    """
    missing = {"year", "month", "day"} - set(parts)
    if missing:
        raise ValueError("a time built from parts needs year, month and day columns")
    index = next(iter(parts.values())).index
    texts = {k: as_text(v).str.strip() for k, v in parts.items()}
    numbers = {k: pd.to_numeric(v, errors="coerce") for k, v in texts.items()}
    whole = pd.Series(True, index=index)
    blank = pd.Series(False, index=index)
    for name in parts:
        # past 4 digits no part makes a time (and the int64 cast below stays exact)
        whole &= numbers[name].notna() & (numbers[name] % 1 == 0) & (numbers[name].abs() < 1e4)
        blank |= _blank(texts[name])
    values = {
        name: numbers[name].where(whole, 0).astype("int64").astype(str)
        if name in parts
        else pd.Series("0", index=index)
        for name in TIME_PARTS
    }
    built = (
        values["year"].str.zfill(4)
        + "-"
        + values["month"].str.zfill(2)
        + "-"
        + values["day"].str.zfill(2)
        + " "
        + values["hour"].str.zfill(2)
        + ":"
        + values["minute"].str.zfill(2)
        + ":"
        + values["second"].str.zfill(2)
    )
    joined = pd.concat([texts[name] for name in TIME_PARTS if name in parts], axis=1)
    raw = joined.agg(" ".join, axis=1)
    return built.where(whole, raw).where(~blank, "")


def parse_timestamps(
    values: pd.Series,
    *,
    tz: str = "UTC",
    date_format: str | Sequence[str] | None = None,
    ambiguous_time: str = "reject",
    name: str = "timestamp",
) -> tuple[pd.Series, pd.Series]:
    """Parse a text column into UTC timestamps.

    Values with an explicit offset (``Z``, ``+08:00``, ISO 8601) keep it; naive values are
    read in ``tz`` (an IANA zone). ``date_format`` (one strptime format or several, tried per
    row in order, see ``_parse_formats``) is then the only way naive values are read;
    without it the day/month order is inferred from the column. A local time in the
    spring-forward gap of ``tz`` is rejected; one in the fall-back hour is taken as
    ``ambiguous_time`` says ("earliest" | "latest" | "reject"). A time outside the years the
    API accepts (``geo_service.instants``) is refused: an import stores nothing the API would
    not take. Raises ValueError for an unknown zone or ``ambiguous_time``.

    Examples
    --------
    >>> ts, why = parse_timestamps(pd.Series(["2014/01/09", "2014/25/09"]))
    >>> [str(t.date()) for t in ts]  # the second row settles the order: year/day/month
    ['2014-09-01', '2014-09-25']
    >>> ts, why = parse_timestamps(pd.Series(["2014/01/09"]))
    >>> why.iloc[0].startswith("ambiguous")
    True
    >>> ts, why = parse_timestamps(
    ...     pd.Series(["2019-11-03 01:30"]), tz="America/Chicago", ambiguous_time="earliest"
    ... )
    >>> str(ts.iloc[0])  # CDT, the first of the two 01:30s
    '2019-11-03 06:30:00+00:00'
    """
    if ambiguous_time not in AMBIGUOUS_TIME:
        raise ValueError(
            f"--ambiguous-time must be one of {', '.join(AMBIGUOUS_TIME)}; got {ambiguous_time!r}"
        )
    formats = [date_format] if isinstance(date_format, str) else list(date_format or [])
    text = as_text(values).str.strip()
    result = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
    reason = pd.Series(None, index=text.index, dtype=object)
    blank = _blank(text)
    reason[blank] = gettext("missing timestamp")
    aware = ~blank & text.str.match(ISO_AWARE)
    if aware.any():
        result[aware] = _in_ns(
            pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
        )
    naive = ~blank & ~aware
    if naive.any():
        if formats:
            local, utc, why = _parse_formats(text[naive], formats)
            result[utc.notna()[utc.notna()].index] = utc.dropna()
        else:
            local, why = _infer_naive(text[naive])
        reason[why.notna()[why.notna()].index] = why.dropna()
        localized, why = _localize(local, tz, ambiguous_time)
        taken = localized.notna()
        result[taken[taken].index] = localized[taken]
        reason[why.notna()[why.notna()].index] = why.dropna()
    unparsed = result.isna() & reason.isna()
    reason[unparsed] = gettext("unparseable timestamp")
    # a readable date in a year far outside the calendar (a 9999 sentinel, a 0219 typo) says so
    year = text.str.extract(r"(?<!\d)(\d{4})(?!\d)", expand=False)
    far = unparsed & year.notna() & ~year.fillna("2000").astype(int).between(MIN_YEAR, MAX_YEAR)
    reason[far] = format_message(
        "{name} must lie in the years {first} to {last}", name=name, first=MIN_YEAR, last=MAX_YEAR
    )
    years = result.dt.year
    outside = result.notna() & ((years < MIN_YEAR) | (years > MAX_YEAR))
    reason[outside] = format_message(
        "{name} must lie in the years {first} to {last}", name=name, first=MIN_YEAR, last=MAX_YEAR
    )
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
        reason[blank] = format_message("missing {name}", name=name)
    bad = number.isna() & reason.isna()
    reason[bad] = format_message("{name} is not a number", name=name)
    fractional = number.notna() & (number % 1 != 0)
    reason[fractional & reason.isna()] = format_message("{name} is not a whole number", name=name)
    if low is not None:
        reason[(number < low) & reason.isna()] = format_message(
            "{name} below {low}", name=name, low=low
        )
    if high is not None:
        reason[(number > high) & reason.isna()] = format_message(
            "{name} above {high}", name=name, high=high
        )
    return number.where(reason.isna()).astype("Int64"), reason


def parse_bools(values: pd.Series, *, name: str) -> tuple[pd.Series, pd.Series]:
    """Parse true/false, yes/no, 1/0, t/f (blank is false)."""
    text = as_text(values).str.strip().str.lower()
    reason = pd.Series(None, index=text.index, dtype=object)
    known = text.isin(TRUE + FALSE)
    reason[~known] = format_message("{name} is not true/false", name=name)
    return text.isin(TRUE), reason
