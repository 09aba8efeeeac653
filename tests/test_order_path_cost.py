"""What a paid order costs the worker, counted: the statements and Redis round trips of its jobs.

The webhook → provider path must carry 100 orders/s (issue 14, ``bench/pipeline.py``); its cost
is mostly statements and round trips (``bench/pipeline_counts.py`` counts the whole path). These
pin the reads and writes cut from it, so that reading a row twice again fails here, not only in
a bench on a busy machine. Counts, never times.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import requests
from redis.connection import AbstractConnection
from rq.job import Job
from sqlalchemy import event, select

from jobs.events import process_event
from jobs.orders import FollowUp, enqueue_follow_ups, push_order
from store.db import transaction
from store.models import Order, WebhookEvent
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET, drain
from tests.fakes.shipbob import make_secret
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order

SHOP = "cost.myshopify.com"


@pytest.fixture
def settings(settings, shipbob):  # type: ignore[no-untyped-def]
    return settings.with_(shipbob_api_url=shipbob.url)


@pytest.fixture
def service(live, shipbob):  # type: ignore[no-untyped-def]
    server, runtime = live
    options = {"token": shipbob.token, "channel_id": str(shipbob.channel_id), "webhook_secret": make_secret()}
    with transaction(runtime.sessions) as session:
        upsert_shop(session, runtime.vault, "shopify", SHOP, {"access_token": "shpat_x"}, "shipbob", options)
    return server, runtime


def deliver(server, order_id: int) -> None:  # type: ignore[no-untyped-def]
    body = body_of(paid_order(order_id))
    headers = headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
    assert requests.post(f"{server.url}/webhooks/shopify", data=body, headers=headers, timeout=10).status_code == 200


class Statements:
    """Statements run on the engine while counting, as ``<verb> <table>`` (SQLite's write-lock
    statement, ``store.db.lock_for_write``, left out: it is no read or write of a row)."""

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        self.seen: Counter[str] = Counter()
        self.counting = False
        event.listen(engine, "before_cursor_execute", self._statement)

    def _statement(self, conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if not self.counting or statement.startswith("UPDATE orders SET id = id WHERE 0"):
            return
        verb = statement.split(None, 1)[0].upper()
        if verb == "SELECT":
            table = re.search(r"\sFROM\s+(\w+)", statement)
            self.seen[f"SELECT {table.group(1) if table else ''}"] += 1
        elif verb == "UPDATE":
            self.seen[f"UPDATE {statement.split()[1]}"] += 1
        else:
            self.seen[f"{verb} {statement.split()[2]}"] += 1


@pytest.fixture
def round_trips(monkeypatch) -> Counter[str]:  # type: ignore[no-untyped-def]
    """Redis round trips: one per command sent alone, one per pipeline or script call."""
    sent: Counter[str] = Counter()
    original = AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        sent["round trips"] += 1
        return original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", send_packed_command)
    return sent


def test_an_order_delivery_job_updates_its_inbox_row_once_with_its_attempt_and_outcome(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service
    deliver(server, 7101)
    statements = Statements(runtime.engine)
    with runtime.sessions() as session:
        event_id = session.scalars(select(WebhookEvent.id)).one()
    statements.counting = True
    assert process_event(event_id) == "applied, push queued"
    statements.counting = False
    assert statements.seen["UPDATE webhook_events"] == 1
    assert statements.seen["SELECT shops"] == 1
    with runtime.sessions() as session:
        row = session.get(WebhookEvent, event_id)
        assert (row.status, row.attempts, row.processed_at is not None) == ("processed", 1, True)


def test_a_push_without_a_fraud_rule_reads_the_order_its_shop_and_its_snapshot_once_per_transaction(service) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service
    deliver(server, 7102)
    with runtime.sessions() as session:
        process_event(session.scalars(select(WebhookEvent.id)).one())
        order_id = session.scalars(select(Order.id)).one()
    statements = Statements(runtime.engine)
    statements.counting = True
    assert push_order(order_id) == "pushed"
    statements.counting = False
    # Two transactions (mark it pushing; record the provider's answer), each reading the order
    # (locked) once: no unlocked read for a fraud screening the shop does not ask for.
    assert statements.seen["SELECT orders"] == 2
    assert statements.seen["SELECT shops"] == 2  # the second: the edit check's provider view
    assert statements.seen["SELECT order_sent_snapshots"] == 2
    assert statements.seen["SELECT order_edits"] == 0  # a first generation has no re-create to close
    with runtime.sessions() as session:
        row = session.get(Order, order_id)
        assert row.state == "pushed" and row.push_attempts == 1
        assert [(t.from_state, t.to_state) for t in row.history][-2:] == [("ready", "pushing"), ("pushing", "pushed")]
        assert [(a.action, a.outcome) for a in row.attempts] == [("create", "ok")]


def test_a_push_follow_up_is_enqueued_in_one_round_trip_and_never_twice_while_it_lives(service, round_trips) -> None:  # type: ignore[no-untyped-def]
    server, runtime = service
    deliver(server, 7103)
    with runtime.sessions() as session:
        process_event(session.scalars(select(WebhookEvent.id)).one())  # its push: push-<id>-1
        order_id = session.scalars(select(Order.id)).one()
    queue, job_id = runtime.queue("orders"), f"push-{order_id}-2"  # as after a re-create
    round_trips.clear()
    enqueue_follow_ups(runtime, [FollowUp("push", order_id, 2)])
    assert round_trips["round trips"] == 1
    assert queue.job_ids == [f"push-{order_id}-1", job_id]
    enqueue_follow_ups(runtime, [FollowUp("push", order_id, 2)])  # still waiting: not queued again
    assert queue.job_ids == [f"push-{order_id}-1", job_id]
    job = Job.fetch(job_id, connection=runtime.redis)
    drain(runtime)  # both run; the second finds nothing to do, and ends
    assert job.get_status(refresh=True) == "finished"
    enqueue_follow_ups(runtime, [FollowUp("push", order_id, 2)])  # ended: a fresh run
    assert queue.job_ids == [job_id]
