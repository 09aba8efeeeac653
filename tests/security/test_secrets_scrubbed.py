"""Attack: read a store's keys back from a message Relais keeps.

``requests`` puts the full URL in its exception text, query string included. A WooCommerce store
reached with query-string keys failed a call, and the text (``…?consumer_key=ck_…&
consumer_secret=cs_…``) was stored as the merchant's notice, shown on the store's page and kept
in the database; the same went for order notes, attempts and audit entries. Every stored
message, and every log line, is now scrubbed.
"""

from __future__ import annotations

import io
import logging

import pytest
import requests
from sqlalchemy import select

from config.logging import RedactSecrets
from jobs.runtime import Runtime
from jobs.shop_setup import check_webhooks
from store import orders as order_store
from store.db import transaction
from store.models import Base, Order
from store.scrub import STORED_MESSAGES
from store.shops import upsert_shop
from store.sync_models import ShopSync
from tests.process_support import free_port

CONSUMER_KEY = "ck_" + "0123456789abcdef" * 2 + "01234567"
CONSUMER_SECRET = "cs_" + "fedcba9876543210" * 2 + "76543210"
LEAKS = (CONSUMER_KEY[3:], CONSUMER_SECRET[3:], "shpat_0123456789abcdef", "whsec_c2VjcmV0LXZhbHVl", "sk-live-4242")
FAILURE = (
    f"GET /wc/v3/orders: ConnectionError: HTTPSConnectionPool(host='shop.example', port=443): Max retries exceeded "
    f"with url: /wp-json/wc/v3/orders?consumer_key={CONSUMER_KEY}&consumer_secret={CONSUMER_SECRET} "
    "(token shpat_0123456789abcdef, whsec_c2VjcmV0LXZhbHVl, Authorization: Bearer sk-live-4242)"
)


def _clean(text: str) -> bool:
    return not any(leak in text for leak in LEAKS)


def test_a_woocommerce_call_failing_with_keys_in_its_url_leaves_them_in_no_notice_and_no_log(
    runtime: Runtime,
) -> None:
    store_url = f"https://127.0.0.1:{free_port()}"  # nothing listens: requests fails with the URL
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(
            session,
            runtime.vault,
            "woocommerce",
            store_url,
            {"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET, "webhook_secret": "s"},
            None,
            {},
        )
        shop_id = shop.id
    # The store was found earlier to strip the Authorization header: keys go in the query string.
    runtime.redis.set(f"relais:woo:auth:{store_url}", "query")
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.addFilter(RedactSecrets())
    logging.getLogger().addHandler(handler)
    try:
        assert check_webhooks(shop_id) == "failed"
    finally:
        logging.getLogger().removeHandler(handler)
    with runtime.sessions() as session:
        notice = session.execute(select(ShopSync.notice).where(ShopSync.shop_id == shop_id)).scalar_one()
    assert notice.startswith("webhooks could not be checked")
    assert _clean(notice), notice
    assert "webhooks could not be checked" in logged.getvalue() and _clean(logged.getvalue()), logged.getvalue()


def test_an_order_note_and_transition_keep_the_failure_but_not_its_credentials(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as session:
        shop = upsert_shop(session, runtime.vault, "shopify", "scrub.myshopify.com", {}, None, {})
        order = Order(shop_id=shop.id, platform_order_id="1", name="#1001")
        session.add(order)
        order_store.transition(order, "failed", FAILURE)
        order_store.note(order, FAILURE)
        order.failure_reason = FAILURE
        order_store.attempt(order, action="create", reference="r", outcome="retryable", detail={"error": FAILURE})
    with runtime.sessions() as session:
        row = session.execute(select(Order)).scalar_one()
        stored = [t.reason for t in row.history] + [row.failure_reason or ""] + [str(a.detail) for a in row.attempts]
    assert len(stored) == 4
    for text in stored:
        assert _clean(text), text
        assert "Max retries exceeded" in text and "consumer_key=[redacted]" in text


@pytest.mark.parametrize(
    ("table", "column"), [(t, c) for t, columns in sorted(STORED_MESSAGES.items()) for c in columns]
)
def test_every_stored_message_column_is_scrubbed_as_it_is_assigned(table: str, column: str) -> None:
    cls = next(m.class_ for m in Base.registry.mappers if m.local_table.name == table)
    row = cls()
    setattr(row, column, FAILURE if column not in ("detail", "skipped") else {"why": [FAILURE]})
    assert _clean(str(getattr(row, column)))


def test_a_logged_requests_exception_shows_no_key() -> None:
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("relais.test.scrub")
    logger.addHandler(handler)
    try:
        try:
            requests.get(
                f"http://127.0.0.1:{free_port()}/wp-json/wc/v3/orders",
                params={"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET},
                timeout=2,
            )
        except requests.RequestException as exc:
            logger.exception("call failed: %s", exc)
    finally:
        logger.removeHandler(handler)
    text = logged.getvalue()
    assert "Max retries exceeded" in text and "Traceback" in text
    assert _clean(text), text
