"""Relais web application: ``create_app()`` for tests and tools, ``app`` for gunicorn."""

from __future__ import annotations

import importlib

from flask import Flask
from sqlalchemy.exc import DBAPIError

from config import Settings, load_settings
from config.logging import configure_logging
from integrations import fulfilment, platforms
from integrations.errors import WebhookRejected
from jobs.runtime import Runtime, build_runtime, set_runtime


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the app. Tests pass their own settings (or a whole runtime); production reads the env."""
    if runtime is None:
        runtime = build_runtime(settings or load_settings())
    settings = runtime.settings
    configure_logging(settings.log_level, settings.log_format)
    fulfilment.check()
    platforms.check()
    set_runtime(runtime)

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=settings.max_webhook_bytes + 1024)
    app.extensions["relais"] = runtime

    from web import health, limits, sessions, webhooks

    sessions.install(app)  # no cookie session on /webhooks/: senders carry none and get none
    limits.install(app)  # bounded <int:…> ids and JSON refusals on /webhooks/: before any blueprint
    app.register_error_handler(WebhookRejected, webhooks.rejected)
    app.register_error_handler(DBAPIError, webhooks.database_unavailable)  # 503: the sender retries
    app.register_blueprint(webhooks.blueprint)
    app.register_blueprint(health.blueprint)
    from web import metrics

    metrics.init_app(app, runtime)  # GET /metrics (RELAIS_METRICS_TOKEN), a clean log context per request
    from web import woocommerce

    app.register_blueprint(woocommerce.blueprint)
    from web import install
    from web import settings as settings_page

    app.register_blueprint(install.blueprint)
    from web import fulfilment_callback

    app.register_blueprint(fulfilment_callback.blueprint)
    app.register_blueprint(settings_page.blueprint)

    from cli import register_commands

    register_commands(app)
    if settings.sandbox_enabled:
        importlib.import_module("sandbox").mount(app)  # development only: never in production
    return app


class _LazyApp:
    """``app`` for gunicorn (``gunicorn app:app``), built on first use so importing is cheap."""

    _app: Flask | None = None

    def _get(self) -> Flask:
        if self._app is None:
            self._app = create_app()
        return self._app

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        return self._get()(environ, start_response)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._get(), name)


app = _LazyApp()
