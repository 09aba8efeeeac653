"""Tracking back on the store: through Shipment Tracking or AST when installed, else a customer
note, our meta and ``completed``; exactly once, and our own writes' echoes cause nothing."""

from __future__ import annotations

import pytest

from integrations.model import Shipment, ShipmentLine
from jobs.parties import platform_for
from tests.conftest import drain
from tests.woocommerce.conftest import register


def meta(order: dict, key: str):  # type: ignore[no-untyped-def]
    return next((m["value"] for m in order["meta_data"] if m["key"] == key), None)


def ship_one(service, woo, lines=(("MUG", 1),)) -> int:  # type: ignore[no-untyped-def]
    register(service, woo)
    oid = woo.state.create_order(list(lines))
    woo.deliver()
    drain(service.runtime)  # pushed, shipped by the sandbox, tracking written back
    return oid


def platform(service):  # type: ignore[no-untyped-def]
    with service.runtime.sessions() as session:
        from store.models import Shop

        return platform_for(service.runtime, session.get(Shop, service.shop_id))


def test_without_an_extension_the_tracking_is_a_customer_note_our_meta_and_completed(service, woo) -> None:  # type: ignore[no-untyped-def]
    oid = ship_one(service, woo)
    [parcel] = service.order(oid).shipments
    [note] = woo.state.notes[oid]
    assert note["customer_note"] is True
    assert parcel.tracking_number in note["note"] and parcel.tracking_url in note["note"]
    order = woo.state.orders[oid]
    assert order["status"] == "completed"
    [recorded] = meta(order, "relais_tracking")
    assert recorded["number"] == parcel.tracking_number and recorded["parcel"] == parcel.provider_shipment_id
    assert parcel.platform_fulfilment_id == f"note-{note['id']}"


def test_an_echo_of_our_own_write_causes_no_second_action(service, woo) -> None:  # type: ignore[no-untyped-def]
    oid = ship_one(service, woo)
    stored = service.inbox()
    assert woo.deliver() == [200]  # order.updated for our note + meta + completed
    drain(service.runtime)
    assert service.inbox() == stored  # recognised at the door: not even stored
    assert len(woo.state.notes[oid]) == 1
    woo.state.update_order(oid, {"meta_data": [{"key": "merchant", "value": "checked"}]})
    woo.deliver()  # the merchant's own change afterwards is not an echo
    drain(service.runtime)
    assert service.inbox() == stored + 1
    assert len(woo.state.notes[oid]) == 1 and len(service.provider_orders()) == 1


@pytest.mark.parametrize("woo_options", [{"tracking": "shipment_tracking"}])
def test_with_shipment_tracking_the_parcel_is_a_tracking_entry_with_the_stores_provider_name(service, woo) -> None:  # type: ignore[no-untyped-def]
    oid = ship_one(service, woo)
    [parcel] = service.order(oid).shipments
    [entry] = woo.state.trackings[oid]
    assert entry["tracking_number"] == parcel.tracking_number
    assert entry["tracking_provider"] == parcel.carrier == "Colissimo"  # on the store's /providers list
    assert entry["tracking_id"] == parcel.platform_fulfilment_id
    assert woo.state.notes[oid] == []
    assert woo.state.orders[oid]["status"] == "completed"  # the "Completed order" email carries it


@pytest.mark.parametrize("woo_options", [{"tracking": "ast"}])
def test_with_advanced_shipment_tracking_the_parcel_goes_through_its_namespace(service, woo) -> None:  # type: ignore[no-untyped-def]
    oid = ship_one(service, woo)
    [entry] = woo.state.trackings[oid]
    assert entry["tracking_number"] == service.order(oid).shipments[0].tracking_number
    assert woo.calls("POST", "/wc-ast/v3/orders/") and not woo.calls("POST", "/wc-shipment-tracking/")


@pytest.mark.parametrize("woo_options", [{"tracking": "shipment_tracking"}, {}])
def test_writing_the_same_parcel_twice_writes_it_once_and_completes_only_when_all_is_shipped(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    oid = woo.state.create_order([("A", 1), ("B", 2)])
    lines = [{"platform_line_id": "1", "sku": "A", "quantity": 1}, {"platform_line_id": "2", "sku": "B", "quantity": 2}]
    first = Shipment("P1", "r", carrier="DHL Express", tracking_number="1234567890", lines=(ShipmentLine("A", 1),))
    second = Shipment(
        "P2",
        "r",
        carrier="Mystery Post",
        tracking_number="MP42",
        tracking_url="https://mp.example/42",
        lines=(ShipmentLine("B", 2),),
    )
    adapter = platform(service)
    one = adapter.write_tracking(str(oid), first, lines)
    again = adapter.write_tracking(str(oid), first, lines)
    assert one.created and not again.created and one.platform_fulfilment_id == again.platform_fulfilment_id
    assert woo.state.orders[oid]["status"] == "processing"  # B is not shipped yet
    adapter.write_tracking(str(oid), second, lines)
    order = woo.state.orders[oid]
    assert order["status"] == "completed"
    assert [p["number"] for p in meta(order, "relais_tracking")] == ["1234567890", "MP42"]
    if woo.tracking:
        entries = woo.state.trackings[oid]
        assert [e["tracking_number"] for e in entries] == ["1234567890", "MP42"]
        assert entries[1]["custom_tracking_provider"] == "Mystery Post"  # not on the store's list
        assert entries[1]["tracking_link"] == "https://mp.example/42"
    else:
        assert len(woo.state.notes[oid]) == 2


def test_a_tracking_correction_replaces_the_number_on_the_store(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    oid = woo.state.create_order([("A", 1)])
    adapter = platform(service)
    parcel = Shipment("P1", "r", carrier="UPS", tracking_number="1Z999AA10123456784")
    written = adapter.write_tracking(str(oid), parcel, [{"platform_line_id": "1", "sku": "A", "quantity": 1}])
    fixed = Shipment("P1", "r", carrier="UPS", tracking_number="1Z999AA10123456793")
    adapter.update_tracking(str(oid), written.platform_fulfilment_id, fixed)
    [recorded] = meta(woo.state.orders[oid], "relais_tracking")
    assert recorded["number"] == "1Z999AA10123456793"
    assert "Tracking corrected" in woo.state.notes[oid][-1]["note"]
