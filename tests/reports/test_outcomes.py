"""What the reports needed that the lifecycle did not keep (migration 0030): a dispute's
outcome, set on resolve, and reopening a resolved or closed incident; both audited, both
counted by ``/reports/performance``; a bad request writes nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import grid_point, problem


def _accepted_dispute(client: TestClient, engine: Engine, city: DemoCity) -> str:
    lon, lat, _ = grid_point(city)
    made = client.post(
        "/incidents", json={"category": "disputes", "location": {"lon": lon, "lat": lat}}
    )
    assert made.status_code == 201, made.text
    iid = made.json()["id"]
    with engine.begin() as conn:  # as if dispatched and accepted (the lifecycle's own tests)
        conn.execute(
            text(
                "UPDATE incidents SET status = 'accepted', dispatched_at = now(), "
                "accepted_at = now() WHERE id = :i"
            ),
            {"i": iid},
        )
    return iid


def _row(engine: Engine, iid: str) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT status, outcome, reopened_count, reopened_at, resolved_at, "
                    "closed_at, responder_id FROM incidents WHERE id = :i"
                ),
                {"i": iid},
            )
            .mappings()
            .one()
        )


def _audit(engine: Engine, iid: str) -> list[tuple[str, dict]]:
    with engine.connect() as conn:
        return [
            (a, d)
            for a, d in conn.execute(
                text("SELECT action, diff FROM audit_log WHERE entity_id = :i ORDER BY id"),
                {"i": iid},
            ).all()
        ]


def test_a_dispute_resolved_as_settled_then_reopened(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    iid = _accepted_dispute(client, engine, loaded_city)
    resolved = client.post(f"/incidents/{iid}/resolve", json={"outcome": "settled"})
    assert resolved.status_code == 200, resolved.text
    assert _row(engine, iid)["outcome"] == "settled"
    assert client.post(f"/incidents/{iid}/close").status_code == 200
    reopened = client.post(f"/incidents/{iid}/reopen", json={"note": "the neighbours again"})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "reported"
    row = _row(engine, iid)
    assert row["reopened_count"] == 1 and row["reopened_at"] is not None
    assert row["resolved_at"] is None and row["closed_at"] is None and row["outcome"] is None
    actions = [a for a, _ in _audit(engine, iid)]
    assert actions == ["create", "resolve", "close", "reopen"]
    assert _audit(engine, iid)[1][1]["after"]["outcome"] == "settled"


def test_the_report_counts_mediations_and_reopens(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    params = {"level": "district", "since": "2025-01-01", "until": "2027-01-01"}
    before = client.get("/reports/performance", params=params).json()["total"]
    settled = _accepted_dispute(client, engine, loaded_city)
    client.post(f"/incidents/{settled}/resolve", json={"outcome": "settled"})
    failed = _accepted_dispute(client, engine, loaded_city)
    client.post(f"/incidents/{failed}/resolve", json={"outcome": "unsettled"})
    client.post(f"/incidents/{failed}/reopen")
    after = client.get("/reports/performance", params=params).json()["total"]
    assert after["disputes"]["received"] == before["disputes"]["received"] + 2
    mediated, was = after["disputes"]["mediated"], before["disputes"]["mediated"]
    # the reopened one has no outcome any more: one more settled out of one more decided
    assert (mediated["numerator"], mediated["denominator"]) == (
        was["numerator"] + 1,
        was["denominator"] + 1,
    )
    assert after["reopened"] == before["reopened"] + 1


def test_bad_outcomes_and_reopens_write_nothing(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    iid = _accepted_dispute(client, engine, loaded_city)
    wrong_word = client.post(f"/incidents/{iid}/resolve", json={"outcome": "happy"})
    assert wrong_word.status_code == 422
    problem(wrong_word)
    not_for_close = client.post(f"/incidents/{iid}/cancel", json={"outcome": "settled"})
    assert not_for_close.status_code == 422
    assert "resolve only" in problem(not_for_close)["detail"]
    still_open = client.post(f"/incidents/{iid}/reopen")
    assert still_open.status_code == 409
    body = problem(still_open)
    assert "reopen" not in body["allowed_actions"]
    row = _row(engine, iid)
    assert (row["status"], row["outcome"], row["reopened_count"]) == ("accepted", None, 0)
    assert [a for a, _ in _audit(engine, iid)] == ["create"]
