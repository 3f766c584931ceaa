"""What a fresh user of the demo city found: descriptions in English in a Chinese city, homes
at five-digit buildings all on 101, and a monthly emerging hot spot map with nothing
intensifying. The demo now describes incidents in its language, gives households the doors of
real compounds, and grows a night market whose cells the monthly analysis calls intensifying."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import h3
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from geo_service.cli.demo import demo_language
from geo_service.db.engine import make_engine
from geo_service.demo.city import DemoCity, generate_city
from geo_service.demo.descriptions import TEMPLATES
from geo_service.demo.load import load_city
from geo_service.services.layers.emerging import emerging
from tests.conftest import make_database

END = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 20:00 in Wuhan
SMALL = {"seed": 3, "grids": 40, "incidents": 6000, "households_per_grid": 60, "end": END}
DOOR = re.compile(r"^(\d+)栋(\d)单元(\d+)(0[1-4])$")
HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def small_city() -> DemoCity:
    return generate_city(**SMALL)


def test_descriptions_are_chinese_by_default_and_varied_per_category(
    small_city: DemoCity,
) -> None:
    inc = small_city.incidents
    assert inc.description.map(lambda d: bool(HAN.search(d))).all()
    assert not inc.description.str.contains(r"[A-Za-z]{4,}").any()  # no English words
    # the grid's community (in Chinese) is named: the place of the report
    community = small_city.areas.set_index("code")
    grids = community.loc[inc.grid_code]
    names = community.loc[grids.parent_code.to_numpy(), "name_zh"].to_numpy()
    assert all(n in d for n, d in zip(names, inc.description, strict=True))
    # several templates per category, the grid office's words among them
    for category, templates in TEMPLATES["zh-CN"].items():
        assert len(templates) >= 5
        said = inc.description[inc.category == category]
        used = {i for i, t in enumerate(templates) for d in said if _matches(t, d)}
        assert len(used) >= 4, (category, used)
    text = " ".join(inc.description)
    for words in ("噪音扰民", "占道经营", "楼道堆放", "邻里", "路灯不亮", "井盖缺失"):
        assert words in text, words
    # the hour a description names is the local hour of the report
    hours = inc.description.str.extract(r"(\d+)时许")[0]
    local = inc.reported_at.dt.tz_convert("Asia/Shanghai").dt.hour
    said_hour = hours.notna()
    assert said_hour.mean() > 0.3
    assert (hours[said_hour].astype(int) == local[said_hour]).all()


def _matches(template: str, description: str) -> bool:
    pattern = re.escape(template)
    for field in ("time", "Time", "community", "building", "entrance", "gate"):
        pattern = pattern.replace(re.escape("{" + field + "}"), ".+?")
    return re.fullmatch(pattern, description) is not None


def test_an_english_demo_describes_in_english_and_nothing_else_changes(
    small_city: DemoCity,
) -> None:
    english = generate_city(**SMALL, language="en")
    inc = english.incidents
    assert not inc.description.map(lambda d: bool(HAN.search(d))).any()
    assert inc.description.str.contains("building|gate").mean() > 0.9
    assert inc.description.str.contains(r"(?i)around \d+ (?:am|pm)|around (?:noon|midnight)").any()
    same = ["category", "reported_at", "lon", "lat", "status", "grid_code"]
    assert inc[same].equals(small_city.incidents[same])
    assert english.households.equals(small_city.households)


def test_the_demo_language_follows_geo_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEO_LOCALE", raising=False)
    assert demo_language() == "zh-CN"
    monkeypatch.setenv("GEO_LOCALE", "en")
    assert demo_language() == "en"
    monkeypatch.setenv("GEO_LOCALE", "zh_CN.UTF-8")
    assert demo_language() == "zh-CN"


def test_household_doors_are_real_compound_addresses_unique_in_their_grid(
    small_city: DemoCity,
) -> None:
    hh = small_city.households
    parts = hh.address.str.extract(DOOR)
    assert parts.notna().all().all(), hh.address[parts.isna().any(axis=1)].head()
    building, entrance, floor, room = (parts[i].astype(int) for i in range(4))
    assert building.between(1, 40).all() and building.max() > 10
    assert entrance.between(1, 4).all() and entrance.nunique() >= 2
    assert floor.between(1, 33).all() and floor.nunique() >= 5
    assert room.between(1, 4).all() and room.nunique() == 4
    assert not hh.duplicated(["grid_code", "address"]).any()
    assert (hh.address.str.endswith("单元101")).mean() < 0.2
    # a building's floors are those of one kind of building: walk-ups have six at most
    per_building = pd.DataFrame({"g": hh.grid_code, "b": building, "f": floor})
    assert per_building.groupby(["g", "b"]).f.max().max() <= 33
    # deterministic per seed, other doors for another
    again = generate_city(**SMALL)
    assert again.households.address.equals(hh.address)
    other = generate_city(**{**SMALL, "seed": 4})
    assert not other.households.address.head(50).equals(hh.address.head(50))


@pytest.fixture(scope="module")
def night_market_city(database_url: str) -> Iterator[tuple[Session, DemoCity]]:
    # dense enough for monthly space-time Gi* with every category together
    engine = make_engine(make_database("geo_test_night_market"))
    city = generate_city(seed=42, grids=300, incidents=200_000, households_per_grid=20, end=END)
    load_city(engine, city)
    with Session(engine) as session:
        yield session, city
    engine.dispose()


def test_the_monthly_emerging_map_shows_the_night_market_intensifying(
    night_market_city: tuple[Session, DemoCity],
) -> None:
    session, city = night_market_city
    market = next(h for h in city.hotspots if h.name == "night_market")
    # its incidents grow month on month
    near = city.incidents[
        (abs(city.incidents.lon - market.lon) < 0.002)
        & (abs(city.incidents.lat - market.lat) < 0.002)
    ]
    months = near.reported_at.dt.tz_convert("Asia/Shanghai").dt.to_period("M").value_counts()
    months = months.sort_index().iloc[1:-1]  # the whole months
    assert months.iloc[-1] > 1.5 * months.iloc[0]
    # what the map asks for by default: every category, calendar months up to this one
    layer = emerging(session, bin="month", now=END)
    assert layer["parameters"]["bins"] >= 11
    by_cell = {f["properties"]["h3"]: f["properties"] for f in layer["features"]}
    found = by_cell[h3.latlng_to_cell(market.lat, market.lon, 8)]
    assert found["pattern"] == "Intensifying Hot Spot", found
    assert found["trend_z"] > 2
    patterns = pd.Series([p["pattern"] for p in by_cell.values()]).value_counts()
    assert patterns.get("Intensifying Hot Spot", 0) >= 1
