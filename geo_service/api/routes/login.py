"""``/login`` and ``/logout``: let a person in a browser use the map pages.

Browsers cannot send an X-API-Key header when following a link, so a person signs in once with
their key and gets a cookie holding a random, revocable session id (never the key itself):
HttpOnly, SameSite=Strict, ``Secure`` over HTTPS. Writes from the pages ride that cookie with
the session's CSRF token (services/access/web_sessions.py). The form itself carries a login token
that must match a cookie set with the form, and a foreign Origin is refused (login CSRF).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from geo_service.api.deps import COOKIE_NAME, SessionDep, SettingsDep, verify_key
from geo_service.errors import AuthenticationError
from geo_service.i18n import gettext as _
from geo_service.runtime import PrincipalCache
from geo_service.services.access.web_sessions import (
    LOGIN_CSRF_COOKIE,
    check_login_request,
    create_session,
    is_https,
    new_login_token,
    revoke_session,
)
from geo_service.settings import Settings
from geo_service.web.pages import render_page

router = APIRouter(tags=["login"], include_in_schema=False)

LOGIN_TOKEN_TTL_S = 3600


# Where each role lands after signing in when no ``next`` asks for a page: its own page.
ROLE_HOME = {
    "grid_worker": "/app",
    "dispatcher": "/map/dispatch",
    "planner": "/map/planner",
    "analyst": "/map/heatmap",
    "admin": "/map",
}


def _safe_next(target: str) -> str:
    """A local path to go to after signing in; "" (the role's own page) for none or another
    site's."""
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if ok else ""


def home_page(role: str) -> str:
    """The page a role starts on (``ROLE_HOME``; the city map for any other)."""
    return ROLE_HOME.get(role, "/map")


def _secure(request: Request, settings: Settings) -> bool:
    return is_https(
        request.url.scheme,
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-proto"),
        settings.api.trusted_proxies,
    )


def _form(
    request: Request, settings: Settings, *, next_page: str, error: str = "", status: int = 200
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_token()
    target = _safe_next(next_page)
    body = render_page(
        "login.html",
        error=error,
        next=target,
        login_token=token,
        # the language switch keeps the target
        keep_query=urlencode({"next": target}) + "&" if target else "",
    )
    response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=LOGIN_TOKEN_TTL_S,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep, next: str = "") -> HTMLResponse:  # noqa: A002
    """The sign-in form (and the login token cookie its POST must echo)."""
    return _form(request, settings, next_page=next)


# Pages, not API operations (left out of the OpenAPI document): each answers HTML or a 303.
@router.post("/login", response_model=None)
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form()],
    next: Annotated[str, Form()] = "",  # noqa: A002
    login_token: Annotated[str, Form()] = "",
) -> RedirectResponse | HTMLResponse:
    """Check the form came from this site and the key is valid, open a browser session, and
    go back to the page that was asked for (``next``), else to the role's own page
    (``ROLE_HOME``: a grid worker's phone page, the dispatcher's console, the planner's map,
    the analyst's heatmap); 403 problem for a cross-site post."""
    check_login_request(
        cookie_token=request.cookies.get(LOGIN_CSRF_COOKIE),
        form_token=login_token,
        origin=request.headers.get("origin") or request.headers.get("referer"),
        host_url=str(request.base_url),
    )
    try:
        # counted and logged under the failed-credentials limit (429 while locked out)
        principal = verify_key(request, session, api_key.strip())
    except AuthenticationError:
        return _form(
            request, settings, next_page=next, error=_("That key is not valid."), status=401
        )
    session_id, _csrf = create_session(session, principal, ttl_s=settings.auth.session_ttl_s)
    response = RedirectResponse(_safe_next(next) or home_page(principal.role), status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        session_id,
        max_age=settings.auth.session_ttl_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> RedirectResponse:
    """End the browser session on the server (the old cookie stops working) and forget it."""
    session_id = request.cookies.get(COOKIE_NAME)
    if session_id:
        revoke_session(session, session_id)
        PrincipalCache.forget_all()  # this process may have the session cached
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response
