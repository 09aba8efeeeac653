"""The order page (``/app/orders/<id>``): the merchant's one order in full, their shop's only."""

from __future__ import annotations

import re

import pytest

from jobs import states
from store.db import transaction
from store.models import Order, Shipment
from store.orders import note, transition
from tests.app_support import SHOP, app_settings, fake_shopify, install, session_token
from tests.test_settings_page import OTHER, add_order, bearer, csrf
from web.app_session import signed_link

SECONDS = re.compile(r"\d{1,2}:\d{2}:\d{2}")


@pytest.fixture
def shopify():  # type: ignore[no-untyped-def]
    yield from fake_shopify()


@pytest.fixture
def settings(settings, shopify):  # type: ignore[no-untyped-def]
    return app_settings(settings, shopify)


def shipped_order(runtime, shop_id: int, platform_id: str = "9000000489182927913", url: str = "") -> int:  # type: ignore[no-untyped-def]
    """An order sent, accepted, shipped with a Colissimo parcel and written back, as the pipeline records it."""
    order_id = add_order(runtime, shop_id, platform_id, states.READY, "paid")
    with transaction(runtime.sessions) as session:
        row = session.get(Order, order_id)
        row.provider, row.provider_order_id = "sandbox", "77"
        row.provider_reference = f"{shop_id}-{platform_id}"
        transition(row, states.PUSHING, f"sending to sandbox as {shop_id}-{platform_id}")
        transition(row, states.PUSHED, "accepted by sandbox as order 77")
        parcel = Shipment(
            order=row, provider_shipment_id="P9", carrier="Colissimo", tracking_number="6A12345678901", tracking_url=url
        )
        session.add(parcel)
        note(row, "parcel P9 shipped by the provider: Colissimo 6A12345678901")
        note(row, "tracking 6A12345678901 written to the shop (gid://shopify/Fulfillment/3)")
        transition(row, states.SHIPPED, "tracking of parcel P9 written to the shop")
    return order_id


def page_of(client, order_id: int, token: str | None = None, **params: str):  # type: ignore[no-untyped-def]
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.get(f"/app/orders/{order_id}?id_token={token or session_token()}&{query}")


def test_the_order_page_shows_customer_destination_lines_parcel_provider_and_timeline(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    order_id = shipped_order(runtime, shop_id)
    answer = page_of(client, order_id)
    assert answer.status_code == 200
    page = answer.text
    assert "Ann" in page and "ann@example.com" in page and "1 Rue" in page and "Paris" in page and "FR" in page
    assert "<code>MUG</code>" in page
    assert "sandbox order 77" in page  # the provider's own order
    link = re.search(r'<a href="([^"]+)"[^>]*class="tracking-link"[^>]*>6A12345678901</a>', page)
    assert link and link.group(1) == "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901"
    timeline = page.split('id="timeline"')[1]
    assert len(SECONDS.findall(timeline)) >= 6  # every row to the second
    assert "ago)" in timeline  # and how long ago
    assert "tracking 6A12345678901 written to the shop" in timeline
    assert "gid://" not in page and f"{shop_id}-9000000489182927913" not in page
    assert "accepted by sandbox (its order 77)" in timeline and "sending to sandbox<" in timeline


def test_the_provider_tracking_url_wins_over_the_carrier_page(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    order_id = shipped_order(runtime, shop_id, url="https://track.example/6A12345678901")
    assert 'href="https://track.example/6A12345678901"' in page_of(client, order_id).text


def test_another_shops_order_is_404_and_shows_nothing_of_it(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    other_id = install(runtime, shopify, OTHER)
    theirs = shipped_order(runtime, other_id, "555")
    mine = page_of(client, theirs)  # a session token of SHOP, the order of OTHER
    assert mine.status_code == 404 and "ann@example.com" not in mine.text
    link = signed_link(runtime.settings, shop_id).removeprefix(runtime.settings.public_url)
    by_link = client.get(link.replace("/app?", f"/app/orders/{theirs}?"))
    assert by_link.status_code == 404
    assert page_of(client, theirs, session_token(OTHER)).status_code == 200  # its own shop sees it


def test_the_order_page_without_a_session_token_or_link_is_401(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    order_id = shipped_order(runtime, shop_id)
    assert client.get(f"/app/orders/{order_id}").status_code == 401
    assert client.get(f"/app/orders/{order_id}?shop={SHOP}").status_code == 401
    assert client.get(f"/app/orders/{order_id}?t=forged").status_code == 401


def test_a_redacted_customer_is_shown_blank(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    from jobs.redaction import REDACTED, blank_address

    shop_id = install(runtime, shopify)
    order_id = shipped_order(runtime, shop_id)
    with transaction(runtime.sessions) as session:  # what jobs.privacy writes on customers/redact
        row = session.get(Order, order_id)
        row.ship_to = blank_address(row.ship_to)
        row.contact = {"email": REDACTED, "phone": ""}
        note(row, "customer's address and contact redacted (customers/redact)")
    page = page_of(client, order_id).text
    assert "ann@example.com" not in page and "1 Rue" not in page and "Paris" not in page
    assert '<strong class="customer-name">—</strong>' in page and "[redacted]" in page
    assert "erased at their request" in page


def test_the_list_and_the_attention_card_link_to_the_order_page(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    failed = add_order(runtime, shop_id, "31", states.FAILED, "sandbox refused the order: bad postcode")
    page = client.get(f"/app?id_token={session_token()}").text
    assert page.count(f'href="/app/orders/{failed}?shop={SHOP}"') >= 2


def test_retry_from_the_order_page_answers_with_the_order_page(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    failed = add_order(runtime, shop_id, "32", states.FAILED, "sandbox answered 503")
    page = page_of(client, failed).text
    assert 'data-action="retry"' in page and 'name="view" value="order"' in page
    answer = client.post(
        f"/app/orders/{failed}/retry", data={"csrf_token": csrf(page), "view": "order"}, headers=bearer()
    )
    assert answer.headers["X-Relais-Partial"] == "1"
    assert "#32 will be sent again" in answer.text and 'id="order"' in answer.text
    without_csrf = client.post(f"/app/orders/{failed}/retry", data={"view": "order"}, headers=bearer())
    assert without_csrf.status_code == 403


def test_a_delivered_order_shows_the_delivered_step_done(client, runtime, shopify) -> None:  # type: ignore[no-untyped-def]
    shop_id = install(runtime, shopify)
    order_id = shipped_order(runtime, shop_id)
    with transaction(runtime.sessions) as session:
        transition(session.get(Order, order_id), states.DELIVERED, "provider reports parcel P9 delivered")
    page = page_of(client, order_id).text
    assert re.search(r'class="step step-done" data-step="delivered"[^>]*>.*Delivered</li>', page)
    assert "the provider reports the parcel delivered" in page
