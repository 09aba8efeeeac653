"""The sandbox provider against the real sandbox API, served over HTTP on loopback.

Each test gets a fresh SQLite file and Redis db 5 (flushed before and after), a tiny Flask app
carrying ``sandbox.api.blueprint`` plus a stub of Relais' provider webhook route that records what
it receives, and the adapter ``SandboxProvider`` speaking HTTP to it. Jobs run for real: either
through an RQ ``SimpleWorker`` in burst mode or by calling the job function, as a retry would.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask, request
from rq import SimpleWorker
from rq.job import Job
from sqlalchemy import text
from werkzeug.serving import make_server

from config import Settings, normalise_database_url
from integrations.errors import (
    AuthError,
    InvalidRequestError,
    NotFoundError,
    RetryableError,
    WebhookRejected,
)
from integrations.fulfilment.base import ProviderContext
from integrations.model import Address, Contact, Line, Order, ProviderOrderRef
from jobs.runtime import Runtime, build_runtime, set_runtime
from sandbox import api as sandbox_web
from sandbox import jobs as sandbox_jobs
from sandbox.accounts import token_webhook_secret
from sandbox.models import SandboxBase
from sandbox.provider import SandboxProvider
from store.models import Base

# PostgreSQL when CI provides it (as tests/conftest.py does), else a SQLite file per test.
TEST_DB_URL = os.environ.get("TEST_DATABASE_URL", "")


@dataclass
class Sandbox:
    url: str
    runtime: Runtime
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answer: dict[str, int] = field(default_factory=lambda: {"status": 200})

    def provider(self, account: str = "sandbox", timeout: float | None = None, url: str = "") -> SandboxProvider:
        """The adapter for the sandbox account whose bearer token is ``account``."""
        settings = self.runtime.settings
        if timeout is not None:
            settings = settings.with_(provider_timeout=timeout)
        context = ProviderContext(http=self.runtime.http, settings=settings, redis=self.runtime.redis)
        return SandboxProvider({"token": account, "url": url}, context)

    def api(self, method: str, path: str, account: str = "sandbox", **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {account}"}
        return self.runtime.http.request(method, f"{self.url}/sandbox{path}", headers=headers, timeout=5, **kwargs)

    def work(self) -> None:
        """Run every due sandbox job once (the scheduler moves jobs whose delay is over)."""
        queue = self.runtime.queue("sandbox")
        worker = SimpleWorker([queue], connection=self.runtime.redis, serializer=queue.serializer)
        worker.work(burst=True, with_scheduler=True)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def sandbox(tmp_path: Any, redis_url: str) -> Iterator[Sandbox]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    app = Flask(__name__)
    app.register_blueprint(sandbox_web.blueprint, url_prefix="/sandbox")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    settings = Settings(
        environment="test",
        database_url=normalise_database_url(TEST_DB_URL) if TEST_DB_URL else f"sqlite:///{tmp_path}/relais.db",
        redis_url=redis_url,
        public_url=url,
        sandbox_ship_delay=0,
        provider_timeout=5,
    )
    harness = Sandbox(url=url, runtime=build_runtime(settings))

    @app.post("/webhooks/fulfilment/sandbox")
    def receive() -> tuple[str, int]:
        harness.received.append((dict(request.headers), request.get_data()))
        return "", harness.answer["status"]

    if harness.runtime.engine.dialect.name == "postgresql":
        with harness.runtime.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    Base.metadata.create_all(harness.runtime.engine)
    SandboxBase.metadata.create_all(harness.runtime.engine)  # dropped with the schema on PostgreSQL
    app.extensions["relais"] = harness.runtime
    set_runtime(harness.runtime)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield harness
    finally:
        server.shutdown()
        thread.join(timeout=5)
        set_runtime(None)
        harness.runtime.engine.dispose()
        client.flushdb()
        client.close()


def make_order(
    name: str = "Ada Lovelace",
    country: str = "FR",
    method: str = "Standard",
    lines: tuple[tuple[str, int], ...] = (("MUG-1", 3),),
    ship_to: bool = True,
) -> Order:
    address = Address(name=name, address1="5 rue de la Paix", city="Paris", country_code=country, zip="75002")
    return Order(
        platform_order_id="1001",
        name="#1001",
        paid=True,
        cancelled=False,
        updated_at=datetime.now(UTC),
        lines=tuple(
            Line(platform_line_id=str(i), sku=sku, quantity=qty, requires_shipping=True, name=sku)
            for i, (sku, qty) in enumerate(lines, start=1)
        ),
        ship_to=address if ship_to else None,
        shipping_method=method,
        contact=Contact(email="ada@example.com"),
    )


def stock(provider: SandboxProvider) -> dict[str, tuple[int, int]]:
    return {level.sku: (level.on_hand, level.fulfillable) for level in provider.inventory()}


# Independent check-digit validators, written from each carrier's published rule and checked
# below against published valid numbers (jkeen/tracking_number_data test numbers, UPU S10 example).
def s10_valid(number: str) -> bool:
    digits, check = number[2:10], int(number[10])
    total = sum(int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True))
    expected = 11 - total % 11
    expected = 0 if expected == 10 else 5 if expected == 11 else expected
    return len(number) == 13 and number[:2].isalpha() and number[11:].isalpha() and check == expected


def ups_valid(number: str) -> bool:
    if len(number) != 18 or not number.startswith("1Z"):
        return False
    values = [int(c) if c.isdigit() else (ord(c) - 63) % 10 for c in number[2:17]]
    total = sum(v * (2 if i % 2 else 1) for i, v in enumerate(values))
    return (10 - total % 10) % 10 == int(number[17])


def dhl_express_valid(number: str) -> bool:
    return len(number) == 10 and number.isdigit() and int(number[:-1]) % 7 == int(number[-1])


def test_check_digit_validators_agree_with_published_numbers() -> None:
    assert s10_valid("RB123456785GB") and not s10_valid("RB123456784GB")
    assert ups_valid("1Z879E930346834440") and not ups_valid("1Z879E930346834441")
    assert all(dhl_express_valid(n) for n in ("3318810025", "8487135506", "1099255990", "3821724944"))
    assert not dhl_express_valid("3318810010")


def test_create_order_returns_the_sandbox_id_and_commits_stock(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    assert sandbox.api("PUT", "/api/inventory/MUG-1", json={"on_hand": 10}).status_code == 200

    ref = provider.create_order(make_order(lines=(("MUG-1", 3), ("NEW-SKU", 2))), "1-1001")

    assert ref.reference == "1-1001" and ref.provider_order_id and not ref.duplicate
    assert provider.find_order("1-1001") == ProviderOrderRef("1-1001", ref.provider_order_id)
    # MUG-1: 10 on hand, 3 committed → 7 fulfillable; an unknown SKU arrives with 100 on hand.
    assert stock(provider) == {"MUG-1": (10, 7), "NEW-SKU": (100, 98)}
    levels = list(provider.inventory())
    assert {level.location for level in levels} == {"SANDBOX-1"}


def test_repeat_create_returns_the_same_order_marked_duplicate(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    first = provider.create_order(make_order(), "1-1001")

    again = provider.create_order(make_order(), "1-1001")

    assert again == ProviderOrderRef("1-1001", first.provider_order_id, duplicate=True)
    assert stock(provider)["MUG-1"] == (100, 97)  # committed once, not twice
    answer = sandbox.api("POST", "/api/orders", json=SandboxProvider.order_payload(make_order(), "1-1001"))
    assert answer.status_code == 409
    assert answer.json() == {"error": "duplicate_reference", "order_id": int(first.provider_order_id)}


def test_duplicate_create_after_timeout_returns_the_order_the_timed_out_call_made(sandbox: Sandbox) -> None:
    sandbox.api("POST", "/api/faults", json={"slow_next": 1, "delay": 1.0})
    impatient = sandbox.provider(timeout=0.3)

    with pytest.raises(RetryableError, match="timed out"):
        impatient.create_order(make_order(), "1-1001")
    retried = impatient.create_order(make_order(), "1-1001")

    assert retried.duplicate
    assert impatient.find_order("1-1001") == ProviderOrderRef("1-1001", retried.provider_order_id)
    assert stock(impatient)["MUG-1"] == (100, 97)


def test_concurrent_creates_of_one_reference_make_one_order(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    refs: list[ProviderOrderRef] = []
    threads = [
        threading.Thread(target=lambda: refs.append(provider.create_order(make_order(), "1-1001"))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(refs) == 6
    assert len({ref.provider_order_id for ref in refs}) == 1
    assert sum(not ref.duplicate for ref in refs) == 1
    assert stock(provider)["MUG-1"] == (100, 97)


def test_unreachable_sandbox_is_retryable(sandbox: Sandbox) -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(RetryableError):
        sandbox.provider(url=f"http://127.0.0.1:{port}/sandbox").inventory()


def test_order_without_address_is_refused_as_invalid_with_field_messages(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    with pytest.raises(InvalidRequestError) as refused:
        provider.create_order(make_order(ship_to=False), "1-1001")

    assert refused.value.status == 422
    assert set(refused.value.details) == {
        "recipient.name",
        "recipient.address1",
        "recipient.city",
        "recipient.country_code",
    }
    assert "recipient.city: is required" in str(refused.value)
    assert provider.find_order("1-1001") is None


def test_lines_with_a_bad_sku_or_quantity_are_refused_per_line(sandbox: Sandbox) -> None:
    body = SandboxProvider.order_payload(make_order(), "1-1001")
    body["lines"] = [
        {"sku": "MUG-1", "quantity": 1},
        {"sku": " ", "quantity": 0},
        {"sku": "X" * 256, "quantity": True},
    ]

    answer = sandbox.api("POST", "/api/orders", json=body)

    assert answer.status_code == 422
    assert answer.json() == {
        "errors": {
            "lines[1].sku": ["is required"],
            "lines[1].quantity": ["must be a whole number from 1 to 100000"],
            "lines[2].sku": ["must be at most 255 characters"],
            "lines[2].quantity": ["must be a whole number from 1 to 100000"],
        }
    }


def test_accounts_are_kept_apart_by_token(sandbox: Sandbox) -> None:
    sandbox.provider("shop-a").create_order(make_order(), "1-1001")

    other = sandbox.provider("shop-b")
    assert other.find_order("1-1001") is None
    assert list(other.inventory()) == []
    assert not other.create_order(make_order(), "1-1001").duplicate


def test_missing_token_is_an_auth_error(sandbox: Sandbox) -> None:
    with pytest.raises(AuthError):
        sandbox.provider(account="").inventory()


def test_injected_500_is_retryable_and_the_next_call_succeeds(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    sandbox.api("POST", "/api/faults", json={"fail_next": 1, "status": 500})

    with pytest.raises(RetryableError) as failed:
        provider.create_order(make_order(), "1-1001")

    assert failed.value.status == 500
    assert not provider.create_order(make_order(), "1-1001").duplicate  # the 500 created nothing


def test_injected_429_carries_retry_after(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    sandbox.api("POST", "/api/faults", json={"fail_next": 2, "status": 429, "retry_after": 25})

    for _ in range(2):
        with pytest.raises(RetryableError) as limited:
            provider.inventory()
        assert (limited.value.status, limited.value.retry_after) == (429, 25.0)
    assert list(provider.inventory()) == []


def test_faults_are_cleared_with_zero_and_checked(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    sandbox.api("POST", "/api/faults", json={"fail_next": 3, "status": 503})
    assert sandbox.api("POST", "/api/faults", json={"fail_next": 0}).json() == {"fail": 0}
    assert list(provider.inventory()) == []

    refused = sandbox.api("POST", "/api/faults", json={"fail_next": 1, "status": 418, "slow_next": -1})
    assert refused.status_code == 422
    assert set(refused.json()["errors"]) == {"status", "slow_next"}
    assert list(provider.inventory()) == []  # nothing was stored


def test_injected_403_and_422_map_to_auth_and_invalid(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    sandbox.api("POST", "/api/faults", json={"fail_next": 1, "status": 403})
    with pytest.raises(AuthError):
        provider.inventory()
    sandbox.api("POST", "/api/faults", json={"fail_next": 1, "status": 422})
    with pytest.raises(InvalidRequestError, match="injected"):
        provider.create_order(make_order(), "1-1001")


def test_cancel_before_shipping_cancels_and_releases_stock(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    ref = provider.create_order(make_order(), "1-1001")

    result = provider.cancel_order(ref)

    assert result.outcome == "cancelled"
    assert [s.cancelled for s in result.shipments] == [True]
    assert stock(provider)["MUG-1"] == (100, 100)
    assert provider.cancel_order(ref).outcome == "cancelled"  # a repeat is harmless
    sandbox_jobs.ship_order(int(ref.provider_order_id))
    assert sandbox.received == [] and provider.shipments(ref) == []  # a cancelled parcel never ships


def test_cancel_after_shipping_is_too_late(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    ref = provider.create_order(make_order(), "1-1001")
    sandbox_jobs.ship_order(int(ref.provider_order_id))

    result = provider.cancel_order(ref)

    assert result.outcome == "too_late"
    assert [(s.cancelled, s.reason) for s in result.shipments] == [(False, "already shipped")]


def test_cancel_of_split_order_with_one_parcel_shipped_is_partial(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    order = make_order(name="Split Test", lines=(("MUG-1", 1), ("TEE-M", 2), ("CAP", 1)))
    ref = provider.create_order(order, "1-1001")
    sandbox_jobs.ship_order(int(ref.provider_order_id))  # ships parcel 1, schedules parcel 2

    result = provider.cancel_order(ref)

    assert result.outcome == "partial"
    assert [s.cancelled for s in result.shipments] == [False, True]
    (shipped,) = provider.shipments(ref)
    assert [(ln.sku, ln.quantity) for ln in shipped.lines] == [("MUG-1", 1), ("TEE-M", 2)]
    # parcel 1 left the warehouse, parcel 2's hold on CAP was released
    assert stock(provider) == {"MUG-1": (99, 99), "TEE-M": (98, 98), "CAP": (100, 100)}
    sandbox.work()  # runs the scheduled jobs: parcel 2's finds it cancelled, parcel 1 is delivered
    parcel_1 = int(shipped.provider_shipment_id)
    assert [(e["topic"], e["shipment"]["id"]) for e in sandbox.events()] == [
        ("order.shipped", parcel_1),
        ("order.shipment.delivered", parcel_1),
    ]


def test_worker_ships_the_order_and_posts_a_signed_webhook(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    ref = provider.create_order(make_order(), "1-1001")

    sandbox.work()

    ((headers, body),) = sandbox.received
    provider.verify_webhook(headers, body)  # does not raise
    event = provider.parse_webhook(headers, body)
    assert event.kind == "shipped" and event.delivery_id == headers["Webhook-Id"]
    assert SandboxProvider.webhook_reference(headers, body) == "1-1001"
    assert SandboxProvider.webhook_topic(headers, body) == "order.shipped"
    shipment = event.shipment
    assert shipment is not None and shipment.reference == "1-1001"
    assert shipment.provider_order_id == ref.provider_order_id
    assert (shipment.carrier, shipment.service) == ("Colissimo", "Colissimo Domicile")
    assert shipment.tracking_number.startswith("6A") and len(shipment.tracking_number) == 13
    assert shipment.tracking_url == f"https://www.laposte.fr/outils/suivre-vos-envois?code={shipment.tracking_number}"
    assert [(ln.sku, ln.quantity) for ln in shipment.lines] == [("MUG-1", 3)]
    assert provider.shipments(ref) == [shipment]
    assert stock(provider)["MUG-1"] == (97, 97)


def test_repeat_of_the_ship_job_sends_nothing_more(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    ref = provider.create_order(make_order(), "1-1001")
    sandbox_jobs.ship_order(int(ref.provider_order_id))
    (before,) = provider.shipments(ref)

    sandbox_jobs.ship_order(int(ref.provider_order_id))

    assert len(sandbox.received) == 1
    assert provider.shipments(ref) == [before]
    assert stock(provider)["MUG-1"] == (97, 97)


def test_unacknowledged_webhook_fails_the_job_and_its_retry_resends_the_same_delivery(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    ref = provider.create_order(make_order(), "1-1001")
    sandbox.answer["status"] = 503

    sandbox.work()

    queue = sandbox.runtime.queue("sandbox")
    (job_id,) = queue.scheduled_job_registry.get_job_ids()
    job = Job.fetch(job_id, connection=sandbox.runtime.redis, serializer=queue.serializer)
    assert job.func_name == "sandbox.jobs.ship_order" and job.retries_left == 5  # RQ will retry
    (tracking,) = [s.tracking_number for s in provider.shipments(ref)]

    sandbox.answer["status"] = 200
    sandbox_jobs.ship_order(int(ref.provider_order_id))  # what the retry runs

    first, second = sandbox.received
    assert first[0]["Webhook-Id"] == second[0]["Webhook-Id"]
    assert json.loads(second[1])["shipment"]["tracking_number"] == tracking
    sandbox_jobs.ship_order(int(ref.provider_order_id))
    assert len(sandbox.received) == 2


def test_delivery_job_sends_a_delivered_event(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    ref = provider.create_order(make_order(), "1-1001")
    sandbox_jobs.ship_order(int(ref.provider_order_id))

    sandbox.work()  # the delivery was scheduled at 2 × delay = now
    sandbox_jobs.deliver_shipment(int(provider.shipments(ref)[0].provider_shipment_id))  # a repeat

    assert [e["topic"] for e in sandbox.events()] == ["order.shipped", "order.shipment.delivered"]
    headers, body = sandbox.received[1]
    provider.verify_webhook(headers, body)
    event = provider.parse_webhook(headers, body)
    assert event.kind == "delivered" and event.shipment is not None and event.shipment.status == "delivered"
    assert provider.shipments(ref)[0].status == "delivered"


@pytest.mark.parametrize(
    ("country", "method", "carrier", "valid"),
    [
        ("FR", "Standard", "Colissimo", lambda n: n[:2] == "6A" and n[2:].isdigit() and len(n) == 13),
        ("FR", "Express 24h", "Chronopost", lambda n: s10_valid(n) and n[:2] == "XW" and n[-2:] == "FR"),
        ("DE", "Standard", "Colissimo", lambda n: s10_valid(n) and n[:2] == "CP" and n[-2:] == "FR"),
        ("DE", "Express", "UPS", ups_valid),
        ("US", "Standard", "UPS", ups_valid),
        ("US", "Priority", "DHL Express", dhl_express_valid),
    ],
)
def test_tracking_numbers_follow_the_carrier_layout_and_pass_check_digits(
    sandbox: Sandbox, country: str, method: str, carrier: str, valid: Any
) -> None:
    provider = sandbox.provider()
    for n in range(5):
        ref = provider.create_order(make_order(country=country, method=method), f"1-{n}")
        sandbox_jobs.ship_order(int(ref.provider_order_id))
        (shipment,) = provider.shipments(ref)
        assert shipment.carrier == carrier
        assert valid(shipment.tracking_number), shipment.tracking_number
        assert shipment.tracking_number in shipment.tracking_url


def test_webhook_with_a_bad_signature_is_rejected_with_401(sandbox: Sandbox) -> None:
    provider = sandbox.provider()
    ref = provider.create_order(make_order(), "1-1001")
    sandbox_jobs.ship_order(int(ref.provider_order_id))
    ((headers, body),) = sandbox.received
    secret = token_webhook_secret(sandbox.runtime.settings, "sandbox")
    stale = sandbox_jobs.signed_headers(
        secret, "msg_1", "order.shipped", body.decode(), at=datetime.now(UTC) - timedelta(minutes=6)
    )
    other_secret = sandbox_jobs.signed_headers(
        "whsec_" + "A" * 44, headers["Webhook-Id"], "order.shipped", body.decode()
    )
    forged = [
        (headers, body.replace(b"1-1001", b"1-1002")),  # tampered body
        ({**headers, "Webhook-Signature": "v1,bm90LWEtc2lnbmF0dXJl"}, body),  # wrong signature
        ({**headers, "Webhook-Signature": "garbage"}, body),  # malformed signature
        ({k: v for k, v in headers.items() if k != "Webhook-Timestamp"}, body),  # missing header
        (other_secret, body),  # signed by someone else
        (stale, body),  # outside the 5-minute tolerance
    ]
    for forged_headers, forged_body in forged:
        with pytest.raises(WebhookRejected) as rejected:
            provider.verify_webhook(forged_headers, forged_body)
        assert rejected.value.status == 401


def test_unknown_order_is_not_found(sandbox: Sandbox) -> None:
    with pytest.raises(NotFoundError):
        sandbox.provider().cancel_order(ProviderOrderRef("1-404", "404"))
