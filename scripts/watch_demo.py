"""Watch a running ``make demo`` for an hour, as a dispatcher would (issue 17): does it still
offer candidates, does it escalate only what is really late, does the console show it?

Every ``--every`` minutes (5) for ``--minutes`` (60): the nearest responders at five random
grids (how many offered, and the server's reason when none), the console's counts, and every
escalation made since the last round checked against its stage target in the database (an
escalation before the target is a failure). At the end, the dispatcher's console in headless
Chromium, signed in with the key, screenshotted. Writes ``bench/results/demo_watch.json`` and
``bench/results/demo_watch_console.png``; exits 1 when a round found no candidates anywhere or
an early escalation.

    make demo > demo.log &        # then, with the dispatcher key it printed:
    .venv/bin/python scripts/watch_demo.py --key gs_... [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import text

from geo_service.db.engine import make_engine, resolve_database_url
from geo_service.services.intake.incidents import STAGE_TARGET_S
from geo_service.settings import Settings

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"

ESCALATIONS = f"""
    SELECT count(*),
           count(*) FILTER (WHERE a.at < i.reported_at
                            + make_interval(secs => {STAGE_TARGET_S.format(i="i")}))
    FROM audit_log a JOIN incidents i ON i.id::text = a.entity_id
    WHERE a.action = 'escalate' AND a.entity = 'incident' AND a.at > :since
      AND CAST(a.diff->'before'->>'escalation_level' AS int) = 0
"""


def probe(http: httpx.Client, grids: list[tuple[float, float]], rng: random.Random) -> dict:
    """Nearest at five random grids, and the console's counts."""
    offered, why = [], []
    for lon, lat in rng.sample(grids, 5):
        body = http.get("/responders/nearest", params={"lon": lon, "lat": lat, "k": 5}).json()
        offered.append(len(body.get("candidates", [])))
        if not body.get("candidates"):
            why.append(body.get("not_offered") or body.get("why"))
    summary = http.get("/console/summary").json()
    return {
        "offered": offered,
        "why_none": why,
        "open": summary["open"],
        "overdue": summary["overdue"],
    }


def screenshot(base: str, key: str, out: Path) -> list[str]:
    """The console in headless Chromium after signing in; the page's script errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/map/dispatch")
        page.fill("input[name=api_key]", key)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/map/dispatch")
        page.locator("#live.ok").wait_for(timeout=30_000)
        page.wait_for_timeout(3000)
        page.screenshot(path=str(out))
        browser.close()
    return errors


def main() -> int:
    """Watch, write the results, screenshot; 1 when anything failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="a dispatcher's key (make demo prints one)")
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--every", type=float, default=5)
    args = parser.parse_args()
    engine = make_engine(resolve_database_url(Settings().database))
    rng = random.Random(5)
    rounds = []
    failed = False
    with httpx.Client(base_url=args.url, headers={"X-API-Key": args.key}, timeout=60) as http:
        from shapely.geometry import shape

        areas = http.get("/areas", params={"level": "grid"}).json()["features"]
        grids = [shape(f["geometry"]).representative_point().coords[0] for f in areas]
        began = time.monotonic()
        since = datetime.now(UTC)
        while True:
            time.sleep(args.every * 60)
            with engine.connect() as conn:
                escalated, early = conn.execute(text(ESCALATIONS), {"since": since}).one()
            since = datetime.now(UTC)
            row = {
                "minute": round((time.monotonic() - began) / 60, 1),
                **probe(http, grids, rng),
                "escalated": int(escalated),
                "escalated_early": int(early),
            }
            rounds.append(row)
            print(json.dumps(row), flush=True)
            RESULTS.mkdir(parents=True, exist_ok=True)  # kept after each round
            (RESULTS / "demo_watch.json").write_text(
                json.dumps({"watch": "make demo", "rounds": rounds}, indent=2) + "\n"
            )
            failed |= max(row["offered"]) == 0 or row["escalated_early"] > 0
            if time.monotonic() - began >= args.minutes * 60:
                break
    RESULTS.mkdir(parents=True, exist_ok=True)
    errors = screenshot(args.url, args.key, RESULTS / "demo_watch_console.png")
    failed |= bool(errors)
    result = {
        "watch": "make demo",
        "date": datetime.now(UTC).date().isoformat(),
        "rounds": rounds,
        "page_errors": errors,
        "ok": not failed,
    }
    (RESULTS / "demo_watch.json").write_text(json.dumps(result, indent=2) + "\n")
    print("ok" if not failed else "FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
