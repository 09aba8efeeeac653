"""The ShipBob adapter against a fake ShipBob on a real port, with the shared limiter in real Redis."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from werkzeug.wrappers import Request, Response

from config import Settings
from integrations.errors import (
    AuthError,
    ConfigError,
    InvalidRequestError,
    NotCancellableError,
    NotFoundError,
    RetryableError,
    WebhookRejected,
)
from integrations.fulfilment import get as get_provider
from integrations.fulfilment.base import ProviderContext
from integrations.fulfilment.shipbob import ShipBobProvider
from integrations.fulfilment.shipbob_payloads import cancel_result
from integrations.model import Address, Contact, InventoryLevel, Line, Order, ProviderOrderRef
from tests.fakes.shipbob import FakeShipBob, Server, make_secret, start_fake

SECRET = make_secret()
SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "vendor"
    / "samples"
    / "shipbob"
    / "order.shipment.tracking_received.docs.json"
)


@pytest.fixture
def shipbob_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)  # the suite's real Redis (tests/conftest.py)
    yield client
    for key in client.scan_iter("relais:ratelimit:*"):
        client.delete(key)
    client.close()


@pytest.fixture
def fake() -> Iterator[FakeShipBob]:
    server = start_fake(token=f"pat-{uuid.uuid4().hex}")  # a token per test: a limiter key per test
    yield server
    server.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def make_provider(
    fake: FakeShipBob, http: requests.Session, client: Any, timeout: float = 2.0, **options: str
) -> ShipBobProvider:
    settings = Settings(shipbob_api_url=fake.url, provider_timeout=timeout)
    base = {"token": fake.token, "channel_id": str(fake.channel_id), "webhook_secret": SECRET, "rate_limit": "1000"}
    return ShipBobProvider(base | options, ProviderContext(http=http, settings=settings, redis=client))


@pytest.fixture
def provider(fake: FakeShipBob, http: requests.Session, shipbob_redis: redis.Redis) -> ShipBobProvider:
    return make_provider(fake, http, shipbob_redis)


def an_order(number: str = "820982911946154508", **changes: Any) -> Order:
    values: dict[str, Any] = {
        "platform_order_id": number,
        "name": "#1001",
        "paid": True,
        "cancelled": False,
        "updated_at": datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
        "lines": (
            Line("11", "MUG-BLUE", 2, True, "Blue mug"),
            Line("12", "TEE-M", 1, True, "T-shirt, M"),
            Line("13", "GIFT-CARD", 1, False, "Gift card"),
        ),
        "ship_to": Address(
            name="Ada Lovelace",
            address1="100 N Racine Ave",
            city="Chicago",
            country_code="US",
            province_code="IL",
            zip="60607",
            phone="+1 312 555 0100",
        ),
        "shipping_method": "Standard",
        "contact": Contact(email="ada@example.com"),
    }
    return Order(**(values | changes))


def pushed(provider: ShipBobProvider, reference: str = "7-1001") -> ProviderOrderRef:
    return provider.create_order(an_order(), reference)


# -- create --------------------------------------------------------------------------------------


def test_registry_names_shipbob_and_its_required_options() -> None:
    assert get_provider("shipbob") is ShipBobProvider
    assert ShipBobProvider.required_options() == ("token", "channel_id", "webhook_secret")


def test_create_sends_shippable_lines_by_sku_and_returns_shipbob_order_id(
    provider: ShipBobProvider, fake: FakeShipBob
) -> None:
    ref = provider.create_order(an_order(), "7-1001")

    stored = fake.state.order(int(ref.provider_order_id))
    assert ref == ProviderOrderRef("7-1001", str(stored["id"]), duplicate=False)
    assert stored["type"] == "DTC" and stored["shipping_method"] == "Standard"
    assert stored["channel"]["id"] == fake.channel_id
    assert stored["recipient"]["address"] == {
        "address1": "100 N Racine Ave",
        "city": "Chicago",
        "state": "IL",
        "zip_code": "60607",
        "country": "US",
    }
    assert stored["recipient"]["email"] == "ada@example.com"
    assert [(p["reference_id"], p["quantity"], p["external_line_id"]) for p in stored["products"]] == [
        ("MUG-BLUE", 2, 1),
        ("TEE-M", 1, 2),
    ]


def test_duplicate_create_after_a_timeout_makes_one_order(
    fake: FakeShipBob, http: requests.Session, shipbob_redis: redis.Redis
) -> None:
    provider = make_provider(fake, http, shipbob_redis, timeout=0.5)
    fake.answer_late(1.5, method="POST", path="^/order$")  # ShipBob creates it, the answer never arrives

    with pytest.raises(RetryableError):
        provider.create_order(an_order(), "7-1001")
    again = provider.create_order(an_order(), "7-1001")

    assert fake.counters["orders_created"] == 1
    assert again.duplicate is True
    assert again.provider_order_id == str(fake.state.by_reference["7-1001"])


def test_invalid_order_raises_invalid_request_with_shipbob_field_messages(
    provider: ShipBobProvider, fake: FakeShipBob
) -> None:
    order = an_order(ship_to=Address(name="Ada Lovelace", address1="100 N Racine Ave", city="", country_code="US"))

    with pytest.raises(InvalidRequestError) as caught:
        provider.create_order(order, "7-1001")

    assert caught.value.status == 400
    assert caught.value.details == {"recipient.address.city": ["The recipient.address.city field is required."]}
    assert "recipient.address.city: The recipient.address.city field is required." in str(caught.value)
    assert fake.counters["orders_created"] == 0


def test_rate_limited_answer_is_retryable_after_x_retry_after_and_blocks_every_worker(
    provider: ShipBobProvider, fake: FakeShipBob
) -> None:
    fake.fail(429, retry_after=7)

    with pytest.raises(RetryableError) as caught:
        provider.create_order(an_order(), "7-1001")

    assert (caught.value.status, caught.value.retry_after) == (429, 7.0)
    assert 6.0 < provider.limiter.blocked_for() <= 7.0
    assert fake.counters["429"] == 1


def test_server_error_is_retryable_and_the_retry_succeeds(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    fake.fail(503, times=2, method="POST")

    for _ in range(2):
        with pytest.raises(RetryableError) as caught:
            provider.create_order(an_order(), "7-1001")
        assert caught.value.status == 503
    assert provider.create_order(an_order(), "7-1001").duplicate is False
    assert fake.counters["orders_created"] == 1


def test_refused_token_is_an_auth_error(fake: FakeShipBob, http: requests.Session, shipbob_redis: redis.Redis) -> None:
    provider = make_provider(fake, http, shipbob_redis, token="pat-revoked")

    with pytest.raises(AuthError):
        provider.create_order(an_order(), "7-1001")


def test_find_order_knows_pushed_references_only(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    ref = pushed(provider)

    assert provider.find_order("7-1001") == ProviderOrderRef("7-1001", ref.provider_order_id)
    assert provider.find_order("7-9999") is None


def test_api_version_option_changes_the_dated_path(
    fake: FakeShipBob, http: requests.Session, shipbob_redis: redis.Redis
) -> None:
    provider = make_provider(fake, http, shipbob_redis, api_version="2026-01")

    provider.create_order(an_order(), "7-1001")

    assert fake.counters["version 2026-01"] == 1 and fake.counters["version 2026-07"] == 0


def test_unreachable_shipbob_is_retryable(http: requests.Session, shipbob_redis: redis.Redis) -> None:
    settings = Settings(shipbob_api_url="http://127.0.0.1:9", provider_timeout=1.0)
    options = {"token": "pat", "channel_id": "1", "webhook_secret": SECRET}
    provider = ShipBobProvider(options, ProviderContext(http=http, settings=settings, redis=shipbob_redis))

    with pytest.raises(RetryableError, match="ConnectionError"):
        provider.find_order("7-1001")


def test_missing_options_fail_loudly_naming_them(http: requests.Session) -> None:
    with pytest.raises(ConfigError, match="channel_id, webhook_secret"):
        ShipBobProvider({"token": "pat"}, ProviderContext(http=http, settings=Settings()))


def test_unknown_order_id_is_not_found(provider: ShipBobProvider) -> None:
    with pytest.raises(NotFoundError):
        provider.shipments(ProviderOrderRef("7-1001", "5"))


# -- cancel --------------------------------------------------------------------------------------


def test_cancel_before_shipping_cancels_every_shipment(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    ref = pushed(provider)

    result = provider.cancel_order(ref)

    assert result.outcome == "cancelled"
    assert [s.cancelled for s in result.shipments] == [True]
    assert fake.state.order(int(ref.provider_order_id))["status"] == "Cancelled"


def test_cancel_with_one_of_two_parcels_shipped_is_partial_and_keeps_each_result(
    provider: ShipBobProvider, fake: FakeShipBob
) -> None:
    ref = pushed(provider)
    first, second = fake.ship(int(ref.provider_order_id), parcels=2, shipped=1)

    result = provider.cancel_order(ref)

    assert result.outcome == "partial"
    by_id = {s.provider_shipment_id: s for s in result.shipments}
    assert by_id[str(first["id"])].cancelled is False
    assert "already shipped" in by_id[str(first["id"])].reason
    assert by_id[str(second["id"])].cancelled is True
    assert str(first["id"]) in result.message


def test_cancel_after_shipping_is_too_late(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    ref = pushed(provider)
    fake.ship(int(ref.provider_order_id))

    result = provider.cancel_order(ref)

    assert result.outcome == "too_late"
    assert [s.cancelled for s in result.shipments] == [False]


def test_cancel_refused_with_422_is_not_cancellable(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    ref = pushed(provider)
    fake.fail(422, path=":cancel$", body={"order_id": ["Order cannot be cancelled in its current state"]})

    with pytest.raises(NotCancellableError, match="cannot be cancelled"):
        provider.cancel_order(ref)


# -- stock ---------------------------------------------------------------------------------------


def test_inventory_joins_products_to_levels_per_fulfilment_centre_across_pages(
    provider: ShipBobProvider, fake: FakeShipBob
) -> None:
    for n in range(5):
        fake.state.add_product(f"SKU-{n}", levels={1: (10 + n, 8 + n), 2: (n, n)})
    fake.state.add_product("E-BOOK", digital=True, levels={1: (0, 0)})
    fake.state.add_product("OLD-MUG", levels={1: (3, 3)})
    fake.state.products["OLD-MUG"]["variants"][0]["status"] = "Inactive"
    fake.state.max_page_size = 2  # five products → three pages of each list

    levels = list(provider.inventory())

    expected = {InventoryLevel(f"SKU-{n}", "1", 10 + n, 8 + n) for n in range(5)}
    expected |= {InventoryLevel(f"SKU-{n}", "2", n, n) for n in range(5)}
    assert set(levels) == expected and len(levels) == 10
    # 4 product pages (7 products incl. the e-book and the inactive mug) + 3 level pages (5 inventories)
    assert fake.counters["requests"] == 7


def test_paging_links_are_followed_on_the_configured_host_only(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    # an absolute "next" link elsewhere keeps its path and query, never its host (the token goes along)
    assert provider._url("https://elsewhere.example/2026-07/product?Cursor=2") == f"{fake.url}/2026-07/product?Cursor=2"
    assert provider._url("/2026-07/product?Cursor=2") == f"{fake.url}/2026-07/product?Cursor=2"
    assert provider._url("/order/5:cancel") == f"{fake.url}/2026-07/order/5:cancel"


# -- shipments: polling and acknowledgement ------------------------------------------------------


def test_polling_finds_a_shipment_whose_webhook_never_came_and_ack_clears_it(
    provider: ShipBobProvider, fake: FakeShipBob
) -> None:
    ref = pushed(provider)
    first, second = fake.ship(int(ref.provider_order_id), parcels=2)

    found = provider.unacknowledged_shipments()

    assert {s.provider_shipment_id for s in found} == {str(first["id"]), str(second["id"])}
    parcel = next(s for s in found if s.provider_shipment_id == str(first["id"]))
    assert parcel.reference == "7-1001" and parcel.provider_order_id == ref.provider_order_id
    assert parcel.tracking_number == first["tracking"]["tracking_number"]
    assert (parcel.carrier, parcel.service, parcel.status) == ("USPS", "Ground Advantage", "shipped")
    assert parcel.tracking_url.endswith(parcel.tracking_number)
    assert sorted((line.sku, line.quantity) for s in found for line in s.lines) == [
        ("MUG-BLUE", 1),
        ("MUG-BLUE", 1),
        ("TEE-M", 1),
    ]

    provider.ack_shipments([s.provider_shipment_id for s in found])

    assert provider.unacknowledged_shipments() == []
    assert fake.state.shipment_view(first["id"])["is_tracking_uploaded"] is True


def test_polling_pages_through_every_shipped_order(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    provider.poll_limit = 2
    for n in range(5):
        ref = provider.create_order(an_order(str(n)), f"7-{n}")
        fake.ship(int(ref.provider_order_id))
    provider.create_order(an_order("99"), "7-99")  # not shipped: not listed

    found = provider.unacknowledged_shipments()

    assert sorted(s.reference for s in found) == [f"7-{n}" for n in range(5)]


def test_shipments_lists_parcels_with_tracking_but_not_those_still_in_the_warehouse(
    provider: ShipBobProvider, fake: FakeShipBob
) -> None:
    ref = pushed(provider)
    first, _ = fake.ship(int(ref.provider_order_id), parcels=2, shipped=1)
    fake.state.deliver(first["id"])

    parcels = provider.shipments(ref)

    assert [(s.provider_shipment_id, s.status) for s in parcels] == [(str(first["id"]), "delivered")]


def test_ack_surfaces_per_shipment_errors_from_shipbob(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    ref = pushed(provider)
    (parcel,) = fake.ship(int(ref.provider_order_id))

    with pytest.raises(InvalidRequestError, match="shipment 123: NOT_FOUND"):
        provider.ack_shipments([str(parcel["id"]), "123"])
    assert fake.state.shipment_view(parcel["id"])["is_tracking_uploaded"] is True


def test_ack_failing_on_shipbobs_side_is_retryable(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    error = {"code": "DATABASE_UPDATE_ERROR", "message": "try again"}
    reply = {"results": [{"isSuccess": False, "shipmentId": 5, "error": error}], "summary": {"failed": 1}}
    fake.fail(200, path="batchUpdateTrackingUpload", body=reply)

    with pytest.raises(RetryableError, match="shipment 5: DATABASE_UPDATE_ERROR try again"):
        provider.ack_shipments(["5"])


def test_cancel_answer_without_a_status_is_judged_by_its_shipments() -> None:
    results = [{"shipment_id": 1, "is_success": True}, {"shipment_id": 2, "is_success": False, "reason": "packed"}]

    result = cancel_result({"canceled_shipment_results": results})

    assert (result.outcome, result.message) == ("partial", "shipment 2: packed")


def test_ack_of_nothing_sends_nothing(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    provider.ack_shipments([])
    assert fake.counters["requests"] == 0


# -- webhooks ------------------------------------------------------------------------------------


@pytest.fixture
def shipped(provider: ShipBobProvider, fake: FakeShipBob) -> dict[str, Any]:
    ref = pushed(provider)
    (parcel,) = fake.ship(int(ref.provider_order_id))
    return parcel


class Receiver:
    """A stand-in webhook endpoint: keeps each delivery's headers and raw body, answers 200."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.deliveries.append((dict(request.headers), request.get_data()))
        return Response("ok")(environ, start_response)


def test_signed_webhook_over_http_verifies_and_parses_to_a_shipped_event(
    provider: ShipBobProvider, fake: FakeShipBob, shipped: dict[str, Any]
) -> None:
    receiver = Receiver()
    server = Server(receiver)
    try:
        answer = fake.send_webhook("order.shipped", server.url + "/webhooks/fulfilment/shipbob", shipped["id"], SECRET)
    finally:
        server.stop()
    assert answer.status_code == 200
    ((headers, body),) = receiver.deliveries

    provider.verify_webhook(headers, body)
    event = provider.parse_webhook(headers, body)

    assert ShipBobProvider.webhook_delivery_id(headers) == event.delivery_id != ""
    assert ShipBobProvider.webhook_reference(headers, body) == "7-1001"
    assert ShipBobProvider.webhook_topic(headers, body) == "order.shipped"
    assert event.kind == "shipped" and event.event_time is not None
    parcel = event.shipment
    assert parcel.provider_shipment_id == str(shipped["id"]) and parcel.reference == "7-1001"
    assert parcel.tracking_number == shipped["tracking"]["tracking_number"]
    assert parcel.carrier == "USPS" and parcel.tracking_url
    assert sorted((line.sku, line.quantity) for line in parcel.lines) == [("MUG-BLUE", 2), ("TEE-M", 1)]


@pytest.mark.parametrize(
    ("topic", "kind", "status"),
    [
        ("order.shipped", "shipped", "shipped"),
        ("order.shipment.tracking.updated", "tracking_updated", "in_transit"),
        ("order.shipment.delivered", "delivered", "delivered"),
        ("order.shipment.cancelled", "cancelled", "cancelled"),
        ("order.shipment.on_hold", "on_hold", "on_hold"),
        ("order.shipment.exception", "exception", "exception"),
    ],
)
def test_each_shipment_topic_becomes_its_event_kind(
    provider: ShipBobProvider, fake: FakeShipBob, shipped: dict[str, Any], topic: str, kind: str, status: str
) -> None:
    headers, body = fake.webhook_delivery(topic, shipped["id"], SECRET)

    provider.verify_webhook(headers, body)
    event = provider.parse_webhook(headers, body)

    assert (event.kind, event.shipment.status) == (kind, status)


def test_webhook_signed_with_another_secret_is_rejected_401(
    provider: ShipBobProvider, fake: FakeShipBob, shipped: dict[str, Any]
) -> None:
    headers, body = fake.webhook_delivery("order.shipped", shipped["id"], make_secret())

    with pytest.raises(WebhookRejected) as caught:
        provider.verify_webhook(headers, body)
    assert caught.value.status == 401


def test_webhook_with_a_changed_body_is_rejected_401(
    provider: ShipBobProvider, fake: FakeShipBob, shipped: dict[str, Any]
) -> None:
    headers, body = fake.webhook_delivery("order.shipped", shipped["id"], SECRET)

    with pytest.raises(WebhookRejected) as caught:
        provider.verify_webhook(headers, body.replace(b"USPS", b"UPS "))
    assert caught.value.status == 401


def test_replayed_webhook_with_a_stale_timestamp_is_rejected_401(
    provider: ShipBobProvider, fake: FakeShipBob, shipped: dict[str, Any]
) -> None:
    stale = datetime.now(UTC) - timedelta(minutes=10)
    headers, body = fake.webhook_delivery("order.shipped", shipped["id"], SECRET, at=stale)

    with pytest.raises(WebhookRejected, match="too old") as caught:
        provider.verify_webhook(headers, body)
    assert caught.value.status == 401


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_webhook_missing_a_signature_header_is_rejected_401(
    provider: ShipBobProvider, fake: FakeShipBob, shipped: dict[str, Any], missing: str
) -> None:
    headers, body = fake.webhook_delivery("order.shipped", shipped["id"], SECRET)
    del headers[missing]

    with pytest.raises(WebhookRejected) as caught:
        provider.verify_webhook(headers, body)
    assert caught.value.status == 401


def test_a_secret_that_is_not_whsec_base64_is_a_config_error(
    fake: FakeShipBob, http: requests.Session, shipbob_redis: redis.Redis, shipped: dict[str, Any]
) -> None:
    provider = make_provider(fake, http, shipbob_redis, webhook_secret="whsec_")
    headers, body = fake.webhook_delivery("order.shipped", shipped["id"], SECRET)

    with pytest.raises(ConfigError, match="webhook_secret"):
        provider.verify_webhook(headers, body)


def test_malformed_signature_header_is_rejected_401_not_a_crash(
    provider: ShipBobProvider, fake: FakeShipBob, shipped: dict[str, Any]
) -> None:
    headers, body = fake.webhook_delivery("order.shipped", shipped["id"], SECRET)
    headers["webhook-signature"] = "garbage-without-a-comma"

    with pytest.raises(WebhookRejected):
        provider.verify_webhook(headers, body)


def test_order_shaped_body_is_read_through_its_latest_shipment(provider: ShipBobProvider, fake: FakeShipBob) -> None:
    ref = pushed(provider)
    fake.ship(int(ref.provider_order_id))
    order = fake.state.order(int(ref.provider_order_id))
    headers = {"X-Webhook-Topic": "order.shipment.delivered", "Webhook-Id": "msg_1"}

    event = provider.parse_webhook(headers, json.dumps(order).encode())

    assert event.kind == "delivered" and event.delivery_id == "msg_1"
    assert event.shipment.provider_shipment_id == str(order["shipments"][0]["id"])
    assert event.shipment.reference == "7-1001" and event.shipment.provider_order_id == ref.provider_order_id


def test_documented_sample_without_a_shipment_id_is_unreadable_but_names_its_reference(
    provider: ShipBobProvider,
) -> None:
    body = SAMPLE.read_bytes()
    headers = {"x-webhook-topic": "order.shipped", "webhook-id": "msg_2"}

    assert ShipBobProvider.webhook_reference(headers, body) == "TEST101"
    with pytest.raises(ValueError, match="names no shipment"):
        provider.parse_webhook(headers, body)


def test_unknown_topic_and_unreadable_bodies_raise_value_error(provider: ShipBobProvider) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        provider.parse_webhook({"x-webhook-topic": "return.created"}, b'{"id": 1, "order_id": 2}')
    assert ShipBobProvider.webhook_reference({}, b"not json") == ""


# -- many workers, one account -------------------------------------------------------------------


def test_workers_sharing_the_limiter_stay_under_shipbobs_window(shipbob_redis: redis.Redis, redis_url: str) -> None:
    def connect() -> redis.Redis:
        return redis.Redis.from_url(redis_url)

    fake = start_fake(token=f"pat-{uuid.uuid4().hex}", rate_limit=10, rate_window=1.0)
    created: list[str] = []

    def worker(n: int) -> None:
        with requests.Session() as http:
            provider = make_provider(fake, http, connect(), rate_limit="10", rate_window="1")
            for k in range(8):
                created.append(provider.create_order(an_order(f"{n}{k}"), f"7-{n}-{k}").provider_order_id)
            provider.context.redis.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        fake.stop()

    assert len(set(created)) == 24 == fake.counters["orders_created"]
    assert fake.counters["429"] == 0 and fake.max_in_window <= 10
    assert time.monotonic() - started >= 2.0  # 24 requests at 10 per second need two more windows
