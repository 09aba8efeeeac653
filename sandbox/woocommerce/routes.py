"""Routes of the fake WooCommerce store (``woocommerce.py`` authenticates, then calls these)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests
from werkzeug.wrappers import Request, Response

from sandbox.woocommerce.state import DRAFT_STATUSES, Key

if TYPE_CHECKING:
    from sandbox.woocommerce.store import FakeWooCommerce

PROVIDERS = {
    "United States": {
        "UPS": "https://www.ups.com/track?tracknum=%1$s",
        "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels=%1$s",
        "Fedex": "https://www.fedex.com/fedextrack/?trknbr=%1$s",
    },
    "France": {"Colissimo": "https://www.laposte.fr/outils/suivre-vos-envois?code=%1$s"},
    "United Kingdom": {
        "Royal Mail": "https://www.royalmail.com/track-your-item#/tracking-results/%1$s",
        "DHL": "https://www.dhl.com/en/express/tracking.html?AWB=%1$s",
    },
}
VALID_TOPICS = {
    f"{r}.{e}"
    for r in ("order", "product", "coupon", "customer")
    for e in ("created", "updated", "deleted", "restored")
}


def _fake_module() -> Any:
    from sandbox.woocommerce import store as woocommerce

    return woocommerce


def dispatch(fake: FakeWooCommerce, request: Request, method: str, namespace: str, route: str, key: Key) -> Response:
    w = _fake_module()
    st = fake.state
    body = request.get_json(silent=True) or {}
    if namespace != "wc/v3":
        return _tracking(fake, request, method, namespace, route, body)
    if m := re.fullmatch(r"orders/(\d+)", route):
        order = st.orders.get(int(m.group(1)))
        if order is None:
            return w.wc_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
        if method == "PUT":
            return w.json_response(st.update_order(order["id"], body))
        return w.json_response(order)
    if (m := re.fullmatch(r"orders/(\d+)/refunds", route)) and method == "GET":
        if int(m.group(1)) not in st.orders:
            return w.wc_error("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        return w.json_response(st.refunds.get(int(m.group(1)), []))
    if m := re.fullmatch(r"orders/(\d+)/notes", route):
        oid = int(m.group(1))
        if oid not in st.orders:
            return w.wc_error("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        if method == "POST":
            if not body.get("note"):
                return w.wc_error("woocommerce_rest_missing_note", "Missing note.", 400)
            return w.json_response(st.add_note(oid, body["note"], bool(body.get("customer_note"))), 201)
        kind = request.args.get("type", "any")
        notes = [n for n in st.notes[oid] if kind == "any" or n["customer_note"] == (kind == "customer")]
        return w.json_response(list(reversed(notes)))
    if route == "orders" and method == "GET":
        return fake.paged(request, _orders(fake, request))
    if route == "products" and method == "GET":
        return fake.paged(request, [w.fields_filter(request, p) for p in _products(fake, request)])
    if route == "products/batch" and method == "POST":
        return _batch(fake, body, parent=None)
    if m := re.fullmatch(r"products/(\d+)/variations/batch", route):
        return _batch(fake, body, parent=int(m.group(1)))
    if m := re.fullmatch(r"products/(\d+)/variations", route):
        pid = int(m.group(1))
        found = [p for p in st.products.values() if p.get("parent_id") == pid]
        include = {int(i) for i in request.args.get("include", "").split(",") if i}
        found = [p for p in found if not include or p["id"] in include]
        return fake.paged(request, [w.fields_filter(request, p) for p in found])
    if m := re.fullmatch(r"products/(\d+)", route):
        product = st.products.get(int(m.group(1)))
        if product is None or product["type"] == "variation":
            return w.wc_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
        if method == "PUT":
            st.set_stock(product, body)
        return w.json_response(product)
    if route == "webhooks":
        if method == "POST":
            return _create_webhook(fake, body, key)
        status = request.args.get("status", "all")
        hooks = [h.as_json(fake.url) for h in st.webhooks.values() if status in ("all", h.status)]
        return fake.paged(request, hooks)
    if m := re.fullmatch(r"webhooks/(\d+)", route):
        hook = st.webhooks.get(int(m.group(1)))
        if hook is None:
            return w.wc_error("woocommerce_rest_webhook_invalid_id", "Invalid ID.", 404)
        if method == "DELETE":
            if request.args.get("force") not in ("true", "1"):
                return w.wc_error("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501)
            del st.webhooks[hook.id]
        elif method == "PUT":
            for name in ("name", "status", "delivery_url", "secret", "topic"):
                if name in body:
                    setattr(hook, name, body[name])  # a re-activation does not reset failure_count
            hook.modified = st.tick()
        return w.json_response(hook.as_json(fake.url))
    if route == "system_status" and method == "GET":
        return w.json_response({"environment": {"home_url": fake.url, "version": w.VERSION}})
    return w.wc_error("rest_no_route", "No route was found matching the URL and request method.", 404)


def _orders(fake: FakeWooCommerce, request: Request) -> list[dict[str, Any]]:
    statuses = [s for s in request.args.get("status", "any").split(",") if s]
    after = request.args.get("modified_after", "")
    found = []
    for order in fake.state.orders.values():
        if "any" in statuses:
            if order["status"] == "trash" or order["status"] in DRAFT_STATUSES:
                continue
        elif order["status"] not in statuses:
            continue
        # dates_are_gmt=true: compare with the _gmt field (both ISO-8601 without offset)
        field = "date_modified_gmt" if request.args.get("dates_are_gmt") == "true" else "date_modified"
        if after and order[field] <= after[:19]:
            continue
        found.append(order)
    orderby = {"modified": "date_modified_gmt", "id": "id"}.get(request.args.get("orderby", ""), "date_created_gmt")
    found.sort(key=lambda o: (o[orderby], o["id"]), reverse=request.args.get("order", "desc") == "desc")
    return found


def _products(fake: FakeWooCommerce, request: Request) -> list[dict[str, Any]]:
    products = list(fake.state.products.values())
    if sku := request.args.get("sku"):
        # Exact match on each comma-separated SKU (and the whole string); covers variations too.
        wanted = {s.strip() for s in sku.split(",")} | {sku}
        return [p for p in products if p["sku"] in wanted]
    products = [p for p in products if p["type"] != "variation"]
    if include := request.args.get("include"):
        ids = {int(i) for i in include.split(",") if i}
        products = [p for p in products if p["id"] in ids]
    return products


def _batch(fake: FakeWooCommerce, body: dict[str, Any], parent: int | None) -> Response:
    w = _fake_module()
    count = sum(len(body.get(k) or []) for k in ("create", "update", "delete"))
    if count > fake.batch_limit:
        return w.wc_error(
            "woocommerce_rest_request_entity_too_large",
            f"Unable to accept more than {fake.batch_limit} items for this request.",
            413,
        )
    results = []
    for item in body.get("update") or []:
        product = fake.state.products.get(int(item.get("id") or 0))
        is_variation = product is not None and product["type"] == "variation"
        if product is None or is_variation != (parent is not None) or (parent and product["parent_id"] != parent):
            results.append(_item_error(item, "woocommerce_rest_product_invalid_id", "Invalid ID.", 400))
            continue
        if product["sku"] in fake.refuse:
            code, message = fake.refuse[product["sku"]]
            results.append(_item_error(item, code, message, 400))
            continue
        if "stock_quantity" in item and not isinstance(item["stock_quantity"], int):
            results.append(_item_error(item, "rest_invalid_param", "Invalid parameter(s): stock_quantity", 400))
            continue
        fake.state.set_stock(product, item)
        results.append(dict(product))
    return w.json_response({"update": results})


def _item_error(item: dict[str, Any], code: str, message: str, status: int) -> dict[str, Any]:
    return {"id": item.get("id", 0), "error": {"code": code, "message": message, "data": {"status": status}}}


def _create_webhook(fake: FakeWooCommerce, body: dict[str, Any], key: Key) -> Response:
    w = _fake_module()
    if body.get("topic") not in VALID_TOPICS:
        return w.wc_error(
            "woocommerce_rest_shop_webhook_invalid_topic", "Webhook topic is required and must be valid.", 400
        )
    if not str(body.get("delivery_url") or "").startswith(("http://", "https://")):
        return w.wc_error(
            "woocommerce_rest_shop_webhook_invalid_delivery_url",
            "Webhook delivery URL must be a valid URL starting with http:// or https://.",
            400,
        )
    hook = fake.state.create_webhook(body, key.user_id)
    fake.ping(hook.id, hook.delivery_url)
    return w.json_response(hook.as_json(fake.url), 201, {"Location": f"/wp-json/wc/v3/webhooks/{hook.id}"})


def _tracking(fake: FakeWooCommerce, request: Request, method: str, ns: str, route: str, body: Any) -> Response:
    w = _fake_module()
    if route == "shipment-trackings/providers":
        return w.json_response(PROVIDERS)
    m = re.fullmatch(r"orders/(\d+)/shipment-trackings(?:/([0-9a-f]+))?", route)
    if not m or int(m.group(1)) not in fake.state.orders:
        return w.wc_error("rest_no_route", "No route was found matching the URL and request method.", 404)
    oid = int(m.group(1))
    items = fake.state.trackings.setdefault(oid, [])
    if method == "POST" and not m.group(2):
        if not body.get("tracking_number"):
            return w.wc_error("rest_missing_callback_param", "Missing parameter(s): tracking_number", 400)
        entry = fake.state.add_tracking(oid, body)
        if ns == "wc-ast/v3" and str(body.get("status_shipped", "")) == "1":
            fake.state.update_order(oid, {"status": "completed"})
        return w.json_response(
            entry, 201, {"Location": f"/wp-json/{ns}/orders/{oid}/shipment-trackings/{entry['tracking_id']}"}
        )
    return w.json_response(items)


def authorize(fake: FakeWooCommerce, request: Request) -> Response:
    """``/wc-auth/v1/authorize``; the merchant is logged in and clicks Approve at once."""
    w = _fake_module()
    args = request.args
    for name in ("app_name", "scope", "user_id", "return_url", "callback_url"):
        if not args.get(name):
            return Response(f"<html>Error: Missing parameter {name}</html>", 400, content_type="text/html")
    if args["scope"] not in ("read", "write", "read_write"):
        return Response("<html>Error: Invalid scope</html>", 400, content_type="text/html")
    if not args["callback_url"].startswith("https://"):
        return Response("<html>Error: The callback_url needs to be over SSL</html>", 400, content_type="text/html")
    if fake.deny:
        return Response(status=302, headers={"Location": _return(args, 0)})
    key = fake.new_key(args["scope"])
    payload = {
        "key_id": key.key_id,
        "user_id": args["user_id"],
        "consumer_key": key.consumer_key,
        "consumer_secret": key.consumer_secret,
        "key_permissions": args["scope"],
    }
    try:
        answer = requests.post(
            args["callback_url"],
            data=w.wp_json_encode(payload),
            timeout=60,
            headers={"Content-Type": "application/json;charset=UTF-8"},
            verify=fake.ca_bundle,
            allow_redirects=False,
        ).status_code
    except requests.RequestException:
        answer = 0
    fake.callbacks.append(answer)
    if answer != 200:
        with fake.lock:
            fake.state.keys.remove(key)  # WC deletes the key it just made
        return Response(
            "<html>Error: An error occurred in the request and at the time were unable to send the "
            "consumer data.</html>",
            401,
            content_type="text/html",
        )
    return Response(status=302, headers={"Location": _return(args, 1)})


def _return(args: Any, success: int) -> str:
    sep = "&" if "?" in args["return_url"] else "?"
    return f"{args['return_url']}{sep}{urlencode({'success': success, 'user_id': args['user_id']})}"
