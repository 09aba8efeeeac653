"""JSON logs: one object per line, with the job's, shop's and order's ids, never a secret."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from config import load_settings
from config.logging import JsonFormatter, RedactSecrets, configure_logging
from jobs import states
from jobs.orders import FollowUp, enqueue_follow_ups
from jobs.queues import enqueue_once
from store import orders as order_store
from store.db import transaction
from store.models import Order, OrderLine
from store.shops import upsert_shop
from tests.conftest import drain
from tests.fakes.shipbob import FakeShipBob, make_secret, start_fake

SHOP_TOKEN = "shpat_0123456789abcdef0123"  # a made-up Shopify token


def plain_job() -> str:
    logging.getLogger("tests.plain").warning("a job of no shop, with api_key=SEKRET999 in its text")
    return "ok"


@pytest.fixture
def shipbob() -> Iterator[FakeShipBob]:
    fake = start_fake(token=f"pat-{uuid.uuid4().hex}")
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings, shipbob):  # type: ignore[no-untyped-def]
    return settings.with_(shipbob_api_url=shipbob.url)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the root logger writes, as the JSON format writes it (the production set-up)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def a_ready_order(runtime, shipbob: FakeShipBob) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    options = {"token": shipbob.token, "channel_id": str(shipbob.channel_id), "webhook_secret": make_secret()}
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(
            session, runtime.vault, "shopify", "logs.myshopify.com", {"access_token": SHOP_TOKEN}, "shipbob", options
        )
        row = Order(
            shop_id=shop.id,
            platform_order_id="9001",
            name="#9001",
            paid=True,
            provider="shipbob",
            ship_to={"name": "Ann", "address1": "1 Rue", "city": "Paris", "country_code": "FR", "zip": "75001"},
            contact={"email": "ann@example.com", "phone": ""},
            lines=[OrderLine(platform_line_id="1", sku="MUG", quantity=1, requires_shipping=True)],
            history=[],
        )
        session.add(row)
        order_store.transition(row, states.RECEIVED, "received")
        order_store.transition(row, states.READY, "paid")
        session.flush()
        return shop.id, row.id, row.generation


def test_a_jobs_log_line_carries_its_job_shop_and_order_ids_and_no_secret(runtime, shipbob, json_log) -> None:  # type: ignore[no-untyped-def]
    shop_id, order_id, generation = a_ready_order(runtime, shipbob)
    shipbob.fail(429, retry_after=1)  # the push is refused once: the job logs it, then retries
    enqueue_follow_ups(runtime, [FollowUp("push", order_id, generation)])
    enqueue_once(runtime, "maintenance", "tests.test_json_logs.plain_job", job_id="plain-1")
    drain(runtime)
    with runtime.sessions() as session:
        assert session.get(Order, order_id).state == states.PUSHED

    text = json_log.getvalue()
    records = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    [push] = [r for r in records if "of order" in r["message"]]
    assert push["level"] == "WARNING" and push["logger"] == "jobs.orders"
    assert push["job_id"] == f"push-{order_id}-{generation}"
    assert (push["shop_id"], push["order_id"]) == (shop_id, order_id)
    assert push["time"].endswith("+00:00") and "rate limited" in push["message"]
    [plain] = [r for r in records if r["logger"] == "tests.plain"]
    assert plain["job_id"] == "plain-1"
    assert "shop_id" not in plain and "order_id" not in plain  # nothing left over from the previous job
    assert "SEKRET999" not in text and "api_key=[redacted]" in plain["message"]
    for secret in (SHOP_TOKEN, shipbob.token):
        assert secret not in text


def test_production_defaults_to_json_logs_and_development_to_text(tmp_path: Path) -> None:
    development = {"RELAIS_ENV": "development", "RELAIS_DEV_SECRET_FILE": str(tmp_path / "secret")}
    assert load_settings(development).log_format == "text"
    assert load_settings({**development, "LOG_FORMAT": "json"}).log_format == "json"
    production = {
        "RELAIS_ENV": "production",
        "DATABASE_URL": "postgresql://db/relais",
        "REDIS_URL": "redis://redis:6379/0",
        "SECRET_KEY": "s" * 40,
        "RELAIS_ENCRYPTION_KEY": "0" * 43 + "=",
        "SHOPIFY_API_KEY": "key",
        "SHOPIFY_API_SECRET": "secret",
    }
    assert load_settings(production).log_format == "json"


def test_configure_logging_writes_json_when_asked() -> None:
    root = logging.getLogger()
    before = [(h, h.formatter) for h in root.handlers]
    try:
        configure_logging("INFO", "json")
        ours = [h for h in root.handlers if any(isinstance(f, RedactSecrets) for f in h.filters)]
        assert ours and all(isinstance(h.formatter, JsonFormatter) for h in ours)
    finally:
        for handler, formatter in before:
            handler.setFormatter(formatter)
        for handler in root.handlers[:]:
            if (handler, handler.formatter) not in before and handler not in [h for h, _ in before]:
                root.removeHandler(handler)
