"""Settings, one class per concern, all read from the environment under the ``GEO_`` prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class DatabaseSettings(BaseSettings):
    """Where the database is: an external server (``GEO_DATABASE_URL``) or the embedded cluster.

    The API and CLI connect as the application role (``GEO_DATABASE_URL``); migrations run as
    the owner of the schema (``GEO_DATABASE_OWNER_URL``). On the embedded cluster both come
    from its credentials file.
    """

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL the API and CLI connect with (the application role) on an "
        "existing PostGIS server; when set no cluster is started.",
    )
    database_owner_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL migrations run with (the role owning the schema); default: "
        "GEO_DATABASE_URL when that is set, else the embedded cluster's owner role.",
    )
    database_purge_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the audit retention purge role (`geo-service db "
        "purge-audit`); default: the embedded cluster's purge role.",
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
    map_window_days: int = 30
    tile_max_points: int = Field(
        default=5000,
        ge=1,
        description="Most incident points in one vector tile (about 75 bytes each): over it a "
        "tile keeps the highest priority, then newest, and says so (X-Tile-Truncated).",
    )
    map_tiles: str = Field(
        default="OpenStreetMap",
        description="Base tiles of the map pages (a folium tiles name or URL), or 'none'.",
    )
    trusted_proxies: list[str] = Field(
        default=["127.0.0.1", "::1"],
        description="Addresses whose X-Forwarded-Proto, -Host and -Prefix are believed (links, "
        "sign-in cookie `Secure`).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Origins (https://maps.example.org) whose pages may call the API from a "
        "browser (CORS); none by default. '*' allows any origin (no cookies are ever shared).",
    )
    compress: bool = Field(
        default=True, description="br / gzip compression of responses of 500 bytes and more"
    )
    timezone: str = Field(
        default="Asia/Shanghai",
        description="The deployment's IANA time zone: what a calendar day, ISO week, month, "
        "quarter and year are (heatmap rollups and windows, emerging hot spot bins, batch "
        "runs, page labels), and the zone of dates and naive times clients and imports send. "
        "Changing it: `geo-service migrate` rebuilds the rollups.",
    )
    locale: str = Field(
        default="en",
        description="The deployment's default language (GEO_LOCALE: en or zh_CN / zh-CN) for "
        "pages, problem details and the CLI when the browser's switch and Accept-Language "
        "name none served (geo_service/i18n.py).",
    )
    ogc_layer_cache: bool = Field(
        default=True,
        description="OGC API - Features: compute a heatmap, hot spot or emerging layer once "
        "per parameter set and serve its pages from that result for a minute (off: every "
        "page recomputes it).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """An IANA zone name that this machine's tz database knows."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"GEO_TIMEZONE {value!r} is not an IANA time zone") from None
        return value

    @field_validator("locale")
    @classmethod
    def _served_language(cls, value: str) -> str:
        """``en`` or ``zh-CN`` (any spelling of English or Simplified Chinese)."""
        from geo_service.i18n import supported

        language = supported(value)
        if language is None:
            raise ValueError(f"GEO_LOCALE {value!r} is not a served language (en, zh_CN)")
        return language

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """GEO_CORS_ORIGINS as ``https://a.org,https://b.org`` (or a JSON list)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [v.strip().rstrip("/") for v in text.split(",") if v.strip()]
        return value


# The base maps of the pages (web/basemaps.py), by the names GEO_MAP_BASEMAP(S) take.
BASEMAP_IDS = ("configured", "osm", "tianditu-vec", "tianditu-img", "amap", "tencent", "none")


class MapSettings(BaseSettings):
    """Base maps of the map pages (issue 19): which are offered, the default, provider keys."""

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")

    tianditu_key: str = Field(
        default="",
        description="Tianditu (天地图) key, a browser-side key from console.tianditu.gov.cn: "
        "it goes into the pages' tile URLs. Without it the Tianditu base maps are shown "
        "disabled, saying why.",
    )
    # The map approval numbers (审图号) China's map rules require on a published map, as each
    # provider shows them under its own maps (Tianditu's pages and JS API v4; Amap's JS API
    # 2.0 copyright line; Tencent's JS API loader, mapApprovalNumber.vector). They change
    # when a provider's maps are reviewed again: a deployment sets the current one here.
    tianditu_approval: str = Field(
        default="GS(2024)0568号",
        max_length=64,
        description="Tianditu's map approval number (审图号), shown under its base maps",
    )
    amap_approval: str = Field(
        default="GS(2025)5996号",
        max_length=64,
        description="Amap/Gaode's map approval number (审图号), shown under its base map",
    )
    tencent_approval: str = Field(
        default="GS(2026)1190号",
        max_length=64,
        description="Tencent Maps' map approval number (审图号), shown under its base map",
    )
    map_tiles_crs: Literal["wgs84", "gcj02"] = Field(
        default="wgs84",
        description="The datum of the tiles in GEO_MAP_TILES: gcj02 for a server of Amap/"
        "Tencent-style tiles (an offline mirror), so the pages shift what they draw onto them.",
    )
    map_basemaps: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Base maps the pages offer, in order, comma-separated, from configured "
        "(GEO_MAP_TILES), osm, tianditu-vec, tianditu-img, amap, tencent, none; default all "
        "(an offline network lists only what it can reach).",
    )
    map_basemap: str = Field(
        default="",
        description="The base map a page starts on until a user picks another (kept in their "
        "browser); default GEO_MAP_TILES's ('none' when it is none).",
    )

    @field_validator("map_basemaps", mode="before")
    @classmethod
    def _basemap_list(cls, value: object) -> object:
        """GEO_MAP_BASEMAPS as ``osm,amap`` (or a JSON list)."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [v.strip().lower() for v in text.split(",") if v.strip()]
        return value

    @field_validator("map_basemaps")
    @classmethod
    def _known_basemaps(cls, value: list[str]) -> list[str]:
        """Only the base maps the pages know."""
        unknown = [v for v in value if v not in BASEMAP_IDS]
        if unknown:
            raise ValueError(
                f"GEO_MAP_BASEMAPS: unknown {', '.join(unknown)}; use {', '.join(BASEMAP_IDS)}"
            )
        return value


class AuthSettings(BaseSettings):
    """Authentication, privacy thresholds and public access."""

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")

    jwt_secret: str | None = Field(
        default=None,
        description="HS256 key for bearer tokens; default: a random key kept in the data dir.",
    )
    jwt_ttl_s: int = 3600
    principal_cache_s: float = Field(
        default=5.0,
        description="Seconds a verified key or token is remembered per process (0: off); "
        "a revocation made in another process takes effect within this time.",
    )
    jwt_issuer: str = "geo-service"
    jwt_accept_keyless: bool = Field(
        default=False,
        description="Accept bearer tokens without a `kid` claim (from an external identity "
        "provider signing with GEO_JWT_SECRET); they end only at expiry or when the user is "
        "disabled. Off: every token must name the API key it was issued for.",
    )
    session_ttl_s: int = Field(
        default=12 * 3600, description="Lifetime of a browser sign-in session (cookie and row)."
    )
    public_layers: bool = Field(
        default=False, description="Serve aggregate layers without credentials (H3 res <= 8)."
    )
    open311_public_read: bool = Field(
        default=False,
        description="Open311 GET requests without a key: public fields only (no description, "
        "address, photo or handling area; lat/long to ~100 m).",
    )
    open311_jurisdiction: str | None = Field(
        default=None,
        description="The Open311 jurisdiction_id this endpoint serves (e.g. wuhan.gov.cn); "
        "another one answers 404. Unset: jurisdiction_id is accepted and ignored.",
    )
    min_cell_count: int = Field(
        default=5,
        description="Disclosure-control base B: counts of households/residents/units are "
        "randomly rounded (cell-key method) to multiples of B; a set rounding to 0 is hidden.",
    )
    public_max_h3_res: int = 8


class LimitSettings(BaseSettings):
    """Hard edges of the API: sizes, counts and rates."""

    model_config = SettingsConfigDict(env_prefix="GEO_LIMIT_", extra="ignore")

    body_bytes: int = 1_000_000
    upload_bytes: int = 500_000_000
    vertices_per_geometry: int = 50_000
    features_per_upload: int = 5_000_000
    upload_uncompressed_bytes: int = Field(
        default=2_000_000_000,
        description="Bytes an upload may unpack to (gzip, zip members, GeoParquet row groups), "
        "counted while reading.",
    )
    upload_compression_ratio: float = Field(
        default=100.0,
        description="Most an upload may expand when unpacked (past 1 MB): a decompression bomb "
        "is refused after a few MB instead of being parsed whole.",
    )
    bbox_km2: float = 5_000.0
    requests_per_minute: int = 1200
    burst: int = 200
    user_requests_per_minute: dict[str, PositiveInt] = Field(
        default_factory=dict,
        description="Request budgets of named users instead of requests_per_minute (JSON, "
        'e.g. {"demo-simulator": 6000}): an account that stands for a device fleet; each may '
        "spend a whole minute's budget at once (its burst).",
    )
    auth_failures_per_minute: int = Field(
        default=10,
        description="Failed credential checks allowed per client address in a moving minute; "
        "past it the address gets 429 for credentials not verified recently (0: no limit).",
    )
    auth_failure_storage: str = Field(
        default="memory://",
        description="Where failures are counted (a `limits` storage URI; memory: per process).",
    )
    heavy_per_user: int = Field(
        default=2,
        description="Expensive requests (hot spots, workload, ...) one user may run at once.",
    )
    heavy_total: int = Field(
        default=4,
        description="Expensive requests running at once in the process; keep it below "
        "GEO_POOL_SIZE so that dispatch and /health keep connections.",
    )


class DispatchSettings(BaseSettings):
    """Live responders, escalation and duplicate detection."""

    model_config = SettingsConfigDict(env_prefix="GEO_DISPATCH_", extra="ignore")

    stale_position_s: int = Field(
        default=300, description="A position older than this is stale: not offered as nearest."
    )
    escalation_interval_s: float = Field(
        default=30.0, description="How often the in-process scheduler escalates (0: off)."
    )
    duplicate_radius_m: float = 50.0
    duplicate_window_s: int = 1800
    walking_speed_mps: float = Field(
        default=1.4, description="Speed of the leg between a point and the road network."
    )


class SimulateSettings(BaseSettings):
    """The living city's simulator (``geo-service simulate``, ``geo-service demo``): a client of
    the API, so not part of a server's ``Settings``."""

    model_config = SettingsConfigDict(env_prefix="GEO_SIMULATE_", extra="ignore")

    human_grace_s: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        description="Simulated seconds the simulator leaves a new or reopened report alone, so "
        "that a person at the console can dispatch it first (0: at once).",
    )


class ReportSettings(BaseSettings):
    """The managers' reports: the PDF's font and the weekly report the server writes."""

    model_config = SettingsConfigDict(env_prefix="GEO_REPORTS_", extra="ignore")

    font: str | None = Field(
        default=None,
        description="A TrueType font holding Chinese for the PDF (default: the first of "
        "Debian's WenQuanYi / AR PL fonts installed).",
    )
    weekly_dir: str | None = Field(
        default=None,
        description="The server writes last week's report (PDF, XLSX, CSV, JSON) here every "
        "Monday after 00:00 local time; unset: no weekly report.",
    )
    weekly_url: str | None = Field(
        default=None,
        description="... or POSTs it (multipart: the four files) to this http(s) URL.",
    )
    weekly_level: str = Field(
        default="district", description="The level of the areas of the weekly report."
    )
    weekly_check_interval_s: float = Field(
        default=300.0, description="How often the server looks whether a weekly report is due."
    )


class PhotoSettings(BaseSettings):
    """Incident photos (issue 20): limits, thumbnails and where the files are kept.

    ``local`` (the embedded default) keeps them under ``GEO_PHOTOS_DIR`` (default
    ``$GEO_DATA_DIR/photos``); ``s3`` keeps them in an S3-compatible bucket (AWS S3, MinIO,
    Ceph RGW, Aliyun OSS in S3 mode) through boto3, with the usual AWS credential chain.
    """

    model_config = SettingsConfigDict(env_prefix="GEO_PHOTOS_", extra="ignore")

    storage: Literal["local", "s3"] = "local"
    dir: Path | None = Field(default=None, description="local store; default $GEO_DATA_DIR/photos")
    max_bytes: int = Field(default=10_000_000, ge=1, description="largest photo accepted")
    max_pixels: int = Field(
        default=40_000_000, ge=1, description="largest image (width x height) decoded"
    )
    thumbnail_px: int = Field(default=320, ge=16, le=2048, description="thumbnail's longer side")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = Field(default=None, description="e.g. http://minio:9000")
    s3_prefix: str = "photos/"


class VisitSettings(BaseSettings):
    """Household visits (issue 20): a household not visited within ``period_days`` is listed
    as due, and coverage per grid counts the households visited within it."""

    model_config = SettingsConfigDict(env_prefix="GEO_VISITS_", extra="ignore")

    period_days: int = Field(default=90, ge=1, le=3660)


class Settings(BaseSettings):
    """All settings of one geo-service process."""

    model_config = SettingsConfigDict(env_prefix="GEO_", extra="ignore")

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    photos: PhotoSettings = Field(default_factory=PhotoSettings)
    visits: VisitSettings = Field(default_factory=VisitSettings)
    maps: MapSettings = Field(default_factory=MapSettings)
