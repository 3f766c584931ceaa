"""Rendering the HTML pages: Jinja2 templates with autoescape, base tiles, and the page CSP.

Every value a page shows from the database goes through Jinja2's autoescape (or, for the
folium map, is escaped before folium sees it); page scripts are files under ``static/pages``
that read their configuration from ``data-`` attributes, so the Content-Security-Policy can
forbid inline script altogether (``script-src 'self'``).
"""

from __future__ import annotations

import json
import re
import secrets
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from geo_service import i18n

TEMPLATES = Path(__file__).resolve().parent / "templates"
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every page is HTML: escape everything not marked safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # gettext of the request's language (geo_service/i18n.py); new-style calls escape their
    # result and format placeholders by name: {{ _("%(n)s days", n=days) }}
    env.install_gettext_callables(  # type: ignore[attr-defined]
        i18n.gettext, i18n.ngettext, newstyle=True
    )
    return env


def render_page(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context`` (autoescaped), in the request's
    language: every page also gets ``lang`` (its BCP 47 tag), ``languages`` (the switch's
    ``(tag, name)`` pairs) and ``page_i18n`` (the page scripts' translations as JSON, for
    ``data-i18n``; common.js's ``t()`` reads it)."""
    language = i18n.current_language()
    context.setdefault("lang", language)
    context.setdefault("languages", list(i18n.LANGUAGE_NAMES.items()))
    context.setdefault("page_i18n", json.dumps(i18n.page_catalogue(language), ensure_ascii=False))
    return _environment().get_template(template).render(**context)


def tile_source(setting: str) -> dict[str, str] | None:
    """The base layer of the map pages for ``GEO_MAP_TILES``: a tile URL template with its
    attribution, None for 'none'. A name is looked up in xyzservices (as folium does);
    an unknown name falls back to OpenStreetMap.
    """
    if setting.lower() == "none":
        return None
    if "{z}" in setting:
        return {"url": setting, "attribution": "base map"}
    if setting.lower() in ("openstreetmap", "osm"):
        return {"url": OSM_TILES, "attribution": OSM_ATTRIBUTION}
    try:
        import xyzservices

        provider = xyzservices.providers.query_name(setting)
        url = provider.build_url()
        attribution = str(provider.get("attribution", "")) or "base map"
    except (ValueError, AttributeError, KeyError, TypeError):
        return {"url": OSM_TILES, "attribution": OSM_ATTRIBUTION}
    return {"url": url, "attribution": attribution}


def tile_origin(url: str) -> str | None:
    """The CSP source that lets the browser load tiles from ``url`` (``{s}`` subdomains as
    a wildcard), or None for a relative URL (already 'self')."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    host = re.sub(r"^\{s\}\.", "*.", parts.netloc)
    host = re.sub(r"\{[^}]*\}", "*", host)
    return f"{parts.scheme}://{host}"


def content_security_policy(
    tiles_setting: str, nonce: str | None = None, extra_image_origins: tuple[str, ...] = ()
) -> str:
    """The policy of every HTML page: scripts only from this origin (plus the response's
    nonce where a page emits its own inline script), no plugins, no framing, images from
    here, the configured tile server and ``extra_image_origins`` (the hosts of the other
    base maps the pages offer, ``basemaps.image_origins``), fetches to this origin only."""
    script = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    images = ["'self'", "data:"]
    source = tile_source(tiles_setting)
    origin = tile_origin(source["url"]) if source else None
    if origin:
        images.append(origin)
    images.extend(o for o in extra_image_origins if o not in images)
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {script}",
            # Leaflet and folium position everything with inline styles; styles cannot run code.
            "style-src 'self' 'unsafe-inline'",
            f"img-src {' '.join(images)}",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def new_nonce() -> str:
    """A fresh per-response script nonce."""
    return secrets.token_urlsafe(18)


_SCRIPT_TAG = re.compile(r"<script(?=[\s>])", re.IGNORECASE)


def add_nonce(html: str, nonce: str) -> str:
    """Give every ``<script>`` tag of a page we generated ourselves (folium, Swagger UI) the
    response's nonce. Only safe on markup whose data is escaped: ``<`` never appears in a
    value, so no value can open a script tag of its own."""
    return _SCRIPT_TAG.sub(f'<script nonce="{nonce}"', html)


class ContentSecurityPolicyMiddleware:
    """Adds the page CSP (and nosniff / no-referrer-leak headers) to every ``text/html``
    response that does not set its own policy (pages with a nonce set theirs)."""

    def __init__(
        self, app: Any, tiles_setting: str, extra_image_origins: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.policy = content_security_policy(tiles_setting, None, extra_image_origins).encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                if content_type.startswith(b"text/html"):
                    if b"content-security-policy" not in names:
                        headers.append((b"content-security-policy", self.policy))
                    if b"x-content-type-options" not in names:
                        headers.append((b"x-content-type-options", b"nosniff"))
                    if b"referrer-policy" not in names:
                        headers.append((b"referrer-policy", b"same-origin"))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_policy)
