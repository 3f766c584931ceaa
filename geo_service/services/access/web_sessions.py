"""Browser sign-in sessions: a random, revocable id in the cookie instead of the API key.

A person signs in on ``/login`` with their API key; the server opens a session and sets a cookie
holding a random 256-bit id. The database keeps only the id's SHA-256, the user and key it was
opened with, a CSRF token and its expiry. A session ends when it expires, on logout (revoked
here), or as soon as its key is revoked or its user disabled (checked on every lookup).

Writes that ride the cookie must carry the session's CSRF token in ``X-CSRF-Token``
(synchronizer-token pattern); the pages get it in their HTML, where it is useless without the
HttpOnly cookie. The sign-in form itself is protected by a double-submit login token and a
same-origin check (login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import AuthenticationError, PermissionDeniedError, StaleCredentialError
from geo_service.i18n import N_, format_message
from geo_service.services.access.auth import Principal

log = logging.getLogger(__name__)

SESSION_COOKIE = "geo_session"
LOGIN_CSRF_COOKIE = "geo_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_AUTHENTICATE = text(
    "SELECT s.id, s.csrf_token, u.id AS user_id, u.name, u.role, u.area_code, u.responder_id,"
    " k.id AS key_id,"
    " (s.revoked_at IS NULL AND s.expires_at > now() AND k.revoked_at IS NULL"
    "  AND NOT u.disabled) AS live"
    " FROM web_sessions s JOIN users u ON u.id = s.user_id JOIN api_keys k ON k.id = s.key_id"
    " WHERE s.id_sha256 = :h"
)


@dataclass(frozen=True)
class WebSession:
    """A live browser session: who it is, and the token its writes must carry."""

    principal: Principal
    csrf_token: str


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create_session(session: Session, principal: Principal, *, ttl_s: int) -> tuple[str, str]:
    """Open a session for ``principal`` (signed in with key ``principal.key_id``); return the
    cookie value (the only copy of the id) and the session's CSRF token. Commits.
    """
    if principal.key_id is None:
        raise AuthenticationError(N_("a browser session needs an API key"))
    session_id = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    session.execute(
        text(
            "INSERT INTO web_sessions (id_sha256, user_id, key_id, csrf_token, expires_at)"
            " VALUES (:h, :user_id, :key_id, :csrf, :expires)"
        ),
        {
            "h": _digest(session_id),
            "user_id": principal.user_id,
            "key_id": principal.key_id,
            "csrf": csrf_token,
            "expires": datetime.now(UTC) + timedelta(seconds=ttl_s),
        },
    )
    # Rows of sessions long over are no use to anyone: sweep them as new ones open.
    session.execute(
        text(
            "DELETE FROM web_sessions WHERE expires_at < now() - interval '1 day'"
            " OR revoked_at < now() - interval '1 day'"
        )
    )
    session.commit()
    log.info("sign-in: user %s opened a browser session", principal.user_id)
    return session_id, csrf_token


def authenticate_session(session: Session, session_id: str) -> WebSession:
    """The live session behind a cookie value, or AuthenticationError (unknown, expired,
    logged out, its key revoked or its user disabled)."""
    row = session.execute(_AUTHENTICATE, {"h": _digest(session_id)}).mappings().first()
    if row is None:
        raise AuthenticationError(N_("unknown sign-in session; sign in again"))
    if not row["live"]:  # a session that was real once: not a guess (not counted as one)
        raise StaleCredentialError(N_("the sign-in session has ended; sign in again"))
    principal = Principal(
        row["user_id"],
        row["name"],
        row["role"],
        row["area_code"],
        row["responder_id"],
        row["key_id"],
    )
    return WebSession(principal, row["csrf_token"])


def check_csrf(web_session: WebSession, presented: str | None) -> None:
    """A write riding the cookie must carry the session's token (403 problem otherwise)."""
    if not presented or not hmac.compare_digest(presented, web_session.csrf_token):
        log.warning("csrf: cookie write without a valid %s refused", CSRF_HEADER)
        raise PermissionDeniedError(
            format_message(
                "a write from a signed-in page needs the page's {header} header",
                header=CSRF_HEADER,
            )
        )


def csrf_token_for(session: Session, session_id: str | None) -> str:
    """The CSRF token of the live session ``session_id`` ('' without one)."""
    if not session_id:
        return ""
    try:
        return authenticate_session(session, session_id).csrf_token
    except AuthenticationError:
        return ""


def revoke_session(session: Session, session_id: str) -> bool:
    """Log a session out server-side; True when a live session was revoked. Commits."""
    done = session.execute(
        text(
            "UPDATE web_sessions SET revoked_at = now()"
            " WHERE id_sha256 = :h AND revoked_at IS NULL RETURNING user_id"
        ),
        {"h": _digest(session_id)},
    ).first()
    session.commit()
    if done is not None:
        log.info("sign-out: user %s closed a browser session", done.user_id)
    return done is not None


def new_login_token() -> str:
    """A login CSRF token: set in a cookie by ``GET /login`` and echoed by its form."""
    return secrets.token_urlsafe(24)


def check_login_request(
    *, cookie_token: str | None, form_token: str | None, origin: str | None, host_url: str
) -> None:
    """Refuse a sign-in POST that did not come from our own form (login CSRF): the form's
    token must match the cookie set with it (double submit; SameSite=Strict keeps the cookie
    off cross-site posts), and an Origin (or else Referer) header, when sent, must be ours.
    """
    if origin and _origin(origin) != _origin(host_url):
        log.warning("login csrf: sign-in POST from foreign origin %r refused", origin[:200])
        raise PermissionDeniedError(N_("sign in from this site's own form"))
    if (
        not cookie_token
        or not form_token
        or not hmac.compare_digest(cookie_token.encode(), form_token.encode())
    ):
        log.warning("login csrf: sign-in POST without a matching login token refused")
        raise PermissionDeniedError(N_("the sign-in form has expired; reload it and try again"))


def _origin(url: str) -> str:
    # Host and port only: behind a TLS-terminating proxy the app may see http for https.
    return urlsplit(url).netloc.lower()


def is_https(
    scheme: str, client_host: str | None, forwarded_proto: str | None, trusted_proxies: list[str]
) -> bool:
    """Whether the browser reached us over HTTPS: the request's own scheme, or the
    X-Forwarded-Proto of a proxy we trust."""
    if scheme == "https":
        return True
    if forwarded_proto and client_host in trusted_proxies:
        return forwarded_proto.split(",")[0].strip().lower() == "https"
    return False
