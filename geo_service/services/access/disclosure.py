"""Disclosure control: the one place that decides what any count of residents or dwellings shows.

Method: fixed random rounding to base ``B`` driven by the cell-key method
---------------------------------------------------------------------------
Statistics Canada publishes census counts randomly rounded to base 5. Plain random rounding
draws fresh noise per request, so asking again (or asking for the same people through another
path) and averaging recovers the truth. The *cell-key method* of the Australian Bureau of
Statistics (TableBuilder; Thompson, Broadfoot & Elazar 2013, "Methodology for the automatic
confidentialisation of statistical outputs from remote servers at the ABS"; also used by the ONS
for Census 2021) fixes that by deriving the noise of a cell from a fixed key, so the same cell
always publishes the same value. The ABS sums permanent *record* keys; here the key belongs to
the published cell itself (Statistics New Zealand's *fixed* random rounding has the same aim),
because records are added all the time: with summed record keys every household a grid worker
adds re-draws the rounding of each cell holding it, and one household at a time an adder who
reads the aggregate can narrow a small count down to its true value (found by review). With the
cell's own key, adding records moves the count but never the threshold at which it rounds up.

Here:

* a published cell has an identity -- ``area:<id>`` for an area at any level (so a grid shows
  one number in ``/areas/{id}``, ``/households/aggregate``, ``/workload`` and batch runs),
  ``h3:<cell>`` for an H3 cell, ``move:<entity>:<old grid>:<new grid>`` for a crosswalk move --
  and its key is ``disclosure_key(identity)``, HMAC-SHA256 under a secret drawn once per
  database (migration 0018), read as ``u`` in ``[0, 1)``;
* a set of records drawn by a planner rather than a cell of the map in force (a proposed grid,
  an area of a draft measured where records lie by ``/workload?version_id=`` and plan
  exports) has no identity of its own: a planner can draw the same homes inside as many
  polygons as they like (move an empty block, propose again), and a key per polygon would
  draw a fresh rounding of the same count each time, which averaged gives it away. Its key is
  :func:`key_sum` of the *pairs* its records fall in, ``atom:<H3 res-10 cell>:<grid filed
  under>``: the same homes give the same key however they are drawn, and a home added to a
  pair already there does not re-draw it (the threat the cell's own key answers). An area of
  another version that is its twin in force (same level, code and polygon) publishes with
  the twin's ``area:<id>`` key, so a draft copying today's areas shows today's numbers;
* each measure ``m`` (households, residents, rental units, a flag count...) takes its own
  uniform ``u_m = (u + c_m) mod 1`` with a fixed offset ``c_m``;
* a count ``n`` is published as ``B*floor(n/B) + B*[u_m < (n mod B)/B]``: a multiple of ``B``,
  one of the two around ``n``, unbiased over cells; multiples of ``B`` (and 0) are exact.

Adding records one at a time, an observer sees the published value step up once every ``B``
records, at a residue ``t`` that depends on the secret: the step tells ``n mod B`` relative to
``t``, which stays unknown, so ``B`` consecutive values of the true count remain possible.

What an observer can infer from a published ``v``: the true count lies in ``[v-(B-1), v+(B-1)]``
(``[0, B-1]`` for 0). Differencing (parent minus children, an H3 cell minus its children, an
area minus its grids, a workload index with one weight on) only ever combines such intervals.

Keep-or-hide is decided for a *record set*, not field by field: when a cell's households publish
as 0, households, residents and every other household-derived field are null and named in
``suppressed``; rental units likewise on their own record set. So ``households: null`` never
comes with ``residents: 9``.

Who sees exact counts is decided here too (:func:`sees_exact`): admins, and a grid's own worker
for their own grids only -- the same rule that lets them read household rows
(``Scope.sees_household_rows``). Derived figures (the workload index) are computed from the
published counts for everyone else. Internal algorithms (proposal balancing) may use exact
counts; only what is returned passes through :func:`publish`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from geo_service.services.access.scope import Scope

KEY_MODULUS = 2**32

# Fields computed from household rows, anchor (the record count) first.
HOUSEHOLD_FIELDS = ("households", "residents", "elderly_living_alone", "needs_assistance")
# Fields computed from rental-unit rows, anchor first.
RENTAL_FIELDS = ("rental_units", "occupants", "unit_count")

# A fixed offset per measure (multiples of the golden-ratio conjugate, spread over [0, 1)), so
# that the measures of one cell are not all rounded up or all down together.
_GOLDEN = 0.6180339887498949
MEASURE_OFFSETS: dict[str, float] = {
    name: (i * _GOLDEN) % 1.0 for i, name in enumerate(HOUSEHOLD_FIELDS + RENTAL_FIELDS)
}


def sees_exact(scope: Scope | None, grid_ids: Iterable[int] | None = None) -> bool:
    """Whether the caller may see exact counts of the records in ``grid_ids``.

    ``scope`` None is an anonymous caller of the public layers (never exact). ``grid_ids`` None
    means "the records of the caller's whole jurisdiction" (an H3 layer filtered to it): exact
    only for admins and for a caller bound to an area who may read all of its rows.
    """
    if scope is None:
        return False
    if scope.principal.role == "admin":
        return True
    if grid_ids is None:
        if scope.grid_ids is None:
            return False
        grid_ids = scope.grid_ids
    return scope.sees_household_rows(grid_ids)


def area_identity(area_id: int) -> str:
    """The identity of an area's published counts (any level; the same in every route)."""
    return f"area:{int(area_id)}"


def located_area_identities(
    db: Session | Connection, area_ids: Sequence[int], in_force_version: int
) -> list[str | None]:
    """The identities of areas of a version not in force, in order: ``area:<id>`` of the area
    of ``in_force_version`` with the same level, code and polygon (``ST_Equals``), else None
    (the area publishes with the :func:`key_sum` of the record pairs it holds)."""
    if not area_ids:
        return []
    rows = db.execute(_LOCATED_IDENTITIES, {"ids": list(area_ids), "today": in_force_version})
    return [None if r[0] is None else str(r[0]) for r in rows]


def pair_identity_sql(cell: str, grid: str) -> str:
    """SQL for the key of the record pair of a home (``cell``: its H3 res-10 cell column,
    ``grid``: the grid it is filed under), the terms :func:`key_sum` adds up."""
    return f"disclosure_key('atom:' || {cell} || ':' || coalesce({grid}, 0))"


def key_sum(pair_keys: Iterable[int]) -> int:
    """The disclosure key of a set of records drawn by a planner: the sum, modulo 2**32, of
    the distinct keys of the pairs (H3 res-10 cell, grid filed under) its records fall in
    (see the module's notes). The same records give the same key however they are grouped.

    >>> key_sum([7, 7, 2**32 - 1])  # each pair once; modulo 2**32
    6
    """
    return sum({int(k) for k in pair_keys}) % KEY_MODULUS


def move_identity(table: str, old_grid_id: int | None, new_grid_id: int | None) -> str:
    """The identity of a crosswalk move: the records of ``table`` from one grid to another."""
    return f"move:{table}:{old_grid_id}:{new_grid_id}"


def identity_key(db: Session | Connection, identity: str) -> int:
    """The disclosure key of one published cell: ``disclosure_key(identity)`` in the database,
    HMAC-SHA256 of the identity under the deployment's secret (migration 0018)."""
    return int(db.execute(_KEY, {"i": identity}).scalar_one())


def identity_keys(db: Session | Connection, identities: Sequence[str]) -> list[int]:
    """The disclosure keys of many published cells, in order, in one round trip."""
    if not identities:
        return []
    rows = db.execute(_KEYS, {"ids": list(identities)}).all()
    return [int(r[0]) for r in rows]


_KEY = text("SELECT disclosure_key(:i)")
_LOCATED_IDENTITIES = text(
    "SELECT (SELECT 'area:' || o.id FROM areas o WHERE o.version_id = :today "
    "AND o.level = a.level AND o.code = a.code AND ST_Equals(o.geom, a.geom)) "
    "FROM unnest(CAST(:ids AS int[])) WITH ORDINALITY AS t(id, n) JOIN areas a ON a.id = t.id "
    "ORDER BY t.n"
)
_KEYS = text(
    "SELECT disclosure_key(i) FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS t(i, n) "
    "ORDER BY n"
)


def cell_u(key: int, measure: str) -> float:
    """The uniform in ``[0, 1)`` of a cell (its disclosure key) for one measure."""
    return ((int(key) % KEY_MODULUS) / KEY_MODULUS + MEASURE_OFFSETS.get(measure, 0.0)) % 1.0


def round_count(n: int, key: int, measure: str, base: int) -> int:
    """Fixed random rounding of one count to a multiple of ``base``.

    Examples
    --------
    >>> round_count(10, 123, "households", 5)  # multiples of the base stay exact
    10
    >>> round_count(3, 0, "households", 5)  # u = 0 < 3/5: rounded up
    5
    >>> round_count(3, 2**31, "households", 5)  # u = 0.5 < 0.6: up
    5
    >>> round_count(3, 3 * 2**30, "households", 5)  # u = 0.75 >= 0.6: down
    0
    """
    n = int(n)
    if base <= 1:
        return n
    floor, rest = divmod(n, base)
    return base * floor + (base if cell_u(key, measure) < rest / base else 0)


def publish(
    counts: Mapping[str, Any],
    *,
    household_key: int | None,
    rental_key: int | None = None,
    base: int,
) -> dict[str, Any]:
    """Publish the counts of one cell: rounded, and hidden per record set when that rounds to 0.

    ``counts`` may hold other fields (ids, names, incident counts): they pass unchanged. The
    household fields are rounded with ``household_key`` (the cell's disclosure key), the
    rental fields with ``rental_key``. The result has ``suppressed``: the fields set to null.

    Examples
    --------
    >>> shown = publish({"households": 3, "residents": 9, "incidents": 2},
    ...                 household_key=3 * 2**30, base=5)
    >>> shown["households"], shown["residents"], shown["incidents"], shown["suppressed"]
    (None, None, 2, ['households', 'residents'])
    """
    out = dict(counts)
    suppressed: list[str] = []
    for fields, key in ((HOUSEHOLD_FIELDS, household_key), (RENTAL_FIELDS, rental_key)):
        present = [f for f in fields if f in out and out[f] is not None]
        if not present:
            continue
        published = {f: round_count(int(out[f]), key or 0, f, base) for f in present}
        if published[present[0]] == 0:
            for f in present:
                out[f] = None
            suppressed += present
        else:
            out.update(published)
    out["suppressed"] = suppressed
    return out


def publish_or_exact(
    counts: Mapping[str, Any],
    *,
    exact: bool,
    household_key: int | None,
    rental_key: int | None = None,
    base: int,
) -> dict[str, Any]:
    """:func:`publish` unless the caller may see exact counts (then ``suppressed`` is empty)."""
    if exact:
        return dict(counts) | {"suppressed": []}
    return publish(counts, household_key=household_key, rental_key=rental_key, base=base)


def published_value(value: int | None) -> int:
    """A published count as a number for derived figures (a hidden count counts as 0)."""
    return 0 if value is None else int(value)
