"""The demo city plants hotspots that start, grow and fade: emerging analysis must name them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import h3
import pytest
from sqlalchemy.orm import Session

from geo_service.db.engine import make_engine
from geo_service.demo.city import DemoCity, generate_city
from geo_service.demo.load import load_city
from geo_service.errors import InvalidInputError, LimitExceededError
from geo_service.services.layers.emerging import emerging
from tests.conftest import make_database

END = date(2026, 11, 1)
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def dense_city(database_url: str) -> Iterator[tuple[Session, DemoCity]]:
    # Dense enough for monthly space-time Gi*: 250,000 incidents over the year.
    engine = make_engine(make_database("geo_test_emerging"))
    city = generate_city(
        seed=42, grids=800, incidents=250_000, households_per_grid=40, end_date=END
    )
    load_city(engine, city)
    with Session(engine) as session:
        yield session, city
    engine.dispose()


@pytest.mark.parametrize("pattern", ["intensifying", "persistent", "diminishing", "new"])
def test_planted_hotspot_gets_its_pattern(dense_city, pattern: str) -> None:  # noqa: ANN001
    session, city = dense_city
    spot = next(h for h in city.hotspots if h.expected_pattern == pattern)
    # the demo city's year, in its calendar months (Asia/Shanghai, the default GEO_TIMEZONE)
    until = datetime(END.year, END.month, END.day, tzinfo=SHANGHAI)
    result = emerging(
        session,
        res=8,
        bin="month",
        since=until.replace(year=until.year - 1),
        until=until,
        category=spot.category,
    )
    assert result["parameters"]["bins"] == 12
    assert result["parameters"]["trimmed"] is None
    by_cell = {f["properties"]["h3"]: f["properties"] for f in result["features"]}
    found = by_cell[h3.latlng_to_cell(spot.lat, spot.lon, 8)]
    assert found["pattern"] == f"{pattern.capitalize()} Hot Spot", found
    patterns = [p["pattern"] for p in by_cell.values()]
    assert patterns.count("No Pattern Detected") > len(patterns) * 0.8


def test_bad_emerging_requests(dense_city) -> None:  # noqa: ANN001
    session, _ = dense_city
    until = datetime(2026, 11, 1, tzinfo=UTC)
    for kwargs, message in (
        ({"bin": "fortnight"}, "day, week, month, quarter, year"),
        ({"res": 4}, "res must be"),
        ({"since": until - timedelta(days=50)}, "at least 4 whole month bins"),
        ({"since": until}, "since must be before until"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            emerging(session, **{"until": until, **kwargs})
    # a year of days at res 10 over the whole city, with a 4 MB budget: refused, with its cost
    import geo_service.services.layers.emerging as emerging_module

    budget = pytest.MonkeyPatch()
    budget.setattr(emerging_module, "MAX_CUBE_BYTES", 4_000_000)
    try:
        with pytest.raises(LimitExceededError, match="cells x") as refused:
            emerging(session, res=10, bin="day", since=until - timedelta(days=200), until=until)
    finally:
        budget.undo()
    cost = refused.value.extra["cost"]
    assert cost["bins"] == 199 and cost["cells"] > 10_000  # the partial first day left out
    assert cost["memory_bytes"] > cost["limit_bytes"]
