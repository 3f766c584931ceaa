"""A 12345 hotline files through the same Open311 API as citizens' apps: its account's
channel (``users.channel``) makes its filings ``hotline`` and the managers' reports count
them apart; a citizens' client cannot claim the hotline."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.demo.city import DemoCity
from geo_service.services.access.auth import create_key, create_user
from tests.conftest import grid_point


def _account(engine: Engine, channel: str | None) -> str:
    """A dispatcher-role client account (as Open311 clients are), with its channel."""
    with Session(engine) as session:
        user = create_user(
            session,
            name=f"open311-{channel or 'citizen'}-{uuid.uuid4().hex[:8]}",
            role="dispatcher",
            area_code=None,
            actor="tests",
            channel=channel,
        )
        key = create_key(session, user, actor="tests")[1]
        session.commit()
    return key


def _file(client: TestClient, city: DemoCity, key: str, **extra: str) -> Any:
    lon, lat, _ = grid_point(city)
    form = {"api_key": key, "service_code": "traffic", "lat": str(lat), "long": str(lon)}
    return TestClient(client.app).post("/open311/v2/requests.json", data={**form, **extra})


def _sources(engine: Engine, ids: list[str]) -> list[str]:
    with engine.connect() as conn:
        return [
            conn.execute(
                text("SELECT source FROM incidents WHERE id = CAST(:i AS uuid)"), {"i": i}
            ).scalar_one()
            for i in ids
        ]


def _by_source(client: TestClient) -> dict[str, int]:
    body = client.get("/reports/performance", params={"level": "district"}).json()
    return body["total"]["by_source"]


def test_a_hotline_filing_and_a_citizen_filing_are_counted_apart(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    hotline, citizens = _account(engine, "hotline"), _account(engine, None)
    before = _by_source(client)
    made = [
        _file(client, loaded_city, hotline),
        _file(client, loaded_city, hotline, source="hotline"),  # the extension, repeated
        _file(client, loaded_city, citizens),
        _file(client, loaded_city, citizens, source="citizen"),
    ]
    assert [m.status_code for m in made] == [201] * 4, [m.text for m in made]
    ids = [m.json()[0]["service_request_id"] for m in made]
    assert _sources(engine, ids) == ["hotline", "hotline", "citizen", "citizen"]
    after = _by_source(client)
    change = {s: after[s] - before[s] for s in after}
    assert change == {"citizen": 2, "grid_worker": 0, "hotline": 2, "sensor": 0, "import": 0}


def test_a_citizen_client_cannot_claim_the_hotline(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    citizens, hotline = _account(engine, None), _account(engine, "hotline")
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    refused = _file(client, loaded_city, citizens, source="hotline")
    assert refused.status_code == 403, refused.text
    (error,) = refused.json()  # the specification's error list
    assert error["code"] == 403 and "hotline" in error["description"]
    other = _file(client, loaded_city, hotline, source="citizen")  # nor the other way
    assert other.status_code == 403, other.text
    bad = _file(client, loaded_city, hotline, source="radio")
    assert bad.status_code == 400 and "source" in bad.json()[0]["description"]
    with engine.connect() as conn:  # nothing was written
        assert conn.execute(text("SELECT count(*) FROM incidents")).scalar_one() == count


def test_an_account_channel_outside_the_vocabulary_is_refused(engine: Engine) -> None:
    from geo_service.errors import InvalidInputError

    with Session(engine) as session:
        try:
            create_user(session, name="x-radio", role="dispatcher", area_code=None,
                        actor="tests", channel="radio")  # fmt: skip
        except InvalidInputError as error:
            assert "channel" in str(error)
        else:
            raise AssertionError("a channel outside the vocabulary was accepted")
