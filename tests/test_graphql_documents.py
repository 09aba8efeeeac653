"""Every GraphQL document Relais sends is valid against Shopify's own 2026-10 schema, and affordable.

Documents are module-level string constants starting with ``query`` or ``mutation``, found by
walking every module under ``integrations/``: a new document is checked without being listed.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from graphql import parse, validate

import integrations
from tests.fakes.shopify_schema import MAX_QUERY_COST, admin_schema, requested_cost

DOCUMENT = re.compile(r"^\s*(query|mutation)\b\s*[A-Za-z_({]")


def collect_documents() -> dict[str, str]:
    found: dict[str, str] = {}
    for info in pkgutil.walk_packages(integrations.__path__, prefix="integrations."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, str) and DOCUMENT.match(value):
                found[f"{info.name}.{name}"] = value
    return found


DOCUMENTS = collect_documents()


def test_the_tracking_documents_are_collected() -> None:
    expected = {"ORDER_FULFILMENT_STATE", "FULFILMENT_ORDER_LINES", "FULFILMENT_CREATE", "TRACKING_UPDATE"}
    assert {f"integrations.shopify.fulfilment.{name}" for name in expected} <= DOCUMENTS.keys()


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_is_valid_against_shopify_admin_2026_10(name: str) -> None:
    errors = validate(admin_schema(), parse(DOCUMENTS[name]))
    assert [e.message for e in errors] == []


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_document_requests_less_than_shopifys_single_query_cost_limit(name: str) -> None:
    assert requested_cost(parse(DOCUMENTS[name])) <= MAX_QUERY_COST


def test_the_schema_check_catches_a_misspelt_field() -> None:
    wrong = 'query { order(id: "gid://shopify/Order/1") { fulfilmentOrders(first: 1) { nodes { id } } } }'
    assert validate(admin_schema(), parse(wrong))
