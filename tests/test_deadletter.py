"""The dead letters: failed jobs and deliveries listed with their reason, replayed once, from the
CLI and from the merchant's page (that shop's own only, with the CSRF token)."""

from __future__ import annotations

import html
import re

from config import log_context
from jobs import deadletter
from jobs.queues import enqueue_once
from store.db import transaction
from store.models import Order, Shop, WebhookEvent
from tests.conftest import drain
from tests.fakes.shopify_webhooks import body_of, paid_order
from web.app_session import signed_link

RUNS = "test:deadletter:runs"


def flaky(order_id: int) -> str:
    """Fails on its first run (with a credential in the error), succeeds afterwards; counts runs."""
    from jobs.runtime import get_runtime

    if get_runtime().redis.incr(RUNS) == 1:
        raise ValueError(
            f"provider refused order {order_id}\nat https://x.example/o?api_key=SEKRET123 (shpat_abc123def)"
        )
    return "done"


def runs(runtime) -> int:  # type: ignore[no-untyped-def]
    return int(runtime.redis.get(RUNS) or 0)


def a_shop(runtime, domain: str) -> int:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        shop = Shop(platform="shopify", domain=domain, provider="", settings={})
        shop.provider_options_enc = runtime.vault.seal({})
        session.add(shop)
        session.flush()
        return shop.id


def a_failed_job_of(runtime, shop_id: int, job_id: str = "flaky-1") -> None:  # type: ignore[no-untyped-def]
    log_context.bind(shop_id=shop_id)  # as a job of this shop enqueueing its follow-up
    try:
        enqueue_once(runtime, "orders", "tests.test_deadletter.flaky", 41, job_id=job_id)
    finally:
        log_context.clear()
    drain(runtime)


def a_failed_event_of(runtime, shop_id: int, order_number: int = 5001) -> int:  # type: ignore[no-untyped-def]
    """A stored paid order whose processing failed earlier (the shop has no provider: once
    processed, the order is held, nothing leaves)."""
    with transaction(runtime.sessions) as session:
        row = WebhookEvent(
            source="shopify",
            delivery_key=f"dl-{order_number}",
            shop_id=shop_id,
            topic="orders/paid",
            headers={},
            body=body_of(paid_order(order_number)),
            status="failed",
            error="Traceback (most recent call last):\nRuntimeError: store said no; consumer_secret=cs_0123456789abc",
            attempts=1,
        )
        session.add(row)
        session.flush()
        return row.id


def test_a_failed_job_is_listed_with_its_scrubbed_reason_and_replays_once(runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = a_shop(runtime, "dl.myshopify.com")
    a_failed_job_of(runtime, shop_id)
    assert runs(runtime) == 1

    [letter] = deadletter.dead_letters(runtime)
    assert (letter.ref, letter.kind, letter.shop_id) == ("flaky-1", "job", shop_id)
    assert letter.what == "tests.test_deadletter.flaky" and letter.args == "41"
    assert letter.reason.startswith("at https://x.example/o?api_key=[redacted]")
    assert "SEKRET123" not in letter.reason and "abc123def" not in letter.reason

    assert deadletter.replay(runtime, "flaky-1") == "queued again"
    assert deadletter.replay(runtime, "flaky-1").startswith("not failed")  # a second click does nothing
    drain(runtime)
    assert runs(runtime) == 2
    assert deadletter.dead_letters(runtime) == []
    assert deadletter.replay(runtime, "flaky-1").startswith("not failed")
    drain(runtime)
    assert runs(runtime) == 2


def test_the_cli_lists_a_failed_delivery_and_replays_it_once(app, runtime) -> None:  # type: ignore[no-untyped-def]
    shop_id = a_shop(runtime, "dl.myshopify.com")
    event_id = a_failed_event_of(runtime, shop_id)
    cli = app.test_cli_runner()

    listed = cli.invoke(args=["deadletter", "list"])
    assert listed.exit_code == 0, listed.output
    assert f"event:{event_id}" in listed.output and "RuntimeError: store said no" in listed.output
    assert "cs_0123456789abc" not in listed.output

    first = cli.invoke(args=["deadletter", "replay", f"event:{event_id}"])
    second = cli.invoke(args=["deadletter", "replay", f"event:{event_id}"])
    assert f"event:{event_id}: queued again" in first.output
    assert f"event:{event_id}: already queued" in second.output
    drain(runtime)
    with runtime.sessions() as session:
        row = session.get(WebhookEvent, event_id)
        assert (row.status, row.attempts) == ("processed", 2)
        assert session.query(Order).filter_by(shop_id=shop_id).count() == 1
    again = cli.invoke(args=["deadletter", "replay", "--all"])
    assert "0 replayed" in again.output
    assert "already processed" in cli.invoke(args=["deadletter", "replay", f"event:{event_id}"]).output


def page_of(client, runtime, shop_id: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    link = signed_link(runtime.settings, shop_id).removeprefix(runtime.settings.public_url)
    answer = client.get(link)
    assert answer.status_code == 200
    return answer.text, link.split("?", 1)[1]


def csrf(text: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', text).group(1)  # type: ignore[union-attr]


def test_the_page_lists_the_shops_dead_letters_and_replays_one_with_csrf(client, runtime) -> None:  # type: ignore[no-untyped-def]
    mine = a_shop(runtime, "mine.myshopify.com")
    other = a_shop(runtime, "other.myshopify.com")
    a_failed_job_of(runtime, mine)
    event_id = a_failed_event_of(runtime, mine)

    text, query = page_of(client, runtime, mine)
    assert "Could not be processed" in text
    assert 'data-dead-letter="flaky-1"' in text and f'data-dead-letter="event:{event_id}"' in text
    assert "SEKRET123" not in text and "cs_0123456789abc" not in text
    assert html.escape(f"/app/dead-letters/replay?{query}") in text

    other_text, other_query = page_of(client, runtime, other)
    assert "Could not be processed" not in other_text
    # Another shop's session cannot replay this shop's job, even with its own valid CSRF token.
    stolen = client.post(
        f"/app/dead-letters/replay?{other_query}", data={"csrf_token": csrf(other_text), "ref": "flaky-1"}
    )
    assert stolen.status_code == 200 and "Replay: not found" in stolen.text
    assert client.post(f"/app/dead-letters/replay?{query}", data={"ref": "flaky-1"}).status_code == 403

    replayed = client.post(f"/app/dead-letters/replay?{query}", data={"csrf_token": csrf(text), "ref": "flaky-1"})
    assert replayed.status_code == 200 and "Replay: queued again" in replayed.text
    drain(runtime)
    assert runs(runtime) == 2
    after, _ = page_of(client, runtime, mine)
    assert 'data-dead-letter="flaky-1"' not in after and f'data-dead-letter="event:{event_id}"' in after
