"""Each party lists its side of the map: ShipBob its fulfilment centres, WooCommerce its one
implicit location, the stand-in shop its location and order risks; Shopify's risk summed up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import select

from app import create_app
from config import Settings
from integrations.fulfilment.base import ProviderContext
from integrations.fulfilment.shipbob import ShipBobProvider
from integrations.locations import FulfilmentCentre, ShopLocation
from integrations.platforms import PlatformContext, ShopAccess
from integrations.shopify.risk import summarise
from integrations.woocommerce.platform import WooCommercePlatform
from jobs import states
from jobs.locations import LocationChoiceNeeded, stock_target
from sandbox.shop import HIGH_RISK_TAG
from store.merchant_view import held_reason
from store.models import Order
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shipbob import FakeShipBob, start_fake
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order


@pytest.fixture
def shipbob() -> Iterator[FakeShipBob]:
    server = start_fake(token=f"pat-{uuid.uuid4().hex}")
    yield server
    server.stop()


def test_shipbob_lists_its_fulfilment_centres_by_the_ids_its_inventory_names(shipbob, redis_url) -> None:  # type: ignore[no-untyped-def]
    import redis

    settings = Settings(shipbob_api_url=shipbob.url, provider_timeout=2.0)
    options = {
        "token": shipbob.token,
        "channel_id": str(shipbob.channel_id),
        "rate_limit": "1000",
        "webhook_secret": "whsec_" + "A" * 32,
    }
    with requests.Session() as http:
        provider = ShipBobProvider(
            options, ProviderContext(http=http, settings=settings, redis=redis.Redis.from_url(redis_url))
        )
        centres = provider.fulfilment_centres()

    assert FulfilmentCentre("1", "Cicero (IL)") in centres and FulfilmentCentre("2", "Moreno Valley (CA)") in centres


def test_a_woocommerce_store_has_one_implicit_location_and_no_risk_to_read() -> None:
    access = ShopAccess(id=1, platform="woocommerce", domain="https://store.example")
    platform = WooCommercePlatform(access, PlatformContext(http=requests.Session(), settings=Settings()))

    assert platform.locations() == [ShopLocation("store", "https://store.example")]
    assert platform.order_risk("123") is None


def test_the_stock_target_follows_the_mapping_then_the_choice_then_the_only_location() -> None:
    one = [ShopLocation("L1", "Main")]
    two = [*one, ShopLocation("L2", "Depot")]
    listed: list[str] = []

    def lister(found: list[ShopLocation]):  # type: ignore[no-untyped-def]
        return lambda: listed.append("called") or found

    mapped = stock_target({"stock_locations": {"A": "L2", "B": "L1"}, "location_id": "L1"}, lister(two))
    assert mapped.locations == ("L1", "L2") and dict(mapped.mapping) == {"A": "L2", "B": "L1"}
    assert stock_target({"location_id": "L2"}, lister(two)).locations == ("L2",)
    assert listed == []  # a setting decides: no call to the shop
    assert stock_target({}, lister(one)).locations == ("L1",)
    with pytest.raises(LocationChoiceNeeded, match=r"2 locations \(Main \(L1\), Depot \(L2\)\)"):
        stock_target({}, lister(two))


def test_in_fulfilment_service_mode_the_stock_goes_to_the_services_location_whatever_the_mapping() -> None:
    settings = {"fulfilment_mode": "service", "location_id": "SVC", "stock_locations": {"A": "L1"}}
    target = stock_target(settings, lambda: pytest.fail("the service's location needs no call"))
    assert target.locations == ("SVC",) and not target.mapping


@pytest.mark.parametrize(
    ("risk", "level"),
    [
        ({"recommendation": "ACCEPT", "assessments": [{"riskLevel": "LOW", "facts": []}]}, "low"),
        ({"recommendation": "INVESTIGATE", "assessments": [{"riskLevel": "MEDIUM"}, {"riskLevel": "LOW"}]}, "medium"),
        ({"recommendation": "CANCEL", "assessments": [{"riskLevel": "MEDIUM"}]}, "high"),
        ({"recommendation": "NONE", "assessments": [{"riskLevel": "PENDING"}, {"riskLevel": "LOW"}]}, "pending"),
        ({"recommendation": "NONE", "assessments": []}, "pending"),
        ({"recommendation": "ACCEPT", "assessments": []}, "none"),
        ({"recommendation": "NONE", "assessments": [{"riskLevel": "PENDING"}, {"riskLevel": "HIGH"}]}, "high"),
    ],
)
def test_an_order_risk_summary_comes_down_to_its_worst_level(risk, level) -> None:  # type: ignore[no-untyped-def]
    assert summarise(risk).level == level


def test_the_stand_in_shop_holds_an_order_it_assesses_high_when_the_rule_is_on(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    runner = create_app(runtime=runtime).test_cli_runner()
    shop = "dev-store.myshopify.com"
    added = runner.invoke(
        args=[
            "shop",
            "add",
            "shopify",
            shop,
            "--sandbox-shop",
            "--provider",
            "sandbox",
            "--setting",
            "hold_high_risk=yes",
        ]
    )
    assert added.exit_code == 0, added.output
    for number, tags in ((5001, HIGH_RISK_TAG), (5002, "")):
        body = body_of(paid_order(number, tags=tags))
        answer = requests.post(
            f"{server.url}/webhooks/shopify",
            data=body,
            headers=headers_for(shop, "orders/paid", body, SHOPIFY_SECRET),
            timeout=10,
        )
        assert answer.status_code == 200
    drain(runtime)

    with runtime.sessions() as session:
        risky, fine = session.scalars(select(Order).order_by(Order.platform_order_id)).all()
        assert risky.state == states.HELD and held_reason(risky).startswith("high fraud risk")
        assert fine.state != states.HELD and fine.provider_order_id
    listed = runner.invoke(args=["shop", "locations", shop])
    assert "gid://shopify/Location/1  Sandbox shop" in listed.output
    assert "SANDBOX-1  Sandbox warehouse" in listed.output
    assert "stock sync writes to: Sandbox shop (gid://shopify/Location/1)" in listed.output
