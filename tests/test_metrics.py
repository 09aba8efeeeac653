"""GET /metrics: token-guarded Prometheus figures read from Redis and the database at scrape time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from integrations.errors import RetryableError
from integrations.fulfilment.base import ProviderContext
from integrations.fulfilment.shipbob import ShipBobProvider
from jobs.queues import enqueue_once
from jobs.runtime import build_runtime
from store.db import transaction
from store.shops import upsert_shop
from store.sync_models import sync_row
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shipbob import FakeShipBob, make_secret, start_fake
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order
from tests.test_shipbob_provider import an_order

TOKEN = "metrics-token-0123456789abcdef"
SHOP = "metrics-shop.myshopify.com"


def explode(order_id: int) -> None:
    """A job that always fails (for the failure and latency figures)."""
    raise RuntimeError(f"order {order_id} exploded with token=shpat_abcdef123456")


def succeed(order_id: int) -> str:
    return "ok"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.with_(metrics_token=TOKEN)


@pytest.fixture
def shipbob() -> Iterator[FakeShipBob]:
    fake = start_fake(token=f"pat-{uuid.uuid4().hex}")
    yield fake
    fake.stop()


def scrape(client, token: str = TOKEN) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.data
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_answer_404_when_no_token_is_configured(runtime) -> None:  # type: ignore[no-untyped-def]
    runtime.settings = runtime.settings.with_(metrics_token="")
    client = create_app(runtime=runtime).test_client()
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN}"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert b"relais_" not in response.data


def test_metrics_refuse_a_missing_or_wrong_token_with_401_and_show_nothing(client) -> None:  # type: ignore[no-untyped-def]
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert b"relais_" not in response.data and TOKEN.encode() not in response.data
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_show_queue_depth_and_the_age_of_the_oldest_job(client, runtime) -> None:  # type: ignore[no-untyped-def]
    enqueue_once(runtime, "orders", "tests.test_metrics.succeed", 1, job_id="m-1")
    enqueue_once(runtime, "orders", "tests.test_metrics.succeed", 2, job_id="m-2")
    found = scrape(client)
    assert found[("relais_queue_jobs", (("queue", "orders"),))] == 2
    assert found[("relais_queue_jobs", (("queue", "webhooks"),))] == 0
    assert found[("relais_queue_jobs", (("queue", "orders-bulk"),))] == 0
    assert 0 <= found[("relais_queue_oldest_job_age_seconds", (("queue", "orders"),))] < 60
    assert found[("relais_failed_jobs", (("queue", "orders"),))] == 0


def test_a_failed_job_counts_by_function_with_its_latency(client, runtime) -> None:  # type: ignore[no-untyped-def]
    enqueue_once(runtime, "orders", "tests.test_metrics.explode", 7, job_id="m-explode")
    enqueue_once(runtime, "orders", "tests.test_metrics.succeed", 8, job_id="m-succeed")
    drain(runtime)
    found = scrape(client)
    assert found[("relais_job_failures_total", (("function", "tests.test_metrics.explode"),))] == 1
    assert ("relais_job_failures_total", (("function", "tests.test_metrics.succeed"),)) not in found
    for function in ("tests.test_metrics.explode", "tests.test_metrics.succeed"):
        assert found[("relais_job_duration_seconds_count", (("function", function),))] == 1
        assert found[("relais_job_duration_seconds_bucket", (("function", function), ("le", "+Inf")))] == 1
    assert found[("relais_failed_jobs", (("queue", "orders"),))] == 1


def test_refused_webhooks_count_by_reason(live) -> None:  # type: ignore[no-untyped-def]
    server, rt = live
    body = body_of(paid_order(1001))
    forged = headers_for(SHOP, "orders/paid", body, "not-the-app-secret")
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=forged, timeout=5).status_code == 401
    unknown = headers_for("nobody.myshopify.com", "orders/paid", body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=unknown, timeout=5).status_code == 404
    assert requests.post(f"{server.url}/webhooks/shopify", data=b"{", headers=unknown, timeout=5).status_code == 401
    client = create_app(runtime=rt).test_client()
    found = scrape(client)
    assert found[("relais_webhook_rejections_total", (("reason", "signature"),))] == 2
    assert found[("relais_webhook_rejections_total", (("reason", "unknown_shop"),))] == 1
    text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)
    assert "nobody.myshopify.com" not in text and SHOP not in text


def test_a_429_from_the_provider_counts_for_that_provider(client, runtime, shipbob) -> None:  # type: ignore[no-untyped-def]
    options = {"token": shipbob.token, "channel_id": str(shipbob.channel_id), "webhook_secret": make_secret()}
    context = ProviderContext(
        http=requests.Session(), settings=runtime.settings.with_(shipbob_api_url=shipbob.url), redis=runtime.redis
    )
    provider = ShipBobProvider(options, context)
    shipbob.fail(429, retry_after=1)
    with pytest.raises(RetryableError):
        provider.create_order(an_order(), "7-1001")
    found = scrape(client)
    assert found[("relais_provider_rate_limited_total", (("provider", "shipbob"),))] == 1
    assert shipbob.token not in client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(
        as_text=True
    )


def test_the_latest_drift_reports_are_added_up_by_kind(client, runtime) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        for n, (missing, wrong) in enumerate(((3, 1), (2, 0))):
            shop = upsert_shop(
                session, runtime.vault, "shopify", f"d{n}.myshopify.com", {"access_token": "x"}, "sandbox", {}
            )
            sync_row(session, shop.id).drift_report = {
                "at": "2026-01-01T00:00:00+00:00",
                "missing": [{"kind": "orders_not_received", "count": missing, "entries": []}],
                "repaired": {"count": missing, "entries": []},
                "still_wrong": {"count": wrong, "entries": []},
            }
    found = scrape(client)
    assert found[("relais_reconcile_drift", (("kind", "orders_not_received"),))] == 5
    assert found[("relais_reconcile_drift", (("kind", "repaired"),))] == 5
    assert found[("relais_reconcile_drift", (("kind", "still_wrong"),))] == 1
    assert found[("relais_reconcile_shops_still_wrong", ())] == 1


def test_metrics_answer_503_in_plain_words_when_redis_is_down(runtime) -> None:  # type: ignore[no-untyped-def]
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    rt = build_runtime(runtime.settings, down)
    response = create_app(runtime=rt).test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert response.mimetype == "text/plain" and b"Redis" in response.data
    rt.engine.dispose()
