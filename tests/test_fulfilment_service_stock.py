"""In fulfilment-service mode the warehouse's stock goes to the service's own location, whatever
other locations the shop has."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.fulfilment_service import ensure_now
from jobs.stock import run
from sandbox.api import account_of
from sandbox.models import SandboxStock
from store.db import transaction
from store.shops import upsert_shop
from tests.fakes.shopify_admin import FakeShopifyAdmin

SHOP = "stock-service.myshopify.com"
OWN = "gid://shopify/Location/64500000001"
ACCOUNT = "sandbox-service-stock"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin("shpat_stock", restore_rate=100_000, maximum=100_000).start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings, fake):  # type: ignore[no-untyped-def]
    return settings.with_(shopify_admin_url=fake.url + "/{shop}")


def test_the_stock_sync_writes_to_the_fulfilment_services_location_only(live, fake) -> None:  # type: ignore[no-untyped-def]
    _, runtime = live
    with transaction(runtime.sessions) as session:
        shop_id = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": "shpat_stock"},
            "sandbox",
            {"token": ACCOUNT},
            {"fulfilment_mode": "service"},
        ).id
        session.add(SandboxStock(account=account_of(ACCOUNT), sku="MUG", on_hand=7, committed=0))
    ensure_now(runtime, shop_id)
    [service] = fake.services.services
    fake.inventory.add_item("MUG", OWN, available=3)  # the merchant's own stock of it
    fake.inventory.item("MUG").levels[service.location_id] = {"available": 0, "committed": 0}

    result = run(runtime, shop_id)

    assert (result.status, result.written) == ("ok", 1)
    assert fake.inventory.available("MUG", service.location_id) == 7
    assert fake.inventory.available("MUG", OWN) == 3
