"""Languages: which one a request or a command speaks, and its gettext catalogues.

Two languages are served, English (``en``, the source text) and Simplified Chinese (``zh-CN``).
The catalogues are GNU gettext files made with Babel under ``geo_service/locale``:
``messages`` (Python and the page templates) and ``pages`` (the page scripts, handed to the
browser as JSON). ``scripts/update_translations.sh`` extracts, merges and compiles them;
``tests/test_i18n.py`` fails when a compiled ``.mo`` is older than its ``.po`` or a marked
string has no translation.

A request's language is, first to last: the page switch (``?lang=``, remembered in the
``geo_lang`` cookie), the ``Accept-Language`` header (RFC 9110 section 12.5.4, q-values
honoured), the deployment's ``GEO_LOCALE``, English. It lives in a context variable for the
request (``LanguageMiddleware``); a command takes it from ``GEO_LOCALE``, else ``LC_ALL``,
``LC_MESSAGES``, ``LANG`` (POSIX). ``gettext`` anywhere in the package then answers in it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar, Token
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
ENGLISH = "en"
CHINESE = "zh-CN"
LANGUAGES = (ENGLISH, CHINESE)  # BCP 47 tags, as pages and the API name them
LANGUAGE_NAMES = {ENGLISH: "English", CHINESE: "中文"}
# The gettext directory of each language (``locale/<dir>/LC_MESSAGES``)
_CATALOGUE_DIR = {CHINESE: "zh_CN"}
LANG_COOKIE = "geo_lang"
LANG_QUERY = "lang"

_current: ContextVar[str | None] = ContextVar("geo_service_language", default=None)


@lru_cache(maxsize=512)  # Babel's parse costs tens of microseconds; clients send few tags
def supported(tag: str | None) -> str | None:
    """The served language a tag (BCP 47 ``zh-CN``, POSIX ``zh_CN.UTF-8``) asks for, or None.

    Any Simplified Chinese (``zh``, ``zh-CN``, ``zh-Hans``, ``zh-SG``, ``zh_CN.UTF-8``) is
    ``zh-CN``; Traditional (``zh-TW``, ``zh-Hant``, ``zh-HK``) is not served; any English is
    ``en``. Locale data from Babel (CLDR likely subtags).

    >>> [supported(t) for t in ("zh", "zh-Hans-CN", "zh_CN.UTF-8", "zh-TW", "en-GB", "fr", "*")]
    ['zh-CN', 'zh-CN', 'zh-CN', None, 'en', None, None]
    """
    from babel import Locale, UnknownLocaleError

    text = (tag or "").strip().split(".")[0].split("@")[0]
    if not text or text in ("*", "C", "POSIX"):
        return None
    try:
        locale = Locale.parse(text.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return None
    if locale.language == "en":
        return ENGLISH
    if locale.language == "zh" and locale.script != "Hant":
        if locale.territory not in ("TW", "HK", "MO"):
            return CHINESE
    return None


@lru_cache(maxsize=1024)
def accept_language(header: str | None) -> str | None:
    """The served language an ``Accept-Language`` header prefers most (RFC 9110 §12.5.4:
    ranges by q-value, ``q=0`` excluded, ties in the header's order), or None.

    >>> accept_language("fr;q=1, zh-CN;q=0.8, en;q=0.5")
    'zh-CN'
    >>> accept_language("en-US,en;q=0.9,zh;q=0")
    'en'
    >>> accept_language("de, fr") is None
    True
    """
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and tag:
            ranked.append((-q, index, tag))
    for _, _, tag in sorted(ranked):
        language = supported(tag)
        if language:
            return language
    return None


def negotiate(
    *,
    requested: str | None = None,
    cookie: str | None = None,
    header: str | None = None,
    default: str | None = None,
) -> str:
    """The language of a request: the switch (``requested``, then the ``cookie`` it left),
    else ``Accept-Language``, else the deployment's default, else English.

    >>> negotiate(header="zh-CN,zh;q=0.9", default="en")
    'zh-CN'
    >>> negotiate(requested="en", header="zh-CN", default="zh_CN")
    'en'
    >>> negotiate(header="de", default="zh_CN")
    'zh-CN'
    """
    return (
        supported(requested)
        or supported(cookie)
        or accept_language(header)
        or supported(default)
        or ENGLISH
    )


def environment_language() -> str:
    """The language of a command: ``GEO_LOCALE``, else ``LC_ALL``, ``LC_MESSAGES``, ``LANG``
    (the POSIX order), else English."""
    for name in ("GEO_LOCALE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return supported(value) or ENGLISH
    return ENGLISH


def current_language() -> str:
    """The language of this request (or, outside one, of this process's environment)."""
    return _current.get() or environment_language()


def names_language() -> str | None:
    """The key a per-language name is looked up by in SQL (``coalesce(names ->> :lang,
    name)``): the current language, or None in English, where a name is shown as it was
    given (``name``), so an edited ``name`` shows at once.

    >>> token = use_language("zh-CN"); names_language(); reset_language(token)
    'zh-CN'
    """
    language = current_language()
    return None if language == ENGLISH else language


def area_name(names: Mapping[str, str] | None, name: str) -> str:
    """An area's name in the current language from its ``names`` (``areas.names``), else
    ``name``; in English ``name`` itself, as :func:`names_language` says.

    >>> token = use_language("zh-CN")
    >>> area_name({"zh-CN": "泰金社区"}, "Taijin")
    '泰金社区'
    >>> reset_language(token)
    >>> area_name({"zh-CN": "泰金社区", "en": "Taijin Community"}, "Taijin")
    'Taijin'
    """
    language = names_language()
    return ((names or {}).get(language) or name) if language else name


def use_language(language: str) -> Token[str | None]:
    """Speak ``language`` (a served tag) in this context until ``reset_language``."""
    return _current.set(supported(language) or ENGLISH)


def reset_language(token: Token[str | None]) -> None:
    """Undo ``use_language``."""
    _current.reset(token)


@cache
def translations(language: str, domain: str = "messages") -> Any:
    """The compiled catalogue of ``domain`` for ``language`` (``gettext.NullTranslations``
    for English, the source language)."""
    import gettext as gnu

    directory = _CATALOGUE_DIR.get(language)
    if directory is None:
        return gnu.NullTranslations()
    path = LOCALE_DIR / directory / "LC_MESSAGES" / f"{domain}.mo"
    with path.open("rb") as handle:
        return gnu.GNUTranslations(handle)


def gettext(message: str) -> str:
    """``message`` in the current language (itself when untranslated)."""
    return str(translations(current_language()).gettext(message))


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the current language."""
    return str(translations(current_language()).ngettext(singular, plural, n))


_ = gettext


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark ``message`` for extraction without translating it now (class attributes,
    constants); translate it where it is shown with ``gettext``."""
    return message


def format_message(message: str, /, **values: Any) -> str:
    """``message`` translated, then ``str.format``-ed with ``values`` (placeholders by name,
    so a translation may reorder them)."""
    return gettext(message).format(**values)


def format_duration(seconds: float) -> str:
    """A span of time as people say it, in the current language: whole hours and minutes
    (``2 h``, ``1 h 30 min``, ``5 min``), seconds only under a minute or when not whole
    minutes (``45 s``, ``90 s``). For targets and overdue reasons, not for measurements.

    >>> format_duration(7200), format_duration(5400), format_duration(300), format_duration(90)
    ('2 h', '1 h 30 min', '5 min', '90 s')
    """
    whole = int(round(seconds))
    if whole < 60 or whole % 60:
        return format_message("{n} s", n=whole)
    hours, minutes = divmod(whole // 60, 60)
    if hours and minutes:
        return format_message("{h} h {m} min", h=hours, m=minutes)
    if hours:
        return format_message("{n} h", n=hours)
    return format_message("{n} min", n=minutes)


def page_catalogue(language: str) -> dict[str, str]:
    """Every translated string of the page scripts (the ``pages`` domain) for ``language``,
    ``{source: translation}``; empty for English."""
    catalogue = translations(language, "pages")
    messages: Mapping[Any, Any] = getattr(catalogue, "_catalog", {})
    return {
        str(key): str(value)
        for key, value in messages.items()
        if isinstance(key, str) and key and value
    }


def localized(names: Mapping[str, str] | None, fallback: str, language: str | None = None) -> str:
    """A name in ``language`` (default: the current one) from a per-language mapping, else
    the English one, else ``fallback``.

    >>> localized({"en": "Traffic", "zh-CN": "交通"}, "traffic", "zh-CN")
    '交通'
    >>> localized({"en": "Traffic"}, "traffic", "zh-CN")
    'Traffic'
    >>> localized(None, "Traffic and parking", "zh-CN")
    'Traffic and parking'
    """
    names = names or {}
    return names.get(language or current_language()) or names.get(ENGLISH) or fallback


class LanguageMiddleware:
    """Sets the language of each HTTP request (see the module's docstring) for the code that
    answers it, and remembers a page switch (``?lang=``) in the ``geo_lang`` cookie. Every
    answer says ``Vary: Accept-Language, Cookie`` where it does not already vary on more."""

    def __init__(self, app: Any, default: str | None = None) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from http.cookies import SimpleCookie
        from urllib.parse import parse_qs

        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        query_string = scope.get("query_string", b"")
        requested = None
        if b"lang=" in query_string:
            query = parse_qs(query_string.decode("latin-1"))
            requested = supported((query.get(LANG_QUERY) or [""])[-1])
        cookie = None
        raw_cookie = headers.get(b"cookie", b"")
        if LANG_COOKIE.encode() in raw_cookie:  # parse only when the switch left one
            cookies: SimpleCookie = SimpleCookie()
            try:
                cookies.load(raw_cookie.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no language
                cookies = SimpleCookie()
            cookie = cookies[LANG_COOKIE].value if LANG_COOKIE in cookies else None
        language = negotiate(
            requested=requested,
            cookie=cookie,
            header=headers.get(b"accept-language", b"").decode("latin-1"),
            default=self.default,
        )

        async def send_with_language(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = []
                varied = False
                for name, value in message.get("headers", []):
                    if name.lower() == b"vary" and not varied:
                        value, varied = value + b", Accept-Language, Cookie", True
                    extra.append((name, value))
                if not varied:
                    extra.append((b"vary", b"Accept-Language, Cookie"))
                if not any(name.lower() == b"content-language" for name, _ in extra):
                    extra.append((b"content-language", language.encode()))
                if requested:
                    extra.append(
                        (
                            b"set-cookie",
                            f"{LANG_COOKIE}={requested}; Path=/; Max-Age=31536000; "
                            "SameSite=Lax".encode(),
                        )
                    )
                message = {**message, "headers": extra}
            await send(message)

        token = use_language(language)
        try:
            await self.app(scope, receive, send_with_language)
        finally:
            reset_language(token)
