"""Stock written to Shopify by compare-and-set, against the fake GraphQL Admin on a real port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests

from config import Settings
from integrations.errors import InvalidRequestError
from integrations.platforms import StockChange
from integrations.shopify.admin import AdminClient
from integrations.shopify.inventory import SET_QUANTITIES, set_available, stock_items
from tests.fakes.shopify_admin import FakeShopifyAdmin

OURS = "gid://shopify/Location/64500000001"
ELSEWHERE = "gid://shopify/Location/64500000002"


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin("shpat_stock", restore_rate=10_000, maximum=10_000).start()
    yield server
    server.stop()


@pytest.fixture
def client(fake: FakeShopifyAdmin) -> AdminClient:
    settings = Settings(environment="test", shopify_admin_url=fake.url + "/{shop}")
    return AdminClient(f"{uuid.uuid4().hex[:12]}.myshopify.com", "shpat_stock", settings, backoff=0.01)


def change(fake: FakeShopifyAdmin, sku: str, quantity: int, expected: int | None) -> StockChange:
    return StockChange(sku=sku, quantity=quantity, expected=expected, item_id=fake.inventory.item(sku).id)


def test_600_changes_are_written_in_3_calls_with_a_key_and_a_reference(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    for n in range(600):
        fake.inventory.add_item(f"SKU-{n:04}", OURS, available=5)
    changes = [change(fake, f"SKU-{n:04}", 7, 5) for n in range(600)]

    result = set_available(client, OURS, changes, "41-0-abc")

    assert result.calls == 3 and fake.operations["inventorySetQuantities"] == 3
    assert len(result.written) == 600 and not result.skipped and not result.stale
    assert [len(g["changes"]) for g in fake.inventory.groups] == [250, 250, 100]
    assert {g["referenceDocumentUri"] for g in fake.inventory.groups} == {"gid://relais/StockSync/41"}
    assert {g["reason"] for g in fake.inventory.groups} == {"correction"}
    assert fake.inventory.available("SKU-0599", OURS) == 7


def test_a_sale_between_read_and_write_is_refused_read_back_and_returned_as_stale(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    fake.inventory.add_item("A", OURS, available=10)
    fake.inventory.add_item("B", OURS, available=4)
    fake.inventory.before_next_write(lambda inv: inv.sell("A", 1, OURS))

    result = set_available(client, OURS, [change(fake, "A", 12, 10), change(fake, "B", 6, 4)], "7-0-x")

    assert result.stale == {"A": 9} and result.written == {"B": 6}
    assert fake.inventory.available("A", OURS) == 9  # not forced
    assert fake.inventory.available("B", OURS) == 6
    assert result.calls == 2  # the refused request, then B alone


def test_the_same_key_and_input_changes_nothing_the_second_time(fake: FakeShopifyAdmin, client: AdminClient) -> None:
    fake.inventory.add_item("A", OURS, available=3)
    fake.fail_next(502, execute_first=True)  # Shopify applies it, the answer is lost

    result = set_available(client, OURS, [change(fake, "A", 8, 3)], "9-0-y")

    # Sent again with the same key: Shopify answers the first outcome instead of a stale refusal.
    assert result.written == {"A": 8} and not result.stale
    assert fake.inventory.writes == 2 and len(fake.inventory.groups) == 1
    assert fake.inventory.available("A", OURS) == 8


def test_a_write_without_an_idempotency_key_is_refused_as_shopify_does_from_2026_04(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    fake.inventory.add_item("A", OURS, available=3)
    document = SET_QUANTITIES.replace(" @idempotent(key: $key)", "").replace(", $key: String!", "")
    quantities = [
        {"inventoryItemId": fake.inventory.item("A").id, "locationId": OURS, "quantity": 1, "changeFromQuantity": 3}
    ]
    variables = {"input": {"name": "available", "reason": "correction", "quantities": quantities}}
    with pytest.raises(InvalidRequestError, match="idempotency key"):
        client.mutate(document, variables, "inventorySetQuantities")
    assert fake.inventory.available("A", OURS) == 3


def test_more_than_250_quantities_in_one_request_are_refused(fake: FakeShopifyAdmin) -> None:
    item = fake.inventory.add_item("A", OURS, available=0)
    quantities = [{"inventoryItemId": item.id, "locationId": OURS, "quantity": 1, "changeFromQuantity": None}] * 251
    body = {
        "query": SET_QUANTITIES,
        "variables": {"key": "k", "input": {"name": "available", "reason": "correction", "quantities": quantities}},
    }
    answer = requests.post(
        f"{fake.url}/x/admin/api/2026-10/graphql.json", json=body, headers={"X-Shopify-Access-Token": "shpat_stock"}
    ).json()
    assert answer["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    assert fake.inventory.groups == []


def test_an_item_shopify_no_longer_has_is_skipped_and_the_rest_written(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    fake.inventory.add_item("A", OURS, available=1)
    gone = StockChange("GONE", 5, 0, item_id="gid://shopify/InventoryItem/1")

    result = set_available(client, OURS, [change(fake, "A", 2, 1), gone], "3-0-z")

    assert result.written == {"A": 2}
    assert result.skipped["GONE"].startswith("refused by Shopify: The specified inventory item could not be found")


def test_the_sku_map_lists_every_item_with_its_quantity_at_our_location(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    for n in range(260):
        fake.inventory.add_item(f"S{n}", OURS, available=n)
    fake.inventory.add_item("ELSEWHERE", ELSEWHERE, available=9)
    fake.inventory.add_item("UNTRACKED", OURS, available=0, tracked=False)
    fake.inventory.add_item("", OURS, available=1)

    items = {i.sku: i for i in stock_items(client, OURS)}

    assert len(items) == 262 and fake.operations["inventoryItems"] == 2  # two pages
    assert items["S7"].quantity == 7 and items["S7"].managed
    assert items["ELSEWHERE"].quantity is None
    assert items["UNTRACKED"].managed is False


def test_looking_up_skus_keeps_exact_matches_and_lists_duplicates(fake: FakeShopifyAdmin, client: AdminClient) -> None:
    fake.inventory.add_item("AB-1", OURS, available=1)
    fake.inventory.add_item("ab-1", OURS, available=1)  # Shopify's search would match it too
    fake.inventory.add_item('QUOTE"D', OURS, available=2)
    fake.inventory.add_item("TWICE", OURS, available=1)
    fake.inventory.add_item("TWICE", OURS, available=2)

    items = stock_items(client, OURS, ["AB-1", 'QUOTE"D', "TWICE", "NOPE"])

    assert sorted(i.sku for i in items) == ["AB-1", 'QUOTE"D', "TWICE", "TWICE"]
