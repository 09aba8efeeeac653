"""Stock to a WooCommerce store: absolute quantities in batches of at most 100, variations through
their parent's batch, per-item errors inside the 200 reported, SKUs resolved once and cached."""

from __future__ import annotations

import pytest

from integrations.platforms import StockChange
from jobs.parties import platform_for
from jobs.stock import run
from sandbox.api import account_of
from sandbox.models import SandboxStock
from store.db import transaction
from store.models import Shop
from tests.conftest import drain
from tests.woocommerce.conftest import SANDBOX_TOKEN, register


def platform(service):  # type: ignore[no-untyped-def]
    with service.runtime.sessions() as session:
        return platform_for(service.runtime, session.get(Shop, service.shop_id))


def test_250_stock_changes_go_out_in_3_batch_calls_and_an_item_error_is_reported(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo, webhooks=False)
    for n in range(250):
        woo.state.add_product(f"SKU-{n:03}", stock=0)
    woo.refuse["SKU-042"] = ("woocommerce_rest_invalid_stock", "Stock is locked by another plugin.")
    changes = [StockChange(f"SKU-{n:03}", n) for n in range(250)] + [StockChange("NOPE", 5)]
    result = platform(service).write_stock("", changes, "run-1-1-x")
    assert len(woo.calls("POST", "/wc/v3/products/batch")) == 3
    assert len(result.written) == 249 and result.written["SKU-249"] == 249
    assert result.skipped == {
        "SKU-042": "refused: woocommerce_rest_invalid_stock: Stock is locked by another plugin.",
        "NOPE": "unknown SKU",
    }
    assert woo.state.by_sku("SKU-100")["stock_quantity"] == 100
    assert woo.state.by_sku("SKU-100")["manage_stock"] is True
    lookups = len(woo.calls("GET", "/wc/v3/products"))
    assert lookups == 7  # 251 SKUs looked up 40 at a time, then cached:
    platform(service).write_stock("", changes[:10], "run-2-1-x")
    assert len(woo.calls("GET", "/wc/v3/products")) == lookups


def test_variations_are_written_through_their_parents_batch(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo, webhooks=False)
    parent = woo.state.add_product("HOODIE", manage_stock=False)
    small = woo.state.add_product("HOODIE-S", stock=1, parent_id=parent)
    inherited = woo.state.add_product("HOODIE-L", parent_id=parent)
    woo.state.products[inherited]["manage_stock"] = "parent"
    simple = woo.state.add_product("CAP", stock=1)
    result = platform(service).write_stock(
        "", [StockChange("HOODIE-S", 7), StockChange("CAP", 3), StockChange("HOODIE-L", 4)], "k"
    )
    assert result.written == {"HOODIE-S": 7, "CAP": 3}
    assert result.skipped["HOODIE-L"].startswith("not managed")
    assert woo.calls("POST", f"/wc/v3/products/{parent}/variations/batch")
    assert woo.calls("POST", "/wc/v3/products/batch")
    assert woo.state.products[small]["stock_quantity"] == 7 and woo.state.products[simple]["stock_quantity"] == 3


@pytest.mark.parametrize("woo_options", [{"batch_limit": 40}])
def test_a_store_that_takes_fewer_items_per_batch_gets_smaller_batches(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo, webhooks=False)
    for n in range(120):
        woo.state.add_product(f"S{n}", stock=0)
    result = platform(service).write_stock("", [StockChange(f"S{n}", 1) for n in range(120)], "k")
    assert len(result.written) == 120
    # 100 → 413, 50 → 413, then 25 a batch: 5 accepted batches, and the size is kept for next time.
    assert len(woo.calls("POST", "/wc/v3/products/batch")) == 2 + 5
    platform(service).write_stock("", [StockChange(f"S{n}", 2) for n in range(50)], "k2")
    assert len(woo.calls("POST", "/wc/v3/products/batch")) == 7 + 2


def test_a_quantity_that_moved_since_the_sync_read_it_is_reported_stale_not_written(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo, webhooks=False)
    woo.state.add_product("A", stock=5)
    moved = woo.state.add_product("B", stock=5)
    woo.state.products[moved]["stock_quantity"] = 4  # a sale the sync has not seen
    result = platform(service).write_stock("", [StockChange("A", 9, expected=5), StockChange("B", 9, expected=5)], "k")
    assert result.written == {"A": 9}
    assert result.stale == {"B": 4}
    assert woo.state.products[moved]["stock_quantity"] == 4


def test_stock_items_lists_every_sku_with_its_item_id_and_quantity(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo, webhooks=False)
    parent = woo.state.add_product("TEE", manage_stock=False)
    variation = woo.state.add_product("TEE-M", stock=3, parent_id=parent)
    woo.state.add_product("LOOSE", manage_stock=False)
    items = {i.sku: i for i in platform(service).stock_items("")}
    assert items["TEE-M"].item_id == f"{parent}/{variation}" and items["TEE-M"].quantity == 3
    assert items["LOOSE"].managed is False and items["LOOSE"].quantity is None
    assert "TEE" not in items  # a variable product holds no stock of its own here
    assert [i.sku for i in platform(service).stock_items("", ["TEE-M"])] == ["TEE-M"]


def test_our_stock_write_echoing_back_as_product_updated_is_dropped(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    woo.state.add_product("A", stock=0)
    woo.deliver()
    stored = service.inbox()
    platform(service).write_stock("", [StockChange("A", 12)], "k")
    assert woo.deliver() == [200]
    assert service.inbox() == stored


def test_a_product_updated_delivery_refreshes_what_we_know_of_its_sku(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    pid = woo.state.add_product("OLD-SKU", stock=1)
    woo.state.products[pid]["sku"] = "NEW-SKU"  # the merchant renames the SKU in the admin
    woo.state.fire("product.updated", pid)
    assert woo.deliver() == [200]
    drain(service.runtime)
    result = platform(service).write_stock("", [StockChange("NEW-SKU", 4)], "k")
    assert result.written == {"NEW-SKU": 4}
    assert woo.calls("GET", "/wc/v3/products") == []  # known from the delivery: no lookup


def test_the_stock_sync_job_writes_the_warehouses_stock_to_a_woocommerce_store(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo, webhooks=False, location_id="store")
    for n in range(150):
        woo.state.add_product(f"W-{n:03}", stock=0)
    with transaction(service.runtime.sessions) as session:
        for n in range(150):
            session.add(SandboxStock(account=account_of(SANDBOX_TOKEN), sku=f"W-{n:03}", on_hand=7, committed=0))
    outcome = run(service.runtime, service.shop_id)
    assert (outcome.status, outcome.written) == ("ok", 150)
    assert {woo.state.by_sku(f"W-{n:03}")["stock_quantity"] for n in range(150)} == {7}
    assert len(woo.calls("POST", "/wc/v3/products/batch")) == 2
    assert run(service.runtime, service.shop_id).written == 0  # nothing changed: nothing written
