"""A grid worker's phone reporting its own position (issue 17: the hottest write, 540 a second
at Wuhan's scale): one statement stores the fix with its audit row, checks the clock, and
writes nothing at all when refused. The clock is held; nothing reads the wall clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.demo.city import DemoCity
from geo_service.runtime.caches import PrincipalCache
from geo_service.services.access.auth import create_key, create_user
from tests.conftest import grid_point

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def device(client: TestClient, engine: Engine, loaded_city: DemoCity) -> Iterator[dict]:
    """A grid worker bound to a responder of their grid, with a key; the clock held at T0."""
    lon, lat, code = grid_point(loaded_city)
    with engine.begin() as conn:
        rid = conn.execute(
            text(
                "INSERT INTO responders (callsign, kind, status, home_grid_id) "
                "SELECT 'phone-1', 'grid_worker', 'available', a.id FROM areas a "
                "JOIN boundary_versions v ON v.id = a.version_id "
                "WHERE a.code = :c AND v.status = 'published' RETURNING id"
            ),
            {"c": code},
        ).scalar_one()
    with Session(engine) as session:
        user = create_user(
            session,
            name="phone-1",
            role="grid_worker",
            area_code=code,
            actor="tests",
            responder_callsign="phone-1",
        )
        key = create_key(session, user, actor="tests")[1]
        session.commit()
    clock = client.app.state.runtime.clock  # type: ignore[attr-defined]
    clock.set(T0)
    yield {"id": rid, "lon": lon, "lat": lat, "headers": {"X-API-Key": key}}
    clock.release()


def _fix(device: dict, at: datetime, rid: int | None = None) -> dict:
    return {
        "positions": [
            {
                "id": rid or device["id"],
                "lon": device["lon"],
                "lat": device["lat"],
                "at": at.isoformat(),
            }
        ]
    }


def _state(engine: Engine, rid: int) -> tuple[datetime | None, int]:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT (SELECT position_at FROM responders WHERE id = :r), "
                "(SELECT count(*) FROM audit_log WHERE action = 'positions' "
                "AND entity_id = CAST(:r AS text))"
            ),
            {"r": rid},
        ).one()


def test_an_own_fix_is_stored_with_one_audit_row(
    client: TestClient, engine: Engine, device: dict
) -> None:
    answer = client.post("/responders/positions", json=_fix(device, T0), headers=device["headers"])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": 1, "updated": 1, "ignored": 0}
    assert _state(engine, device["id"]) == (T0, 1)
    with engine.connect() as conn:
        who, diff = conn.execute(
            text(
                "SELECT who, diff FROM audit_log WHERE action = 'positions' "
                "AND entity_id = CAST(:r AS text)"
            ),
            {"r": device["id"]},
        ).one()
    assert who == "phone-1 (grid_worker)"
    assert diff == {"received": 1, "updated": 1, "responders": [device["id"]]}
    # a late delivery (older than the stored fix) is answered, counted as ignored, audited
    late = client.post(
        "/responders/positions",
        json=_fix(device, T0 - timedelta(seconds=30)),
        headers=device["headers"],
    )
    assert late.json() == {"received": 1, "updated": 0, "ignored": 1}
    assert _state(engine, device["id"]) == (T0, 2)


def test_an_own_fix_ahead_of_the_clock_writes_nothing(
    client: TestClient, engine: Engine, device: dict
) -> None:
    ahead = T0 + timedelta(minutes=5, seconds=1)  # one second past the allowed skew
    refused = client.post(
        "/responders/positions", json=_fix(device, ahead), headers=device["headers"]
    )
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"index": 0, "error": "at lies in the future"}]
    assert _state(engine, device["id"]) == (None, 0)  # neither the position nor an audit row
    edge = client.post(
        "/responders/positions",
        json=_fix(device, T0 + timedelta(minutes=5)),
        headers=device["headers"],
    )
    assert edge.status_code == 200 and edge.json()["updated"] == 1


def test_another_responders_fix_is_refused_and_nothing_written(
    client: TestClient, engine: Engine, device: dict
) -> None:
    with engine.connect() as conn:
        other = conn.execute(
            text("SELECT id FROM responders WHERE id <> :r ORDER BY id LIMIT 1"),
            {"r": device["id"]},
        ).scalar_one()
        before = conn.execute(
            text("SELECT position_at FROM responders WHERE id = :o"), {"o": other}
        ).scalar_one()
    answer = client.post(
        "/responders/positions", json=_fix(device, T0, rid=other), headers=device["headers"]
    )
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    with engine.connect() as conn:
        after = conn.execute(
            text("SELECT position_at FROM responders WHERE id = :o"), {"o": other}
        ).scalar_one()
    assert after == before and _state(engine, device["id"]) == (None, 0)


def test_a_key_checked_on_the_event_loop_is_stamped_once_and_refused_once_revoked(
    client: TestClient, engine: Engine, device: dict
) -> None:
    def stamp() -> datetime | None:
        with engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT k.last_used_at FROM api_keys k JOIN users u ON u.id = k.user_id "
                    "WHERE u.name = 'phone-1'"
                )
            ).scalar_one()

    assert stamp() is None
    for seconds in (0, 30):  # a phone's two fixes, each missing the principal cache
        PrincipalCache.forget_all()
        answer = client.post(
            "/responders/positions",
            json=_fix(device, T0 + timedelta(seconds=seconds)),
            headers=device["headers"],
        )
        assert answer.status_code == 200
        if seconds == 0:
            first = stamp()
            assert first is not None
    assert stamp() == first  # within LAST_USED_RESOLUTION: no second write
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE api_keys SET revoked_at = now() WHERE user_id = "
                "(SELECT id FROM users WHERE name = 'phone-1')"
            )
        )
    PrincipalCache.forget_all()
    refused = client.post(
        "/responders/positions",
        json=_fix(device, T0 + timedelta(seconds=60)),
        headers=device["headers"],
    )
    assert refused.status_code == 401
    wrong = device["headers"]["X-API-Key"][:-4] + "AAAA"
    assert (
        client.post(
            "/responders/positions", json=_fix(device, T0), headers={"X-API-Key": wrong}
        ).status_code
        == 401
    )
