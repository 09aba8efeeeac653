"""Shopify reconciliation: orders whose webhooks never came, read back through GraphQL
``orders(query: "updated_at:>…")``, fed through the same decision, plus the provider's side and
the drift report.

The whole service runs on a real port with the sandbox 3PL; Shopify is the fake GraphQL Admin
(documents validated and executed against Shopify's 2026-10 schema, cost-throttled, paged).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import delete, select, update

from app import create_app
from config import Settings
from integrations.model import ProviderEvent, ShipmentLine
from integrations.model import Shipment as ParcelModel
from integrations.platforms import PlatformContext, ShopAccess, UnreadableOrder
from integrations.shopify.orders import parse_order
from integrations.shopify.platform import ShopifyPlatform
from integrations.shopify.reconcile import rest_order, to_order
from jobs import states
from jobs.reconcile import reconcile_shop
from jobs.shipments import apply_provider_event
from store.db import transaction
from store.models import Order, Shipment, Shop, WebhookEvent
from store.shops import upsert_shop
from store.sync_models import ShopSync
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order
from web.app_session import signed_link

SHOP = "reconcile.myshopify.com"
TOKEN = "shpat_reconcile"
PROVIDER_TOKEN = "reconcile-account"
OURS = "gid://shopify/Location/64500000001"
ORDER_ID = 820982911946154508  # real ids exceed 2**53


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin(TOKEN, restore_rate=10_000).start()
    yield server
    server.stop()


@pytest.fixture
def ship_delay() -> int:
    """Seconds before the sandbox ships; a test parametrizes 3600 to keep its order unshipped."""
    return 0


@pytest.fixture
def settings(settings, fake, ship_delay):  # type: ignore[no-untyped-def]
    return settings.with_(shopify_admin_url=fake.url + "/{shop}", sandbox_ship_delay=ship_delay)


@pytest.fixture
def service(live):  # type: ignore[no-untyped-def]
    server, runtime = live
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": TOKEN},
            "sandbox",
            {"token": PROVIDER_TOKEN},
            {"location_id": OURS},
        )
        session.flush()
        shop_id = shop.id
    return server, runtime, shop_id


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def provider_orders(server, shop_id: int, order_id: int = ORDER_ID) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    answer = requests.get(
        f"{server.url}/sandbox/api/orders",
        params={"reference": f"{shop_id}-{order_id}"},
        headers={"Authorization": f"Bearer {PROVIDER_TOKEN}"},
        timeout=10,
    )
    return answer.json()["orders"]


def order_row(runtime, order_id: int = ORDER_ID) -> Order:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        row = session.scalars(select(Order).where(Order.platform_order_id == str(order_id))).one()
        _ = row.history, row.shipments, row.lines
        return row


def drift_report(runtime, shop_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.get(ShopSync, shop_id).drift_report


def missing(report: dict[str, Any], kind: str) -> list[dict[str, str]]:
    return next((group["entries"] for group in report["missing"] if group["kind"] == kind), [])


def deliver_paid(server, fake_order, updated_at: datetime) -> None:  # type: ignore[no-untyped-def]
    """The orders/paid webhook Shopify would send for the fake's order (its own line ids)."""
    payload = paid_order(ORDER_ID, updated_at=updated_at.isoformat(), created_at=updated_at.isoformat())
    payload["line_items"] = [
        {
            "id": int(item.legacy_id),
            "sku": item.sku,
            "name": item.sku,
            "quantity": item.quantity,
            "current_quantity": item.quantity,
            "requires_shipping": True,
            "gift_card": False,
        }
        for item in fake_order.line_items
    ]
    body = body_of(payload)
    headers = headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


def platform_for_fake(fake: FakeShopifyAdmin) -> ShopifyPlatform:
    """The Shopify adapter of a shop of its own (the cost bucket is remembered per shop domain)."""
    settings = Settings(environment="test", shopify_admin_url=fake.url + "/{shop}")
    domain = f"{uuid.uuid4().hex[:12]}.myshopify.com"
    shop = ShopAccess(id=1, platform="shopify", domain=domain, credentials={"access_token": TOKEN})
    return ShopifyPlatform(shop, PlatformContext(http=requests.Session(), settings=settings))


ship_later = pytest.mark.parametrize("ship_delay", [3600])


# --- the shop's orders --------------------------------------------------------------------------
def test_an_order_whose_webhooks_never_came_is_pushed_once_by_reconciliation_even_run_twice(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    fake.orders.put(
        ORDER_ID,
        [("IPOD2008GREEN", 2, OURS), ("IPOD2008RED", 1, OURS), ("GIFT-CARD", 1, OURS)],
        updated_at=now(),
        line_extras={"GIFT-CARD": {"requires_shipping": False, "gift_card": True}},
    )  # Shopify never delivers a single webhook for it

    assert reconcile_shop(shop_id) == "1 orders checked, 1 found missing"
    drain(runtime)
    assert reconcile_shop(shop_id) == "1 orders checked, 0 found missing"
    drain(runtime)

    [sent] = provider_orders(server, shop_id)
    assert sorted((line["sku"], line["quantity"]) for line in sent["lines"]) == [
        ("IPOD2008GREEN", 2),
        ("IPOD2008RED", 1),
    ]
    assert sent["recipient"]["address1"] == "Chestnut Street 92"
    row = order_row(runtime)
    assert any("found by reconciliation" in t.reason for t in row.history)
    assert row.state in (states.SHIPPED, states.DELIVERED)  # and its parcel went back to Shopify
    assert len(fake.state.orders[f"gid://shopify/Order/{ORDER_ID}"].fulfillments) == 1
    assert fake.orders.queries and all(q.startswith("updated_at:>'") for q in fake.orders.queries)
    assert drift_report(runtime, shop_id)["missing"] == []  # the second run found nothing left to repair


@ship_later
def test_an_order_cancelled_on_shopify_after_its_push_is_cancelled_at_the_provider_by_reconciliation(
    service, fake
) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    paid_at = now() - timedelta(seconds=30)
    order = fake.orders.put(ORDER_ID, [("IPOD2008GREEN", 2, OURS)], updated_at=paid_at)
    deliver_paid(server, order, paid_at)
    drain(runtime)
    assert order_row(runtime).state == states.PUSHED
    fake.orders.update(ORDER_ID, updated_at=now(), cancelled_at=now(), financial_status="VOIDED")  # no webhook

    reconcile_shop(shop_id)
    drain(runtime)

    assert order_row(runtime).state == states.CANCELLED
    [sent] = provider_orders(server, shop_id)
    assert sent["status"] == "cancelled"
    report = drift_report(runtime, shop_id)
    assert [e["order"] for e in missing(report, "changes_not_received")] == [f"#1001 ({ORDER_ID})"]
    assert report["repaired"]["entries"] == [
        {"order": f"#1001 ({ORDER_ID})", "what": "cancel at the provider enqueued"}
    ]


@ship_later
def test_a_stale_copy_of_an_order_changes_nothing(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    newer = now()
    order = fake.orders.put(
        ORDER_ID, [("IPOD2008GREEN", 2, OURS)], updated_at=newer - timedelta(seconds=20), cancelled_at=newer
    )  # the list still shows an older state of the order than the webhook Relais applied
    deliver_paid(server, order, newer)
    drain(runtime)

    assert reconcile_shop(shop_id) == "1 orders checked, 0 found missing"
    drain(runtime)

    row = order_row(runtime)
    assert row.state == states.PUSHED
    assert any(t.reason.startswith("ignored: update of") for t in row.history)
    assert provider_orders(server, shop_id)[0]["status"] == "processing"
    report = drift_report(runtime, shop_id)
    assert report["missing"] == [] and report["repaired"]["count"] == 0


def test_reconciliation_reads_every_page_and_only_orders_changed_since_the_cursor(fake) -> None:
    since = now() - timedelta(hours=1)
    for n in range(45):
        fake.orders.put(9_000_000_000_000_000 + n, [("SKU-A", 1, OURS)], updated_at=since + timedelta(seconds=45 - n))
    for n in range(2):
        fake.orders.put(8_000_000_000_000_000 + n, [("SKU-A", 1, OURS)], updated_at=since - timedelta(minutes=5))
    many = fake.orders.put(7_000_000_000_000_000, [(f"SKU-{i}", 1, OURS) for i in range(60)], updated_at=now())

    found = list(platform_for_fake(fake).orders_modified_since(since))

    assert fake.operations["orders"] == 3  # 46 orders, 20 a page
    assert len(found) == 46 and len({o.platform_order_id for o in found}) == 46
    assert [o.updated_at for o in found] == sorted(o.updated_at for o in found)  # oldest change first
    assert not any(o.platform_order_id.startswith("8") for o in found)
    assert found[-1].platform_order_id == many.legacy_id
    assert [line.sku for line in found[-1].lines] == [f"SKU-{i}" for i in range(60)]  # lines beyond the page
    assert fake.operations["order"] == 1


def test_a_throttled_answer_is_waited_out_and_the_page_read_again() -> None:
    fake = FakeShopifyAdmin(TOKEN, restore_rate=2_000).start()
    try:
        since = now() - timedelta(minutes=5)
        for n in range(3):
            fake.orders.put(9_100_000_000_000_000 + n, [("SKU-A", 1, OURS)], updated_at=now())
        fake.set_available(0)  # other apps drained the bucket

        found = list(platform_for_fake(fake).orders_modified_since(since))

        assert fake.throttled >= 1
        assert len(found) == 3
    finally:
        fake.stop()


def test_a_graphql_order_maps_to_the_same_neutral_order_as_its_webhook() -> None:
    rest = paid_order(
        ORDER_ID,
        financial_status="partially_refunded",
        tags="vip, gift",
        phone="+33 6 12 34 56 78",
        cancelled_at="2026-11-20T11:00:00+00:00",
        shipping_lines=[{"title": "Colissimo", "code": "COL"}],
    )
    rest["line_items"][0].update(id=11_111_111_111_111_111, current_quantity=1)  # one unit refunded
    green, red, card = rest["line_items"]
    address = rest["shipping_address"]
    node = {
        "id": f"gid://shopify/Order/{ORDER_ID}",
        "name": rest["name"],
        "email": rest["email"],
        "phone": rest["phone"],
        "createdAt": "2026-11-20T09:59:00Z",
        "updatedAt": "2026-11-20T10:00:00Z",
        "cancelledAt": "2026-11-20T11:00:00Z",
        "displayFinancialStatus": "PARTIALLY_REFUNDED",
        "tags": ["vip", "gift"],
        "shippingAddress": {
            "name": address["name"],
            "firstName": address["first_name"],
            "lastName": address["last_name"],
            "company": address["company"],
            "address1": address["address1"],
            "address2": address["address2"],
            "city": address["city"],
            "provinceCode": address["province_code"],
            "zip": address["zip"],
            "countryCodeV2": address["country_code"],
            "phone": address["phone"],
        },
        "shippingLine": {"title": "Colissimo", "code": "COL"},
    }
    lines = [
        {
            "id": f"gid://shopify/LineItem/{item['id']}",
            "sku": item["sku"],
            "name": item["name"],
            "quantity": item["quantity"],
            "currentQuantity": item["current_quantity"],
            "requiresShipping": item["requires_shipping"],
            "isGiftCard": item.get("gift_card", False),
        }
        for item in (green, red, card)
    ]

    polled = to_order(node, lines)

    assert polled == parse_order(rest)
    assert polled.platform_order_id == str(ORDER_ID) and polled.lines[0].platform_line_id == "11111111111111111"
    assert polled.lines[0].quantity == 1 and polled.paid and polled.cancelled
    assert [line.requires_shipping for line in polled.lines] == [True, True, False]
    assert rest_order(node, lines)["financial_status"] == "partially_refunded"


def test_an_order_the_normaliser_refuses_is_reported_not_dropped_nor_blocking() -> None:
    node = {"id": f"gid://shopify/Order/{ORDER_ID}", "updatedAt": "2026-11-20T10:00:00Z", "name": "#1"}
    bad_line = {"id": "gid://shopify/LineItem/1", "sku": "A", "name": "A", "quantity": "many"}

    found = to_order(node, [bad_line])

    assert isinstance(found, UnreadableOrder)
    assert found.platform_order_id == str(ORDER_ID) and "quantity" in found.error
    assert found.updated_at == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


# --- the provider's side ------------------------------------------------------------------------
@ship_later
def test_a_parcel_shipped_but_not_on_the_shop_is_written_once(service, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = service
    fake.orders.put(ORDER_ID, [("IPOD2008GREEN", 2, OURS)], updated_at=now())
    reconcile_shop(shop_id)
    drain(runtime)
    row = order_row(runtime)
    # The provider's webhook was recorded, then the worker died before enqueueing the write.
    parcel = ParcelModel(
        provider_shipment_id="P-1",
        reference=row.provider_reference or "",
        provider_order_id=row.provider_order_id or "",
        carrier="UPS",
        tracking_number="1Z999AA10123456784",
        lines=(ShipmentLine("IPOD2008GREEN", 2),),
        event_time=now(),
    )
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id)
        outcome = apply_provider_event(session, shop, ProviderEvent("lost-1", "shipped", now(), parcel), None, [])  # type: ignore[arg-type]
    assert outcome == "shipment P-1 shipped"
    with transaction(runtime.sessions) as session:  # … some minutes ago
        session.execute(update(Shipment).values(updated_at=datetime.now(UTC) - timedelta(minutes=10)))

    reconcile_shop(shop_id)
    report = drift_report(runtime, shop_id)
    drain(runtime)
    reconcile_shop(shop_id)
    drain(runtime)

    [fulfilment] = fake.state.orders[f"gid://shopify/Order/{ORDER_ID}"].fulfillments
    assert fulfilment.tracking[0]["number"] == "1Z999AA10123456784"
    assert fake.operations["fulfillmentCreate"] == 1
    assert order_row(runtime).state == states.SHIPPED
    assert [e["detail"] for e in missing(report, "parcels_not_on_shop")] == ["parcel with tracking 1Z999AA10123456784"]
    assert report["repaired"]["entries"] == [
        {"order": f"#1001 ({ORDER_ID})", "what": "tracking 1Z999AA10123456784: write to the shop enqueued again"}
    ]
    assert missing(drift_report(runtime, shop_id), "parcels_not_on_shop") == []  # the next run: nothing left


def test_a_parcel_the_provider_shipped_whose_webhook_was_lost_is_recorded_and_written_once(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    fake.orders.put(ORDER_ID, [("IPOD2008GREEN", 2, OURS)], updated_at=now())
    reconcile_shop(shop_id)
    drain_except_webhooks(runtime)  # pushed and shipped; the provider's webhook never reaches Relais
    assert order_row(runtime).shipments == []

    reconcile_shop(shop_id)
    report = drift_report(runtime, shop_id)
    drain(runtime)

    [sent] = provider_orders(server, shop_id)
    [shipped] = sent["shipments"]
    row = order_row(runtime)
    assert [s.provider_shipment_id for s in row.shipments] == [str(shipped["id"])]
    [fulfilment] = fake.state.orders[f"gid://shopify/Order/{ORDER_ID}"].fulfillments
    assert fulfilment.tracking[0]["number"] == shipped["tracking_number"]
    assert [e["order"] for e in missing(report, "parcels_not_recorded")] == [f"#1001 ({ORDER_ID})"]
    assert report["checked"]["provider_orders"] == 1


def drain_except_webhooks(runtime) -> None:  # type: ignore[no-untyped-def]
    """Run the push and the sandbox's shipping, and lose what the provider's webhooks delivered:
    their inbox rows and jobs are gone before any worker takes them."""
    queues = [runtime.queue(name) for name in ("orders", "sandbox")]
    worker = SimpleWorker(queues, connection=runtime.redis)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        worker.work(burst=True, logging_level="WARNING")
        for q in queues:  # retries and the sandbox's delayed shipping, due now
            registry = ScheduledJobRegistry(queue=q)
            for job_id in registry.get_jobs_to_schedule(int(time.time()) + 5):
                registry.remove(job_id)
                q.enqueue_job(q.fetch_job(job_id))
        with transaction(runtime.sessions) as session:
            lost = session.execute(delete(WebhookEvent).where(WebhookEvent.source == "sandbox")).rowcount
        runtime.queue("webhooks").empty()
        if lost:
            return
        time.sleep(0.2)
    raise AssertionError("the sandbox never shipped")


@ship_later
def test_the_drift_report_lists_what_was_missing_what_was_repaired_and_what_is_still_wrong(service, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = service
    fake.orders.put(ORDER_ID, [("IPOD2008GREEN", 1, OURS)], updated_at=now())  # never delivered
    fake.orders.put(ORDER_ID + 1, [("IPOD2008RED", 1, OURS)], updated_at=now(), name="#1002", shipping_address=None)
    reconcile_shop(shop_id)
    drain(runtime)
    with transaction(runtime.sessions) as session:  # the provider refused one for good
        row = session.scalars(select(Order).where(Order.platform_order_id == str(ORDER_ID))).one()
        row.state, row.failure_reason = states.FAILED, "sku IPOD2008GREEN unknown at the provider"

    reconcile_shop(shop_id)
    first = drift_report(runtime, shop_id)
    fake.orders.put(ORDER_ID + 2, [("IPOD2008RED", 1, OURS)], updated_at=now(), name="#1003")
    reconcile_shop(shop_id)
    report = drift_report(runtime, shop_id)

    assert first["missing"] == [
        {
            "kind": "orders_not_pushed",
            "title": "orders Relais should have at the provider but has not pushed",
            "count": 1,
            "entries": [{"order": f"#1001 ({ORDER_ID})", "detail": "failed"}],
        }
    ]
    assert [e["order"] for e in missing(report, "orders_not_received")] == [f"#1003 ({ORDER_ID + 2})"]
    assert report["repaired"]["entries"] == [
        {"order": f"#1003 ({ORDER_ID + 2})", "what": "recorded (ready); push to the provider enqueued"}
    ]
    assert report["still_wrong"]["entries"] == [
        {
            "order": f"#1001 ({ORDER_ID})",
            "what": "not at the provider",
            "reason": "sku IPOD2008GREEN unknown at the provider",
        }
    ]
    assert report["summary"].endswith("2 missing, 1 repaired, 1 still wrong")
    page = requests.get(signed_link(runtime.settings, shop_id), timeout=10)  # the settings page shows it
    assert page.status_code == 200
    assert "Reconciliation" in page.text and report["summary"] in page.text
    assert "not at the provider (sku IPOD2008GREEN unknown at the provider)" in page.text


@ship_later
def test_flask_reconcile_runs_it_now_and_prints_the_report(service, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = service
    fake.orders.put(ORDER_ID, [("IPOD2008GREEN", 1, OURS)], updated_at=now())
    cli = create_app(runtime=runtime).test_cli_runner()

    result = cli.invoke(args=["reconcile", SHOP])

    assert result.exit_code == 0, result.output
    assert f"Drift report for {SHOP} (shopify → sandbox)" in result.output
    assert "Missing: orders on the shop that Relais never received (1)" in result.output
    assert f"  #1001 ({ORDER_ID}): recorded (ready); push to the provider enqueued" in result.output
    assert "Still wrong (0): none" in result.output
    assert "Shop side: 1 orders checked, 1 found missing" in result.output
    assert drift_report(runtime, shop_id)["repaired"]["count"] == 1  # stored for the settings page
    drain(runtime)
    assert len(provider_orders(server, shop_id)) == 1
    assert cli.invoke(args=["reconcile", "no-such.myshopify.com"]).exit_code != 0
