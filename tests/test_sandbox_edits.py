"""The sandbox 3PL's order edit, through Relais' sandbox adapter over HTTP: the address and the
lines change while every parcel is processing, and the edit is refused once one has left."""

from __future__ import annotations

import dataclasses

import pytest

from integrations.errors import NotEditableError
from integrations.model import Address, LineChange, OrderChanges
from sandbox import jobs as sandbox_jobs
from tests.test_sandbox import Sandbox, make_order, sandbox, stock  # noqa: F401 - the fixture

MOVED = Address(name="Ada Lovelace", address1="9 quai Voltaire", city="Lyon", country_code="FR", zip="69002")


def test_an_address_edit_changes_the_recipient_while_the_parcel_is_processing(sandbox: Sandbox) -> None:  # noqa: F811
    provider = sandbox.provider()
    order = make_order()
    ref = provider.create_order(order, "1-1001")
    edited = dataclasses.replace(order, ship_to=MOVED)
    provider.update_order(ref, edited, OrderChanges(address=MOVED))
    provider.update_order(ref, edited, OrderChanges(address=MOVED))  # a repeat sets the same values
    body = sandbox.api("GET", f"/api/orders/{ref.provider_order_id}").json()
    assert (body["recipient"]["address1"], body["recipient"]["city"]) == ("9 quai Voltaire", "Lyon")
    assert [(ln["sku"], ln["quantity"]) for ln in body["lines"]] == [("MUG-1", 3)]


def test_a_line_edit_replaces_the_lines_and_moves_the_held_stock(sandbox: Sandbox) -> None:  # noqa: F811
    provider = sandbox.provider()
    order = make_order(lines=(("MUG-1", 3), ("CAP-2", 1)))
    ref = provider.create_order(order, "1-1001")
    assert stock(provider) == {"MUG-1": (100, 97), "CAP-2": (100, 99)}
    edited = make_order(lines=(("MUG-1", 1),))
    provider.update_order(
        ref, edited, OrderChanges(lines=(LineChange("1", "MUG-1", 3, 1), LineChange("2", "CAP-2", 1, 0)))
    )
    body = sandbox.api("GET", f"/api/orders/{ref.provider_order_id}").json()
    assert [(ln["sku"], ln["quantity"]) for ln in body["lines"]] == [("MUG-1", 1)]
    assert [[(p["sku"], p["quantity"]) for p in s["lines"]] for s in body["shipments"]] == [[("MUG-1", 1)]]
    assert stock(provider) == {"MUG-1": (100, 99), "CAP-2": (100, 100)}
    sandbox_jobs.ship_order(int(ref.provider_order_id))
    [parcel] = provider.shipments(ref)
    assert [(line.sku, line.quantity) for line in parcel.lines] == [("MUG-1", 1)]  # the edited parcel ships


def test_an_edit_once_a_parcel_has_shipped_is_refused_with_the_reason_and_changes_nothing(sandbox: Sandbox) -> None:  # noqa: F811
    provider = sandbox.provider()
    order = make_order()
    ref = provider.create_order(order, "1-1001")
    sandbox_jobs.ship_order(int(ref.provider_order_id))
    with pytest.raises(NotEditableError, match="parcel 1 is already shipped"):
        provider.update_order(ref, dataclasses.replace(order, ship_to=MOVED), OrderChanges(address=MOVED))
    assert sandbox.api("GET", f"/api/orders/{ref.provider_order_id}").json()["recipient"]["city"] == "Paris"


def test_an_edit_with_an_incomplete_address_is_refused_field_by_field(sandbox: Sandbox) -> None:  # noqa: F811
    provider = sandbox.provider()
    ref = provider.create_order(make_order(), "1-1001")
    answer = sandbox.api(
        "PUT", f"/api/orders/{ref.provider_order_id}", json={"recipient": {"name": "Ada", "city": "Lyon"}}
    )
    assert answer.status_code == 422
    assert set(answer.json()["errors"]) == {"recipient.address1", "recipient.country_code"}
    assert sandbox.api("PUT", f"/api/orders/{ref.provider_order_id}", json={}).status_code == 422
    assert sandbox.api("GET", f"/api/orders/{ref.provider_order_id}").json()["recipient"]["city"] == "Paris"
