"""Escalation history: each climb is kept (from, to, when, by whom, why) and the reports
count escalations by level from it; the automatic escalation of overdue incidents writes it
too, at the service's clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.services.dispatch.lifecycle import escalate_overdue
from tests.conftest import as_role, grid_point, problem


def _report(client: TestClient, city: DemoCity, category: str = "traffic") -> str:
    lon, lat, _ = grid_point(city)
    made = client.post(
        "/incidents",
        json={"category": category, "location": {"lon": lon, "lat": lat}, "priority": 2},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _history(engine: Engine, incident: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT from_level, to_level, at, who, reason FROM incident_escalations "
                "WHERE incident_id = CAST(:i AS uuid) ORDER BY id"
            ),
            {"i": incident},
        )
        return [dict(r) for r in rows.mappings()]


def _escalations(client: TestClient) -> dict[str, Any]:
    body = client.get("/reports/performance", params={"level": "district"}).json()
    return body["total"]["escalations"]


def test_an_incident_escalated_grid_community_street_counts_one_at_each_level(
    client: TestClient, engine: Engine, loaded_city: DemoCity, role_keys: dict
) -> None:
    before = _escalations(client)
    incident = _report(client, loaded_city)
    for note in ("the grid cannot settle it", "the community asks the street"):
        done = client.post(f"/incidents/{incident}/escalate", json={"note": note})
        assert done.status_code == 200, done.text
    history = _history(engine, incident)
    assert [(h["from_level"], h["to_level"]) for h in history] == [(0, 1), (1, 2)]
    assert [h["reason"] for h in history] == [
        "the grid cannot settle it",
        "the community asks the street",
    ]
    assert all(h["who"] == "test-admin (admin)" for h in history)
    assert history[0]["at"] <= history[1]["at"]
    shown = client.get(f"/incidents/{incident}/escalations").json()
    assert shown["count"] == 2
    assert [(e["from_level"], e["to_level"], e["escalated_to"]) for e in shown["data"]] == [
        (0, 1, "community"),
        (1, 2, "street"),
    ]
    assert [e["reason"] for e in shown["data"]] == [h["reason"] for h in history]
    assert shown["data"][0]["at"] == history[0]["at"].isoformat()
    after = _escalations(client)
    assert after["escalated"] - before["escalated"] == 1
    change = {k: after["by_level"][k] - before["by_level"][k] for k in after["by_level"]}
    assert change == {"community": 1, "street": 1, "district": 0}


def test_a_refused_escalation_writes_no_history(
    client: TestClient, engine: Engine, loaded_city: DemoCity, role_keys: dict
) -> None:
    incident = _report(client, loaded_city)
    analyst = client.post(
        f"/incidents/{incident}/escalate", json={"note": "x"}, headers=as_role(role_keys, "analyst")
    )
    assert analyst.status_code == 403
    assert client.post(f"/incidents/{incident}/cancel").status_code == 200
    closed = client.post(f"/incidents/{incident}/escalate", json={"note": "too late"})
    assert closed.status_code == 409
    assert closed.headers["content-type"].startswith("application/problem+json")
    assert _history(engine, incident) == []


def test_the_automatic_escalation_keeps_its_history_at_the_services_clock(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    from sqlalchemy.orm import Session

    incident = _report(client, loaded_city)
    with engine.connect() as conn:
        reported = conn.execute(
            text("SELECT reported_at FROM incidents WHERE id = CAST(:i AS uuid)"), {"i": incident}
        ).scalar_one()
    late = reported + timedelta(hours=1)  # past every dispatch target (P2: 3 minutes)
    with Session(engine) as session:
        done = escalate_overdue(session, now=late, actor="scheduler")
    others = [d["id"] for d in done if d["id"] != incident]
    with engine.begin() as conn:  # the loaded city's own open incidents stay as they were
        conn.execute(
            text(
                "UPDATE incidents SET escalation_level = escalation_level - 1 "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": others},
        )
        conn.execute(
            text(
                "DELETE FROM incident_escalations WHERE incident_id = ANY(CAST(:ids AS uuid[])) "
                "AND at = :late"
            ),
            {"ids": others, "late": late},
        )
    assert incident in {d["id"] for d in done}
    (climb,) = _history(engine, incident)
    assert (climb["from_level"], climb["to_level"], climb["who"]) == (0, 1, "scheduler")
    assert climb["at"] == late and climb["reason"].startswith("not accepted within ")


def test_who_may_read_an_incidents_escalations(
    client: TestClient, engine: Engine, loaded_city: DemoCity, role_keys: dict
) -> None:
    grids = loaded_city.areas[loaded_city.areas.level == "grid"]
    busiest = loaded_city.households.grid_code.value_counts().index[0]
    community = grids.set_index("code").parent_code[busiest]
    elsewhere = grids[grids.parent_code != community].code.iloc[0]
    lon, lat, _ = grid_point(loaded_city, elsewhere)
    made = client.post(
        "/incidents", json={"category": "traffic", "location": {"lon": lon, "lat": lat}}
    )
    incident = made.json()["id"]
    assert client.post(f"/incidents/{incident}/escalate", json={"note": "x"}).status_code == 200
    path = f"/incidents/{incident}/escalations"
    assert client.get(path, headers=as_role(role_keys, "dispatcher")).json()["count"] == 1
    analyst = client.get(path, headers=as_role(role_keys, "analyst"))
    assert analyst.status_code == 403 and problem(analyst)["code"] == "forbidden"
    outside = client.get(path, headers=as_role(role_keys, "dispatcher@community"))
    assert outside.status_code == 404 and problem(outside)["code"] == "not-found"
    missing = client.get("/incidents/00000000-0000-0000-0000-000000000000/escalations")
    assert missing.status_code == 404
    assert client.get("/incidents/not-a-uuid/escalations").status_code == 422
    with engine.connect() as conn:  # reading wrote nothing
        assert (
            conn.execute(
                text(
                    "SELECT count(*) FROM incident_escalations WHERE incident_id = CAST(:i AS uuid)"
                ),
                {"i": incident},
            ).scalar_one()
            == 1
        )


ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def _climbs(client: TestClient, incident: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The incident's climbs from both reads, which must answer the same objects (the single
    read names the levels where the list numbers them, as each first published them)."""
    embedded = client.get(f"/incidents/{incident}", headers=headers).json()["escalations"]
    listed = client.get(f"/incidents/{incident}/escalations", headers=headers).json()
    named = [
        {**c, "from_level": c["escalated_from"], "to_level": c["escalated_to"]}
        for c in listed["data"]
    ]
    assert named == embedded and listed["count"] == len(embedded)
    assert all(isinstance(c["from_level"], int) for c in listed["data"])
    return listed["data"]


def test_the_services_own_reasons_read_in_the_readers_language(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    from sqlalchemy.orm import Session

    incident = _report(client, loaded_city)
    with engine.begin() as conn:  # reported an hour ago: past its dispatch target by now
        target_s, late = conn.execute(
            text(
                "UPDATE incidents i SET reported_at = now() - interval '1 hour' "
                "FROM response_targets t WHERE t.priority = i.priority "
                "AND i.id = CAST(:i AS uuid) RETURNING t.dispatch_s, now()"
            ),
            {"i": incident},
        ).one()
    with Session(engine) as session:
        done = escalate_overdue(session, now=late, actor="scheduler")
    others = [d["id"] for d in done if d["id"] != incident]
    with engine.begin() as conn:  # the loaded city's own open incidents stay as they were
        conn.execute(
            text(
                "UPDATE incidents SET escalation_level = escalation_level - 1 "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": others},
        )
        conn.execute(
            text(
                "DELETE FROM incident_escalations WHERE incident_id = ANY(CAST(:ids AS uuid[])) "
                "AND at = :late"
            ),
            {"ids": others, "late": late},
        )
    # a person's words, and a climb by hand without any
    assert client.post(f"/incidents/{incident}/escalate", json={"note": "居民再次投诉"}).is_success
    assert client.post(f"/incidents/{incident}/escalate", json={}).is_success
    # stored as the service wrote it (the audit log's words), English
    assert [h["reason"] for h in _history(engine, incident)] == [
        f"not accepted within {target_s} s",
        "居民再次投诉",
        "by hand",
    ]
    zh = _climbs(client, incident, ZH)
    assert target_s % 60 == 0 and target_s < 3600  # said in minutes
    assert [(c["reason_code"], c["reason"]) for c in zh] == [
        ("not_accepted_in_time", f"{target_s // 60} 分钟内未接单"),
        (None, "居民再次投诉"),  # as typed
        ("no_reason_given", "人工操作，未填写原因"),
    ]
    assert [(c["from_level"], c["to_level"], c["escalated_to"]) for c in zh] == [
        (0, 1, "community"),
        (1, 2, "street"),
        (2, 3, "district"),
    ]
    assert zh[0]["who"] == zh[0]["by"] == "scheduler"
    en = _climbs(client, incident, EN)
    assert [c["reason"] for c in en] == [
        f"not accepted within {target_s // 60} min",
        "居民再次投诉",
        "by hand, no reason given",
    ]


def test_rows_written_before_read_in_chinese_too(
    client: TestClient, engine: Engine, loaded_city: DemoCity
) -> None:
    # the forms older code and migration 0035 stored, and a person's English words
    incident = _report(client, loaded_city)
    stored = [
        "backfilled from incidents.escalation_level",
        "not resolved within 7200 s",
        "recorded from incidents.escalation_level",
    ]
    with engine.begin() as conn:
        for level, reason in enumerate(stored, start=1):
            conn.execute(
                text(
                    "INSERT INTO incident_escalations "
                    "(incident_id, from_level, to_level, at, who, reason) "
                    "VALUES (CAST(:i AS uuid), :f, :t, now(), 'migration 0035', :r)"
                ),
                {"i": incident, "f": level - 1, "t": level, "r": reason},
            )
    zh = _climbs(client, incident, ZH)
    assert [(c["reason_code"], c["reason"]) for c in zh] == [
        ("recorded_from_level", "根据事件的上交层级补记（具体时间不详）"),
        ("not_resolved_in_time", "2 小时内未处置完成"),
        ("recorded_from_level", "根据事件的上交层级补记（具体时间不详）"),
    ]
    en = _climbs(client, incident, EN)
    assert [c["reason"] for c in en] == [
        "recorded from the incident's escalation level (when is not known)",
        "not resolved within 2 h",
        "recorded from the incident's escalation level (when is not known)",
    ]
