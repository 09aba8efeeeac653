"""Fulfilment-service mode on the development stand-ins: the sandbox shop plays Shopify (the
service, its location, the request handshake) and the sandbox 3PL ships, so ``./dev serve`` +
``flask demo --fulfilment-service`` show a request accepted and a cancellation request answered."""

from __future__ import annotations

import threading

import requests
from sqlalchemy import select

from jobs import states
from sandbox import shop_fulfilment_service as stand_in
from store.fulfilment_service_models import FulfilmentService
from store.models import Order, Shop
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "dev-service.myshopify.com"


def post(server, topic: str, payload: dict) -> None:  # type: ignore[no-untyped-def]
    body = body_of(payload)
    headers = headers_for(SHOP, topic, body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


def test_the_sandbox_shop_accepts_a_request_ships_it_and_rejects_a_late_cancellation(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    from app import create_app

    runner = create_app(runtime=runtime).test_cli_runner()
    args = ["shop", "add", "shopify", SHOP, "--sandbox-shop", "--provider", "sandbox"]
    result = runner.invoke(args=[*args, "--setting", "fulfilment_mode=service"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=[*args, "--setting", "fulfilment_mode=service"]).exit_code == 0  # again: still one
    with runtime.sessions() as session:
        [made] = session.scalars(select(FulfilmentService)).all()
        assert session.scalars(select(Shop)).one().settings["location_id"] == made.location_id
    post(server, "orders/paid", paid_order(4343))
    drain(runtime)
    with runtime.sessions() as session:
        assert session.scalars(select(Order)).one().state == states.RECEIVED
    stand_in.request_fulfilment(runtime.redis, SHOP, "4343")
    fo = {"id": stand_in.fo_id("4343"), "status": "open", "request_status": "submitted"}
    post(server, "fulfillment_orders/fulfillment_request_submitted", {"submitted_fulfillment_order": fo})
    drain(runtime)
    assert stand_in.request_status(runtime.redis, SHOP, "4343") == "ACCEPTED"
    with runtime.sessions() as session:
        order = session.scalars(select(Order)).one()
        assert order.state in (states.SHIPPED, states.DELIVERED)  # the sandbox ships at once in tests
    assert stand_in.request_cancellation(runtime.redis, SHOP, "4343")
    post(server, "fulfillment_orders/cancellation_request_submitted", {"fulfillment_order": {"id": fo["id"]}})
    drain(runtime)
    assert stand_in.request_status(runtime.redis, SHOP, "4343") == "CANCELLATION_REJECTED"


def test_the_fulfilment_service_demo_shows_requests_accepted_and_a_cancellation_answered(live) -> None:  # type: ignore[no-untyped-def]
    server, runtime = live
    from app import create_app

    runner = create_app(runtime=runtime).test_cli_runner()
    args = ["demo", "--fulfilment-service", "--url", server.url, "--orders", "2", "--timeout", "20"]
    outcome: dict[str, str] = {}
    demo = threading.Thread(target=lambda: outcome.update(output=runner.invoke(args=args).output))
    demo.start()
    while demo.is_alive():  # the worker's part, in this (main) thread: RQ needs it for signals
        drain(runtime, timeout=30, horizon=1)
        demo.join(0.2)
    output = outcome["output"]
    assert "service created" in output
    assert output.count("merchant requested fulfilment") == 2
    assert "merchant requested cancellation" in output
    assert output.count(": ACCEPTED") == 1
    assert "CANCELLATION_ACCEPTED" in output or "CANCELLATION_REJECTED" in output
