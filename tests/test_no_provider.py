"""A new shop starts with no provider: its orders are received and held "waiting for a provider",
nothing is sent anywhere and nothing loops; the first provider saved and tested sends each of them
once. The live tests run the whole service on a real port, with the sandbox as the provider."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import requests
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import select

from app import create_app
from integrations.model import Address, Line, Order
from jobs import decide as decisions
from jobs import maintenance, polling, states
from jobs import stock as stock_jobs
from store.db import transaction
from store.models import FulfilmentAttempt, Shop
from store.models import Order as OrderRow
from tests.app_support import APP_SECRET, SHOP, app_settings, deliver, fake_shopify, install, session_token
from tests.conftest import drain
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

WAITING = "waiting for a provider"
ACCOUNT = "no-provider-account-0001"  # the sandbox account the merchant saves


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


@pytest.fixture
def service(live, shopify):  # type: ignore[no-untyped-def]
    """The service on a real port, a shop installed through the fake's OAuth (no provider), and a
    record of every URL Relais' own HTTP session called."""
    server, runtime = live
    calls: list[str] = []
    runtime.http.hooks["response"].append(lambda response, *args, **kwargs: calls.append(response.url))
    shop_id = install(runtime, shopify, provider="")
    return server, runtime, shop_id, calls


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token()}", "X-Relais-Fetch": "1"}


def orders_of(runtime) -> dict[str, OrderRow]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        rows = session.scalars(select(OrderRow).order_by(OrderRow.id)).all()
        for row in rows:
            _ = row.history, row.attempts  # loaded for the assertions below
        return {row.platform_order_id: row for row in rows}


def creates(row: OrderRow) -> list[str]:
    return [a.outcome for a in row.attempts if a.action == "create"]


def sandbox_references(server) -> list[str]:  # type: ignore[no-untyped-def]
    answer = requests.get(f"{server.url}/sandbox/api/orders", headers={"Authorization": f"Bearer {ACCOUNT}"}, timeout=5)
    return sorted(o["reference"] for o in answer.json()["orders"])


def save_provider(server, token: str = ACCOUNT) -> str:  # type: ignore[no-untyped-def]
    http = requests.Session()
    page = http.get(f"{server.url}/app?id_token={session_token()}").text
    data = {"csrf_token": csrf(page), "provider": "sandbox", "sandbox:token": token}
    return http.post(f"{server.url}/app/provider", data=data, headers=bearer(), timeout=30).text


def test_an_installed_shop_has_no_provider_and_its_paid_order_is_held_with_nothing_sent(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id, calls = service
    with runtime.sessions() as session:
        assert session.get(Shop, shop_id).provider == ""
    assert deliver(server.url, "orders/paid", paid_order(7001, name="#7001")) == 200
    drain(runtime)
    row = orders_of(runtime)["7001"]
    assert row.state == states.HELD
    assert [(t.to_state, t.reason) for t in row.history] == [("received", "received"), ("held", WAITING)]
    assert row.attempts == [] and row.provider_reference is None
    assert not [url for url in calls if "/sandbox/" in url]  # no provider was called
    # No retry scheduled, no failed job, and the sweep finds nothing to re-enqueue.
    for name in runtime.queue_names:
        queue = runtime.queue(name)
        assert ScheduledJobRegistry(queue=queue).get_job_ids() == []
        assert FailedJobRegistry(queue=queue).get_job_ids() == []
    swept = maintenance.sweep(older_than_seconds=0)
    assert swept["events"] == swept["orders"] == 0
    assert len(runtime.queue("orders")) == 0
    # Stock sync, its cron and the tracking poll skip the shop with a plain line, no exception.
    skipped = str(stock_jobs.run(runtime, shop_id))
    assert skipped == f"skipped: shop {shop_id} has no fulfilment provider yet: no stock to read"
    assert stock_jobs.enqueue_due() == 0
    assert polling.poll_all() == 0
    assert polling.poll_shipments(shop_id) == f"skipped: shop {shop_id} has no fulfilment provider yet, nothing to poll"
    assert orders_of(runtime)["7001"].state == states.HELD


def test_the_page_and_orders_show_say_the_order_is_waiting_for_a_provider(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _, _ = service
    deliver(server.url, "orders/paid", paid_order(7002, name="#7002"))
    drain(runtime)
    page = requests.get(f"{server.url}/app?id_token={session_token()}", timeout=10).text
    attention = page.split('id="attention"')[1].split('id="orders"')[0]
    assert "<strong>#7002</strong>" in attention and f"{WAITING}</span>" in attention
    assert 'data-action="release" data-order="#7002"' not in attention  # saving a provider releases it
    assert 'id="no-provider"' in page and "1 order received and held, waiting for a provider" in page
    assert '<option value="" selected disabled>choose a provider</option>' in page
    shown = create_app(runtime=runtime).test_cli_runner().invoke(args=["orders", "show", "#7002"])
    assert "state: held" in shown.output and f"→ held  {WAITING}" in shown.output


def test_a_release_pressed_while_no_provider_is_set_sends_nothing(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, _, calls = service
    deliver(server.url, "orders/paid", paid_order(7003, name="#7003"))
    drain(runtime)
    order_id = orders_of(runtime)["7003"].id
    http = requests.Session()
    page = http.get(f"{server.url}/app?id_token={session_token()}").text
    http.post(f"{server.url}/app/orders/{order_id}/release", data={"csrf_token": csrf(page)}, headers=bearer())
    drain(runtime)
    row = orders_of(runtime)["7003"]
    assert row.state == states.HELD and row.history[-1].reason == WAITING
    assert row.attempts == [] and not [url for url in calls if "/sandbox/" in url]


def test_saving_and_testing_a_provider_sends_each_waiting_order_exactly_once(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id, _ = service
    deliver(server.url, "orders/paid", paid_order(7101, name="#7101"))
    deliver(server.url, "orders/paid", paid_order(7102, name="#7102"))
    deliver(server.url, "orders/paid", paid_order(7103, name="#7103", tags="review"))
    with transaction(runtime.sessions) as session:  # #7103 is held by the shop's own rule, not for a provider
        shop = session.get(Shop, shop_id)
        shop.settings = {**shop.settings, "hold_tags": ["review"]}
    drain(runtime)
    assert {k: r.state for k, r in orders_of(runtime).items()} == {"7101": "held", "7102": "held", "7103": "held"}

    # Credentials the provider refuses are not saved, and release nothing.
    faults = {"fail_next": 1, "status": 401}
    requests.post(f"{server.url}/sandbox/api/faults", json=faults, headers={"Authorization": "Bearer bad-token-0000"})
    refused = save_provider(server, "bad-token-0000")
    assert "refused these credentials" in refused
    drain(runtime)
    assert all(r.state == states.HELD and not r.attempts for r in orders_of(runtime).values())

    saved = save_provider(server)
    assert "Saved: sandbox accepted the credentials; 2 order(s) waiting for a provider are being sent" in saved
    drain(runtime)
    again = save_provider(server)  # a second save finds nothing waiting
    assert "Saved: sandbox accepted the credentials" in again and "being sent" not in again
    drain(runtime)
    rows = orders_of(runtime)
    for oid in ("7101", "7102"):
        assert rows[oid].state == states.PUSHED and creates(rows[oid]) == ["ok"]
        moves = [t.to_state for t in rows[oid].history if t.from_state != t.to_state]  # notes aside
        assert moves == ["received", "held", "ready", "pushing", "pushed"]
        assert rows[oid].history[2].reason.startswith("a provider is saved and tested: sending")
    assert sandbox_references(server) == sorted(f"{shop_id}-{oid}" for oid in ("7101", "7102"))
    assert rows["7103"].state == states.HELD and rows["7103"].attempts == []
    assert rows["7103"].history[-1].reason == "tagged review (a hold tag)"


def test_the_shop_provider_command_tests_saves_and_sends_the_waiting_orders_once(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime, shop_id, _ = service
    deliver(server.url, "orders/paid", paid_order(7201, name="#7201"))
    drain(runtime)
    runner = create_app(runtime=runtime).test_cli_runner()
    faults = {"fail_next": 1, "status": 401}
    requests.post(f"{server.url}/sandbox/api/faults", json=faults, headers={"Authorization": "Bearer bad-token-0000"})
    refused = runner.invoke(args=["shop", "provider", SHOP, "sandbox", "--provider-option", "token=bad-token-0000"])
    assert refused.exit_code != 0 and "refused these credentials" in refused.output
    with runtime.sessions() as session:
        assert session.get(Shop, shop_id).provider == ""
    result = runner.invoke(args=["shop", "provider", str(shop_id), "sandbox", "--provider-option", f"token={ACCOUNT}"])
    assert result.exit_code == 0, result.output
    assert "sandbox accepted the credentials" in result.output and "1 order(s) waiting" in result.output
    drain(runtime)
    replay = runner.invoke(args=["shop", "provider", SHOP, "sandbox", "--provider-option", f"token={ACCOUNT}"])
    assert replay.exit_code == 0 and "waiting" not in replay.output
    drain(runtime)
    row = orders_of(runtime)["7201"]
    assert row.state == states.PUSHED and creates(row) == ["ok"]
    assert sandbox_references(server) == [f"{shop_id}-7201"]


def test_shop_add_without_a_provider_registers_a_shop_whose_orders_wait_until_an_upsert_gives_one(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    runner = create_app(runtime=runtime).test_cli_runner()
    domain = "cli-none.myshopify.com"
    added = runner.invoke(args=["shop", "add", "shopify", domain, "--sandbox-shop"])
    assert added.exit_code == 0, added.output
    assert "no provider yet" in added.output
    body = body_of(paid_order(7301, name="#7301"))
    headers = headers_for(domain, "orders/paid", body, APP_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200
    drain(runtime)
    assert orders_of(runtime)["7301"].state == states.HELD
    assert "(none)" in runner.invoke(args=["shop", "list"]).output
    upsert = ["shop", "add", "shopify", domain, "--sandbox-shop", "--provider", "sandbox"]
    given = runner.invoke(args=[*upsert, "--provider-option", f"token={ACCOUNT}"])
    assert given.exit_code == 0, given.output
    assert "→ sandbox" in given.output and "1 order(s) waiting for a provider are being sent" in given.output
    drain(runtime)
    # Re-registering without --provider keeps the provider it has.
    assert runner.invoke(args=["shop", "add", "shopify", domain, "--sandbox-shop"]).exit_code == 0
    with runtime.sessions() as session:
        assert session.scalars(select(Shop.provider).where(Shop.domain == domain)).one() == "sandbox"
    row = orders_of(runtime)["7301"]
    assert row.state in (states.PUSHED, states.SHIPPED, states.DELIVERED) and creates(row) == ["ok"]
    with runtime.sessions() as session:
        assert session.scalar(select(FulfilmentAttempt.id).where(FulfilmentAttempt.outcome == "retryable")) is None


# --- the decision, with plain values ----------------------------------------------------------

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ADDRESS = Address(name="Ann", address1="1 Rue", city="Paris", country_code="FR")
ORDER = Order("1", "#1", True, False, T0, (Line("10", "SKU-1", 2, True),), ADDRESS)


def test_a_pushable_order_of_a_shop_without_a_provider_is_held_waiting_for_one() -> None:
    assert decisions.decide(ORDER, None, {}, has_provider=False) == decisions.Decision(
        decisions.HOLD, states.HELD, WAITING
    )
    unpaid = replace(ORDER, paid=False)
    assert decisions.decide(unpaid, None, {}, has_provider=False).reason == "waiting for payment"
    tagged = replace(ORDER, tags=("vip",))
    held = decisions.decide(tagged, None, {"hold_tags": ["vip"]}, has_provider=False)
    assert held.reason == "tagged vip (a hold tag)"


def test_a_saved_provider_releases_only_orders_held_for_the_lack_of_one() -> None:
    held = decisions.Recorded(states.HELD, T0)
    assert decisions.provider_saved(ORDER, held, WAITING, {}).action == decisions.PUSH
    assert decisions.provider_saved(ORDER, held, "tagged vip (a hold tag)", {}).action == decisions.UPDATE
    cancelled = replace(ORDER, cancelled=True)
    assert decisions.provider_saved(cancelled, held, WAITING, {}).action == decisions.CANCEL_LOCALLY
    tagged = replace(ORDER, tags=("vip",))
    assert decisions.provider_saved(tagged, held, WAITING, {"hold_tags": ["vip"]}).state == states.HELD
    assert decisions.release(ORDER, held, {}, has_provider=False).action == decisions.HOLD
