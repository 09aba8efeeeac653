"""Parcels written back to Shopify as fulfilments, against the fake GraphQL Admin on a real port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from config import Settings
from integrations.carriers import Tracking, resolve
from integrations.errors import ConfigError, NotFoundError, RetryableError
from integrations.model import Shipment, ShipmentLine
from integrations.platforms import TrackingWrite
from integrations.shopify.admin import AdminClient
from integrations.shopify.fulfilment import (
    NothingToFulfilError,
    Parcel,
    ParcelLine,
    parcel_from_shipment,
    update_tracking,
    write_parcel,
)
from tests.fakes.shopify_admin import FakeShopifyAdmin

OURS = "gid://shopify/Location/64500000001"  # the shop's location_id setting
ELSEWHERE = "gid://shopify/Location/64500000002"  # the merchant's own shelf
ORDER_ID = 820982911946154508  # real ids exceed 2**53
UPS = Tracking("UPS", "1Z999AA10123456784", "https://www.ups.com/track?tracknum=1Z999AA10123456784")


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin("shpat_tracking", restore_rate=10_000).start()
    yield server
    server.stop()


@pytest.fixture
def client(fake: FakeShopifyAdmin) -> AdminClient:
    settings = Settings(environment="test", shopify_admin_url=fake.url + "/{shop}")
    return AdminClient(f"{uuid.uuid4().hex[:12]}.myshopify.com", "shpat_tracking", settings, backoff=0.01)


def test_one_parcel_order_gets_one_fulfilment_with_its_tracking_and_the_customer_notified(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 2, OURS), ("IPOD2008RED", 1, OURS)])
    green, red = order.line_items
    parcel = Parcel(UPS, (ParcelLine(2, green.legacy_id), ParcelLine(1, red.legacy_id)))

    written = write_parcel(client, str(ORDER_ID), parcel, OURS, notify_customer=True)

    assert isinstance(written, TrackingWrite) and written.created and written.unplaced == ()
    (fulfilment,) = order.fulfillments
    assert written.platform_fulfilment_id == fulfilment.id
    assert fulfilment.tracking == [{"company": "UPS", "number": UPS.number, "url": UPS.url}]
    assert fulfilment.notify_customer is True
    assert fulfilment.location_id == OURS
    assert order.fulfillment_orders[0].status == "CLOSED"
    assert sorted(fulfilment.lines.values()) == [1, 2]


def test_two_parcels_make_two_fulfilments_each_with_its_own_lines(fake: FakeShopifyAdmin, client: AdminClient) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 2, OURS), ("IPOD2008RED", 1, OURS)])
    green, red = order.line_items
    fo_line = {li.line_item.sku: li for li in order.fulfillment_orders[0].lines}
    first = Parcel(resolve("UPS Ground", "1Z999AA10123456784"), (ParcelLine(1, green.legacy_id),))
    second = Parcel(
        resolve("UPS", "1Z999AA10123456785"), (ParcelLine(1, sku="IPOD2008GREEN"), ParcelLine(1, sku="IPOD2008RED"))
    )

    one = write_parcel(client, str(ORDER_ID), first, OURS)
    assert order.fulfillment_orders[0].status == "IN_PROGRESS"
    two = write_parcel(client, str(ORDER_ID), second, OURS)

    assert one.created and two.created and one.platform_fulfilment_id != two.platform_fulfilment_id
    by_id = {f.id: f for f in order.fulfillments}
    assert by_id[one.platform_fulfilment_id].lines == {fo_line["IPOD2008GREEN"].id: 1}
    assert by_id[two.platform_fulfilment_id].lines == {fo_line["IPOD2008GREEN"].id: 1, fo_line["IPOD2008RED"].id: 1}
    assert by_id[two.platform_fulfilment_id].tracking[0]["number"] == "1Z999AA10123456785"
    assert order.fulfillment_orders[0].status == "CLOSED"
    assert red.quantity == 1


def test_writing_the_same_parcel_again_creates_nothing_more(fake: FakeShopifyAdmin, client: AdminClient) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 2, OURS)])
    parcel = Parcel(UPS, (ParcelLine(1, sku="IPOD2008GREEN"),))
    first = write_parcel(client, str(ORDER_ID), parcel, OURS)

    again = write_parcel(client, str(ORDER_ID), parcel, OURS)

    assert again == type(again)(platform_fulfilment_id=first.platform_fulfilment_id, created=False)
    assert fake.operations["fulfillmentCreate"] == 1
    assert len(order.fulfillments) == 1
    assert order.fulfillment_orders[0].lines[0].remaining == 1  # the second unit is still to ship


def test_create_whose_answer_was_lost_is_found_by_tracking_number_when_retried(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 2, OURS)])
    parcel = Parcel(UPS, (ParcelLine(2, sku="IPOD2008GREEN"),))
    fake.fail_next(0)  # the read goes through
    fake.fail_next(502, execute_first=True)  # Shopify creates it, the answer is lost

    with pytest.raises(RetryableError):
        write_parcel(client, str(ORDER_ID), parcel, OURS)
    retried = write_parcel(client, str(ORDER_ID), parcel, OURS)

    assert retried.created is False
    assert [f.id for f in order.fulfillments] == [retried.platform_fulfilment_id]
    assert fake.operations["fulfillmentCreate"] == 1


def test_a_cancelled_fulfilment_with_the_same_number_is_not_reused(fake: FakeShopifyAdmin, client: AdminClient) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 1, OURS)])
    parcel = Parcel(UPS, (ParcelLine(1, sku="IPOD2008GREEN"),))
    first = write_parcel(client, str(ORDER_ID), parcel, OURS)
    fake.cancel_fulfilment(first.platform_fulfilment_id)

    second = write_parcel(client, str(ORDER_ID), parcel, OURS)

    assert second.created and second.platform_fulfilment_id != first.platform_fulfilment_id
    assert [f.status for f in order.fulfillments] == ["CANCELLED", "SUCCESS"]


def test_tracking_correction_updates_the_existing_fulfilment(fake: FakeShopifyAdmin, client: AdminClient) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 1, OURS)])
    written = write_parcel(client, str(ORDER_ID), Parcel(UPS, (ParcelLine(1, sku="IPOD2008GREEN"),)), OURS)
    corrected = resolve("fedex", "986578788855")

    result = update_tracking(client, written.platform_fulfilment_id, corrected, notify_customer=False)

    assert result == TrackingWrite(platform_fulfilment_id=written.platform_fulfilment_id, created=False)
    (fulfilment,) = order.fulfillments
    assert fulfilment.tracking == [
        {"company": "FedEx", "number": "986578788855", "url": "https://www.fedex.com/fedextrack/?trknbr=986578788855"}
    ]
    assert fulfilment.tracking_updates[-1]["notifyCustomer"] is False
    # The corrected number now identifies the parcel: writing it again finds the same fulfilment.
    again = write_parcel(client, str(ORDER_ID), Parcel(corrected, (ParcelLine(1, sku="IPOD2008GREEN"),)), OURS)
    assert again.platform_fulfilment_id == written.platform_fulfilment_id and not again.created


def test_an_order_whose_lines_sit_at_another_location_is_not_touched_there(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 2, ELSEWHERE)])
    parcel = Parcel(UPS, (ParcelLine(2, order.line_items[0].legacy_id),))

    with pytest.raises(NothingToFulfilError):
        write_parcel(client, str(ORDER_ID), parcel, OURS)

    assert fake.operations["fulfillmentCreate"] == 0
    assert order.fulfillment_orders[0].lines[0].remaining == 2 and order.fulfillment_orders[0].status == "OPEN"


def test_a_mixed_order_is_fulfilled_only_at_our_location_and_the_rest_reported(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 1, OURS), ("IPOD2008RED", 1, ELSEWHERE)])
    parcel = Parcel(UPS, (ParcelLine(1, sku="IPOD2008GREEN"), ParcelLine(1, sku="IPOD2008RED")))

    written = write_parcel(client, str(ORDER_ID), parcel, OURS)

    assert written.created
    assert written.unplaced == (ParcelLine(1, sku="IPOD2008RED"),)
    ours, theirs = order.fulfillment_orders
    assert ours.status == "CLOSED"
    assert theirs.status == "OPEN" and theirs.lines[0].remaining == 1


def test_a_parcel_claiming_more_than_remains_takes_what_remains_and_reports_the_rest(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 2, OURS)])
    line_id = order.line_items[0].legacy_id

    written = write_parcel(client, str(ORDER_ID), Parcel(UPS, (ParcelLine(3, line_id),)), OURS)

    assert written.unplaced == (ParcelLine(1, line_id),)
    assert order.fulfillments[0].lines == {order.fulfillment_orders[0].lines[0].id: 2}


def test_a_parcel_without_line_detail_takes_everything_open_at_our_location(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    order = fake.add_order(ORDER_ID, [("A", 2, OURS), ("B", 1, OURS), ("C", 1, ELSEWHERE)])

    written = write_parcel(client, str(ORDER_ID), Parcel(UPS), OURS)

    assert written.created
    assert sorted(order.fulfillments[0].lines.values()) == [1, 2]
    assert order.fulfillment_orders[1].status == "OPEN"


def test_fulfilment_orders_and_lines_beyond_the_first_pages_are_read(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    # 11 other locations first (a page holds 10 FOs), then ours with 30 lines (a page holds 25).
    others = [(f"X{i}", 1, f"gid://shopify/Location/{i}") for i in range(11)]
    order = fake.add_order(ORDER_ID, others + [(f"SKU-{i}", 1, OURS) for i in range(30)])

    written = write_parcel(client, str(ORDER_ID), Parcel(UPS, (ParcelLine(1, sku="SKU-29"),)), OURS)

    assert written.created and written.unplaced == ()
    assert fake.operations["fulfillmentOrder"] == 1  # the continuation page of our FO's lines
    ours = order.fulfillment_orders[-1]
    assert order.fulfillments[0].lines == {ours.lines[29].id: 1}


def test_an_order_shopify_does_not_have_raises_not_found(client: AdminClient) -> None:
    with pytest.raises(NotFoundError):
        write_parcel(client, "1", Parcel(UPS, (ParcelLine(1, sku="A"),)), OURS)


def test_without_a_location_setting_the_one_location_holding_the_parcel_is_used(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 2, OURS), ("POSTER", 1, ELSEWHERE)])
    written = write_parcel(client, str(ORDER_ID), Parcel(UPS, (ParcelLine(2, sku="IPOD2008GREEN"),)), "")
    assert written.created and order.fulfillments[0].location_id == OURS


def test_without_a_location_setting_a_parcel_spanning_two_locations_is_a_configuration_error(
    fake: FakeShopifyAdmin, client: AdminClient
) -> None:
    order = fake.add_order(ORDER_ID, [("IPOD2008GREEN", 2, OURS), ("POSTER", 1, ELSEWHERE)])
    parcel = Parcel(UPS, (ParcelLine(2, sku="IPOD2008GREEN"), ParcelLine(1, sku="POSTER")))
    with pytest.raises(ConfigError, match="set the shop's location"):
        write_parcel(client, str(ORDER_ID), parcel, "")
    assert order.fulfillments == []


def test_a_numeric_location_id_is_taken_as_a_location_gid(fake: FakeShopifyAdmin, client: AdminClient) -> None:
    order = fake.add_order(ORDER_ID, [("A", 1, OURS)])
    write_parcel(client, str(ORDER_ID), Parcel(UPS), OURS.rsplit("/", 1)[1])
    assert order.fulfillment_orders[0].status == "CLOSED"


def test_a_provider_shipment_becomes_a_parcel_with_shopify_carrier_and_sku_lines() -> None:
    shipment = Shipment(
        provider_shipment_id="S1",
        reference="7-820982911946154508",
        carrier="fedex_ground",
        tracking_number="9865 7878 8855",
        lines=(ShipmentLine(sku="IPOD2008GREEN", quantity=2),),
    )
    parcel = parcel_from_shipment(shipment)
    assert parcel.tracking == Tracking("FedEx", "986578788855", "https://www.fedex.com/fedextrack/?trknbr=986578788855")
    assert parcel.lines == (ParcelLine(2, sku="IPOD2008GREEN"),)
