"""The stock sync end to end: the sandbox warehouse's stock → the fake Shopify, over real HTTP.

The service runs on a real port (``live``) with the sandbox 3PL as its provider; Shopify is the
schema-checked, cost-metered fake with inventory items and levels, compare-and-set and the
``@idempotent`` directive.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from app import create_app
from integrations.errors import RetryableError
from jobs import states
from jobs.stock import enqueue_due, run
from sandbox.api import account_of
from sandbox.models import SandboxStock
from store.db import transaction
from store.models import Order, OrderLine, OrderTransition, Shop, utcnow
from store.shops import upsert_shop
from store.stock_models import SkuMapEntry, StockSyncRun
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_webhooks import body_of, headers_for

SHOP = "stock.myshopify.com"
OURS = "gid://shopify/Location/64500000001"
ELSEWHERE = "gid://shopify/Location/64500000002"
WAREHOUSE_TOKEN = "sandbox-stock-account"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin("shpat_stock", restore_rate=100_000, maximum=100_000).start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings, fake):  # type: ignore[no-untyped-def]
    return settings.with_(shopify_admin_url=fake.url + "/{shop}")


@pytest.fixture
def shop(live):  # type: ignore[no-untyped-def]
    server, runtime = live
    with transaction(runtime.sessions) as session:
        row = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": "shpat_stock"},
            "sandbox",
            {"token": WAREHOUSE_TOKEN},
            {"location_id": OURS},
        )
        shop_id = row.id
    return server, runtime, shop_id


def warehouse(runtime, **on_hand: int) -> None:  # type: ignore[no-untyped-def]
    """Set the sandbox warehouse's stock of these SKUs (nothing committed)."""
    account = account_of(WAREHOUSE_TOKEN)
    with transaction(runtime.sessions) as session:
        rows = {r.sku: r for r in session.scalars(select(SandboxStock).where(SandboxStock.account == account))}
        for sku, units in on_hand.items():
            row = rows.get(sku) or SandboxStock(account=account, sku=sku, committed=0)
            row.on_hand = units
            session.add(row)


def order(runtime, shop_id, state: str, lines: dict[str, int], *, paid=True, cancelled=False, pushed_ago=None):  # type: ignore[no-untyped-def]
    """An order Relais holds, received an hour ago (before any stock was read)."""
    with transaction(runtime.sessions) as session:
        row = Order(
            shop_id=shop_id,
            platform_order_id=str(len(session.scalars(select(Order.id)).all()) + 1),
            state=state,
            paid=paid,
            cancelled=cancelled,
            created_at=utcnow() - timedelta(hours=1),
        )
        row.lines = [OrderLine(platform_line_id=s, sku=s, quantity=q) for s, q in lines.items()]
        session.add(row)
        session.flush()
        if pushed_ago is not None:
            session.add(OrderTransition(order_id=row.id, to_state=states.PUSHED, at=utcnow() - pushed_ago))


def test_600_changed_skus_are_written_in_3_calls_and_a_second_run_writes_nothing(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    skus = [f"SKU-{n:04}" for n in range(600)]
    for sku in skus:
        fake.inventory.add_item(sku, OURS, available=0)
    warehouse(runtime, **dict.fromkeys(skus, 5))

    first = run(runtime, shop_id)

    assert (first.status, first.written, first.calls) == ("ok", 600, 3)
    assert fake.operations["inventorySetQuantities"] == 3
    assert {fake.inventory.available(sku, OURS) for sku in skus} == {5}

    second = run(runtime, shop_id)

    assert (second.written, second.calls, second.unchanged) == (0, 0, 600)
    assert fake.operations["inventorySetQuantities"] == 3


def test_only_what_changed_at_the_warehouse_is_written_next_time(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    for sku in ("A", "B", "C"):
        fake.inventory.add_item(sku, OURS, available=0)
    warehouse(runtime, A=1, B=2, C=3)
    run(runtime, shop_id)
    warehouse(runtime, B=7)

    again = run(runtime, shop_id)

    assert (again.written, again.unchanged) == (1, 2)
    assert [g["changes"] for g in fake.inventory.groups][-1] == [
        {"item": fake.inventory.item("B").id, "location": OURS, "delta": 5, "after": 7}
    ]


def test_a_sale_between_read_and_write_is_detected_and_never_oversold(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    fake.inventory.add_item("A", OURS, available=10)
    warehouse(runtime, A=20)
    # A customer buys one between the sync's read and its write; Relais has no order for it yet.
    fake.inventory.before_next_write(lambda inv: inv.sell("A", 1, OURS))

    first = run(runtime, shop_id)

    assert first.written == 1 and fake.inventory.available("A", OURS) == 19  # not 20: that unit is sold
    assert fake.operations["inventorySetQuantities"] == 2  # refused as stale, read back, sent again

    # The order arrives: it is reserved now, and the shop already shows the right figure.
    order(runtime, shop_id, states.RECEIVED, {"A": 1})
    run(runtime, shop_id)
    assert fake.inventory.available("A", OURS) == 19


def test_a_sale_relais_has_received_is_expected_and_not_refused(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    fake.inventory.add_item("A", OURS, available=0)
    warehouse(runtime, A=10)
    run(runtime, shop_id)
    fake.inventory.sell("A", 2, OURS)  # the shop takes 2 off; Relais gets the order
    with transaction(runtime.sessions) as session:
        row = Order(shop_id=shop_id, platform_order_id="77", state=states.RECEIVED, paid=True)
        row.lines = [OrderLine(platform_line_id="1", sku="A", quantity=2)]
        session.add(row)
    warehouse(runtime, A=15)  # a delivery reached the warehouse

    again = run(runtime, shop_id)

    assert again.written == 1 and fake.inventory.available("A", OURS) == 13
    assert fake.operations["inventorySetQuantities"] == 2  # no refusal: the sale was expected


def test_reserved_orders_and_buffers_are_taken_off_what_the_shop_shows(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    for sku in "ABCDE":
        fake.inventory.add_item(sku, OURS, available=0)
    warehouse(runtime, A=10, B=10, C=2, D=1, E=0)
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Shop)
            .where(Shop.id == shop_id)
            .values(settings={"location_id": OURS, "safety_buffer": 1, "sku_buffers": {"C": 0}})
        )
    order(runtime, shop_id, states.RECEIVED, {"A": 2})
    order(runtime, shop_id, states.RECEIVED, {"A": 1}, paid=False)  # the shop counts it as committed too
    order(runtime, shop_id, states.HELD, {"A": 1})
    order(runtime, shop_id, states.RECEIVED, {"A": 5}, cancelled=True)  # not reserved
    order(runtime, shop_id, states.PUSHED, {"B": 3}, pushed_ago=timedelta(minutes=2))  # the provider may lag
    order(runtime, shop_id, states.PUSHED, {"B": 4}, pushed_ago=timedelta(minutes=30))  # counted there by now
    order(runtime, shop_id, states.READY, {"C": 1, "E": 3})

    run(runtime, shop_id)

    shows = {sku: fake.inventory.available(sku, OURS) for sku in "ABCDE"}
    assert shows == {"A": 10 - 4 - 1, "B": 10 - 3 - 1, "C": 2 - 1, "D": 0, "E": 0}


def test_unknown_duplicate_and_unmanaged_skus_are_reported_never_guessed(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    fake.inventory.add_item("TWICE", OURS, available=1)
    fake.inventory.add_item("TWICE", OURS, available=1)
    fake.inventory.add_item("UNTRACKED", OURS, available=1, tracked=False)
    fake.inventory.add_item("ELSEWHERE", ELSEWHERE, available=1)
    fake.inventory.add_item("OK", OURS, available=1)
    warehouse(runtime, TWICE=5, UNTRACKED=5, ELSEWHERE=5, NOPE=5, OK=5)

    cli = create_app(runtime=runtime).test_cli_runner()
    synced = cli.invoke(args=["stock", "sync", str(shop_id)])

    assert synced.exit_code == 0, synced.output
    assert "1 written, 0 unchanged, 4 skipped, 1 write call(s)" in synced.output
    assert [fake.inventory.items[i].sku for g in fake.inventory.groups for i in (c["item"] for c in g["changes"])] == [
        "OK"
    ]
    report = cli.invoke(args=["stock", "report", SHOP])
    assert report.exit_code == 0, report.output
    assert "duplicate SKU: 2 items of the shop have it: 1" in report.output
    assert "unknown SKU: no item of the shop has it: 1" in report.output and "NOPE" in report.output
    assert "not managed" in report.output and f"not stocked at location {OURS}" in report.output
    assert "OK → 5" in report.output


def test_a_catalogue_delivery_updates_the_sku_map_and_the_next_sync_follows_it(shop, fake) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id = shop
    first_item = fake.inventory.add_item("A", OURS, available=0)
    warehouse(runtime, A=4)
    run(runtime, shop_id)
    # The merchant adds a second variant with the same SKU: Shopify sends inventory_items/create.
    second = fake.inventory.add_item("A", OURS, available=0)
    body = body_of({"id": int(second.legacy_id), "sku": "A", "tracked": True})
    headers = headers_for(SHOP, "inventory_items/create", body, SHOPIFY_SECRET, "wh-stock-1")
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    drain(runtime)

    with runtime.sessions() as session:
        items = session.scalars(select(SkuMapEntry.item_id).where(SkuMapEntry.sku == "A")).all()
    assert sorted(items) == sorted([first_item.id, second.id])
    warehouse(runtime, A=9)
    outcome = run(runtime, shop_id)
    assert outcome.written == 0
    assert [i.levels[OURS]["available"] for i in (first_item, second)] == [4, 0]
    with runtime.sessions() as session:
        last = session.scalars(select(StockSyncRun).order_by(StockSyncRun.id.desc())).first()
        assert last.skipped == {"A": "duplicate SKU: 2 items of the shop have it"}


def test_the_scheduler_enqueues_each_due_shop_once_under_one_job_id(shop) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    assert enqueue_due() == 1
    assert enqueue_due() == 0  # already queued: runs never overlap
    assert runtime.queue("stock").job_ids == [f"stock-sync-{shop_id}"]
    warehouse(runtime, A=1)
    drain(runtime)
    assert enqueue_due() == 0  # ran just now; due again after stock_interval_minutes


def test_a_provider_reporting_nothing_fails_the_run_and_writes_nothing(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    fake.inventory.add_item("A", OURS, available=3)

    outcome = run(runtime, shop_id)

    assert outcome.status == "failed" and "no stock at all" in outcome.message
    assert fake.inventory.available("A", OURS) == 3 and fake.inventory.writes == 0


def test_a_write_whose_answers_are_lost_is_read_back_next_time_not_misread_as_sales(shop, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    fake.inventory.add_item("A", OURS, available=10)
    warehouse(runtime, A=10)
    run(runtime, shop_id)  # builds the map: the shop shows 10, nothing to write
    warehouse(runtime, A=6)
    # Shopify applies the write, and every answer (the first and both re-sends) is lost.
    fake.fail_next(502, count=3, execute_first=True)

    with pytest.raises(RetryableError):
        run(runtime, shop_id)

    assert fake.inventory.available("A", OURS) == 6 and len(fake.inventory.groups) == 1  # applied once
    again = run(runtime, shop_id)
    # Read back: the shop shows 6, which is the target. No dip to 2 from reading our own write as 4 sales.
    assert again.status == "ok" and fake.inventory.available("A", OURS) == 6
    assert len(fake.inventory.groups) == 1
