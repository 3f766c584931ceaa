"""The connection pools of one app: built when it starts, disposed of when it stops."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, sessionmaker

from geo_service.db.engine import (
    make_async_engine,
    make_engine,
    make_probe_engine,
    make_sessionmaker,
)
from geo_service.settings import DatabaseSettings


@dataclass(frozen=True)
class Pools:
    """The engines of one app. Building them makes no connection."""

    engine: Engine  # the application's pool: sessions of requests, jobs and upkeep
    sessionmaker: sessionmaker[Session]
    async_engine: AsyncEngine  # hot single-statement reads on the event loop
    probe_engine: AsyncEngine  # /health: a connection of its own, answers while the pool is full

    @classmethod
    def open(cls, url: str, database: DatabaseSettings) -> Pools:
        """The pools for ``url`` with the connection options of ``database``."""
        engine = make_engine(url, database)
        return cls(
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            async_engine=make_async_engine(url, database),
            probe_engine=make_probe_engine(url),
        )

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.async_engine.dispose()
        await self.probe_engine.dispose()
        self.engine.dispose()
