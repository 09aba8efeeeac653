"""Several jobs in flight in one worker process (``jobs.threaded``): the calls overlap, and every
guarantee holds as with one job at a time: each order once at the provider, the per-account
limiter never exceeded, the order's state machine respected when two pushes race.

Real Redis and database; the provider is the ShipBob fake (its validation, duplicate
references and sliding-window limit), slowed down and counting the calls it holds at once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from rq.suspension import resume, suspend
from sqlalchemy import select

from config import SettingsError, load_settings
from jobs.orders import push_order
from jobs.threaded import ThreadedSimpleWorker
from jobs.worker import ForkingWorker, RecyclingWorker, ThreadedWorker, worker_class_for
from store.db import transaction
from store.models import Order
from store.shops import upsert_shop
from tests.conftest import SHOPIFY_SECRET
from tests.fakes.shipbob import FakeShipBob, make_secret
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order
from tests.test_config import _production

SHOP = "threads.myshopify.com"


class SlowShipBob(FakeShipBob):
    """The ShipBob fake answering after ``latency``; counts the calls it holds at once and the
    create calls per reference."""

    def __init__(self, latency: float, **options: Any) -> None:
        super().__init__(**options)
        self.latency = latency
        self.in_flight = 0
        self.most_in_flight = 0
        self.creates: Counter[str] = Counter()
        self._flight = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._flight:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            answer = super().__call__(environ, start_response)  # counted on arrival, as ShipBob counts
            time.sleep(self.latency)
            return answer
        finally:
            with self._flight:
                self.in_flight -= 1

    def _create_order(self, request: Any, raw: dict[str, str]) -> Any:
        body = request.get_json(silent=True) or {}
        with self._lock:
            self.creates[str(body.get("reference_id"))] += 1
        return super()._create_order(request, raw)


@pytest.fixture
def shipbob(request: pytest.FixtureRequest) -> Iterator[SlowShipBob]:
    options = getattr(request, "param", {})
    fake = SlowShipBob(**{"latency": 0.2, "rate_limit": 10_000, "rate_window": 60.0, **options}).start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings, shipbob):  # type: ignore[no-untyped-def]
    return settings.with_(shipbob_api_url=shipbob.url, worker_threads=8)


def add_shop(runtime, shipbob: SlowShipBob) -> int:  # type: ignore[no-untyped-def]
    options = {
        "token": shipbob.token,
        "channel_id": str(shipbob.channel_id),
        "webhook_secret": make_secret(),
        "rate_limit": str(shipbob.rate_limit),
        "rate_window": str(shipbob.rate_window),
    }
    with transaction(runtime.sessions) as session:
        return upsert_shop(session, runtime.vault, "shopify", SHOP, {"access_token": "shpat_t"}, "shipbob", options).id


def deliver_paid_orders(client, count: int, first: int = 6_600_000_000) -> list[int]:  # type: ignore[no-untyped-def]
    ids = [first + n for n in range(count)]
    for order_id in ids:
        body = body_of(paid_order(order_id, name=f"#T{order_id}"))
        answer = client.post(
            "/webhooks/shopify", data=body, headers=headers_for(SHOP, "orders/paid", body, SHOPIFY_SECRET)
        )
        assert answer.status_code == 200
    return ids


def run_threaded_worker(runtime, threads: int = 8) -> ThreadedSimpleWorker:  # type: ignore[no-untyped-def]
    queues = [runtime.queue(name) for name in runtime.queue_names]
    worker = ThreadedSimpleWorker(queues, connection=runtime.redis, threads=threads)
    worker.work(burst=True, logging_level="WARNING")
    return worker


def states(runtime) -> Counter[str]:  # type: ignore[no-untyped-def]
    with runtime.sessions() as session:
        return Counter(session.scalars(select(Order.state)))


def test_a_threaded_worker_overlaps_provider_calls_and_each_order_reaches_the_provider_once(
    runtime, client, shipbob
) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_shop(runtime, shipbob)
    ids = deliver_paid_orders(client, 24)

    worker = run_threaded_worker(runtime, threads=8)

    assert states(runtime) == {"pushed": 24}
    assert shipbob.creates == Counter({f"{shop_id}-{order_id}": 1 for order_id in ids})
    assert shipbob.most_in_flight >= 4, "the create calls did not overlap"
    assert shipbob.most_in_flight <= 8
    assert worker.jobs_in_flight() == 0


# The window is short for a test, yet long enough that the limiter's margin (2% of it) covers
# the time from a slot taken to the call's arrival on a busy machine.
@pytest.mark.parametrize("shipbob", [{"rate_limit": 5, "rate_window": 4.0, "latency": 0.1}], indirect=True)
def test_jobs_in_flight_in_one_process_never_exceed_the_accounts_rate_limit(runtime, client, shipbob) -> None:  # type: ignore[no-untyped-def]
    add_shop(runtime, shipbob)
    deliver_paid_orders(client, 12)

    run_threaded_worker(runtime, threads=8)

    assert states(runtime) == {"pushed": 12}
    assert shipbob.counters["429"] == 0, "the provider had to refuse: our limiter let too many through"
    assert shipbob.max_in_window <= 5
    assert shipbob.most_in_flight >= 2, "no two calls were ever in flight: the limit was not tested under concurrency"


def test_two_pushes_of_the_same_order_racing_in_two_threads_leave_one_order_at_the_provider(
    runtime, client, shipbob
) -> None:  # type: ignore[no-untyped-def]
    shop_id = add_shop(runtime, shipbob)
    (order_id,) = deliver_paid_orders(client, 1)
    queues = [runtime.queue("webhooks"), runtime.queue("webhooks-bulk")]
    ThreadedSimpleWorker(queues, connection=runtime.redis, threads=2).work(burst=True, logging_level="WARNING")
    for name in ("orders", "orders-bulk"):  # the delivery decided "push"; its queued job is dropped
        runtime.queue(name).empty()
    with runtime.sessions() as session:
        row = session.scalars(select(Order)).one()
        assert row.state == "ready"
        row_id = row.id

    start = threading.Barrier(2)
    outcomes: list[object] = []

    def push() -> None:
        start.wait()
        outcomes.append(push_order(row_id))

    racers = [threading.Thread(target=push) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(30)

    assert "pushed" in outcomes
    assert set(outcomes) <= {"pushed", "nothing to do in state pushed"}
    assert len(shipbob.state.orders) == 1
    assert sum(shipbob.creates.values()) in (1, 2)  # a second create is answered "duplicate reference"
    with runtime.sessions() as session:
        row = session.get(Order, row_id)
        assert row.state == "pushed"
        assert row.provider_reference == f"{shop_id}-{order_id}"
        transitions = [(t.from_state, t.to_state) for t in row.history]
    assert transitions.count(("pushing", "pushed")) == 1
    assert transitions.count(("ready", "pushing")) == 1


def test_a_job_running_past_its_timeout_in_a_thread_fails_with_the_timeout_as_its_reason(runtime) -> None:  # type: ignore[no-untyped-def]
    queue = runtime.queue("maintenance")
    slow = queue.enqueue("time.sleep", 2.5, job_timeout=1)
    quick = queue.enqueue("time.sleep", 0, job_timeout=1)

    run_threaded_worker(runtime, threads=2)

    assert slow.get_status(refresh=True) == "failed"
    assert "exceeded maximum timeout value (1 seconds)" in (slow.latest_result().exc_string or "")
    assert quick.get_status(refresh=True) == "finished"


@pytest.mark.parametrize("value", ["0", "65", "many"])
def test_a_worker_thread_count_out_of_range_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(_production(RELAIS_WORKER_THREADS=value))
    assert any("RELAIS_WORKER_THREADS" in problem for problem in refused.value.problems)


def test_the_pool_runs_threaded_workers_by_default_and_one_job_at_a_time_with_one_thread() -> None:
    assert worker_class_for(load_settings(_production())) is ThreadedWorker
    assert worker_class_for(load_settings(_production(RELAIS_WORKER_THREADS="1"))) is RecyclingWorker
    assert worker_class_for(load_settings(_production(RELAIS_WORKER_CLASS="fork"))) is ForkingWorker


def test_rq_suspend_stops_a_threaded_worker_taking_jobs_within_a_second_and_the_rest_stay_queued(runtime) -> None:  # type: ignore[no-untyped-def]
    queue = runtime.queue("maintenance")
    jobs = [queue.enqueue("time.sleep", 0.05) for _ in range(100)]
    worker = ThreadedSimpleWorker([queue], connection=runtime.redis, threads=1)
    suspended_at: list[float] = []

    def operator() -> None:
        while sum(job.get_status(refresh=True) == "finished" for job in jobs[:5]) < 5:
            time.sleep(0.02)
        suspend(runtime.redis)
        suspended_at.append(time.monotonic())

    threading.Thread(target=operator, daemon=True).start()
    worker.work(burst=True, logging_level="WARNING")  # a burst worker that sees the suspension stops
    stopped = time.monotonic() - suspended_at[0]
    resume(runtime.redis)

    statuses = Counter(job.get_status(refresh=True) for job in jobs)
    assert stopped < 1.5  # an operator's suspension is taken within a second (and a job's end)
    assert statuses["queued"] >= 100 - 5 - 1.5 / 0.05
    assert statuses["finished"] + statuses["queued"] == 100
