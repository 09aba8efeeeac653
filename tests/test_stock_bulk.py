"""A large catalogue's SKU map read by a Shopify bulk operation, end to end over real HTTP.

The service runs on a real port with the sandbox 3PL as its provider; Shopify is the
schema-checked fake, whose bulk operations run in the background and serve their JSONL result
from its own port. ``RELAIS_STOCK_BULK_THRESHOLD`` is 3 here, so a handful of items is "large".
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from integrations.errors import InvalidRequestError, RetryableError
from integrations.shopify.bulk import stock_document
from integrations.shopify.bulk_result import read_lines
from jobs.parties import platform_for
from jobs.stock import enqueue_due, run
from store.db import transaction
from store.models import Shop
from store.shops import upsert_shop
from store.stock_models import SkuMapEntry, StockBelief, StockExportRecord, StockSyncRun
from tests.conftest import drain
from tests.fakes.shopify_admin import FakeShopifyAdmin
from tests.fakes.shopify_bulk import check_bulk_query
from tests.fakes.shopify_schema import admin_schema
from tests.test_stock_sync import ELSEWHERE, OURS, SHOP, WAREHOUSE_TOKEN, warehouse


@pytest.fixture
def fake() -> Iterator[FakeShopifyAdmin]:
    server = FakeShopifyAdmin("shpat_stock", restore_rate=100_000, maximum=100_000).start()
    yield server
    server.bulk.release()
    server.stop()


@pytest.fixture
def settings(settings, fake):  # type: ignore[no-untyped-def]
    return settings.with_(shopify_admin_url=fake.url + "/{shop}", stock_bulk_threshold=3)


@pytest.fixture
def shop(live, fake):  # type: ignore[no-untyped-def]
    _server, runtime = live
    with transaction(runtime.sessions) as session:
        row = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": "shpat_stock"},
            "sandbox",
            {"token": WAREHOUSE_TOKEN},
            {"location_id": OURS},
        )
        shop_id = row.id
    for n in range(6):
        fake.inventory.add_item(f"SKU-{n}", OURS, available=n)
    fake.inventory.add_item("TWICE", OURS, available=1)
    fake.inventory.add_item("TWICE", OURS, available=2)
    fake.inventory.add_item("UNTRACKED", OURS, available=1, tracked=False)
    fake.inventory.add_item("ELSEWHERE", ELSEWHERE, available=4)
    fake.inventory.add_item("", OURS, available=9)  # no SKU: not in the map
    warehouse(runtime, **{f"SKU-{n}": 10 for n in range(6)}, TWICE=3, UNTRACKED=3, ELSEWHERE=3)
    return runtime, shop_id


def map_rows(runtime) -> set[tuple[str, str, bool, bool]]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        rows = session.scalars(select(SkuMapEntry)).all()
        return {(r.sku, r.item_id, r.managed, r.stocked) for r in rows}


def exports(runtime) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return [(r.status, r.error) for r in session.scalars(select(StockExportRecord).order_by(StockExportRecord.id))]


def last_run(runtime) -> StockSyncRun:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return session.scalars(select(StockSyncRun).order_by(StockSyncRun.id.desc())).first()


def test_above_the_threshold_the_map_comes_from_one_bulk_operation_and_equals_the_paged_read(shop, fake) -> None:  # type: ignore[no-untyped-def]
    runtime, shop_id = shop
    fake.bulk.delay = 0.3

    outcome = run(runtime, shop_id, wait=True)

    assert outcome.status == "ok" and outcome.written == 6
    assert (fake.bulk.started, fake.operations["inventoryItems"], fake.bulk.downloads) == (1, 0, 1)
    with runtime.sessions() as session:
        shop_row = session.get(Shop, shop_id)
        paged = platform_for(runtime, shop_row).stock_items(OURS)  # the paged path's read, for comparison
        beliefs = {b.sku: b.quantity for b in session.scalars(select(StockBelief))}
    assert map_rows(runtime) == {(i.sku, i.item_id, i.managed, i.quantity is not None) for i in paged}
    assert {f"SKU-{n}" for n in range(6)} <= set(beliefs) and beliefs["SKU-0"] == 10  # written since
    assert beliefs["TWICE"] == 2 and "ELSEWHERE" not in beliefs  # as the paged path records them
    assert last_run(runtime).read["map"]["source"] == "export"
    assert exports(runtime) == [("done", None)]
    assert {fake.inventory.available(f"SKU-{n}", OURS) for n in range(6)} == {10}


def test_the_job_path_polls_the_operation_on_rqs_schedule_then_syncs(shop, fake) -> None:  # type: ignore[no-untyped-def]
    runtime, _shop_id = shop
    fake.bulk.delay = 1.0

    assert enqueue_due() == 1
    drain(runtime, timeout=60)

    assert fake.bulk.started == 1
    assert [r.status for r in _runs(runtime)] == ["ok"]  # the waiting run left no record
    assert fake.inventory.available("SKU-3", OURS) == 10


def test_a_worker_restart_while_the_operation_runs_resumes_it_and_starts_no_second(shop, fake) -> None:  # type: ignore[no-untyped-def]
    runtime, shop_id = shop
    fake.bulk.hold()

    first = run(runtime, shop_id)
    runtime.redis.flushdb()  # the worker and its queued jobs are gone; the database remembers
    second = run(runtime, shop_id)

    assert first.status == second.status == "waiting"
    assert fake.bulk.started == 1 and exports(runtime) == [("running", None)]
    fake.bulk.release()
    assert run(runtime, shop_id, wait=True).status == "ok"
    assert fake.bulk.started == 1 and exports(runtime) == [("done", None)]


def test_a_start_whose_answer_was_lost_is_adopted_not_started_twice(shop, fake) -> None:  # type: ignore[no-untyped-def]
    runtime, shop_id = shop
    fake.bulk.hold()
    # The count and the look for an open operation pass; the start runs and its answer is lost.
    fake.fail_next(0, count=2)
    fake.fail_next(502, execute_first=True)

    with pytest.raises(RetryableError):
        run(runtime, shop_id)

    assert fake.bulk.started == 1 and exports(runtime) == []
    assert run(runtime, shop_id).status == "waiting"  # found running with our document: adopted
    fake.bulk.release()
    assert run(runtime, shop_id, wait=True).status == "ok"
    assert fake.bulk.started == 1


def test_another_bulk_query_running_is_waited_for_not_duplicated_or_cancelled(shop, fake) -> None:  # type: ignore[no-untyped-def]
    runtime, shop_id = shop
    fake.bulk.hold()
    other = "{ inventoryItems { edges { node { id } } } }"  # not our document: another feature's export
    start = "mutation($q: String!) { bulkOperationRunQuery(query: $q, groupObjects: false) { userErrors { code } } }"
    assert _graphql(fake, start, {"q": other})["data"]["bulkOperationRunQuery"]["userErrors"] == []

    with pytest.raises(RetryableError, match="another export"):
        run(runtime, shop_id)

    assert fake.bulk.refused == ["OPERATION_IN_PROGRESS"] and fake.bulk.started == 1
    assert "already in progress" in last_run(runtime).error
    fake.bulk.release()
    fake.bulk.wait()
    assert run(runtime, shop_id, wait=True).status == "ok"
    assert fake.bulk.started == 2


def test_failed_operations_are_recorded_retried_once_then_the_map_is_read_page_by_page(shop, fake) -> None:  # type: ignore[no-untyped-def]
    runtime, shop_id = shop
    fake.bulk.fail_next("TIMEOUT")
    fake.bulk.fail_next("INTERNAL_SERVER_ERROR")

    outcome = run(runtime, shop_id, wait=True)

    assert outcome.status == "ok" and outcome.written == 6
    assert exports(runtime) == [
        ("failed", "bulk operation failed (TIMEOUT)"),
        ("failed", "bulk operation failed (INTERNAL_SERVER_ERROR)"),
    ]
    assert fake.operations["inventoryItems"] > 0  # paged
    note = last_run(runtime).read["map"]
    assert note["source"] == "pages" and "INTERNAL_SERVER_ERROR" in note["note"]

    a_day_passes(runtime)
    assert run(runtime, shop_id, wait=True).status == "ok"
    assert fake.bulk.started == 3 and exports(runtime)[-1] == ("done", None)  # the next refresh tries bulk again


def test_a_result_expired_before_it_was_read_is_read_from_a_new_operation(shop, fake) -> None:  # type: ignore[no-untyped-def]
    runtime, shop_id = shop
    assert run(runtime, shop_id).status == "waiting"
    fake.bulk.wait()
    (first,) = fake.bulk.operations
    fake.bulk.expire(first)

    outcome = run(runtime, shop_id, wait=True)

    assert outcome.status == "ok" and fake.bulk.started == 2
    assert exports(runtime) == [("failed", "bulk operation expired"), ("done", None)]


def test_the_jsonl_is_read_line_by_line_as_it_arrives_through_a_small_buffer(settings) -> None:  # type: ignore[no-untyped-def]
    lines = [{"id": f"gid://shopify/InventoryItem/{n}", "sku": f"S-{n}" * 20} for n in range(500)]
    first_read = threading.Event()

    def body(environ: Any, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/jsonl")])
        yield (json.dumps(lines[0]) + "\n").encode()
        assert first_read.wait(10), "the reader waited for the whole file"
        for line in lines[1:]:
            yield (json.dumps(line) + "\n").encode()

    server = make_server("127.0.0.1", 0, body, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        read = []
        for item in read_lines(f"http://127.0.0.1:{server.server_port}/r.jsonl", settings, chunk_size=64):
            read.append(item)
            first_read.set()  # the rest is sent only now: the first line was parsed before it
        assert read == lines
    finally:
        server.shutdown()


def test_a_bulk_result_address_that_is_not_https_is_refused_in_production(settings) -> None:  # type: ignore[no-untyped-def]
    production = settings.with_(environment="production")
    with pytest.raises(InvalidRequestError, match="not https"):
        list(read_lines("http://storage.googleapis.com/result.jsonl?X-Goog-Signature=secret", production))


def test_the_stock_bulk_query_meets_shopifys_bulk_rules_and_bad_ones_are_refused() -> None:
    schema = admin_schema()
    assert check_bulk_query(schema, stock_document(OURS)) == ""
    assert check_bulk_query(schema, "{ products { edges { node { variants { edges { node { id } } } } } } }") == ""
    plans = "sellingPlanGroups { edges { node { id } } }"
    three_deep = "{ products { edges { node { variants { edges { node { " + plans + " } } } } } } }"
    six = "{ " + " ".join(f"p{n}: products {{ edges {{ node {{ id }} }} }}" for n in range(6)) + " }"
    assert "nested more than 2" in check_bulk_query(schema, three_deep)
    assert "more than 5 connections" in check_bulk_query(schema, six)
    assert "at least one connection" in check_bulk_query(schema, "{ shop { id } }")
    assert "Cannot query field 'nope'" in check_bulk_query(schema, "{ products { edges { node { nope } } } }")


def a_day_passes(runtime) -> None:  # type: ignore[no-untyped-def]
    """Every stored time of the stock sync moves a day back: the SKU map is due for a refresh."""
    day = timedelta(hours=25)
    with transaction(runtime.sessions) as session:
        for run_row in session.scalars(select(StockSyncRun).where(StockSyncRun.map_refreshed_at.is_not(None))):
            run_row.map_refreshed_at -= day
        for export in session.scalars(select(StockExportRecord)):
            export.started_at -= day


def _runs(runtime) -> list[StockSyncRun]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return list(session.scalars(select(StockSyncRun).order_by(StockSyncRun.id)))


def _graphql(fake: FakeShopifyAdmin, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(
        f"{fake.url}/{SHOP}/admin/api/2026-10/graphql.json",
        json={"query": query, "variables": variables},
        headers={"X-Shopify-Access-Token": "shpat_stock"},
        timeout=10,
    )
    return answer.json()


def test_the_bulk_documents_are_among_those_checked_against_shopifys_schema() -> None:
    from tests.test_graphql_documents import DOCUMENTS

    names = {"STOCK_ITEMS_BULK", "RUN_BULK_QUERY", "BULK_OPERATION", "OPEN_BULK_QUERIES", "VARIANTS_COUNT"}
    assert {f"integrations.shopify.bulk.{name}" for name in names} <= DOCUMENTS.keys()


def test_below_the_threshold_the_map_is_read_page_by_page_with_no_bulk_operation(live, fake) -> None:  # type: ignore[no-untyped-def]
    _server, runtime = live
    with transaction(runtime.sessions) as session:
        shop_id = upsert_shop(
            session,
            runtime.vault,
            "shopify",
            SHOP,
            {"access_token": "shpat_stock"},
            "sandbox",
            {"token": WAREHOUSE_TOKEN},
            {"location_id": OURS},
        ).id
    fake.inventory.add_item("A", OURS, available=0)
    fake.inventory.add_item("B", OURS, available=0)
    warehouse(runtime, A=4, B=5)

    outcome = run(runtime, shop_id, wait=True)

    assert (outcome.status, outcome.written) == ("ok", 2)
    assert fake.bulk.started == 0 and fake.operations["inventoryItems"] == 1
    assert fake.operations["productVariantsCount"] == 1  # the size is asked once: the map knows it next time
    assert last_run(runtime).read["map"]["source"] == "pages"
