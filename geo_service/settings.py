"""Settings, one class per concern, all read from the environment under the ``GEO_`` prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """Where the database is: an external server (``GEO_DATABASE_URL``) or the embedded cluster."""

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of an existing PostGIS server; when set no cluster is started.",
    )
    data_dir: Path = Field(
        default=Path(".geo-service"),
        description="Directory of the embedded PostgreSQL cluster.",
    )
    database_name: str = "geo"
    statement_timeout_ms: int = 30_000
    pool_size: int = 10


class ApiSettings(BaseSettings):
    """HTTP behaviour and hard limits of the API."""

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    max_page_size: int = 1000
    default_page_size: int = 100
    max_bbox_km2: float = 5_000.0
    map_window_days: int = 30
    map_tiles: str = Field(
        default="OpenStreetMap",
        description="Base tiles of the map pages (a folium tiles name or URL), or 'none'.",
    )


class Settings(BaseSettings):
    """All settings of one geo-service process."""

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
