"""The languages of the web pages (webmail and webadmin alike): Babel's
gettext catalogs under web/locale/<lang>/LC_MESSAGES/messages.po, compiled
in memory the first time a language is used (so a checkout, `pip install -e .`
and CI need no build step and no .mo file in git), the language of each
request (the cookie the switch on every page sets, else Accept-Language),
and the gettext callables shared by the Jinja environment and route code.

English is the source language; `make messages` re-extracts the strings and
updates the catalogs (tests/web/test_i18n.py fails on an untranslated one)."""
from __future__ import annotations

import gettext as _gettext
import io
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import cookie_parser

LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
DEFAULT = "en"
COOKIE = "cm_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_current: ContextVar[str] = ContextVar("web_language", default=DEFAULT)


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


@lru_cache(maxsize=None)
def translations(lang: str) -> _gettext.NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT or not po.exists():
        return _gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)      # fuzzy entries are left out, as msgfmt does
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


@lru_cache(maxsize=None)
def locale(lang: str) -> Locale:
    return Locale.parse(lang)


def current() -> str:
    return _current.get()


def html_lang() -> str:
    return current().replace("_", "-")


def gettext(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return translations(_current.get()).pgettext(context, message)


_ = gettext


def _accepted(header: str) -> list[str]:
    """Accept-Language's tags, best first (RFC 9110 12.5.4 q-values)."""
    tags = []
    for i, part in enumerate(header.split(",")[:30]):
        tag, _sep, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _eq, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            tags.append((-q, i, tag.strip()))
    return [t for *_k, t in sorted(tags)]


def choose(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    for tag in _accepted(accept_language or ""):
        got = negotiate_locale([tag.replace("-", "_")], list(LANGUAGES), sep="_")
        if got:
            return got
        if tag.lower().startswith("zh"):      # zh-TW, zh-Hant...: closer to zh_CN than to English
            return "zh_CN"
    return DEFAULT


def use(lang: str) -> None:
    """The language for the rest of this request (tests and CLI renders)."""
    _current.set(lang if lang in LANGUAGES else DEFAULT)


class LanguageMiddleware:
    """Pure ASGI, outermost: every handler, error page and template of the
    request sees the chosen language; responses vary by it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"cookie", b"accept-language")}
        cookie = cookie_parser(headers.get("cookie", "")).get(COOKIE)
        lang = choose(cookie, headers.get("accept-language"))
        token = _current.set(lang)

        async def send_vary(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (b"content-language", html_lang().encode()),
                    (b"vary", b"Accept-Language, Cookie")]
            await send(message)
        try:
            await self.app(scope, receive, send_vary)
        finally:
            _current.reset(token)
