"""Several ShipBob fulfilment centres mapped onto several shop locations: each location shows the
sum of the centres that feed it, and the SKU map is read once per location, not at every sync.

ShipBob is the fake speaking its 2026-07 API (products, levels per fulfilment centre); Shopify the
schema-checked fake with an item stocked at two locations.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from jobs.stock import run
from store.db import transaction
from store.shops import upsert_shop
from tests.fakes.shipbob import FakeShipBob, start_fake
from tests.fakes.shopify_admin import FakeShopifyAdmin

SHOP = "mapped.myshopify.com"
MAIN = "gid://shopify/Location/64500000001"
DEPOT = "gid://shopify/Location/64500000002"


@pytest.fixture
def shipbob() -> Iterator[FakeShipBob]:
    server = start_fake(token=f"pat-{uuid.uuid4().hex}")
    yield server
    server.stop()


@pytest.fixture
def shopify() -> Iterator[FakeShopifyAdmin]:
    fake = FakeShopifyAdmin("shpat_mapped", restore_rate=100_000, maximum=100_000).start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings, shipbob, shopify):  # type: ignore[no-untyped-def]
    return settings.with_(shipbob_api_url=shipbob.url, shopify_admin_url=shopify.url + "/{shop}")


def test_centres_mapped_to_two_locations_add_up_at_each_and_the_map_is_not_read_again(
    runtime, shipbob, shopify
) -> None:  # type: ignore[no-untyped-def]
    options = {
        "token": shipbob.token,
        "channel_id": str(shipbob.channel_id),
        "webhook_secret": "whsec_" + "B" * 32,
        "rate_limit": "1000",
    }
    mapping = {"1": MAIN, "2": MAIN, "3": DEPOT}  # Cicero and Moreno Valley feed the store, Bethlehem the depot
    with transaction(runtime.sessions) as session:
        shop_id = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": "shpat_mapped"},
            "shipbob",
            options,
            {"stock_locations": mapping},
        ).id
    shopify.places.add_location(MAIN, "Main store")
    shopify.places.add_location(DEPOT, "Lyon depot")
    shopify.inventory.add_item("MUG", MAIN, available=0)
    shopify.inventory.item("MUG").levels[DEPOT] = {"available": 0, "committed": 0}
    inventory_id = shipbob.state.add_product("MUG", levels={1: (5, 5), 2: (3, 3), 3: (4, 4)})

    first = run(runtime, shop_id)

    assert (first.status, first.written) == ("ok", 2), first.message
    assert shopify.inventory.available("MUG", MAIN) == 8 and shopify.inventory.available("MUG", DEPOT) == 4
    map_reads = shopify.operations["inventoryItems"]
    assert map_reads == 2  # one listing per location

    shipbob.state.stock[inventory_id][3] = (6, 6)
    second = run(runtime, shop_id)

    assert (second.status, second.written, second.unchanged) == ("ok", 1, 1)
    assert shopify.inventory.available("MUG", DEPOT) == 6 and shopify.inventory.available("MUG", MAIN) == 8
    assert shopify.operations["inventoryItems"] == map_reads  # the map is kept per location


def test_a_catalogue_delivery_keeps_the_item_writable_at_every_mapped_location(live, shipbob, shopify) -> None:  # type: ignore[no-untyped-def]
    import requests

    from tests.conftest import SHOPIFY_SECRET, drain
    from tests.fakes.shopify_webhooks import body_of, headers_for

    server, runtime = live
    options = {
        "token": shipbob.token,
        "channel_id": str(shipbob.channel_id),
        "webhook_secret": "whsec_" + "B" * 32,
        "rate_limit": "1000",
    }
    with transaction(runtime.sessions) as session:
        shop_id = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": "shpat_mapped"},
            "shipbob",
            options,
            {"stock_locations": {"1": MAIN, "3": DEPOT}},
        ).id
    item = shopify.inventory.add_item("MUG", MAIN, available=0)
    item.levels[DEPOT] = {"available": 0, "committed": 0}
    inventory_id = shipbob.state.add_product("MUG", levels={1: (5, 5), 3: (4, 4)})
    assert run(runtime, shop_id).written == 2

    body = body_of({"id": int(item.id.rsplit("/", 1)[1]), "sku": "MUG", "tracked": True})
    headers = headers_for(SHOP, "inventory_items/update", body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    drain(runtime)
    shipbob.state.stock[inventory_id] = {1: (7, 7), 3: (2, 2)}
    reads = shopify.operations["inventoryItems"]

    after = run(runtime, shop_id)

    assert (after.written, after.skipped) == (2, 0), after.message
    assert shopify.operations["inventoryItems"] == reads  # the delivery kept the map whole at both
    assert shopify.inventory.available("MUG", MAIN) == 7 and shopify.inventory.available("MUG", DEPOT) == 2
