"""WooCommerce orders through the whole service: signed deliveries from a fake store over real
HTTP → inbox → decision on status → the sandbox 3PL → parcels → tracking back on the store."""

from __future__ import annotations

import pytest

from jobs import states
from jobs.reconcile import reconcile_shop
from tests.conftest import drain
from tests.woocommerce.conftest import register


@pytest.fixture
def settings(settings, request):  # type: ignore[no-untyped-def]
    """``@pytest.mark.slow_warehouse``: the sandbox keeps orders unshipped (to cancel them)."""
    if request.node.get_closest_marker("slow_warehouse"):
        return settings.with_(sandbox_ship_delay=3600)
    return settings


def provider_order(service, oid: int) -> dict:  # type: ignore[no-untyped-def]
    found = [o for o in service.provider_orders() if o["reference"] == f"{service.shop_id}-{oid}"]
    assert len(found) == 1, found
    return found[0]


def test_a_processing_order_reaches_the_provider_once(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    woo.state.add_product("TSHIRT-M", stock=10)
    oid = woo.state.create_order([("TSHIRT-M", 2)])
    assert woo.deliver() == [200]
    woo.state.update_order(oid, {"meta_data": [{"key": "gift", "value": "no"}]})
    woo.state.fire("order.created", oid)  # both topics, one state (woocommerce#19764)
    assert woo.deliver() == [200, 200]
    woo.state.fire("order.updated", oid)  # and the same state once more (woocommerce#20047)
    assert woo.deliver() == [200]
    drain(service.runtime)
    sent = provider_order(service, oid)
    assert [(line["sku"], line["quantity"]) for line in sent["lines"]] == [("TSHIRT-M", 2)]
    assert sent["recipient"]["address1"] == "12 rue de l'Échelle / Bât. B"  # arrived as \/ and \u00c9
    assert len(service.provider_orders()) == 1
    assert service.inbox() == 2  # one row per state, however many times it was sent
    assert service.order(oid).state in (states.SHIPPED, states.DELIVERED)


@pytest.mark.parametrize("status", ["pending", "on-hold", "failed", "checkout-draft"])
def test_an_unpaid_or_draft_order_waits_and_ships_once_processing(service, woo, status) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    oid = woo.state.create_order([("MUG", 1)], status=status)
    woo.state.update_order(oid, {})  # a draft reaches us only through order.updated (woocommerce#66995)
    woo.deliver()
    drain(service.runtime)
    assert service.provider_orders() == []
    assert service.order(oid).state == states.RECEIVED
    woo.state.update_order(oid, {"status": "processing"})
    woo.deliver()
    drain(service.runtime)
    assert provider_order(service, oid)["lines"][0]["sku"] == "MUG"


def test_virtual_and_downloadable_lines_are_not_sent_and_a_pickup_order_ships_nothing(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    woo.state.add_product("EBOOK", virtual=True, downloadable=True)
    woo.state.add_product("VOUCHER", virtual=True)
    woo.state.add_product("MUG")
    mixed = woo.state.create_order([("EBOOK", 1), ("VOUCHER", 1), ("MUG", 3)])
    pickup = woo.state.create_order([("MUG", 1)], shipping_method="local_pickup")
    woo.deliver()
    drain(service.runtime)
    assert [(line["sku"], line["quantity"]) for line in provider_order(service, mixed)["lines"]] == [("MUG", 3)]
    assert service.order(pickup).state == states.NO_SHIPPING
    assert len(service.provider_orders()) == 1


@pytest.mark.slow_warehouse
def test_a_status_flip_to_cancelled_cancels_at_the_provider(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    oid = woo.state.create_order([("MUG", 1)])
    woo.deliver()
    drain(service.runtime)
    assert service.order(oid).state == states.PUSHED
    woo.state.update_order(oid, {"status": "cancelled"})
    woo.deliver()
    drain(service.runtime)
    assert service.order(oid).state == states.CANCELLED
    assert provider_order(service, oid)["status"] == "cancelled"


@pytest.mark.slow_warehouse
def test_a_deleted_order_whose_body_is_only_its_id_cancels_at_the_provider(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    oid = woo.state.create_order([("MUG", 1)])
    woo.deliver()
    drain(service.runtime)
    woo.state.trash_order(oid)
    assert woo.deliver() == [200]
    drain(service.runtime)
    row = service.order(oid)
    assert row.state == states.CANCELLED
    assert provider_order(service, oid)["status"] == "cancelled"


def test_a_missed_webhook_is_found_by_reconciliation(service, woo) -> None:  # type: ignore[no-untyped-def]
    register(service, woo)
    seen = woo.state.create_order([("MUG", 1)])
    woo.deliver()
    missed = woo.state.create_order([("MUG", 2)])
    woo.deliver(drop=True)  # WooCommerce never re-sends a failed delivery
    drain(service.runtime)
    assert [o["reference"] for o in service.provider_orders()] == [f"{service.shop_id}-{seen}"]
    assert reconcile_shop(service.shop_id) == "2 orders checked, 1 found missing"
    drain(service.runtime)
    provider_order(service, missed)
    assert any("found by reconciliation" in t.reason for t in service.order(missed).history)
    assert reconcile_shop(service.shop_id).endswith("0 found missing")  # a second run changes nothing
    drain(service.runtime)
    assert len(service.provider_orders()) == 2
