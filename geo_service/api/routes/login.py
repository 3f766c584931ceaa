"""``/login``: let a person in a browser use the map pages with their API key.

Browsers cannot send an X-API-Key header when following a link, so the key is kept in an
HttpOnly, SameSite=Strict cookie, which the API honours for GET requests only (no writes ride
on a cookie, so there is nothing to forge across sites).
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse, RedirectResponse

from geo_service.api.deps import COOKIE_NAME, SessionDep
from geo_service.services.auth import authenticate_key

router = APIRouter(tags=["login"], include_in_schema=False)

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>geo-service: sign in</title>
<style>body{{font:15px sans-serif;max-width:30em;margin:4em auto}}input{{width:100%;
padding:.5em;margin:.5em 0}}button{{padding:.5em 1.5em}}.err{{color:#b00}}</style></head>
<body><h1>geo-service</h1><p>Paste your API key (from <code>make demo</code> or
<code>geo-service users create</code>).</p>{error}
<form method="post" action="/login"><input type="hidden" name="next" value="{next}">
<input type="password" name="api_key" placeholder="gs_..." autofocus>
<button type="submit">Sign in</button></form></body></html>"""


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/map"


@router.get("/login", response_class=HTMLResponse)
def login_page(next: str = "/map") -> HTMLResponse:  # noqa: A002
    """The sign-in form."""
    return HTMLResponse(PAGE.format(error="", next=html.escape(_safe_next(next))))


@router.post("/login", response_model=None)
def login(
    session: SessionDep,
    api_key: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/map",  # noqa: A002
) -> RedirectResponse | HTMLResponse:
    """Check the key and keep it in a cookie; back to the page that was asked for."""
    try:
        authenticate_key(session, api_key.strip())
    except Exception:  # noqa: BLE001 - any failure: show the form again
        body = PAGE.format(
            error='<p class="err">That key is not valid.</p>', next=html.escape(_safe_next(next))
        )
        return HTMLResponse(body, status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE_NAME, api_key.strip(), httponly=True, samesite="strict", max_age=12 * 3600
    )
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    """Forget the key."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME)
    return response
