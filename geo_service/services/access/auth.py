"""Users, API keys and bearer tokens.

An API key looks like ``gs_<prefix>_<secret>``. It is shown once, when it is made; the database
keeps the prefix (to find the key) and the SHA-256 of the secret. Bearer tokens are HS256 JWTs
issued by ``POST /auth/token`` in exchange for a key (OAuth2 client credentials). A token names
the key it was issued for (claim ``kid``: ``api_keys.id``) and dies with it: revoking the key
or disabling the user refuses its tokens at once in this process and within the principal
cache's TTL in others. Tokens of an external identity provider signing with the same secret
carry no ``kid``; they are refused unless ``GEO_JWT_ACCEPT_KEYLESS`` is on, and then end only
at expiry or when the user is disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

from geo_service.db.engine import fetch_one
from geo_service.db.models import ApiKey, Area, User
from geo_service.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    StaleCredentialError,
)
from geo_service.i18n import N_, format_message, gettext
from geo_service.runtime.caches import PrincipalCache
from geo_service.services.access.audit import record_audit
from geo_service.services.boundaries.versions import version_in_force
from geo_service.settings import AuthSettings, DatabaseSettings
from geo_service.vocabulary import ACCOUNT_CHANNELS, ROLES

KEY_PREFIX = "gs"
# How fresh a key's ``last_used_at`` is kept: enough to tell a live key from a forgotten one,
# and no write on most requests of a device that reports every 30 s.
LAST_USED_RESOLUTION = timedelta(minutes=15)


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved from an API key or a bearer token."""

    user_id: int
    name: str
    role: str
    area_code: str | None = None
    responder_id: int | None = None
    key_id: int | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.name} ({self.role})"


def jwt_secret(auth: AuthSettings, database: DatabaseSettings) -> str:
    """The signing key: from settings, or a random one kept beside the embedded cluster."""
    if auth.jwt_secret:
        return auth.jwt_secret
    path = Path(database.data_dir) / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_user(
    session: Session,
    *,
    name: str,
    role: str,
    area_code: str | None,
    actor: str,
    responder_callsign: str | None = None,
    channel: str | None = None,
) -> User:
    """Create a user; a grid worker must be bound to a grid. ``channel`` (``hotline``,
    ``sensor``) is the source the account's Open311 filings carry (None: citizens')."""
    if role not in ROLES:
        raise InvalidInputError(
            format_message("role must be one of {values}", values=", ".join(ROLES))
        )
    if channel is not None and channel not in ACCOUNT_CHANNELS:
        raise InvalidInputError(
            format_message("channel must be one of {values}", values=", ".join(ACCOUNT_CHANNELS))
        )
    if not name or len(name) > 100:
        raise InvalidInputError(gettext("name must be 1 to 100 characters"))
    if session.execute(select(User.id).where(User.name == name)).first():
        raise ConflictError(format_message("user {name!r} already exists", name=name))
    level = None
    if area_code is not None:
        version = version_in_force(session)
        level = session.execute(
            select(Area.level).where(Area.version_id == version, Area.code == area_code)
        ).scalar_one_or_none()
        if level is None:
            raise InvalidInputError(
                format_message(
                    "no area with code {area_code!r} in the current version", area_code=area_code
                )
            )
    if role == "grid_worker" and level != "grid":
        raise InvalidInputError(gettext("a grid_worker must be bound to a grid (--area GRID_CODE)"))
    responder_id = None
    if responder_callsign is not None:
        responder_id = session.execute(
            text("SELECT id FROM responders WHERE callsign = :c"), {"c": responder_callsign}
        ).scalar_one_or_none()
        if responder_id is None:
            raise InvalidInputError(
                format_message(
                    "no responder with callsign {responder_callsign!r}",
                    responder_callsign=responder_callsign,
                )
            )
    user = User(
        name=name, role=role, area_code=area_code, responder_id=responder_id, channel=channel
    )
    session.add(user)
    session.flush()
    _audit(
        session,
        actor,
        "create",
        "user",
        user.id,
        {"name": name, "role": role, "area_code": area_code, "channel": channel},
    )
    return user


def set_channel(session: Session, name: str, channel: str | None, *, actor: str) -> None:
    """Set the intake channel of user ``name`` (``hotline``, ``sensor``; None: citizens');
    audited with the value before and after. Raises NotFoundError for an unknown user."""
    if channel is not None and channel not in ACCOUNT_CHANNELS:
        raise InvalidInputError(
            format_message("channel must be one of {values}", values=", ".join(ACCOUNT_CHANNELS))
        )
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFoundError(format_message("no user named {name!r}", name=name))
    before, user.channel = user.channel, channel
    session.flush()
    _audit(session, actor, "set_channel", "user", user.id, {"before": before, "after": channel})


def create_key(
    session: Session, user: User, *, actor: str, label: str | None = None
) -> tuple[ApiKey, str]:
    """Make a key for ``user``; returns the row and the full key (shown this once)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(user_id=user.id, prefix=prefix, secret_sha256=_hash(secret), label=label)
    session.add(key)
    session.flush()
    _audit(session, actor, "create", "api_key", key.id, {"user": user.name, "prefix": prefix})
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


def revoke_key(session: Session, prefix: str, *, actor: str) -> ApiKey:
    """Revoke a key by its prefix (the part between ``gs_`` and the second ``_``)."""
    key = session.execute(select(ApiKey).where(ApiKey.prefix == prefix)).scalar_one_or_none()
    if key is None:
        raise NotFoundError(format_message("no API key with prefix {prefix!r}", prefix=prefix))
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        _audit(session, actor, "revoke", "api_key", key.id, {"prefix": prefix})
    PrincipalCache.forget_all()
    return key


def list_users(session: Session) -> list[dict[str, Any]]:
    """Users with their number of live keys."""
    rows = (
        session.execute(
            text(
                "SELECT u.id, u.name, u.role, u.area_code, u.channel, u.disabled, u.created_at, "
                "count(k.id) FILTER (WHERE k.revoked_at IS NULL) AS keys "
                "FROM users u LEFT JOIN api_keys k ON k.user_id = u.id GROUP BY u.id ORDER BY u.id"
            )
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]


def _principal(user: User, key_id: int | None = None) -> Principal:
    return Principal(user.id, user.name, user.role, user.area_code, user.responder_id, key_id)


def _key_parts(presented: str) -> tuple[str, str]:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise AuthenticationError(N_("malformed API key"))
    return parts[1], parts[2]


# The key, its user, and the once-a-minute ``last_used_at`` stamp in one statement (the
# stamp only for a key that matches and is live), for the asyncio pool.
_KEY_AND_USER = text(
    """
    WITH k AS (
        SELECT k.id, k.secret_sha256, k.revoked_at, k.last_used_at, u.id AS user_id, u.name,
               u.role, u.area_code, u.responder_id, u.disabled
        FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.prefix = :prefix),
    touched AS (
        UPDATE api_keys a SET last_used_at = now() FROM k
        WHERE a.id = k.id AND k.secret_sha256 = :hash AND k.revoked_at IS NULL
          AND NOT k.disabled
          AND (k.last_used_at IS NULL OR k.last_used_at < now() - CAST(:resolution AS interval))
        RETURNING a.id)
    SELECT k.secret_sha256, k.revoked_at IS NOT NULL OR k.disabled, k.user_id, k.name, k.role,
           k.area_code, k.responder_id, k.id, (SELECT count(*) FROM touched)
    FROM k
    """
)


async def authenticate_key_async(conn: AsyncConnection, presented: str) -> Principal:
    """:func:`authenticate_key` in one round trip on an autocommit connection of the asyncio
    pool: devices that report every 30 s miss the principal cache on every request."""
    prefix, secret = _key_parts(presented)
    hashed = _hash(secret)
    row = await fetch_one(
        conn,
        _KEY_AND_USER,
        {"prefix": prefix, "hash": hashed, "resolution": LAST_USED_RESOLUTION},
        optional=True,
    )
    if row is None or not hmac.compare_digest(row[0], hashed):
        raise AuthenticationError(N_("unknown API key"))
    if row[1]:
        raise StaleCredentialError(N_("this API key has been revoked"))
    return Principal(*row[2:8])


def authenticate_key(session: Session, presented: str) -> Principal:
    """Resolve an API key to its user, or raise AuthenticationError."""
    prefix, secret = _key_parts(presented)
    row = session.execute(
        select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.prefix == prefix)
    ).first()
    if row is None or not hmac.compare_digest(row.ApiKey.secret_sha256, _hash(secret)):
        raise AuthenticationError(N_("unknown API key"))
    key, user = row
    if key.revoked_at is not None or user.disabled:
        raise StaleCredentialError(N_("this API key has been revoked"))
    now = datetime.now(UTC)
    # Recording every use would turn every read into a write; LAST_USED_RESOLUTION says enough.
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        session.commit()
    return _principal(user, key.id)


def issue_token(principal: Principal, secret: str, auth: AuthSettings) -> dict[str, Any]:
    """An OAuth2 bearer token for ``principal``, naming the API key it was issued for."""
    if principal.key_id is None and not auth.jwt_accept_keyless:
        # Such a token could not be verified (it would outlive any revocation): refuse now.
        raise AuthenticationError(N_("a token can only be issued to a caller signed in with a key"))
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(principal.user_id),
        "name": principal.name,
        "role": principal.role,
        "iss": auth.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(seconds=auth.jwt_ttl_s),
    }
    if principal.key_id is not None:
        claims["kid"] = principal.key_id
    return {
        "access_token": jwt.encode(claims, secret, algorithm="HS256"),
        "token_type": "bearer",
        "expires_in": auth.jwt_ttl_s,
    }


def authenticate_token(session: Session, token: str, secret: str, auth: AuthSettings) -> Principal:
    """Verify a bearer token: its key (claim ``kid``) must be live and the user's, and the user
    enabled. A token without ``kid`` passes only with ``auth.jwt_accept_keyless``.
    """
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=auth.jwt_issuer,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise StaleCredentialError(N_("the bearer token has expired")) from None
    except jwt.PyJWTError:
        raise AuthenticationError(N_("invalid bearer token")) from None
    sub, kid = str(claims["sub"]), claims.get("kid")
    if not (sub.isascii() and sub.isdigit()):
        raise AuthenticationError(N_("invalid bearer token"))
    if kid is None:
        if not auth.jwt_accept_keyless:
            raise AuthenticationError(N_("the bearer token names no API key (claim kid)"))
        user = session.get(User, int(sub))
        if user is None or user.disabled:
            raise StaleCredentialError(N_("the bearer token's user no longer exists"))
        return _principal(user)
    # bool is an int in Python: a forged `"kid": true` must not read as key 1
    if type(kid) is not int:
        raise AuthenticationError(N_("invalid bearer token"))
    row = session.execute(
        select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.id == kid)
    ).first()
    if row is None or row.User.id != int(sub):
        raise AuthenticationError(N_("invalid bearer token"))
    key, user = row
    if key.revoked_at is not None or user.disabled:
        raise StaleCredentialError(N_("the bearer token's API key has been revoked"))
    return _principal(user, key.id)


def _audit(
    session: Session, who: str, action: str, entity: str, entity_id: Any, diff: dict[str, Any]
) -> None:
    record_audit(
        session, who=who, action=action, entity=entity, entity_id=str(entity_id), diff=diff
    )
