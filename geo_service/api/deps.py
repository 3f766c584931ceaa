"""Request dependencies: one session per request, settings, the caller and their scope.

The credentials cache and the limiters are the app's runtime's (``app.state.runtime``,
``geo_service/runtime``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Any, Literal, TypeVar, overload

import jwt
from fastapi import Depends, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from geo_service.errors import AuthenticationError, RateLimitedError, StaleCredentialError
from geo_service.i18n import N_, format_message
from geo_service.runtime.limits import retry_seconds
from geo_service.services.access.auth import (
    Principal,
    authenticate_key,
    authenticate_key_async,
    authenticate_token,
)
from geo_service.services.access.scope import Scope, scope_for
from geo_service.services.access.web_sessions import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    authenticate_session,
    check_csrf,
)
from geo_service.services.intake.incidents import require_known_category
from geo_service.settings import Settings

T = TypeVar("T")


def _end(session: Session) -> None:
    session.rollback()
    session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request; rolled back unless the service committed. Opening a session
    does no I/O, so this runs on the event loop; only a session that still holds a connection
    is rolled back in a worker thread.
    """
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(_end, session)
        else:
            session.close()


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` in the
# threadpool, and a thread hop per dependency adds up on small requests.
async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


# The sign-in cookie holds a revocable session id (services/access/web_sessions.py), never a key.
COOKIE_NAME = SESSION_COOKIE


def _credentials(request: Request) -> tuple[str, str] | None:
    key = request.headers.get("x-api-key")
    if key:
        return "key", key.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value:
        value = value.strip()
        # GIS clients often can only send a bearer header: accept an API key there too.
        return ("key", value) if value.startswith("gs_") else ("jwt", value)
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:  # a page's writes ride the cookie too, with its CSRF token (checked below)
        return "session", cookie
    return None


# Declared so that OpenAPI documents both schemes (and /docs offers "Authorize"); the values
# are read from the request below, where a sign-in cookie is also accepted for pages.
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (gs_...)")
BEARER = HTTPBearer(auto_error=False, description="A token from POST /auth/token, or a key")


@overload
def _principal(
    request: Request,
    session: Session,
    *,
    cached_only: Literal[False] = False,
    presented: tuple[str, str] | None = None,
) -> Principal: ...


@overload
def _principal(
    request: Request,
    session: Session | None,
    *,
    cached_only: Literal[True],
    presented: tuple[str, str] | None = None,
) -> Principal | None: ...


def _principal(
    request: Request,
    session: Session | None,
    *,
    cached_only: bool = False,
    presented: tuple[str, str] | None = None,
) -> Principal | None:
    """The caller from the credentials cache, else (unless ``cached_only``) the database; 401
    without valid credentials, 429 over budget. ``presented``: credentials from elsewhere
    than the headers (Open311 clients send ``api_key`` in the form body).
    """
    found = _credentials(request) or presented
    if found is None:
        raise AuthenticationError(
            N_("send an API key in X-API-Key, or a bearer token in Authorization")
        )
    kind, value = found
    state = request.app.state
    # A write on a session cookie is checked against the database, CSRF token and all.
    needs_csrf = kind == "session" and request.method not in SAFE_METHODS
    runtime = state.runtime
    principal = None if needs_csrf else runtime.principals.get(value)
    if principal is None:
        if cached_only or session is None:
            return None
        until = None
        if kind == "session":
            web_session = authenticate_session(session, value)
            if needs_csrf:
                check_csrf(web_session, request.headers.get(CSRF_HEADER))
            principal = web_session.principal
        elif kind == "key":
            principal = authenticate_key(session, value)
        else:
            principal = authenticate_token(session, value, state.jwt_secret, state.settings.auth)
            expires = jwt.decode(value, options={"verify_signature": False})["exp"]
            until = time.monotonic() + (expires - time.time())
        return _remembered_and_limited(request, value, principal, until)
    return _limited(request, principal)


def _remembered_and_limited(
    request: Request, credential: str, principal: Principal, until: float | None = None
) -> Principal:
    request.app.state.runtime.principals.put(credential, principal, until)
    return _limited(request, principal)


def _limited(request: Request, principal: Principal) -> Principal:
    """``principal``, or 429 when over its request budget (its own when the settings name
    one for it: ``limits.user_requests_per_minute``)."""
    runtime = request.app.state.runtime
    limiter = runtime.user_rate_limiters.get(principal.name, runtime.rate_limiter)
    wait = limiter.take(f"user:{principal.user_id}")
    if wait > 0:
        seconds = retry_seconds(wait)  # the body says what the Retry-After header says
        raise RateLimitedError(
            format_message("rate limit exceeded; retry in {seconds} s", seconds=seconds),
            retry_after=seconds,
        )
    return principal


def _in_own_session(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(session, *args)`` in a short session of its own (run in a worker thread)."""
    with request.app.state.sessionmaker() as session:
        return fn(session, *args)


# The caller and its scope take no session of the request's: a credential verified in the
# last seconds costs no I/O and no session at all, which is most requests of a polling map.
async def get_principal(
    request: Request,
    _key: Annotated[str | None, Security(API_KEY_HEADER)] = None,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> Principal:
    """The authenticated caller (401 problem without valid credentials; 429 over budget).
    A credential verified in the last seconds is answered on the event loop, without I/O.
    """
    cached = _principal(request, None, cached_only=True)
    if cached is not None:
        return cached
    found = _credentials(request)
    if found is not None and found[0] == "key":
        # An API key is checked on the event loop in one statement: devices reporting every
        # 30 s miss the cache on every request, and a thread hop and a session cost more
        # than the lookup.
        with _failures_counted(request, found):
            async with request.app.state.async_engine.connect() as conn:
                principal = await authenticate_key_async(conn, found[1])
            return _remembered_and_limited(request, found[1], principal)
    return await run_in_threadpool(_in_own_session, request, _verified, request)


def _verified(session: Session, request: Request) -> Principal:
    return _checked_principal(request, session)


def client_address(request: Request) -> str:
    """The peer's address: what failed credentials are counted by. Behind a reverse proxy, run
    uvicorn with ``--forwarded-allow-ips`` so that this is the client's, not the proxy's.
    """
    return request.client.host if request.client else "unknown"


@contextmanager
def _failures_counted(request: Request, found: tuple[str, str] | None) -> Iterator[None]:
    """Check credentials under the failed-credentials limit of the client's address: 429 while
    it is locked out (unless the credential was verified recently), and every failure logged
    and, unless it is a stale credential rather than a guess, counted.
    """
    if found is None:  # nothing presented: a 401, but not a failed guess
        yield
        return
    runtime = request.app.state.runtime
    address = client_address(request)
    if runtime.principals.get(found[1]) is None:
        runtime.auth_failures.check(address)
    try:
        yield
    except AuthenticationError as exc:
        stale = isinstance(exc, StaleCredentialError)
        runtime.auth_failures.record(address, *found, exc.detail, counted=not stale)
        raise


def _checked_principal(
    request: Request, session: Session, *, presented: tuple[str, str] | None = None
) -> Principal:
    with _failures_counted(request, _credentials(request) or presented):
        return _principal(request, session, presented=presented)


def verify_key(request: Request, session: Session, key: str) -> Principal:
    """An API key presented to a sign-in endpoint (``POST /auth/token``, ``/login``), checked
    under the same failed-credentials limit as every other credential."""
    with _failures_counted(request, ("key", key)):
        return authenticate_key(session, key)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_scope(request: Request, principal: PrincipalDep) -> Scope:
    """The caller's jurisdiction (city-wide roles need no lookup)."""
    if principal.area_code is None:
        return Scope(principal)
    return await run_in_threadpool(_in_own_session, request, scope_for, principal)


def require(permission: str) -> Callable[..., Awaitable[Scope]]:
    """A dependency that checks the role grants ``permission`` and returns the scope."""

    async def dependency(scope: Annotated[Scope, Depends(get_scope)]) -> Scope:
        scope.require(permission)
        return scope

    dependency.__name__ = f"require_{permission.replace(':', '_').replace('-', '_')}"
    return dependency


def optional_public_scope(request: Request, session: SessionDep) -> Scope | None:
    """For public aggregate layers: the caller's scope, or None for an anonymous caller when
    ``GEO_PUBLIC_LAYERS`` is on (401 otherwise).
    """
    if _credentials(request) is None and request.app.state.settings.auth.public_layers:
        return None
    scope = scope_for(session, _checked_principal(request, session))
    scope.require("layers:read")
    return scope


def optional_open311_scope(request: Request, session: SessionDep) -> Scope | None:
    """For Open311 reads: the caller's scope (``incidents:read``), or None for a caller with no
    key when ``GEO_OPEN311_PUBLIC_READ`` is on (every read-only GeoReport client sends none;
    public fields only). 401 otherwise.
    """
    if _credentials(request) is None and request.app.state.settings.auth.open311_public_read:
        return None
    scope = scope_for(session, _checked_principal(request, session))
    scope.require("incidents:read")
    return scope


ScopeDep = Annotated[Scope, Depends(get_scope)]
PublicScopeDep = Annotated[Scope | None, Depends(optional_public_scope)]


async def get_actor(principal: PrincipalDep) -> str:
    """How the audit log names the caller."""
    return principal.actor


ActorDep = Annotated[str, Depends(get_actor)]


def scope_for_key(request: Request, session: Session, api_key: str | None) -> Scope:
    """The caller's scope from the headers, or else from an ``api_key`` a client sent in the
    request body (Open311); 401 without either."""
    presented = ("key", api_key.strip()) if api_key else None
    return scope_for(session, _checked_principal(request, session, presented=presented))


def heavy_slot(request: Request, principal: Principal) -> AbstractContextManager[None]:
    """One of the caller's slots for expensive work (429 when the caller holds all theirs, 503
    when the process runs as much expensive work as it may)."""
    return request.app.state.runtime.heavy_work.slot(f"user:{principal.user_id}")


async def limit_heavy_work(request: Request, principal: PrincipalDep) -> AsyncIterator[None]:
    """Hold an expensive-work slot for the whole request: hot spots, workload, proposals,
    batch runs, exports, large maps. Routes add it as ``dependencies=[HEAVY]``."""
    with heavy_slot(request, principal):
        yield


HEAVY = Depends(limit_heavy_work)


async def known_category(
    session: SessionDep,
    category: Annotated[
        str | None,
        Query(
            max_length=64,
            description="one category code; an unknown one is a 422 naming the known ones",
        ),
    ] = None,
) -> str | None:
    """The ``category`` filter of a list or layer, refused when the taxonomy never had it (a
    typo is a 422 naming the known codes, not an empty answer); no query without one."""
    if category is not None:
        await run_in_threadpool(require_known_category, session, category)
    return category


KnownCategory = Annotated[str | None, Depends(known_category)]
