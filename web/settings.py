"""The embedded settings page (``/app``) and the merchant's view, server-rendered with Jinja.

Every request is authenticated (``web.app_session``): inside Shopify's admin by the App Bridge
session token, elsewhere by a signed link. Every form posts with a CSRF token. The page's own
script posts forms with ``fetch`` (adding the session token) and swaps the answer into ``<main>``;
in link mode a plain form post works too. The page is usable without Shopify's CDN scripts: its
own stylesheet gives it the Polaris look.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, g, render_template, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from integrations.errors import AuthError, InvalidRequestError, RetryableError
from integrations.fulfilment.base import webhook_url
from integrations.woocommerce import echoes
from jobs import actions, deadletter, locations, shop_config
from jobs.orders import release_waiting
from jobs.parties import provider_options
from store import audit, merchant_view, order_search
from store import stock as stock_store
from store.app_models import DataExport
from store.models import Shop
from store.shops import DEFAULT_SETTINGS, provider_names, provider_refusal
from store.sync_models import ShopSync
from web import i18n, install, locations_form, runtime
from web.app_session import Merchant, SessionRejected, authenticate, check_csrf, csrf_token, frame_ancestors
from web.notices import merchant_text
from web.settings_form import OPTIONAL_ADDRESS_FIELDS, format_sku_buffers, parse_settings

log = logging.getLogger(__name__)
blueprint = Blueprint("settings", __name__)
blueprint.record_once(lambda state: i18n.init_app(state.app))  # English and French (Flask-Babel)
CDN_SCRIPTS = (
    "https://cdn.shopify.com/shopifycloud/app-bridge.js",
    "https://cdn.shopify.com/shopifycloud/polaris.js",
)


@blueprint.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = frame_ancestors(g.get("merchant"))
    response.headers["Referrer-Policy"] = "no-referrer"  # links carry their proof in the URL
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.errorhandler(HTTPException)
def _refused(error: HTTPException):  # type: ignore[no-untyped-def]
    status = error.code or 500
    if _is_fetch():
        response = Response(json.dumps({"error": error.description}), status, content_type="application/json")
    else:
        response = Response(render_template("app/error.html", status=status, message=error.description), status)
    if isinstance(error, SessionRejected):
        response.headers["X-Shopify-Retry-Invalid-Session-Request"] = "1"
    return response


def _is_fetch() -> bool:
    return request.headers.get("X-Relais-Fetch") == "1"


def _merchant(post: bool = False) -> Merchant:
    merchant = authenticate()
    g.merchant = merchant
    if merchant.shop_id is None:
        abort(409, "this shop has not finished installing: open the app from your shop's admin")
    if post:
        check_csrf(merchant)
    return merchant


@blueprint.get("/app")
def page():  # type: ignore[no-untyped-def]
    merchant = authenticate()
    g.merchant = merchant
    if install.needs_install(merchant):
        try:
            merchant = install.ensure_installed(merchant)
        except AuthError as exc:
            abort(401, f"Shopify refused to install Relais for this shop: {exc}")
        except (RetryableError, InvalidRequestError) as exc:
            abort(502, f"Shopify could not be reached to finish the install: {exc}")
        g.merchant = merchant
    return _render(merchant)


@blueprint.post("/app/settings")
def save_settings():  # type: ignore[no-untyped-def]
    merchant = _merchant(post=True)
    checked = {k for k in request.form if request.form.get(k) in ("on", "1", "true")}
    parsed = parse_settings(request.form.to_dict(), checked)
    places = locations.listing(runtime(), merchant.shop_id)  # type: ignore[arg-type]
    locations_form.parse_locations(request.form.to_dict(), places.locations, places.centres, parsed)
    if parsed.errors:
        return _render(merchant, ("critical", "Nothing saved: fix the fields marked below"), parsed.errors)
    result = shop_config.save_settings(runtime(), merchant.shop_id, parsed.values, merchant.actor)  # type: ignore[arg-type]
    return _render(merchant, ("success" if result.ok else "critical", result.message))


@blueprint.post("/app/provider")
def save_provider():  # type: ignore[no-untyped-def]
    merchant = _merchant(post=True)
    rt = runtime()
    name = request.form.get("provider", "")
    refusal = provider_refusal(rt.settings, name)  # production never offers nor accepts the sandbox
    if refusal:
        return _render(merchant, ("critical", f"Nothing saved: {refusal}"))
    prefix = f"{name}:"
    given = {k[len(prefix) :]: v for k, v in request.form.items() if k.startswith(prefix)}
    result = shop_config.save_provider(rt, merchant.shop_id, name, given, merchant.actor)  # type: ignore[arg-type]
    message = result.message
    if result.ok:  # saved after a live test: what waited for a provider goes now, once each
        sent = release_waiting(rt, merchant.shop_id, merchant.actor)  # type: ignore[arg-type]
        if sent:
            message += f"; {sent} order(s) waiting for a provider are being sent"
    return _render(merchant, ("success" if result.ok else "critical", message))


@blueprint.post("/app/orders/<int:order_id>/<action>")
def order_action(order_id: int, action: str):  # type: ignore[no-untyped-def]
    merchant = _merchant(post=True)
    result = actions.perform(runtime(), merchant.shop_id, order_id, action, merchant.actor)  # type: ignore[arg-type]
    message = ("success" if result.ok else "warning", result.message)
    if request.form.get("view") == "order":  # pressed on the order's own page: stay there
        return _render_order(merchant, order_id, message)
    return _render(merchant, message)


@blueprint.get("/app/orders/<int:order_id>")
def order_page(order_id: int):  # type: ignore[no-untyped-def]
    """One order in full; another shop's order is 404 like a missing one."""
    return _render_order(_merchant(), order_id)


def _render_order(merchant: Merchant, order_id: int, message: tuple[str, str] | None = None):  # type: ignore[no-untyped-def]
    with runtime().sessions() as session:
        shop = session.get(Shop, merchant.shop_id)
        detail = merchant_view.order_detail(session, merchant.shop_id, order_id)  # type: ignore[arg-type]
        if shop is None or detail is None:
            abort(404, "no such order in this shop")
        shop_view = {"domain": shop.domain, "platform": shop.platform, "status": shop.status, "provider": shop.provider}
    context = {"shop": shop_view, "order": detail.view, "detail": detail, "message": message, **_page_helpers(merchant)}
    if _is_fetch():
        return Response(render_template("app/_order_main.html", **context), 200, {"X-Relais-Partial": "1"})
    return render_template("app/order.html", **context)


def _page_helpers(merchant: Merchant) -> dict[str, Any]:
    """What every template of the page uses: who, the CSRF token, CDN scripts, the language."""
    rt = runtime()
    language = i18n.current_language()

    def page_url(path: str, **params: str) -> str:
        """A URL of the page that authenticates like this one and keeps the language."""
        extra = "".join(f"&{k}={quote(str(v))}" for k, v in params.items() if v)
        return merchant.url(path) + (f"&locale={language}" if language != i18n.DEFAULT else "") + extra

    return {
        "merchant": merchant,
        "csrf": csrf_token(merchant),
        "api_key": rt.settings.shopify_api_key,
        "cdn_scripts": CDN_SCRIPTS if merchant.embedded else (),
        "language": language,
        "page_url": page_url,
        "say": merchant_text,
    }


@blueprint.post("/app/dead-letters/replay")
def replay_dead_letter():  # type: ignore[no-untyped-def]
    """Replay one of this shop's dead letters (``jobs.deadletter``: idempotent, this shop's only)."""
    merchant = _merchant(post=True)
    outcome = deadletter.replay(runtime(), request.form.get("ref", "")[:100], shop_id=merchant.shop_id)
    return _render(merchant, ("success" if outcome == "queued again" else "warning", f"Replay: {outcome}"))


@blueprint.get("/app/exports/<int:export_id>")
def export(export_id: int):  # type: ignore[no-untyped-def]
    merchant = _merchant()
    with runtime().sessions() as session:
        row = session.get(DataExport, export_id)
        if row is None or row.shop_id != merchant.shop_id:
            abort(404, "no such export")
        body = json.dumps(row.data, indent=2, default=str)
        name = f"customer-data-{row.request_id}.json"
    return Response(body, 200, {"Content-Disposition": f'attachment; filename="{name}"'}, mimetype="application/json")


def _render(merchant: Merchant, message: tuple[str, str] | None = None, errors: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    context = _context(merchant)
    context.update(message=message, errors=errors or {}, form=request.form if errors else None)
    if _is_fetch():
        return Response(render_template("app/_main.html", **context), 200, {"X-Relais-Partial": "1"})
    return render_template("app/page.html", **context)


def _context(merchant: Merchant) -> dict[str, Any]:
    rt = runtime()
    query = order_search.parse(request.args.get("q"), request.args.get("state"))
    with rt.sessions() as session:
        shop = session.get(Shop, merchant.shop_id)
        if shop is None:
            abort(404, "this shop no longer exists")
        settings = {**DEFAULT_SETTINGS, **(shop.settings or {})}
        stored = provider_options(rt, shop)
        exports = session.scalars(
            select(DataExport).where(DataExport.shop_id == shop.id).order_by(DataExport.id.desc()).limit(10)
        ).all()
        context = {
            "shop": {
                "domain": shop.domain,
                "platform": shop.platform,
                "status": shop.status,
                "provider": shop.provider,
                "provider_webhook_url": webhook_url(rt.settings.public_url, shop.provider, shop.webhook_token)
                if shop.provider
                else "",
            },
            "settings": settings,
            "sku_buffers_text": format_sku_buffers(settings.get("sku_buffers") or {}),
            "optional_address_fields": OPTIONAL_ADDRESS_FIELDS,
            "providers": [
                {
                    "name": name,
                    "fields": [
                        {"name": f, "hint": shop_config.masked(stored.get(f, "")) if name == shop.provider else ""}
                        for f in shop_config.option_names(name)
                    ],
                }
                for name in provider_names(rt.settings)
            ],
            "waiting_for_provider": merchant_view.waiting_for_provider(session, shop.id),
            "attention": merchant_view.attention(session, shop.id),
            "orders": merchant_view.orders_by_id(session, shop.id, order_search.search(session, shop.id, query))
            if query.active
            else merchant_view.recent_orders(session, shop.id),
            "search": query,
            "search_states": order_search.STATES,
            "search_limit": order_search.LIMIT,
            "webhooks": merchant_view.webhook_health(
                session, shop.id, echoes.ignored_last_day(rt.redis, shop.id) if shop.platform == "woocommerce" else 0
            ),
            "provider_health": merchant_view.provider_health(session, shop.id),
            "stock_sync": _stock_report(session, shop.id),
            "places": locations.listing(rt, shop.id),
            "notice": session.get(ShopSync, shop.id),
            "subscriptions": audit.last(session, shop.id, "subscriptions"),
            "exports": [{"id": e.id, "request": e.request_id, "at": e.created_at} for e in exports],
            "events": audit.latest(session, shop.id, limit=8),
            "dead_letters": deadletter.dead_letters(rt, shop.id, limit=20),
        }
    context["places_view"] = locations_form.view(settings, context["places"].locations, context["places"].centres)
    context.update(_page_helpers(merchant))
    return context


def _stock_report(session: Any, shop_id: int) -> dict[str, Any] | None:
    """The last finished stock sync run (the stock sync's own record) as the page shows it."""
    run = stock_store.last_run(session, shop_id, finished=True)
    if run is None:
        return None
    written, skipped = run.written or {}, run.skipped or {}
    # The badge says what state the sync is in; the time is beside it, not instead of it.
    state = "failing" if run.status == "failed" else "needs_look" if skipped or run.error else "synced"
    return {
        "at": run.finished_at or run.started_at,
        "status": run.status,
        "state": state,
        "written": len(written),
        # Exact even when the run's per-SKU detail is bounded (``jobs.stock_record``).
        "skipped_count": int(((run.read or {}).get("counts") or {}).get("skipped", len(skipped))),
        "error": run.error or "",
        "skipped": skipped,
    }
