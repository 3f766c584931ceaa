"""The grid worker's phone page (/app) speaks the language issue's catalogues (issues 19, 20).

Every word the page shows is a ``t()`` call of the "pages" catalogue (``TEXT`` of
``field_app.js``) or a ``_()`` of its template, and each has a Chinese translation; in
Chromium on a 390 x 844 phone asking for zh-CN, no English word is left on any tab (only the
values people typed, codes and the base map's attribution). Screenshots of every tab in both
languages: tests/artifacts/field-app-{zh-CN,en}-*.png.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service import i18n
from geo_service.demo.city import DemoCity
from tests.browser import VISIBLE_WORDS, chromium, english_left, new_phone, sign_in_on_phone
from tests.conftest import ARTIFACTS
from tests.dispatch.test_field_app import busiest_grid, make_worker, new_incident

PAGES = Path(i18n.__file__).resolve().parent / "web" / "static" / "pages"
TEMPLATE = Path(i18n.__file__).resolve().parent / "web" / "templates" / "field_app.html"
# a JavaScript string literal: "...", '...' or `...` (escapes allowed)
LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`(?:[^`\\]|\\.)*`')
T_CALL = re.compile(r'\bt\(\s*("(?:[^"\\]|\\.)*")')
SAY_CALL = re.compile(r'\bsay\(\s*"\w+"')


def _text_object() -> str:
    """The source of ``const TEXT = {...};`` in field_app.js."""
    source = (PAGES / "field_app.js").read_text()
    start = source.index("const TEXT = {")
    return source[start : source.index("\n};\n", start)]


def _catalogue(domain: str) -> dict[str, str]:
    with (i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / f"{domain}.po").open("rb") as handle:
        return {m.id: m.string for m in read_po(handle, locale="zh_CN") if m.id and not m.fuzzy}


def test_every_word_of_the_phone_page_is_a_catalogue_call() -> None:
    """A word written into TEXT as a bare string (not inside t()) is never translated."""
    body = _text_object()
    assert len(T_CALL.findall(body)) > 80  # the words are there, each in a t() call
    # the arguments of t() and the keys say() looks up are the only strings allowed
    body = SAY_CALL.sub("say(", T_CALL.sub("t(", body))
    bare = [s for s in LITERAL.findall(body) if s.strip("\"'`")]
    assert bare == [], f"words of /app outside t(): {bare}"
    # and the template's own words are gettext calls: no text between tags
    template = re.sub(r"\{[{%#].*?[}%#]\}", "", TEMPLATE.read_text(), flags=re.S)
    words = [w.strip() for w in re.findall(r">([^<]+)<", template) if re.search(r"[A-Za-z]", w)]
    assert words == [], f"words in field_app.html outside _(): {words}"


def test_every_word_of_the_phone_page_has_a_chinese_translation() -> None:
    pages = _catalogue("pages")
    words = {eval(s) for s in T_CALL.findall((PAGES / "field_app.js").read_text())}  # noqa: S307
    common = re.sub(r"^\s*//.*$", "", (PAGES / "common.js").read_text(), flags=re.M)
    words |= {eval(s) for s in T_CALL.findall(common)}  # noqa: S307 (the code, not comments)
    missing = sorted(w for w in words if not pages.get(w))
    assert missing == [], f"not in zh_CN/pages.po: {missing}"
    messages = _catalogue("messages")
    template = set(re.findall(r'_\("([^"]+)"\)', TEMPLATE.read_text()))
    assert template and sorted(w for w in template if not messages.get(w)) == []
    # what the page's words become in Chinese: the terms a grid office uses
    assert [pages[w] for w in ("My tasks", "Accept", "Arrived", "Resolve", "Report")] == [
        "我的任务",
        "接单",
        "到达",
        "处置完成",  # resolve; 办结 is close (a dispatcher's), as on the console and the API
        "上报",
    ]
    assert (pages["Escalate"], pages["close"]) == ("上交", "办结")  # one word each, everywhere
    assert [pages[w] for w in ("Visits", "On duty", "Off duty")] == ["入户走访", "在岗", "离岗"]


def test_the_manifest_names_the_app_in_the_request_language(client: TestClient) -> None:
    chinese = client.get("/app/manifest.webmanifest", headers={"Accept-Language": "zh-CN"})
    assert chinese.status_code == 200
    assert chinese.json()["name"] == "geo-service：我的网格"
    assert chinese.json()["lang"] == "zh-CN" and chinese.json()["start_url"] == "/app"
    english = client.get("/app/manifest.webmanifest", headers={"Accept-Language": "en"})
    assert english.json()["short_name"] == "My grid"


@pytest.mark.browser
def test_the_phone_page_in_chinese_has_no_english_word_left(
    client: TestClient, engine: Engine, loaded_city: DemoCity, live_server: str
) -> None:
    code = busiest_grid(loaded_city)
    worker = make_worker(engine, code, "field-lang")
    other = new_incident(client, loaded_city, code, priority=3)
    assert client.post(f"/incidents/{other}/escalate", json={"note": "物业"}).is_success
    with engine.connect() as conn:
        grid_name = conn.execute(
            text("SELECT name FROM areas WHERE id = :g"), {"g": worker["grid_id"]}
        ).scalar_one()
    allowed = [code, grid_name, "field-lang", "井盖缺失 near gate", "HTTP"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            for locale in ("zh-CN", "en-US"):
                tag = "en" if locale == "en-US" else locale
                task = new_incident(
                    client, loaded_city, code, priority=1, description="井盖缺失 near gate"
                )
                sent = client.post(
                    f"/incidents/{task}/dispatch", json={"responder_id": worker["id"]}
                )
                assert sent.is_success, sent.text
                where = {"longitude": 114.3, "latitude": 30.59}
                phone, page, errors = new_phone(browser, locale=locale, geolocation=where)
                sign_in_on_phone(page, live_server, worker["headers"]["X-API-Key"])
                assert page.evaluate("() => document.documentElement.lang") == tag
                page.locator(f'li.task[data-id="{task}"] .act-accept').wait_for()
                page.locator(f'li.task[data-id="{other}"] .level').wait_for()
                # a refused item in the outbox, as the phone keeps one (its reason is data)
                page.evaluate(
                    "(who) => outboxAdd({owner: who, kind: 'action', action: 'accept',"
                    " incident: 'x', label: '', key: 'lang-1', method: 'POST', path: '/x',"
                    " body: {}, refused: '事件已关闭'}).then(() => outboxAll())"
                    ".then((items) => { waiting = items; drawOutbox(); })",
                    "field-lang",
                )
                page.locator("#outbox-refused li.refused").wait_for()
                shots: dict[str, list[str]] = {}
                shots["tasks"] = page.evaluate(VISIBLE_WORDS)
                page.screenshot(path=str(ARTIFACTS / f"field-app-{tag}-tasks.png"))
                page.locator(f'li.task[data-id="{task}"] .act-accept').tap()
                page.locator(f'li.task[data-id="{task}"] .act-resolve').tap()
                shots["resolve"] = page.evaluate(VISIBLE_WORDS)
                page.screenshot(path=str(ARTIFACTS / f"field-app-{tag}-resolve.png"))
                page.locator('#act button[value="cancel"]').tap()
                page.locator('#tabs button[data-tab="report"]').tap()
                page.locator("#r-where").filter(has_text="30.59").wait_for()
                shots["report"] = page.evaluate(VISIBLE_WORDS)
                page.screenshot(path=str(ARTIFACTS / f"field-app-{tag}-report.png"))
                page.locator('#tabs button[data-tab="visits"]').tap()
                page.locator("li.household").first.wait_for()
                page.locator("li.household .record-visit").first.tap()
                shots["visits"] = page.evaluate(VISIBLE_WORDS)
                page.screenshot(path=str(ARTIFACTS / f"field-app-{tag}-visits.png"))
                assert errors == [], errors
                if tag == "zh-CN":
                    for tab, texts in shots.items():
                        assert english_left(texts, allowed) == [], tab
                    assert "我的任务" in shots["tasks"] and "入户走访" in shots["visits"]
                    assert any("被退回" in w for w in shots["tasks"])
                else:  # the test can fail: English pages are full of English words
                    assert english_left(shots["tasks"], allowed)
                    assert "My tasks" in shots["tasks"]
                phone.close()
                assert client.post(f"/incidents/{task}/cancel", json={}).is_success
        finally:
            browser.close()
