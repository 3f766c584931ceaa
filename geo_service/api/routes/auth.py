"""``POST /auth/token``: exchange an API key for a short-lived bearer token (OAuth2)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request

from geo_service.api.deps import SessionDep, verify_key
from geo_service.api.schemas.access import TokenPublic
from geo_service.errors import AuthenticationError
from geo_service.i18n import gettext
from geo_service.services.access.auth import issue_token

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/token", response_model=TokenPublic, response_description="a bearer token")
def create_token(
    request: Request,
    session: SessionDep,
    grant_type: Annotated[Literal["client_credentials"], Form()] = "client_credentials",
    client_secret: Annotated[str | None, Form(description="an API key")] = None,
) -> dict[str, Any]:
    """OAuth2 client-credentials grant: the API key (form field ``client_secret`` or header
    ``X-API-Key``) in, a bearer token out. The token names the key (claim ``kid``) and is
    refused once the key is revoked. Wrong keys count against the client address's
    failed-credentials limit (429 past it).
    """
    key = client_secret or request.headers.get("x-api-key")
    if not key:
        raise AuthenticationError(gettext("send the API key as client_secret or in X-API-Key"))
    principal = verify_key(request, session, key.strip())
    state = request.app.state
    return issue_token(principal, state.jwt_secret, state.settings.auth)
