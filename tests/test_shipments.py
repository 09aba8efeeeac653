"""Provider shipment events, applied to the database: out of order, repeated, partial."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from integrations.model import ProviderEvent, Shipment, ShipmentLine
from jobs import states
from jobs.shipments import apply_provider_event, shipping_state
from store.db import transaction
from store.models import Order, OrderLine
from store.orders import transition
from store.shops import upsert_shop

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PROVIDER_ORDER_ID = "900"  # what the push stored; every event below is about that provider order


def setup_order(runtime) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(session, runtime.vault, "shopify", "s.myshopify.com", {}, "sandbox", {})
        order = Order(
            shop_id=shop.id,
            platform_order_id="77",
            provider="sandbox",
            provider_reference=f"{shop.id}-77",
            provider_order_id=PROVIDER_ORDER_ID,
            lines=[],
        )
        order.lines = [
            OrderLine(platform_line_id="1", sku="A", quantity=2, requires_shipping=True),
            OrderLine(platform_line_id="2", sku="B", quantity=1, requires_shipping=True),
            OrderLine(platform_line_id="3", sku="GIFT", quantity=1, requires_shipping=False),
        ]
        session.add(order)
        transition(order, states.PUSHED, "pushed")
        session.flush()
        return shop.id, order.id


def event(
    reference: str, kind: str, number: str, at: datetime, lines=(("A", 2), ("B", 1)), parcel="P1"
) -> ProviderEvent:  # type: ignore[no-untyped-def]
    shipment = Shipment(
        provider_shipment_id=parcel,
        reference=reference,
        provider_order_id=PROVIDER_ORDER_ID,
        carrier="UPS",
        tracking_number=number,
        tracking_url=f"https://www.ups.com/track?tracknum={number}",
        lines=tuple(ShipmentLine(sku, qty) for sku, qty in lines),
    )
    return ProviderEvent(delivery_id=f"{kind}-{number}-{at}", kind=kind, event_time=at, shipment=shipment)


def apply(runtime, shop_id: int, ev: ProviderEvent) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    from store.models import Shop

    jobs: list[str] = []
    with transaction(runtime.sessions) as session:
        outcome = apply_provider_event(session, session.get(Shop, shop_id), ev, None, jobs)  # type: ignore[arg-type]
    return outcome, jobs


def test_an_older_event_arriving_late_changes_nothing(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id, _ = setup_order(runtime)
    ref = f"{shop_id}-77"
    apply(runtime, shop_id, event(ref, "tracking_updated", "1ZNEW", T0 + timedelta(minutes=5)))
    outcome, jobs = apply(runtime, shop_id, event(ref, "shipped", "1ZOLD", T0))
    assert outcome == "stale" and jobs == []
    with runtime.sessions() as session:
        assert session.scalars(select(Order)).one().shipments[0].tracking_number == "1ZNEW"


def test_a_repeated_event_queues_no_second_write(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id, _ = setup_order(runtime)
    ref = f"{shop_id}-77"
    _, first = apply(runtime, shop_id, event(ref, "shipped", "1Z1", T0))
    _, second = apply(runtime, shop_id, event(ref, "shipped", "1Z1", T0))
    assert len(first) == 1 and second == []


def test_a_delivered_parcel_is_not_moved_back_to_shipped(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id, _ = setup_order(runtime)
    ref = f"{shop_id}-77"
    apply(runtime, shop_id, event(ref, "delivered", "1Z1", T0 + timedelta(hours=1)))
    apply(runtime, shop_id, event(ref, "shipped", "1Z1", T0 + timedelta(hours=2)))
    with runtime.sessions() as session:
        assert session.scalars(select(Order)).one().shipments[0].status == "delivered"


def test_an_event_for_an_unknown_reference_is_recorded_as_such(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id, _ = setup_order(runtime)
    outcome, _ = apply(runtime, shop_id, event("999-1", "shipped", "1Z1", T0))
    assert outcome.startswith("no order for reference")


def test_shipping_state_counts_only_parcels_written_to_the_shop(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id, order_id = setup_order(runtime)
    ref = f"{shop_id}-77"
    apply(runtime, shop_id, event(ref, "shipped", "1Z1", T0, lines=(("A", 2),), parcel="P1"))
    apply(runtime, shop_id, event(ref, "shipped", "1Z2", T0, lines=(("B", 1),), parcel="P2"))
    with transaction(runtime.sessions) as session:
        order = session.get(Order, order_id)
        assert shipping_state(order) is None  # shipped by the warehouse, not yet on the shop
        order.shipments[0].written_at = T0
        assert shipping_state(order) == states.PARTIALLY_SHIPPED
        order.shipments[1].written_at = T0
        assert shipping_state(order) == states.SHIPPED  # the gift card needs no parcel
        for s in order.shipments:
            s.status = "delivered"
        assert shipping_state(order) == states.DELIVERED
