"""The console in headless Chromium when someone else is faster (the fresh user's dead
buttons): the open detail follows the stream (status, responder, actions; the dispatch
candidates go), an action refused with a 409 reads the incident again and says why in the
page's language, and the resolved incidents wait in their own list to be closed.
Screenshots: tests/artifacts/console-resolved-*.png."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS
from tests.dispatch.test_console import db_now, report

DESKTOP = (1600, 1000)
PHONE = (390, 844)


def _status(engine: Engine, iid: str) -> str:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT status FROM incidents WHERE id = :id"), {"id": iid}
        ).scalar_one()


def _someone_else_takes(client: TestClient, iid: str) -> int:
    rid = client.get(f"/incidents/{iid}/candidates", params={"k": 1}).json()["candidates"][0]["id"]
    assert client.post(f"/incidents/{iid}/dispatch", json={"responder_id": rid}).status_code == 200
    assert client.post(f"/incidents/{iid}/accept", json={}).status_code == 200
    return int(rid)


@pytest.mark.browser
@pytest.mark.parametrize(
    ("lang", "accepted", "refusal", "resolved_tab", "viewport"),
    [
        (
            "en",
            "accepted",
            "cannot dispatch an incident that is accepted",
            "Resolved, to close",
            DESKTOP,
        ),
        ("zh-CN", "已接单", "无法对状态为 已接单 的事件执行 派遣", "已处置，待办结", DESKTOP),
        (
            "en",
            "accepted",
            "cannot dispatch an incident that is accepted",
            "Resolved, to close",
            PHONE,
        ),
    ],
)
def test_the_detail_follows_others_and_a_409_says_why(
    live_server: str,
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    role_keys: dict,
    responders_restored: None,
    lang: str,
    accepted: str,
    refusal: str,
    resolved_tab: str,
    viewport: tuple[int, int],
) -> None:
    iid = report(client, loaded_city, 2, db_now(engine) - timedelta(minutes=1), east=0.001)
    # one that stays open (earlier tests may have closed the loaded backlog)
    still_open = report(client, loaded_city, 3, db_now(engine) - timedelta(minutes=2), east=0.002)
    shot = f"console-resolved-{lang}-{viewport[0]}"
    with signed_in_page(live_server, "/map/dispatch", role_keys["dispatcher"], viewport) as (
        page,
        errors,
    ):
        page.goto(f"{live_server}/map/dispatch?lang={lang}")  # the page's language switch
        page.locator("#live.ok").wait_for()
        page.evaluate("(id) => select(id)", iid)
        page.wait_for_selector("#detail button.dispatch")
        # another dispatcher sends someone and it is accepted: the page follows the stream
        rid = _someone_else_takes(client, iid)
        page.wait_for_function(
            "(w) => document.querySelector('#detail .status').textContent === w", arg=accepted
        )
        assert page.locator("#detail button.dispatch").count() == 0
        assert page.locator("#detail button.act-accept").count() == 0
        assert page.locator("#detail button.act-escalate").count() == 1  # still allowed
        head = page.locator("#detail .head").text_content() or ""
        assert str(rid) in head or any(c.isalpha() for c in head)
        # a button the page still had (a stream a second behind): the 409 reads it again
        # (to a responder who is free, so the incident's state is what refuses it)
        with engine.connect() as conn:
            free = conn.execute(
                text("SELECT id FROM responders WHERE status = 'available' ORDER BY id LIMIT 1")
            ).scalar_one()
        page.evaluate("([id, r]) => act(id, 'dispatch', {responder_id: r})", [iid, free])
        page.locator("#result .refused").wait_for()
        shown = page.locator("#result .refused").text_content() or ""
        assert refusal in shown, shown
        assert page.locator("#detail button.dispatch").count() == 0
        # resolved by the responder: it leaves the open list for the list to close
        assert client.post(f"/incidents/{iid}/resolve", json={}).status_code == 200
        page.locator("#detail button.act-close").wait_for()
        assert page.locator("#detail button.act-reopen").count() == 1
        assert page.locator(f"tr.row[data-id='{iid}']").count() == 0  # not in the open list
        tab = page.locator("#view-resolved")
        assert resolved_tab in (tab.text_content() or "")
        assert int(page.locator("#view-resolved-count").text_content() or "0") >= 1
        tab.click()
        page.locator(f"tr.row.selected[data-id='{iid}']").wait_for()
        assert page.locator(f"path.incident-{iid}").count() == 0  # done: off the map
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{shot}.png"))
        page.locator("#detail button.act-close").click()
        page.wait_for_function(
            "(id) => !document.querySelector(`tr.row[data-id='${id}']`)", arg=iid
        )
        assert _status(engine, iid) == "closed"
        page.locator("#view-open").click()
        page.locator(f"tr.row[data-id='{still_open}']").wait_for()
    assert not errors, errors
