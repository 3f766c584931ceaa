"""The phone's outbox keeps what the server refused (issue 20): in Chromium on a 390 x 844
phone, a worker accepts a task offline; meanwhile a dispatcher cancels the incident; when the
connection returns the server refuses the accept (409). The refused item stays on the phone
(IndexedDB) across a reload, shown with the server's reason; sending it again is refused
again and changes nothing; discarding it removes it for good. Nothing is dropped silently.
Screenshots: tests/artifacts/field-app-refused*.png."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_service.demo.city import DemoCity
from tests.browser import phone_page, sign_in_on_phone
from tests.conftest import ARTIFACTS, grid_point
from tests.dispatch.test_field_app import audit_count, busiest_grid, make_worker, new_incident


def outbox(page: Any) -> list[dict[str, Any]]:
    """What the phone's IndexedDB outbox holds (without the photo blobs)."""
    return page.evaluate("() => outboxAll().then((items) => items.map(({photo, ...rest}) => rest))")


@pytest.mark.browser
def test_a_refused_item_is_kept_with_its_reason_until_the_worker_discards_it(
    client: TestClient, engine: Engine, loaded_city: DemoCity, live_server: str
) -> None:
    code = busiest_grid(loaded_city)
    worker = make_worker(engine, code, "field-refused")
    lon, lat, _ = grid_point(loaded_city, code)
    task = new_incident(client, loaded_city, code, priority=2)
    sent = client.post(f"/incidents/{task}/dispatch", json={"responder_id": worker["id"]})
    assert sent.status_code == 200, sent.text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    where = {"longitude": lon, "latitude": lat}
    with phone_page(geolocation=where) as (phone, page, errors):
        sign_in_on_phone(page, live_server, worker["headers"]["X-API-Key"])
        row = page.locator(f'li.task[data-id="{task}"]')
        row.locator(".act-accept").wait_for()
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")

        # offline, the worker accepts; meanwhile the dispatcher cancels the incident
        phone.set_offline(True)
        page.locator("#net.offline").wait_for()
        row.locator(".act-accept").tap()
        page.locator("#outbox-toggle").filter(has_text="1 waiting to send").wait_for()
        cancelled = client.post(f"/incidents/{task}/cancel", json={"note": "a duplicate"})
        assert cancelled.status_code == 200, cancelled.text
        reason = client.post(
            f"/incidents/{task}/accept", headers=worker["headers"], json={}
        ).json()["detail"]  # what the server says to this accept

        # back online: the accept is refused, kept and shown with the server's reason
        phone.set_offline(False)
        refused = page.locator("#outbox-refused li.refused")
        refused.wait_for()
        assert reason in refused.locator(".reason").inner_text()
        assert "accept" in refused.locator(".reason").inner_text()
        page.locator("#outbox-toggle").filter(has_text="1 not accepted by the server").wait_for()
        kept = outbox(page)
        assert len(kept) == 1 and kept[0]["refused"] == reason and kept[0]["action"] == "accept"
        assert audit_count(engine, "accept", task) == 0

        # a reload (online) still shows it, with its reason: it is on the phone, not in memory
        page.reload()
        refused.wait_for()
        assert reason in refused.locator(".reason").inner_text()
        page.screenshot(path=str(ARTIFACTS / "field-app-refused.png"))
        # the periodic flush leaves it alone; sending it again is refused again
        page.evaluate("() => flush()")
        assert outbox(page) == kept
        refused.locator("button.retry").tap()
        page.wait_for_function(
            "(before) => outboxAll().then((items) => items.length === 1"
            " && items[0].refused && items[0].refusedAt !== before)",
            arg=kept[0]["refusedAt"],
        )
        refused.wait_for()
        assert client.get(f"/incidents/{task}").json()["status"] == "cancelled"
        assert audit_count(engine, "accept", task) == 0

        # discarding asks first: dismissing the question keeps it
        page.once("dialog", lambda dialog: dialog.dismiss())
        refused.locator("button.discard").tap()
        assert len(outbox(page)) == 1
        page.once("dialog", lambda dialog: dialog.accept())
        refused.locator("button.discard").tap()
        refused.wait_for(state="detached")
        assert outbox(page) == []
        page.locator("#outbox").wait_for(state="hidden")
        page.reload()
        page.locator("#tasks-state").wait_for()
        assert outbox(page) == [] and page.locator("#outbox-refused li").count() == 0
        page.screenshot(path=str(ARTIFACTS / "field-app-refused-discarded.png"))
        assert errors == [], errors
