"""Headless Chromium for the map tests: Debian's browser, signed in the way a person does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def chromium(pw: Any) -> Any:
    """Debian's Chromium, headless, with nothing reaching out to the network."""
    return pw.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )


@contextmanager
def signed_in_page(
    base: str,
    path: str,
    api_key: str,
    viewport: tuple[int, int] = (1200, 900),
    locale: str = "en-US",
) -> Iterator[tuple[Any, list[str]]]:
    """A page on ``path`` after the sign-in form (which a visit without a key must show),
    and the list that collects the page's JavaScript errors; the browser asks for
    ``locale`` (Accept-Language)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            page = browser.new_page(
                viewport={"width": viewport[0], "height": viewport[1]}, locale=locale
            )
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}{path}")
            assert "/login" in page.url, page.url
            page.fill("input[name=api_key]", api_key)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}{path}")
            yield page, errors
        finally:
            browser.close()


# --- the grid worker's phone (/app): a touch phone in Shanghai, signed in with its key ---

PHONE = {"width": 390, "height": 844}


def new_phone(
    browser: Any,
    *,
    locale: str = "en-US",
    geolocation: dict[str, float] | None = None,
    clock_at: Any = None,
) -> tuple[Any, Any, list[str]]:
    """A 390 x 844 touch phone (twice the pixels, Asia/Shanghai time) in ``browser``: its
    context, a new page and the list that collects the page's JavaScript errors. With
    ``geolocation`` ({"longitude", "latitude"[, "accuracy"]}) the phone may share that fix;
    with ``clock_at`` the page's clock is installed at that instant (moved on by the test,
    never waited for)."""
    phone = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale=locale,
        timezone_id="Asia/Shanghai",
        **({"geolocation": geolocation, "permissions": ["geolocation"]} if geolocation else {}),
    )
    if clock_at is not None:
        phone.clock.install(time=clock_at)
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return phone, page, errors


@contextmanager
def phone_page(
    *, locale: str = "en-US", geolocation: dict[str, float] | None = None, clock_at: Any = None
) -> Iterator[tuple[Any, Any, list[str]]]:
    """``new_phone`` in a headless Chromium of its own, closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw)
        try:
            yield new_phone(browser, locale=locale, geolocation=geolocation, clock_at=clock_at)
        finally:
            browser.close()


def sign_in_on_phone(page: Any, base: str, api_key: str, path: str = "/app") -> None:
    """Open ``path`` and sign in with ``api_key`` by a tap, as a grid worker does."""
    page.goto(f"{base}{path}")
    page.fill("input[name=api_key]", api_key)
    page.locator("button[type=submit]").tap()
    page.wait_for_url(f"{base}{path}")


# --- layout checks by bounding boxes (phone pages: nothing cut, nothing covering another) ---


def box_of(page: Any, selector: str) -> dict[str, float]:
    """The first match's bounding box (CSS px); fails when it is not shown."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two boxes share more than half a pixel each way."""
    return not (
        a["x"] + a["width"] <= b["x"] + 0.5
        or b["x"] + b["width"] <= a["x"] + 0.5
        or a["y"] + a["height"] <= b["y"] + 0.5
        or b["y"] + b["height"] <= a["y"] + 0.5
    )


def box_inside(box: dict[str, float], size: tuple[int, int]) -> bool:
    """Whether the box lies wholly inside a viewport of ``size`` (half a pixel of slack)."""
    return (
        box["x"] >= -0.5
        and box["y"] >= -0.5
        and box["x"] + box["width"] <= size[0] + 0.5
        and box["y"] + box["height"] <= size[1] + 0.5
    )


# --- words on screen (a page in Chinese keeps no English word) ---

# the words on screen, visible ones only (text nodes, labels of controls, alt texts)
VISIBLE_WORDS = """() => {
  const words = [];
  const shown = (el) => el && el.checkVisibility() &&
    !el.closest('script, style, .leaflet-control-attribution, .lang-switch');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (shown(node.parentElement) && node.textContent.trim()) words.push(node.textContent.trim());
  }
  for (const el of document.querySelectorAll('[aria-label], [title], img[alt], [placeholder]')) {
    if (!shown(el)) continue;
    for (const a of ['aria-label', 'title', 'alt', 'placeholder']) {
      if (el.getAttribute(a)) words.push(el.getAttribute(a));
    }
  }
  for (const option of document.querySelectorAll('select option')) {
    if (shown(option.parentElement)) words.push(option.textContent.trim());
  }
  return words;
}"""


def english_left(texts: list[str], allowed: list[str]) -> list[str]:
    """The texts that still hold a Latin word once the allowed values are taken out."""
    left = []
    for shown in texts:
        for value in sorted(allowed, key=len, reverse=True):
            shown = shown.replace(value, "")
        if re.search(r"[A-Za-z]{2,}", shown):
            left.append(shown)
    return left
