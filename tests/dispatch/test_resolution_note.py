"""What was done and why it climbed, on the incident itself (issue 20): the resolution note
is kept on the incident (``resolution_note``) and the escalation history comes with the single
read (``escalations``), for a dispatcher and the grid's worker; a role that reads incidents
only as data points (an analyst) gets neither the note nor the reasons; a note that is too
long is refused and nothing is written."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import as_role, problem
from tests.dispatch.test_field_app import (
    audit_count,
    incident_row,
    new_incident,
    worker,  # noqa: F401 (a fixture)
)


def stored_note(engine: Engine, iid: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT resolution_note FROM incidents WHERE id = :i"), {"i": iid}
        ).scalar_one()


def test_the_note_and_the_reasons_are_read_by_dispatcher_and_worker_not_analyst(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    role_keys: dict,
    worker: dict,  # noqa: F811
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    climbed = client.post(
        f"/incidents/{iid}/escalate", json={"note": "the property company <b>must</b> act"}
    )
    assert climbed.status_code == 200, climbed.text
    client.post(f"/incidents/{iid}/dispatch", json={"responder_id": worker["id"]})
    client.post(f"/incidents/{iid}/accept", headers=worker["headers"])
    done = client.post(
        f"/incidents/{iid}/resolve",
        json={"resolution_code": "referred", "note": "handed to the property office"},
        headers=worker["headers"],
    )
    assert done.status_code == 200, done.text
    assert done.json()["resolution_note"] == "handed to the property office"
    assert stored_note(engine, iid) == "handed to the property office"

    for headers in (as_role(role_keys, "dispatcher"), worker["headers"]):
        seen = client.get(f"/incidents/{iid}", headers=headers)
        assert seen.status_code == 200, seen.text
        body = seen.json()
        assert body["resolution_note"] == "handed to the property office"
        [step] = body["escalations"]
        # the fields of GET /incidents/{id}/escalations, the levels by name as first published
        assert (step["from_level"], step["to_level"]) == ("grid", "community")
        assert (step["escalated_from"], step["escalated_to"]) == ("grid", "community")
        assert step["reason"] == "the property company <b>must</b> act"
        assert step["reason_code"] is None  # a person's own words
        assert step["by"] and step["by"] == step["who"] and step["at"]

    hidden = client.get(f"/incidents/{iid}", headers=as_role(role_keys, "analyst")).json()
    assert hidden["resolution_note"] is None and hidden["description"] is None
    assert [
        (e["escalated_to"], e["reason"], e["reason_code"], e["by"], e["who"])
        for e in hidden["escalations"]
    ] == [("community", None, None, None, None)]
    # the single read only: not in the listing (nor, so, in what is built from it)
    listed = client.get("/incidents", params={"grid_id": worker["grid_id"], "status": "resolved"})
    [feature] = [f for f in listed.json()["features"] if f["id"] == iid]
    assert "resolution_note" not in feature["properties"]

    # reopened: the note of the old resolution goes (the audit log keeps it)
    reopened = client.post(f"/incidents/{iid}/reopen", json={})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["resolution_note"] is None and stored_note(engine, iid) is None


def test_a_note_too_long_is_422_and_nothing_is_written(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    worker: dict,  # noqa: F811
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    client.post(f"/incidents/{iid}/dispatch", json={"responder_id": worker["id"]})
    client.post(f"/incidents/{iid}/accept", headers=worker["headers"])
    refused = client.post(
        f"/incidents/{iid}/resolve",
        json={"resolution_code": "settled", "note": "x" * 2001},
        headers=worker["headers"],
    )
    assert problem(refused)["status"] == 422
    assert incident_row(engine, iid)["status"] == "accepted"
    assert stored_note(engine, iid) is None
    assert audit_count(engine, "resolve", iid) == 0
    fits = client.post(
        f"/incidents/{iid}/resolve",
        json={"resolution_code": "settled", "note": "x" * 2000},
        headers=worker["headers"],
    )
    assert fits.status_code == 200, fits.text
    assert stored_note(engine, iid) == "x" * 2000
