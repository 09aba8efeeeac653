"""No cookie session on the webhook receivers.

The merchant's pages (install, settings) keep Flask's signed-cookie session. Webhook senders
(Shopify, WooCommerce, the providers) carry no cookie and must be given none, yet Flask would
build a signing serializer for each of their requests to look for one: a measurable share of a
delivery's CPU on a busy receiver (bench/ingest.py). Paths under ``/webhooks/`` get Flask's null
session instead: nothing is read from the request, nothing is written to the response, and any
attempt to store something in it fails loudly.
"""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

WEBHOOK_PREFIX = "/webhooks/"


class CookieSessionsButWebhooks(SecureCookieSessionInterface):
    """Flask's own signed-cookie sessions, except on the webhook receivers."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(WEBHOOK_PREFIX):
            return None  # Flask then uses its null session, and never saves it
        return super().open_session(app, request)


def install(app: Flask) -> None:
    app.session_interface = CookieSessionsButWebhooks()
