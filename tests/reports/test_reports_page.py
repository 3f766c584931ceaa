"""The managers' page ``/reports`` in headless Chromium: charts drawn by the vendored ECharts,
the tables filled, values from the database shown as text (never markup), on a desktop and a
390x844 phone (screenshots in tests/artifacts)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.browser import signed_in_page
from tests.conftest import ARTIFACTS, as_role, problem

DESKTOP = (1400, 900)
PHONE = (390, 844)
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"


def test_the_page_needs_reports_read(client: TestClient, role_keys: dict) -> None:
    page = client.get("/reports", headers=as_role(role_keys, "analyst"))
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/vendor/echarts/echarts.min.js">' in page.text
    refused = client.get("/reports", headers=as_role(role_keys, "grid_worker"))
    assert refused.status_code == 403
    problem(refused)


@pytest.fixture
def hostile_district(engine: Engine, loaded_city: DemoCity) -> Iterator[str]:
    with engine.begin() as conn:
        row = conn.execute(
            text("SELECT id, code, name FROM areas WHERE level = 'district' ORDER BY code LIMIT 1")
        ).one()
        conn.execute(text("UPDATE areas SET name = :n WHERE id = :i"), {"n": HOSTILE, "i": row.id})
    try:
        yield row.code
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE areas SET name = :n WHERE id = :i"), {"n": row.name, "i": row.id}
            )


@pytest.mark.browser
@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_page_draws_the_report(
    live_server: str,
    role_keys: dict,
    city_with_lifecycles: DemoCity,
    hostile_district: str,
    viewport: tuple,
    name: str,
) -> None:
    with signed_in_page(live_server, "/reports", role_keys["analyst"], viewport) as (page, errors):
        page.wait_for_selector("#status[data-ready='1']", timeout=30_000)
        # six charts drawn on canvases
        assert page.locator(".chart canvas").count() == 6
        rows = page.locator("#areas tr")
        assert rows.count() > 1
        # the hostile name is shown as text, and nothing ran
        assert page.locator("#areas td", has_text=HOSTILE).count() == 1
        assert page.locator("#areas img").count() == 0
        assert page.title() != "pwned"
        assert page.locator("#cards .card").count() == 9  # the eight figures and visit coverage
        # every chart's plot area holds its axis labels (12,000 was drawn as ".2,000")
        contained = page.evaluate(
            "[...document.querySelectorAll('[id^=chart-]')].map((el) => "
            "echarts.getInstanceByDom(el)).filter(Boolean)"
            ".map((c) => (c.getOption().grid || []).every((g) => g.containLabel))"
        )
        assert contained and all(contained)
        assert page.get_attribute("#pdf", "href").startswith("/reports/performance?")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"reports-{name}.png"), full_page=True)
        # a community's grids under their community
        page.select_option("#level", "grid")
        page.wait_for_selector("#parent option:nth-child(2)", state="attached")
        page.select_option("#parent", index=1)
        page.evaluate("document.querySelector('#status').dataset.ready = ''")
        page.click("#controls button[type=submit]")
        page.wait_for_selector("#status[data-ready='1']", timeout=30_000)
        assert page.locator("#workers tr").count() > 1
        page.screenshot(path=str(ARTIFACTS / f"reports-{name}-grids.png"), full_page=True)
    assert errors == []


@pytest.mark.browser
@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_page_in_chinese(
    live_server: str,
    role_keys: dict,
    city_with_lifecycles: DemoCity,
    viewport: tuple,
    name: str,
) -> None:
    """A browser asking for Chinese gets the page's words, the charts' and the escalation
    levels' in Chinese (the messages catalogue), with the language switch."""
    from tests.api.test_pages_language import browser_page, sign_in

    with browser_page(live_server, "zh-CN", viewport) as (page, errors):
        sign_in(page, live_server, "/reports", role_keys["analyst"])
        page.wait_for_selector("#status[data-ready='1']", timeout=30_000)
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.text_content("h1") == "绩效报告"
        assert page.locator("#level option").all_text_contents() == ["区", "街道", "社区", "网格"]
        cards = page.locator("#cards .card").all_text_contents()
        assert any("办结率" in c for c in cards) and any("网格内解决" in c for c in cards)
        assert any("入户走访覆盖率" in c and "天内" in c for c in cards)
        assert "统计期" in (page.text_content("#status") or "")
        assert "English" in (page.text_content(".lang-switch") or "")
        # the escalations chart names the levels in Chinese
        levels = page.evaluate(
            "echarts.getInstanceByDom(document.getElementById('chart-escalations'))"
            ".getOption().xAxis[0].data"
        )
        assert levels == ["社区", "街道", "区"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"zh-CN_reports-{name}.png"), full_page=True)
    assert errors == []


# --- what a fresh user found (issue 19, polish) ----------------------------------------------


def _wait_ready(page) -> None:  # noqa: ANN001
    page.wait_for_selector("#status[data-ready='1']", timeout=30_000)


def _reload_report(page) -> None:  # noqa: ANN001
    page.evaluate("document.querySelector('#status').dataset.ready = ''")


@pytest.mark.browser
def test_the_last_day_chosen_is_counted_and_the_view_is_in_the_url(
    live_server: str,
    role_keys: dict,
    client: TestClient,
    engine: Engine,
    city_with_lifecycles: DemoCity,
    window: dict,
) -> None:
    """From 11-01 to 11-30 counts 30 November: the page sends the next day as ``until``
    (the API's window stays half-open); level, parent and days go into the address, and the
    address alone brings the same view back (a bookmark), in the language it names."""
    first = window["since"].date().isoformat()
    last = (window["until"].date() - timedelta(days=1)).isoformat()
    with engine.connect() as conn:
        # the street of the newest incident (on the window's last day)
        street = conn.execute(
            text(
                "SELECT s.id, s.code FROM incidents i JOIN areas g ON g.id = i.grid_id "
                "JOIN areas c ON c.id = g.parent_id JOIN areas s ON s.id = c.parent_id "
                "WHERE s.level = 'street' ORDER BY i.reported_at DESC LIMIT 1"
            )
        ).one()
    params = {"level": "community", "parent_id": street.id, "since": first}
    counted = client.get(
        "/reports/performance", params={**params, "until": window["until"].date().isoformat()}
    ).json()
    dropped = client.get("/reports/performance", params={**params, "until": last}).json()
    # the window's last day holds the newest incidents: leaving it out would show
    assert counted["total"]["received"] > dropped["total"]["received"]
    with signed_in_page(live_server, "/reports", role_keys["analyst"], DESKTOP) as (page, errors):
        _wait_ready(page)
        page.select_option("#level", "community")
        page.wait_for_selector(f"#parent option[value='{street.id}']", state="attached")
        page.select_option("#parent", str(street.id))
        page.fill("#since", first)
        page.fill("#until", last)
        _reload_report(page)
        with page.expect_request(lambda r: "/reports/performance?" in r.url) as sent:
            page.click("#controls button[type=submit]")
        _wait_ready(page)
        assert f"until={window['until'].date().isoformat()}" in sent.value.url
        cards = page.locator("#cards .card .value").all_text_contents()
        assert cards[0] == str(counted["total"]["received"])
        assert f"{first} – {last} (Asia/Shanghai)" in page.text_content("#status")
        assert "+08:00" in page.text_content("#status")
        assert page.get_attribute("#csv", "href").endswith(
            f"until={window['until'].date().isoformat()}&format=csv"
        )
        # the view in the address bar
        url = page.url
        assert f"level=community&parent_id={street.id}&from={first}&to={last}&lang=en" in url
        # a bookmark opens the same view; the language switch keeps it
        page.goto("about:blank")
        page.goto(url)
        _wait_ready(page)
        assert page.input_value("#level") == "community"
        assert page.input_value("#parent") == str(street.id)
        assert page.input_value("#since") == first and page.input_value("#until") == last
        cards = page.locator("#cards .card .value").all_text_contents()
        assert cards[0] == str(counted["total"]["received"])
        chinese = page.get_attribute(".lang-switch a[hreflang='zh-CN']", "href")
        assert f"parent_id={street.id}" in chinese and "lang=zh-CN" in chinese
        page.click(".lang-switch a[hreflang='zh-CN']")
        _wait_ready(page)
        assert page.text_content("h1") == "绩效报告"
        assert page.input_value("#parent") == str(street.id)
        assert page.input_value("#until") == last
        page.screenshot(path=str(ARTIFACTS / "zh-CN_reports-bookmarked.png"), full_page=True)
    assert errors == []


@pytest.mark.browser
@pytest.mark.parametrize(
    ("now", "choice", "days"),
    [
        # 17:00 UTC on 30 November is 01:00 on 1 December in Shanghai
        ("2026-11-30T17:00:00Z", "this_month", ("2026-12-01", "2026-12-31")),
        ("2026-11-30T15:00:00Z", "last_month", ("2026-10-01", "2026-10-31")),
        ("2026-11-18T04:00:00Z", "this_week", ("2026-11-16", "2026-11-22")),
        ("2026-11-18T04:00:00Z", "last_week", ("2026-11-09", "2026-11-15")),
    ],
)
def test_quick_choices_fill_local_weeks_and_months(
    live_server: str, role_keys: dict, loaded_city: DemoCity, now: str, choice: str, days: tuple
) -> None:
    from datetime import datetime

    with signed_in_page(live_server, "/reports", role_keys["analyst"], DESKTOP) as (page, errors):
        _wait_ready(page)
        page.clock.set_fixed_time(datetime.fromisoformat(now.replace("Z", "+00:00")))
        _reload_report(page)
        with page.expect_request(lambda r: "/reports/performance?" in r.url) as sent:
            page.click(f"[data-range='{choice}']")
        _wait_ready(page)
        assert (page.input_value("#since"), page.input_value("#until")) == days
        end = (date.fromisoformat(days[1]) + timedelta(days=1)).isoformat()
        assert f"since={days[0]}&until={end}" in sent.value.url
        assert f"from={days[0]}&to={days[1]}" in page.url
    assert errors == []


@pytest.mark.browser
def test_many_workers_show_the_best_and_last_ten_and_all_on_demand(
    live_server: str, role_keys: dict, client: TestClient, loaded_city: DemoCity
) -> None:
    body = client.get("/reports/performance", params={"level": "district"}).json()
    ranked = body["rankings"]["workers_on_time_resolution"]
    assert len(ranked) > 20
    with signed_in_page(live_server, "/reports", role_keys["analyst"], DESKTOP) as (page, errors):
        _wait_ready(page)
        rows = page.locator("#workers tr")
        assert rows.count() == 1 + 10 + 1 + 10  # header, best, gap, last
        first_cells = page.locator("#workers tr td:first-child").all_text_contents()
        assert first_cells[:10] == [r["code"] for r in ranked[:10]]
        assert first_cells[11:] == [r["code"] for r in ranked[-10:]]
        assert f"{len(ranked)} grid workers" in page.text_content("#workers-cut")
        unranked = len(body["rankings"]["workers_not_ranked"])
        if unranked:  # listed apart, not among the last ten
            assert page.text_content("#workers-unranked") == (
                f"Grid workers not ranked (no cases to rate in the period): {unranked}"
            )
        page.click("#workers-all")
        assert rows.count() == 1 + len(body["workers"])
        assert page.is_hidden("#workers-all")
    assert errors == []


@pytest.mark.browser
def test_a_rate_near_100_percent_keeps_its_decimal_and_reopened_shows_no_median(
    live_server: str, role_keys: dict, loaded_city: DemoCity
) -> None:
    """77,064 of 77,344 closed is 99.6% (99.6–99.7%), not "100% (100-100%)"."""
    import json

    from geo_service.analytics.performance import rate
    from geo_service.services.reports.periods import percent_text

    near = rate(77064, 77344)

    def answer(route) -> None:  # noqa: ANN001
        response = route.fetch()
        body = response.json()
        body["total"]["closure_rate"] = near
        route.fulfill(response=response, body=json.dumps(body))

    with signed_in_page(live_server, "/reports", role_keys["analyst"], DESKTOP) as (page, errors):
        _wait_ready(page)
        page.route("**/reports/performance?*", answer)
        _reload_report(page)
        page.click("#controls button[type=submit]")
        _wait_ready(page)
        closure = page.locator("#cards .card").nth(2)
        assert closure.locator(".value").text_content() == "99.6%"
        low, high = percent_text(near["low"]), percent_text(near["high"])
        assert closure.locator(".detail").text_content() == f"{low[:-1]}–{high}, n=77344"
        assert high != "100.0%"
        reopened = page.locator("#cards .card").nth(7)
        assert reopened.locator(".detail").text_content() == ""
    assert errors == []


# --- what a fresh user found (issue 19, the second look) ---------------------------------------


@pytest.mark.browser
def test_the_date_boxes_show_the_period_reported_on_first_load(
    live_server: str, role_keys: dict, loaded_city: DemoCity
) -> None:
    """Opened without dates, the page shows the API's default window in its boxes: the first
    local day and the last one included (the day before ``until``'s local midnight)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    with signed_in_page(live_server, "/reports", role_keys["analyst"], DESKTOP) as (page, errors):
        _wait_ready(page)
        since, until, tz = page.evaluate("[lastReport.since, lastReport.until, PAGE.timezone]")
        zone = ZoneInfo(tz)
        first = datetime.fromisoformat(since).astimezone(zone).date()
        last = (datetime.fromisoformat(until) - timedelta(microseconds=1)).astimezone(zone).date()
        assert (page.input_value("#since"), page.input_value("#until")) == (
            first.isoformat(),
            last.isoformat(),
        )
        assert first.day == 1 and last >= first + timedelta(days=59)  # two months and this one
        # the address bar is left as it was: a bookmark keeps following today
        assert "from=" not in page.url
    assert errors == []


@pytest.mark.browser
def test_the_open_card_counts_at_as_of_and_partial_weeks_are_marked(
    live_server: str,
    role_keys: dict,
    client: TestClient,
    city_with_lifecycles: DemoCity,
    window: dict,
) -> None:
    """A window from a Wednesday to a week ago: the received card tells the incidents open at
    the window's end (the API's open_at_as_of, the backlog chart's sum), and the first week,
    5 of its 7 days inside the window, is drawn pale and hatched, marked * with the legend
    and "partial week: 5 of 7 days" in its tooltip."""
    first = window["since"].date() + timedelta(days=2)
    last = window["until"].date() - timedelta(days=8)  # included: until is the next day
    params = {"level": "district", "since": first.isoformat(),
              "until": (last + timedelta(days=1)).isoformat()}  # fmt: skip
    body = client.get("/reports/performance", params=params).json()
    as_of = f"{last + timedelta(days=1)} 00:00 +08:00"
    assert body["as_of"].startswith(f"{last + timedelta(days=1)}T00:00:00")
    view = f"/reports?level=district&from={first}&to={last}&lang=en"
    with signed_in_page(live_server, "/reports", role_keys["analyst"], DESKTOP) as (page, errors):
        _wait_ready(page)
        page.goto(f"{live_server}{view}")
        _wait_ready(page)
        received = page.locator("#cards .card").nth(0)
        assert received.locator(".value").text_content() == str(body["total"]["received"])
        assert received.locator(".detail").text_content() == (
            f"Open at {as_of}: {body['total']['open_at_as_of']}"
        )
        backlog = page.evaluate(
            "echarts.getInstanceByDom(document.getElementById('chart-backlog'))"
            ".getOption().series[0].data"
        )
        assert sum(backlog) == body["total"]["open_at_as_of"] != body["total"]["open"]
        option = page.evaluate(
            "(() => { const o = echarts.getInstanceByDom(document.getElementById("
            "'chart-weeks')).getOption(); return {labels: o.xAxis[0].data, "
            "bars: o.series[0].data, subtext: o.title[0].subtext}; })()"
        )
        weeks = body["trends"]["weeks"]
        assert [w["partial"] for w in weeks][:2] == [True, False]
        assert option["labels"] == [w["start"][5:] + ("*" if w["partial"] else "") for w in weeks]
        assert [bool(b["itemStyle"].get("decal")) for b in option["bars"]] == [
            w["partial"] for w in weeks
        ]
        assert option["bars"][0]["itemStyle"]["opacity"] < 1
        assert option["subtext"].startswith("hatched: a partial week")
        page.evaluate(
            "echarts.getInstanceByDom(document.getElementById('chart-weeks'))"
            ".dispatchAction({type: 'showTip', seriesIndex: 0, dataIndex: 0})"
        )
        page.wait_for_selector("text=partial week: 5 of 7 days")
        page.screenshot(path=str(ARTIFACTS / "reports-partial-weeks.png"), full_page=True)
    assert errors == []
