"""The GraphQL Admin client against the fake Shopify on a real port: URL, auth, throttling, retries, errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from config import Settings
from integrations.carriers import Tracking
from integrations.errors import AuthError, InvalidRequestError, RetryableError
from integrations.shopify.admin import AdminClient, ShopifyUserError
from integrations.shopify.fulfilment import (
    FULFILMENT_CREATE,
    ORDER_FULFILMENT_STATE,
    TRACKING_UPDATE,
    Parcel,
    update_tracking,
    write_parcel,
)
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_fulfilment import QUANTITY_ERROR, FakeOrder

LOCATION = "gid://shopify/Location/64500000001"
TOKEN = "shpat_client_test"


def make_client(fake: FakeShopifyAdmin, **kwargs: object) -> AdminClient:
    # A shop name per client: the in-process cost book is per shop, so tests never share one.
    settings = Settings(environment="test", shopify_admin_url=fake.url + "/{shop}")
    kwargs.setdefault("backoff", 0.01)
    return AdminClient(f"{uuid.uuid4().hex[:12]}.myshopify.com", TOKEN, settings, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin(TOKEN, restore_rate=10_000).start()
    yield server
    server.stop()


def one_order(fake: FakeShopifyAdmin) -> FakeOrder:
    return fake.add_order(820982911946154508, [("IPOD2008GREEN", 2, LOCATION)])


def read(client: AdminClient, order: FakeOrder) -> dict[str, Any]:
    return client.query(ORDER_FULFILMENT_STATE, {"id": order.id, "after": None})["order"]


def test_client_posts_to_the_shops_versioned_graphql_url_with_its_token(fake: FakeShopifyAdmin) -> None:
    order = one_order(fake)
    client = make_client(fake)
    assert read(client, order)["id"] == order.id
    assert fake.shops == [client.shop]
    assert fake.versions == ["2026-10"]
    assert client.url == f"{fake.url}/{client.shop}/admin/api/2026-10/graphql.json"


def test_default_admin_url_is_the_shops_myshopify_domain() -> None:
    client = AdminClient("demo.myshopify.com", TOKEN, Settings(shopify_api_version="2026-07"))
    assert client.url == "https://demo.myshopify.com/admin/api/2026-07/graphql.json"


def test_a_refused_token_raises_auth_error(fake: FakeShopifyAdmin) -> None:
    settings = Settings(environment="test", shopify_admin_url=fake.url + "/{shop}")
    client = AdminClient("x.myshopify.com", "shpat_wrong", settings)
    with pytest.raises(AuthError):
        read(client, one_order(fake))


def test_access_denied_error_raises_auth_error(fake: FakeShopifyAdmin) -> None:
    denied = {"errors": [{"message": "Access denied for order field.", "extensions": {"code": "ACCESS_DENIED"}}]}
    fake.fail_next(200, body=denied)
    with pytest.raises(AuthError, match="missing scope"):
        read(make_client(fake), one_order(fake))


def test_throttled_answer_makes_the_client_wait_for_the_refill_then_succeed() -> None:
    server = FakeShopifyAdmin(TOKEN, restore_rate=1000).start()
    try:
        order = one_order(server)
        server.set_available(0)  # other calls drained the bucket; this client has not seen it yet
        started = time.monotonic()
        assert read(make_client(server), order)["id"] == order.id
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert server.throttled == 1
    assert server.requests == 2
    assert elapsed >= 0.6  # the query requests 684 points at 1000 points/s


def test_client_paces_its_next_call_when_the_bucket_is_short_instead_of_being_throttled() -> None:
    server = FakeShopifyAdmin(TOKEN, restore_rate=10_000).start()
    try:
        order = one_order(server)
        client = make_client(server)
        written = write_parcel(client, order.legacy_id, _parcel("1Z999AA10123456784"), LOCATION)
        # Now a dev store's tiny bucket: 15 points refilling 20/s; a tracking update costs 10.
        server.maximum, server.restore_rate = 15, 20
        server.set_available(15)
        started = time.monotonic()
        for number in ("1Z999AA10123456785", "1Z999AA10123456786", "1Z999AA10123456787"):
            update_tracking(client, written.platform_fulfilment_id, Tracking("UPS", number, ""), False)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert server.throttled == 0
    assert elapsed >= 0.6  # 30 points from a bucket of 15 refilling 20/s: ≥ 0.75 s minus jitter


def test_429_with_fractional_retry_after_is_honoured(fake: FakeShopifyAdmin) -> None:
    order = one_order(fake)
    fake.fail_next(429, headers={"Retry-After": "0.5"})
    started = time.monotonic()
    assert read(make_client(fake), order)["id"] == order.id
    assert time.monotonic() - started >= 0.5
    assert fake.requests == 2


def test_429_asking_longer_than_the_client_may_wait_goes_back_to_the_queue(fake: FakeShopifyAdmin) -> None:
    fake.fail_next(429, headers={"Retry-After": "120"})
    with pytest.raises(RetryableError) as caught:
        read(make_client(fake), one_order(fake))
    assert caught.value.retry_after == 120
    assert fake.requests == 1


def test_query_answered_5xx_is_retried_with_backoff_then_succeeds(fake: FakeShopifyAdmin) -> None:
    order = one_order(fake)
    fake.fail_next(503, count=2)
    assert read(make_client(fake), order)["id"] == order.id
    assert fake.requests == 3


def test_persistent_5xx_raises_retryable_error_after_a_few_attempts(fake: FakeShopifyAdmin) -> None:
    fake.fail_next(500, count=10)
    with pytest.raises(RetryableError) as caught:
        read(make_client(fake, attempts=3), one_order(fake))
    assert caught.value.status == 500
    assert fake.requests == 3


def test_query_timing_out_is_sent_again(fake: FakeShopifyAdmin) -> None:
    order = one_order(fake)
    fake.fail_next(0, delay=0.6)  # answers, but after the client stopped waiting
    assert read(make_client(fake, timeout=0.2), order)["id"] == order.id
    assert fake.requests == 2


def test_mutation_whose_answer_is_lost_is_not_sent_again(fake: FakeShopifyAdmin) -> None:
    order = one_order(fake)
    client = make_client(fake)
    written = write_parcel(client, order.legacy_id, _parcel("1Z999AA10123456784"), LOCATION)
    fake.fail_next(502, execute_first=True)
    with pytest.raises(RetryableError):
        update_tracking(client, written.platform_fulfilment_id, Tracking("UPS", "1Z999AA10123456785", ""), True)
    assert fake.operations["fulfillmentTrackingInfoUpdate"] == 1  # applied once, never re-sent
    assert len(fake.state.fulfilments[written.platform_fulfilment_id].tracking_updates) == 1


def test_user_errors_raise_shopify_user_error_carrying_the_list(fake: FakeShopifyAdmin) -> None:
    variables = {"id": "gid://shopify/Fulfillment/1", "tracking": {"number": "X1"}, "notify": False}
    with pytest.raises(ShopifyUserError) as caught:
        make_client(fake).mutate(TRACKING_UPDATE, variables, "fulfillmentTrackingInfoUpdate")
    assert isinstance(caught.value, InvalidRequestError)
    assert caught.value.user_errors == [
        {"field": ["fulfillmentId"], "message": "Fulfillment does not exist.", "code": None}
    ]


def test_asking_more_than_remains_is_refused_with_shopifys_message(fake: FakeShopifyAdmin) -> None:
    order = one_order(fake)
    fo = order.fulfillment_orders[0]
    items = [{"id": fo.lines[0].id, "quantity": 3}]  # 2 ordered
    fulfillment = {"lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo.id, "fulfillmentOrderLineItems": items}]}
    with pytest.raises(ShopifyUserError, match=QUANTITY_ERROR):
        make_client(fake).mutate(FULFILMENT_CREATE, {"fulfillment": fulfillment}, "fulfillmentCreate")
    assert fo.lines[0].remaining == 2


def test_document_invalid_against_the_schema_raises_invalid_request(fake: FakeShopifyAdmin) -> None:
    with pytest.raises(InvalidRequestError, match="fulfilmentOrders"):
        make_client(fake).query('query { order(id: "gid://shopify/Order/1") { fulfilmentOrders { id } } }')
    assert fake.operations == {}  # refused before execution


def test_query_over_the_single_query_cost_limit_is_refused(fake: FakeShopifyAdmin) -> None:
    lines = "lineItems(first: 50) { nodes { id } }"
    greedy = (
        f'query {{ order(id: "gid://shopify/Order/1") {{ fulfillmentOrders(first: 50) {{ nodes {{ {lines} }} }} }} }}'
    )
    with pytest.raises(InvalidRequestError, match="exceeds the single query max cost"):
        make_client(fake).query(greedy)


def _parcel(number: str) -> Parcel:
    return Parcel(Tracking("UPS", number, ""))
