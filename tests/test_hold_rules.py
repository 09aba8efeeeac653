"""The shop's hold rules and the merchant's release, as pure decisions (no database, no HTTP)."""

from __future__ import annotations

from dataclasses import replace

from integrations.model import Address
from jobs import states
from jobs.decide import CANCEL_LOCALLY, HOLD, PUSH, UPDATE, WAIT, Recorded, decide, release
from tests.test_decide import ADDRESS, T0, order


def test_an_order_carrying_a_hold_tag_is_held_whatever_its_case() -> None:
    d = decide(order(tags=("VIP", "Review")), None, {"hold_tags": ["review"]})
    assert (d.action, d.state, d.reason) == (HOLD, states.HELD, "tagged Review (a hold tag)")
    assert decide(order(tags=("vip",)), None, {"hold_tags": ["review"]}).action == PUSH


def test_a_high_risk_order_is_held_only_when_the_shop_asks() -> None:
    risky = order(high_risk=True)
    assert decide(risky, None, {"hold_high_risk": True}).reason == "high fraud risk"
    assert decide(risky, None, {"hold_high_risk": False}).action == PUSH


def test_an_address_missing_a_field_the_shop_requires_is_held() -> None:
    no_zip = order(ship_to=replace(ADDRESS, zip=""))
    d = decide(no_zip, None, {"required_address_fields": ["address1", "city", "country_code", "zip"]})
    assert (d.action, d.reason) == (HOLD, "shipping address is incomplete: no zip")
    assert decide(no_zip, None, {}).action == PUSH


def test_street_city_and_country_are_always_required() -> None:
    d = decide(order(ship_to=Address(name="A", address1="", city="Paris", country_code="FR")), None, {})
    assert d.reason == "shipping address is incomplete: no address1"


def test_an_unpaid_order_waits_before_hold_rules_apply() -> None:
    assert decide(order(paid=False, tags=("review",)), None, {"hold_tags": ["review"]}).action == WAIT


def test_releasing_a_held_order_pushes_it_despite_the_rules() -> None:
    held = Recorded(states.HELD, T0)
    d = release(order(tags=("review",), high_risk=True), held, {"hold_tags": ["review"], "hold_high_risk": True})
    assert (d.action, d.state) == (PUSH, states.READY)


def test_release_cannot_push_an_order_without_a_street() -> None:
    d = release(order(ship_to=None), Recorded(states.HELD, T0), {})
    assert d.action == HOLD and d.state is None


def test_release_of_an_order_that_is_not_held_changes_nothing() -> None:
    assert release(order(), Recorded(states.PUSHED, T0), {}).action == UPDATE


def test_release_of_a_cancelled_held_order_cancels_it_locally() -> None:
    assert release(order(cancelled=True), Recorded(states.HELD, T0), {}).action == CANCEL_LOCALLY
