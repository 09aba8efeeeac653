"""A webhook that arrives while the database refuses connections is answered 503, never 500 or 200.

Shopify and the providers retry any non-2xx; a 503 with a reason tells the sender (and whoever
reads its delivery log) that nothing was stored and it should send again. The database here
really refuses: a SQLite file in a folder that does not exist, a PostgreSQL port nobody listens on.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis as redis_lib

from app import create_app
from config import Settings
from jobs.runtime import build_runtime, set_runtime
from tests.conftest import SHOPIFY_SECRET
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order


def _unreachable(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'relais.db'}"
    return "postgresql+psycopg://postgres@127.0.0.1:1/relais?connect_timeout=2"


@pytest.fixture(params=["sqlite", "postgresql"])
def refusing_client(request, settings: Settings, redis_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    broken = settings.with_(database_url=_unreachable(request.param, tmp_path), sandbox=False)
    runtime = build_runtime(broken, redis_lib.Redis.from_url(redis_url))
    app = create_app(runtime=runtime)
    yield app.test_client()
    runtime.engine.dispose()
    runtime.redis.close()  # the 503 is counted in Redis (store.metrics): close that connection
    set_runtime(None)


def test_a_shopify_delivery_while_the_database_refuses_gets_503_with_a_reason_and_retry_after(refusing_client) -> None:  # type: ignore[no-untyped-def]
    body = body_of(paid_order(4242))
    headers = headers_for("outage-shop.myshopify.com", "orders/paid", body, SHOPIFY_SECRET)
    response = refusing_client.post("/webhooks/shopify", data=body, headers=headers)
    assert response.status_code == 503
    assert "database unavailable" in response.get_json()["error"]
    assert response.headers["Retry-After"] == "5"


def test_a_provider_delivery_while_the_database_refuses_gets_503(refusing_client) -> None:  # type: ignore[no-untyped-def]
    body = b'{"reference_id": "7-1001", "id": 1, "status": "Completed"}'
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1", "webhook-signature": "v1,x", "x-webhook-topic": "t"}
    response = refusing_client.post("/webhooks/fulfilment/shipbob", data=body, headers=headers)
    assert response.status_code == 503
    assert response.is_json
