"""One Shopify event, one inbox row: the same event delivered by two subscriptions (an app-wide one
from shopify.app.toml and a shop-level one) carries two webhook ids but one X-Shopify-Event-Id."""

from __future__ import annotations

from sqlalchemy import func, select

from store.db import transaction
from store.models import WebhookEvent
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "dedup.myshopify.com"


def add_shop(runtime) -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        return upsert_shop(session, runtime.vault, "shopify", SHOP, {"access_token": "shpat_x"}, "sandbox", {}).id


def rows(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(WebhookEvent))


def delivery(topic: str, body: bytes, event_id: str) -> dict[str, str]:
    """One subscription's copy: its own webhook id, the event's id."""
    return {**headers_for(SHOP, topic, body, SHOPIFY_SECRET), "X-Shopify-Event-Id": event_id}


def test_the_same_event_by_two_subscriptions_is_one_inbox_row_and_one_job(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = body_of(paid_order())
    first = client.post("/webhooks/shopify", data=body, headers=delivery("orders/paid", body, "98880550"))
    second = client.post("/webhooks/shopify", data=body, headers=delivery("orders/paid", body, "98880550"))
    assert first.status_code == second.status_code == 200
    assert first.get_json()["event_id"] == second.get_json()["event_id"]
    assert rows(runtime) == 1
    assert len(runtime.queue("webhooks")) == 1


def test_the_second_copy_of_an_event_already_processed_enqueues_nothing(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = body_of(paid_order())
    client.post("/webhooks/shopify", data=body, headers=delivery("orders/paid", body, "98880551"))
    with transaction(runtime.sessions) as session:
        session.scalars(select(WebhookEvent)).one().status = "processed"
    runtime.queue("webhooks").empty()
    later = client.post("/webhooks/shopify", data=body, headers=delivery("orders/paid", body, "98880551"))
    assert later.status_code == 200 and rows(runtime) == 1 and len(runtime.queue("webhooks")) == 0


def test_different_events_and_other_topics_of_one_event_id_are_kept(client, runtime) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime)
    body = body_of(paid_order())
    client.post("/webhooks/shopify", data=body, headers=delivery("orders/paid", body, "1"))
    client.post("/webhooks/shopify", data=body, headers=delivery("orders/paid", body, "2"))
    client.post("/webhooks/shopify", data=body, headers=delivery("orders/updated", body, "2"))
    no_event_id = {
        k: v for k, v in headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET).items() if k != "X-Shopify-Event-Id"
    }
    client.post("/webhooks/shopify", data=body, headers=no_event_id)
    assert rows(runtime) == 4
