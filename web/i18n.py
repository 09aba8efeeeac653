"""The merchant's page in English or French (Flask-Babel), and its dates and numbers in their locale.

The language comes from Shopify's ``locale`` query parameter on the embedded page (``fr``,
``fr-FR``), carried on by the page's own requests (a ``locale`` form field or the
``X-Relais-Locale`` header its script adds), else from the browser's ``Accept-Language``; English
otherwise. Times are shown in UTC, to the second, with how long ago they were.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_timedelta
from flask import Flask, request
from flask_babel import Babel, format_datetime, format_decimal, get_locale

LANGUAGES = ("en", "fr")
DEFAULT = "en"
TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"


def language_of(raw: str | None) -> str | None:
    """``fr``, ``fr-FR``, ``fr_CA`` → ``fr``; a language we do not have (or garbage) → None."""
    if not raw:
        return None
    try:
        language = Locale.parse(raw.strip()[:20].replace("-", "_")).language
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    return language if language in LANGUAGES else None


def select_locale() -> str:
    """Shopify's ``locale`` parameter, then what the page carried it as, then Accept-Language."""
    for raw in (request.args.get("locale"), request.headers.get("X-Relais-Locale"), _form_locale()):
        language = language_of(raw)
        if language:
            return language
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT


def _form_locale() -> str | None:
    if request.method != "POST" or not request.mimetype.startswith(("multipart/", "application/x-www-form")):
        return None
    return request.form.get("locale")


def init_app(app: Flask) -> None:
    """Flask-Babel on ``app`` (once), with the catalogue under ``translations/``."""
    if "babel" in app.extensions:
        return
    Babel(app, locale_selector=select_locale, default_translation_directories=str(TRANSLATIONS))
    app.jinja_env.globals.update(when=when, ago=ago, number=number, current_language=current_language)


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def when(value: datetime | None) -> str:
    """The time to the second, in the merchant's locale, in UTC ("30 nov. 2026, 22:42:38 UTC")."""
    if value is None:
        return "—"
    return f"{format_datetime(_utc(value), 'medium')} UTC"


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in the merchant's words ("3 min. ago", "il y a 3 min")."""
    if value is None:
        return ""
    delta = _utc(value) - (now or datetime.now(UTC))
    return format_timedelta(delta, add_direction=True, format="short", threshold=0.9, locale=get_locale() or DEFAULT)


def number(value: int | float) -> str:
    """A count or quantity in the merchant's locale (1,234 / 1 234)."""
    return format_decimal(value)
