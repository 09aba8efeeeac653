"""The stock sync streamed: the provider's levels planned a batch at a time, written on their own thread.

End to end over real HTTP (the sandbox warehouse → the schema-checked fake Shopify), with the
batch size made small so that a few hundred SKUs cross many batches: what is written, in how
many requests, and what the run records must not depend on where the batches fall.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import func, select

from integrations.errors import RetryableError
from integrations.model import InventoryLevel
from jobs import stock
from jobs.stock import run
from jobs.stock_compute import sku_batches
from jobs.stock_record import RunRecord
from store.db import transaction
from store.shops import upsert_shop
from store.stock_models import StockBelief, StockSyncRun
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.test_stock_sync import OURS, SHOP, WAREHOUSE_TOKEN, warehouse


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


@pytest.fixture
def small_batches(monkeypatch):  # type: ignore[no-untyped-def]
    """Batches of 40 levels: 600 SKUs cross 15 of them (the production size is 1,000)."""
    monkeypatch.setattr(stock, "BATCH", 40)


def level(sku: str, location: str = "W1", fulfillable: int = 1) -> InventoryLevel:
    return InventoryLevel(sku=sku, location=location, on_hand=fulfillable, fulfillable=fulfillable)


def test_batches_never_split_a_skus_adjacent_levels() -> None:
    levels = [level("A"), level("A", "W2"), level("B"), level("C"), level("C", "W2"), level("C", "W3"), level("D")]

    batches = list(sku_batches(iter(levels), 2))

    assert [[lv.sku for lv in batch] for batch in batches] == [["A", "A"], ["B", "C", "C", "C"], ["D"]]
    assert [lv for batch in batches for lv in batch] == levels


def test_the_run_record_counts_everything_and_keeps_the_first_entries_of_detail() -> None:
    record = RunRecord(limit=3)
    record.read([level(f"S{n}") for n in range(5)])
    record.planned({"L": {f"S{n}": n for n in range(5)}}, unchanged=2)
    record.wrote("L", {"S0": 0, "S1": 1}, calls=1)
    record.wrote("L", {"S2": 2, "S3": 3}, calls=1)
    record.skip({"X1": "unknown", "X2": "unknown", "X3": "duplicate", "X4": "unknown"})
    record.skip({"X1": "duplicate"})  # skipped again: counted once, with its last reason

    read = record.as_read({"S0": 1})

    assert sum(len(v) for v in read["provider"].values()) == 3 and len(read["targets"]["L"]) == 3
    assert record.written == {"L": {"S0": 0, "S1": 1, "S2": 2}} and record.calls == 2
    assert len(record.skipped) == 3 and record.skipped["X1"] == "duplicate"
    assert read["counts"] == {
        "levels": 5,
        "targets": 5,
        "written": 4,
        "skipped": 4,
        "unchanged": 2,
        "skipped_by_reason": {"unknown": 2, "duplicate": 2},
        "detail_limit": 3,
    }


def test_changes_from_many_batches_are_gathered_into_full_requests(shop, fake, small_batches) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    skus = [f"SKU-{n:04}" for n in range(600)]
    for sku in skus:
        fake.inventory.add_item(sku, OURS, available=0)
    warehouse(runtime, **dict.fromkeys(skus, 5))

    first = run(runtime, shop_id)

    # 15 batches of 40, still 3 requests of at most 250 (not one per batch)
    assert (first.status, first.written, first.calls) == ("ok", 600, 3), first.message
    assert {fake.inventory.available(sku, OURS) for sku in skus} == {5}
    changed = skus[::100]  # 1%: one SKU in every sixth batch
    warehouse(runtime, **dict.fromkeys(changed, 7))

    again = run(runtime, shop_id)

    assert (again.written, again.calls, again.unchanged) == (6, 1, 594)
    assert {sku: fake.inventory.available(sku, OURS) for sku in changed} == dict.fromkeys(changed, 7)
    with runtime.sessions() as session:
        row = session.scalars(select(StockSyncRun).order_by(StockSyncRun.id.desc())).first()
        beliefs = session.scalar(select(func.count(StockBelief.id)).where(StockBelief.quantity == 7))
    assert row.read["counts"]["levels"] == 600 and row.read["counts"]["written"] == 6
    assert row.written == {OURS: dict.fromkeys(changed, 7)} and beliefs == 6


def test_a_sku_no_longer_reported_goes_to_zero_and_unknown_skus_are_looked_up_after_the_stream(  # type: ignore[no-untyped-def]
    shop, fake, small_batches
) -> None:
    _, runtime, shop_id = shop
    skus = [f"SKU-{n:04}" for n in range(100)]
    for sku in skus:
        fake.inventory.add_item(sku, OURS, available=0)
    warehouse(runtime, **dict.fromkeys(skus, 3))
    assert run(runtime, shop_id).written == 100
    # The warehouse stops listing one SKU (sold out), and a product the map has never seen arrives.
    with transaction(runtime.sessions) as session:
        from sandbox.api import account_of
        from sandbox.models import SandboxStock

        gone = session.scalars(
            select(SandboxStock).where(
                SandboxStock.account == account_of(WAREHOUSE_TOKEN), SandboxStock.sku == "SKU-0050"
            )
        ).one()
        session.delete(gone)
    fake.inventory.add_item("NEW-1", OURS, available=0)
    warehouse(runtime, **{"NEW-1": 9})

    again = run(runtime, shop_id)

    assert again.status == "ok" and again.skipped == 0, again.message
    assert fake.inventory.available("SKU-0050", OURS) == 0  # written before, not reported: no stock
    assert fake.inventory.available("NEW-1", OURS) == 9  # looked up after the stream, then written
    assert again.written == 2 and again.unchanged == 99


def test_a_write_failing_mid_stream_fails_the_run_without_hanging(shop, fake, small_batches) -> None:  # type: ignore[no-untyped-def]
    _, runtime, shop_id = shop
    skus = [f"SKU-{n:04}" for n in range(600)]
    for sku in skus:
        fake.inventory.add_item(sku, OURS, available=5)
    warehouse(runtime, **dict.fromkeys(skus, 5))
    assert run(runtime, shop_id).written == 0  # builds the map: the shop shows 5 already
    warehouse(runtime, **dict.fromkeys(skus, 6))
    fake.fail_next(502, count=3)  # the first write request's three sends all fail

    with pytest.raises(RetryableError):
        run(runtime, shop_id)

    with runtime.sessions() as session:
        row = session.scalars(select(StockSyncRun).order_by(StockSyncRun.id.desc())).first()
    assert row.status == "failed" and row.error
    assert run(runtime, shop_id).written == 600  # the next run writes everything


def test_the_sandbox_lists_stock_a_page_at_a_time(shop) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _ = shop
    warehouse(runtime, **{f"P-{n}": n for n in range(5)})
    url = f"{server.url}/sandbox/api/inventory"
    headers = {"Authorization": f"Bearer {WAREHOUSE_TOKEN}"}

    first = requests.get(url, params={"limit": 2}, headers=headers, timeout=5).json()
    second = requests.get(url, params={"limit": 2, "after": first["next"]}, headers=headers, timeout=5).json()
    last = requests.get(url, params={"limit": 2, "after": second["next"]}, headers=headers, timeout=5).json()

    assert [i["sku"] for i in first["items"] + second["items"] + last["items"]] == [f"P-{n}" for n in range(5)]
    assert last["next"] is None
    assert len(requests.get(url, headers=headers, timeout=5).json()["items"]) == 5  # no limit: all at once


def test_reading_ahead_hands_over_every_batch_in_order_and_raises_a_readers_error() -> None:
    from jobs.stock_write import read_ahead

    assert list(read_ahead(iter([[1], [2], [3]]), depth=1)) == [[1], [2], [3]]

    def broken() -> Iterator[list[int]]:
        yield [1]
        raise RetryableError("the provider broke off")

    got: list[list[int]] = []
    with pytest.raises(RetryableError, match="broke off"):
        for batch in read_ahead(broken()):
            got.append(batch)
    assert got == [[1]]
