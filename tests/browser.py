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
