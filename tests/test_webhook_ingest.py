"""Shopify webhook ingest: verified on raw bytes, stored before the 200, deduplicated, enqueued once."""

from __future__ import annotations

from sqlalchemy import func, select

from integrations.shopify.webhooks import sign, verify
from store.db import transaction
from store.models import WebhookEvent
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "example.myshopify.com"


def add_shop(runtime, domain: str = SHOP) -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        return upsert_shop(session, runtime.vault, "shopify", domain, {"access_token": "shpat_x"}, "sandbox", {}).id


def stored(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(WebhookEvent))


def queued(runtime) -> int:  # type: ignore[no-untyped-def]
    return len(runtime.queue("webhooks"))


def post(client, body: bytes, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post("/webhooks/shopify", data=body, headers=headers)


def test_shopifys_published_webhook_vector_holds() -> None:
    assert sign("test_secret_key", b'{"foo": "bar"}') == "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
    assert verify(["test_secret_key"], b'{"foo": "bar"}', "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=")


def test_a_signed_delivery_is_stored_and_enqueued_once(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = body_of(paid_order())
    response = post(client, body, headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET))
    assert response.status_code == 200
    assert stored(runtime) == 1 and queued(runtime) == 1
    with runtime.sessions() as session:
        event = session.scalars(select(WebhookEvent)).one()
        assert event.body == body  # the exact bytes, escapes included
        assert event.topic == "orders/paid" and event.status == "received"


def test_the_same_delivery_five_times_is_stored_once(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = body_of(paid_order())
    headers = headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    for _ in range(5):
        assert post(client, body, headers).status_code == 200
    assert stored(runtime) == 1 and queued(runtime) == 1


def test_a_wrong_signature_is_401_and_stores_and_enqueues_nothing(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = body_of(paid_order())
    headers = headers_for(SHOP, "orders/paid", body, "another-apps-secret")
    assert post(client, body, headers).status_code == 401
    headers.pop("X-Shopify-Hmac-Sha256")
    assert post(client, body, headers).status_code == 401
    tampered = headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    assert post(client, body.replace(b"#1001", b"#1002"), tampered).status_code == 401
    assert stored(runtime) == 0 and queued(runtime) == 0


def test_the_previous_secret_is_accepted_during_rotation(app, client, runtime) -> None:  # type: ignore[no-untyped-def]
    rt = app.extensions["relais"]
    app.extensions["relais"] = type(rt)(
        **{
            **rt.__dict__,
            "settings": rt.settings.with_(shopify_api_secret="new", shopify_api_secret_previous=SHOPIFY_SECRET),
        }
    )
    add_shop(runtime)
    body = body_of(paid_order())
    assert post(client, body, headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)).status_code == 200
    assert post(client, body, headers_for(SHOP, "orders/paid", body, "new")).status_code == 200
    assert post(client, body, headers_for(SHOP, "orders/paid", body, "older")).status_code == 401


def test_a_signed_body_that_is_not_json_is_400_and_stores_nothing(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = b"this is not json"
    assert post(client, body, headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)).status_code == 400
    body = b"[1, 2]"
    assert post(client, body, headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)).status_code == 400
    assert stored(runtime) == 0 and queued(runtime) == 0


def test_an_unknown_shop_is_rejected_and_nothing_is_stored(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = body_of(paid_order())
    response = post(client, body, headers_for("stranger.myshopify.com", "orders/paid", body, SHOPIFY_SECRET))
    assert response.status_code == 404
    assert stored(runtime) == 0 and queued(runtime) == 0


def test_missing_delivery_headers_are_400(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = body_of(paid_order())
    headers = headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    del headers["X-Shopify-Webhook-Id"]
    assert post(client, body, headers).status_code == 400
    assert stored(runtime) == 0


def test_a_body_over_the_limit_is_413(app, client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = b'{"pad": "' + b"x" * (runtime.settings.max_webhook_bytes + 10) + b'"}'
    assert post(client, body, headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)).status_code == 413
    assert stored(runtime) == 0


def test_compliance_and_uninstall_topics_are_stored(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    for topic in ("app/uninstalled", "customers/data_request", "customers/redact", "shop/redact"):
        body = body_of({"shop_id": 1, "shop_domain": SHOP})
        assert post(client, body, headers_for(SHOP, topic, body, SHOPIFY_SECRET)).status_code == 200
    assert stored(runtime) == 4


def test_events_spelling_of_the_headers_is_accepted(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = body_of(paid_order())
    headers = {
        k.replace("X-Shopify-", "shopify-").lower(): v
        for k, v in headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET).items()
    }
    assert post(client, body, headers).status_code == 200
    assert stored(runtime) == 1


def test_a_stored_event_survives_a_redis_flush_and_the_sweep_enqueues_it(client, runtime) -> None:  # type: ignore[no-untyped-def]
    from jobs.maintenance import sweep

    add_shop(runtime)
    body = body_of(paid_order())
    assert post(client, body, headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)).status_code == 200
    runtime.redis.flushdb()  # the job is lost
    assert queued(runtime) == 0
    assert sweep(older_than_seconds=0)["events"] == 1
    assert queued(runtime) == 1
    assert sweep(older_than_seconds=0)["events"] == 0  # its job is live: nothing twice


def test_health_checks_database_and_redis(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_a_privacy_request_for_a_shop_we_hold_nothing_for_is_answered_200_and_stores_nothing(client, runtime) -> None:  # type: ignore[no-untyped-def]
    body = body_of({"shop_id": 1, "shop_domain": "gone.myshopify.com"})
    headers = headers_for("gone.myshopify.com", "shop/redact", body, SHOPIFY_SECRET)
    assert post(client, body, headers).status_code == 200
    assert stored(runtime) == 0 and queued(runtime) == 0


def test_the_webhook_receivers_open_no_cookie_session_while_the_merchant_pages_do(app, client, runtime) -> None:  # type: ignore[no-untyped-def]
    """Senders carry no cookie and get none; building a session per delivery only cost CPU."""
    from flask import request

    for path, opened in (("/webhooks/shopify", False), ("/webhooks/fulfilment/shipbob/x", False), ("/settings", True)):
        with app.test_request_context(path, method="POST", headers={"Cookie": "session=stale"}):
            assert (app.session_interface.open_session(app, request) is not None) == opened, path
    add_shop(runtime)
    client.set_cookie("session", "stale")
    body = body_of(paid_order())
    response = post(client, body, headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET))
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
