"""Request dependencies: one database session per request, settings, the acting user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from geo_service.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; rolled back unless the service committed."""
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    return request.app.state.settings


def get_actor(request: Request) -> str:
    """Who is acting. Until authentication lands (issue 4) writes are attributed to the
    client address, so the audit log is never empty of a who.
    """
    client = request.client.host if request.client else "unknown"
    return f"anonymous@{client}"


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ActorDep = Annotated[str, Depends(get_actor)]
