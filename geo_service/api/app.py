"""``create_app(settings)``: the FastAPI application; its runtime (pools, caches, limiters, job
thread, escalation loop) is built in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from brotli_asgi import BrotliMiddleware
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import geo_service
from geo_service.api.http import (
    ConditionalGetMiddleware,
    ForwardedPrefixMiddleware,
    RefusedEncodingsMiddleware,
)
from geo_service.api.limits import BodySizeLimit
from geo_service.api.problems import install_problem_handlers
from geo_service.api.routes import (
    areas,
    audit,
    auth,
    batch,
    boundaries,
    categories,
    console,
    field_app,
    health,
    heatmap,
    hotspots,
    households,
    imports,
    incidents,
    login,
    maps,
    ogc,
    open311,
    photos,
    planning,
    reports,
    responders,
    tiles,
    visits,
)
from geo_service.api.schemas import PROBLEM_RESPONSES
from geo_service.db.engine import resolve_database_url
from geo_service.db.rollups import engine_rollup_zone
from geo_service.i18n import LanguageMiddleware
from geo_service.ingest.uploads import sweep_stale_uploads
from geo_service.runtime import Runtime, RuntimeMiddleware, current
from geo_service.services.access.auth import jwt_secret
from geo_service.services.batch.jobs import fail_interrupted
from geo_service.services.boundaries.publish import SWITCH_INTERVAL_S, switch_due
from geo_service.services.dispatch.lifecycle import escalate_overdue
from geo_service.services.layers.heatmap import prepare_years
from geo_service.services.reports.weekly import deliver_weekly_if_due
from geo_service.settings import Settings
from geo_service.web.basemaps import image_origins
from geo_service.web.pages import (
    ContentSecurityPolicyMiddleware,
    add_nonce,
    content_security_policy,
    new_nonce,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"


def escalate_once(sessionmaker: sessionmaker[Session]) -> None:
    """One round of the in-process escalation scheduler: climb overdue incidents one level.
    Several workers may run it; an advisory lock lets one escalate at a time."""
    with sessionmaker() as session:
        done = escalate_overdue(session, actor="scheduler")
    if done:
        log.info("escalated %d overdue incidents", len(done))


def switch_once(sessionmaker: sessionmaker[Session], engine: Engine) -> None:
    """One round of the switch-over task: publish scheduled boundary versions that are due
    (by the service's clock)."""
    with sessionmaker() as session:
        now = current().clock.now(session)
    done = switch_due(engine, now)
    if done:
        log.warning("switched to scheduled boundary versions %s", [d["version_id"] for d in done])


def weekly_report_once(sessionmaker: sessionmaker[Session], settings: Settings) -> str | None:
    """One round of the weekly-report task: deliver last week's report when it is due (by
    the service's clock) to ``GEO_REPORTS_WEEKLY_DIR`` or ``GEO_REPORTS_WEEKLY_URL``."""
    reports = settings.reports
    with sessionmaker() as session:
        week = deliver_weekly_if_due(
            session,
            now=current().clock.now(session),
            tz=settings.api.timezone,
            level=reports.weekly_level,
            out_dir=reports.weekly_dir,
            post_url=None if reports.weekly_dir else reports.weekly_url,
            font=reports.font,
        )
    if week:
        log.info("delivered the weekly report of the week of %s", week)
    return week


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. No connection is made until the app starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Pools, caches, limiters, the job thread and the escalation loop: one object, bound to
        # every request by RuntimeMiddleware (services reach it through runtime.current()).
        runtime = Runtime(settings)
        app.state.runtime = runtime
        # The CLI starts the embedded cluster before serving; here we only find its URL (read
        # from the data directory: in a worker thread, like all start-up file and database I/O).
        url = await run_in_threadpool(resolve_database_url, settings.database, start=False)
        pools = runtime.open_pools(url)
        # the names routes use; /health's probe engine connects on its own (no pool to wait
        # on): it answers while the pool is full
        app.state.engine = pools.engine
        app.state.sessionmaker = pools.sessionmaker
        app.state.async_engine = pools.async_engine
        app.state.probe_engine = pools.probe_engine
        # uploads left on disk by a process killed mid-import (residents' locations, maybe)
        await run_in_threadpool(sweep_stale_uploads)
        try:
            await run_in_threadpool(runtime.call, fail_interrupted, pools.engine)
            await run_in_threadpool(runtime.call, prepare_years, pools.engine)
            built = await run_in_threadpool(engine_rollup_zone, pools.engine)
            if built != settings.api.timezone:
                log.error(
                    "the rollups count days of %s, GEO_TIMEZONE is %s: heatmaps answer 503 "
                    "until `geo-service migrate` rebuilds them",
                    built,
                    settings.api.timezone,
                )
        except Exception:  # noqa: BLE001 - the database may be down now; serve 503s, not die
            log.warning("start-up upkeep skipped (database unavailable?)")
        interval = settings.dispatch.escalation_interval_s
        if interval > 0:
            runtime.start_every("escalation", interval, partial(escalate_once, pools.sessionmaker))
        runtime.start_every(
            "switch-over", SWITCH_INTERVAL_S, partial(switch_once, pools.sessionmaker, pools.engine)
        )
        if settings.reports.weekly_dir or settings.reports.weekly_url:
            runtime.start_every(
                "weekly-report",
                settings.reports.weekly_check_interval_s,
                partial(weekly_report_once, pools.sessionmaker, settings),
            )
        try:
            yield
        finally:
            # periodic tasks stop, queued jobs finish and write their rows, then pools close
            await runtime.aclose()

    app = FastAPI(
        title="geo-service",
        version=geo_service.__version__,
        description="Grids, H3 cells, incidents and the city hierarchy for city operations.",
        lifespan=lifespan,
        docs_url=None,  # served below with local assets: operations networks may be offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.jwt_secret = jwt_secret(settings.auth, settings.database)
    install_problem_handlers(app)
    # Innermost first (Starlette wraps each new middleware around the ones before): ETags are
    # computed on the identity body, inside compression; CORS answers preflights outermost.
    app.add_middleware(ConditionalGetMiddleware)
    # Every HTML page gets a CSP without inline script (issue 13); see web/pages.py.
    app.add_middleware(
        ContentSecurityPolicyMiddleware,
        tiles_setting=settings.api.map_tiles,
        extra_image_origins=image_origins(settings.maps, settings.api.map_tiles),
    )
    # The language of each request (?lang= switch, cookie, Accept-Language, GEO_LOCALE).
    app.add_middleware(LanguageMiddleware, default=settings.api.locale)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.limits.body_bytes,
        upload_bytes=settings.limits.upload_bytes,
        # a photo and its multipart envelope (the route checks the photo's own size)
        photo_bytes=settings.photos.max_bytes + 64_000,
    )
    app.add_middleware(RuntimeMiddleware)
    if settings.api.compress:
        # br where the client accepts it, else gzip; bodies under 500 bytes stay as they are
        # ... except the console's event stream: gzip would hold events back in its buffer
        app.add_middleware(
            BrotliMiddleware,
            minimum_size=500,
            quality=4,
            gzip_fallback=True,
            excluded_handlers=[r"/console/stream$"],
        )
        app.add_middleware(RefusedEncodingsMiddleware)  # outside it: it reads the cleaned header
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_credentials=False,  # bearer tokens and API keys only: no cookies cross-site
            allow_methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "Accept",
                "Accept-Language",
                "If-None-Match",
                "Idempotency-Key",
            ],
            expose_headers=[
                "ETag",
                "Link",
                "Content-Crs",
                "Retry-After",
                "Location",
                "X-Tile-Truncated",
            ],
            max_age=600,
        )
    app.add_middleware(ForwardedPrefixMiddleware, trusted=settings.api.trusted_proxies)
    for module in (
        health,
        auth,
        login,
        areas,
        photos,  # before incidents: /incidents/{id}/photos is not an action
        incidents,
        categories,
        console,
        responders,
        visits,  # before households: /households/visits is not a household id
        households,
        heatmap,
        hotspots,
        boundaries,
        imports,
        audit,
        batch,
        maps,
        field_app,
        ogc,
        open311,
        planning,
        reports,
        tiles,
    ):
        app.include_router(module.router, responses=PROBLEM_RESPONSES)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    def read_favicon() -> FileResponse:
        """The pages' icon (the phone page's), where browsers look for it without a link."""
        return FileResponse(
            STATIC_DIR / "pages" / "field_app_icon_192.png",
            media_type="image/png",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @app.get("/docs", include_in_schema=False)
    def read_docs() -> HTMLResponse:
        """Swagger UI from the package's own copy (no CDN); its inline start-up script runs
        under a per-response CSP nonce."""
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="geo-service API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/vendor/swagger-ui/favicon-32x32.png",
        )
        nonce = new_nonce()
        return HTMLResponse(
            add_nonce(bytes(page.body).decode(), nonce),
            headers={
                "Content-Security-Policy": content_security_policy(settings.api.map_tiles, nonce)
            },
        )

    return app
