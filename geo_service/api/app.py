"""``create_app(settings)``: the FastAPI application, its engine built in the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

import geo_service
from geo_service.api.deps import TokenBucket
from geo_service.api.limits import BodySizeLimit, FailedCredentialLimit, HeavyWorkLimit
from geo_service.api.problems import install_problem_handlers
from geo_service.api.routes import (
    areas,
    audit,
    auth,
    batch,
    boundaries,
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
    planning,
    responders,
    tiles,
)
from geo_service.api.schemas import PROBLEM_RESPONSES
from geo_service.db.engine import (
    make_async_engine,
    make_engine,
    make_probe_engine,
    make_sessionmaker,
    resolve_database_url,
)
from geo_service.ingest.uploads import sweep_stale_uploads
from geo_service.services.access.auth import PrincipalCache, jwt_secret
from geo_service.services.batch.jobs import fail_interrupted
from geo_service.services.dispatch.lifecycle import escalate_overdue
from geo_service.services.layers.heatmap import prepare_years
from geo_service.settings import Settings
from geo_service.web.pages import (
    ContentSecurityPolicyMiddleware,
    add_nonce,
    content_security_policy,
    new_nonce,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"


async def escalation_loop(app: FastAPI, interval_s: float) -> None:
    """The in-process escalation scheduler: every ``interval_s``, climb overdue incidents one
    level. Several workers may run it; an advisory lock lets one escalate at a time.
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(_escalate_once, app)
        except Exception:  # noqa: BLE001 - a bad round (database down) must not stop the loop
            log.exception("escalation round failed")


def _escalate_once(app: FastAPI) -> None:
    with app.state.sessionmaker() as session:
        done = escalate_overdue(session, actor="scheduler")
    if done:
        log.info("escalated %d overdue incidents", len(done))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. No connection is made until the app starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The CLI starts the embedded cluster before serving; here we only find its URL.
        url = resolve_database_url(settings.database, start=False)
        engine = make_engine(url, settings.database)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.async_engine = make_async_engine(url, settings.database)
        # uploads left on disk by a process killed mid-import (residents' locations, maybe)
        await run_in_threadpool(sweep_stale_uploads)
        # /health connects on its own (no pool to wait on): it answers while the pool is full
        app.state.probe_engine = make_probe_engine(url)
        try:
            await run_in_threadpool(fail_interrupted, engine)
            await run_in_threadpool(prepare_years, engine)
        except Exception:  # noqa: BLE001 - the database may be down now; serve 503s, not die
            log.warning("start-up upkeep skipped (database unavailable?)")
        interval = settings.dispatch.escalation_interval_s
        scheduler = asyncio.create_task(escalation_loop(app, interval)) if interval > 0 else None
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.cancel()
            await app.state.async_engine.dispose()
            await app.state.probe_engine.dispose()
            engine.dispose()

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
    app.state.principals = PrincipalCache(settings.auth.principal_cache_s)
    app.state.rate_limiter = TokenBucket(settings.limits.requests_per_minute, settings.limits.burst)
    app.state.auth_failures = FailedCredentialLimit(
        settings.limits.auth_failures_per_minute, settings.limits.auth_failure_storage
    )
    app.state.heavy_work = HeavyWorkLimit(
        settings.limits.heavy_per_user, settings.limits.heavy_total
    )
    install_problem_handlers(app)
    # Every HTML page gets a CSP without inline script (issue 13); see web/pages.py.
    app.add_middleware(ContentSecurityPolicyMiddleware, tiles_setting=settings.api.map_tiles)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.limits.body_bytes,
        upload_bytes=settings.limits.upload_bytes,
    )
    for module in (
        health,
        auth,
        login,
        areas,
        incidents,
        responders,
        households,
        heatmap,
        hotspots,
        boundaries,
        imports,
        audit,
        batch,
        maps,
        ogc,
        open311,
        planning,
        tiles,
    ):
        app.include_router(module.router, responses=PROBLEM_RESPONSES)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

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
