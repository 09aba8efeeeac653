"""Per-shop fairness: one shop's 5,000-order import cannot starve another shop's next order.

RQ queues are first in, first out: a shop importing thousands of orders puts thousands of jobs
ahead of every other shop's next one. So each shop's waiting work is counted in Redis, and once a
shop has more than ``fair_share`` jobs waiting (RELAIS_FAIR_SHARE, 50), its further jobs go to the
``<queue>-bulk`` twin of their queue, which every worker listens to only after all the normal
queues (``jobs.runtime.Runtime.queue_names``). Another shop's job then waits behind at most
``fair_share`` of the big shop's jobs, whatever the size of its import; the big shop keeps every
worker busy whenever nobody else needs one. The pipeline already tolerates jobs of one order
running out of order (decisions by state, stale updates ignored), so splitting a shop's jobs over
two queues changes no outcome.

The backlog is a sorted set per shop of job ids (score: enqueue time) rather than a bare counter:
job ids are deterministic, so a repeat enqueue, a rescued retry or a sweep re-enqueueing a lost
job counts once, and an entry whose release never came (a SIGKILLed worker runs no callback) can
be checked against RQ and dropped (``prune``). Entries are added at enqueue (``route``, called by
``jobs.queues.enqueue_once``) and removed by the jobs' RQ callbacks (``jobs.metrics``) when a job
ends for good: success, failure with no retry left, or stop. A job waiting for a retry is still
work of its shop and stays counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import redis
from rq.callbacks import Callback
from rq.job import Job
from sqlalchemy import select

from config import log_context
from jobs.runtime import BULK_SUFFIX, FAIR_QUEUES, Runtime

log = logging.getLogger(__name__)

BACKLOG_PREFIX = "relais:fair:backlog:"
PRUNE_PREFIX = "relais:fair:prune:"
PRUNE_EVERY_SECONDS = 30  # at most one liveness check of a big shop's backlog per this
PRUNE_BATCH = 200  # backlog entries judged per round trip
SETTLE_SECONDS = 10
FORGET_AFTER_SECONDS = 2 * 86400  # an entry this old is dropped whatever its job says
_ENDED = {b"finished", b"failed", b"stopped", b"canceled"}

#: RQ callbacks every Relais job gets (jobs.metrics): latency, failures, backlog release
CALLBACKS = {
    "on_success": Callback("jobs.metrics.job_succeeded"),
    "on_failure": Callback("jobs.metrics.job_failed"),
    "on_stopped": Callback("jobs.metrics.job_stopped"),
}


def backlog_key(shop_id: int) -> str:
    return f"{BACKLOG_PREFIX}{shop_id}"


def route(
    runtime: Runtime, queue: str, func: str, args: Sequence[Any], job_id: str, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The queue a job goes to and its enqueue options: RQ callbacks added to every job; for a
    shop's job in a fair queue, its shop in the job's meta, its id in the shop's backlog, and the
    ``-bulk`` twin when that backlog is over the fair share."""
    options = {**CALLBACKS, **options}
    share = runtime.settings.fair_share
    if queue not in FAIR_QUEUES:
        return queue, options
    shop_id = shop_of(runtime, func, args)
    if shop_id is None:
        return queue, options
    options["meta"] = {**(options.get("meta") or {}), "shop_id": shop_id}
    try:
        waiting, pruned_lately = _admit(runtime.redis, shop_id, job_id)
        if share and waiting > share and (pruned_lately or prune(runtime.redis, shop_id, waiting, share) > share):
            return queue + BULK_SUFFIX, options
    except redis.RedisError as exc:  # the enqueue that follows will say whether Redis is really gone
        log.warning("fair share not applied to %s: %s", job_id, type(exc).__name__)
    return queue, options


def admit(client: redis.Redis, shop_id: int, job_id: str) -> int:
    """Add the job to its shop's backlog (once, whatever the repeats); the backlog's size."""
    return _admit(client, shop_id, job_id)[0]


def _admit(client: redis.Redis, shop_id: int, job_id: str) -> tuple[int, bool]:
    """``admit``, and whether the shop's backlog was pruned lately: a shop over its share, whose
    every enqueue asks, learns it is not yet time to prune in the same round trip."""
    with client.pipeline(transaction=False) as pipe:
        pipe.zadd(backlog_key(shop_id), {job_id: time.time()}, nx=True)
        pipe.zcard(backlog_key(shop_id))
        pipe.exists(f"{PRUNE_PREFIX}{shop_id}")
        _, size, pruned_lately = pipe.execute()
    return int(size), bool(pruned_lately)


def release(client: redis.Redis | redis.client.Pipeline, shop_id: int | None, job_id: str) -> None:
    """The job ended for good: out of its shop's backlog (queued only, when ``client`` is a
    pipeline: the job's end callback sends it with its metrics, ``jobs.metrics``)."""
    if shop_id is not None:
        client.zrem(backlog_key(int(shop_id)), job_id)


def backlog(client: redis.Redis, shop_id: int) -> int:
    return int(client.zcard(backlog_key(shop_id)))


def prune(client: redis.Redis, shop_id: int, size: int | None = None, enough: int | None = None) -> int:
    """Drop backlog entries whose job is gone or ended without a release (a worker killed mid-job,
    a Redis failover), at most every ``PRUNE_EVERY_SECONDS`` per shop; the backlog's size
    (``size`` when the caller has just read it and it is not time to prune).

    Entries are judged oldest first, ``PRUNE_BATCH`` at a time, and judging stops once more than
    ``enough`` of them are live: the caller only asks whether the shop is over its share, so a
    shop with 10,000 jobs waiting costs one batch, not 10,000 reads in the request that prunes."""
    key = backlog_key(shop_id)
    if not client.set(f"{PRUNE_PREFIX}{shop_id}", "1", nx=True, ex=PRUNE_EVERY_SECONDS):
        return size if size is not None else int(client.zcard(key))
    client.zremrangebyscore(key, 0, time.time() - FORGET_AFTER_SECONDS)
    # Entries younger than a few seconds may belong to an enqueue still in flight (added here
    # before RQ stores the job): never judged.
    settled_before = time.time() - SETTLE_SECONDS
    live = dropped = 0
    while enough is None or live <= enough:
        batch = [m.decode() for m in client.zrangebyscore(key, 0, settled_before, start=live, num=PRUNE_BATCH)]
        if not batch:
            break
        with client.pipeline(transaction=False) as pipe:
            for job_id in batch:
                pipe.hget(Job.key_for(job_id), "status")
            statuses = pipe.execute()
        ended = [job_id for job_id, status in zip(batch, statuses, strict=True) if status is None or status in _ENDED]
        if ended:
            client.zrem(key, *ended)
        live += len(batch) - len(ended)  # the ended ones left the set: the next batch starts after the live
        dropped += len(ended)
    if dropped:
        log.info("fair share: %d ended jobs dropped from shop %s's backlog", dropped, shop_id)
    return int(client.zcard(key))


def shop_of(runtime: Runtime, func: str, args: Sequence[Any]) -> int | None:
    """The shop a job works for: the one the running job or request works for (a job's
    follow-ups are its shop's), else read from the row its first argument names."""
    bound = log_context.shop_id()
    if bound is not None:
        return bound
    return shop_of_row(runtime, func, args)


#: job functions whose first argument is the shop's id
SHOP_FIRST = frozenset(
    {
        "jobs.lifecycle.after_install",
        "jobs.polling.poll_shipments",
        "jobs.reconcile.reconcile_shop",
        "jobs.shop_setup.finish_setup",
        "jobs.shop_setup.check_webhooks",
        "jobs.stock.sync_shop",
    }
)


def shop_of_row(runtime: Runtime, func: str, args: Sequence[Any]) -> int | None:
    """The shop of the row a job's first argument names (an inbox row, an order, a parcel, a
    shop), read from the database; None for a job of no shop."""
    if not args or not isinstance(args[0], int):
        return None
    if func in SHOP_FIRST:
        return args[0]
    from store.models import Order, Shipment, WebhookEvent

    if func == "jobs.events.process_event":
        query = select(WebhookEvent.shop_id).where(WebhookEvent.id == args[0])
    elif func in ("jobs.orders.push_order", "jobs.orders.cancel_order"):
        query = select(Order.shop_id).where(Order.id == args[0])
    elif func == "jobs.tracking.write_shipment":
        query = select(Order.shop_id).join(Shipment, Shipment.order_id == Order.id).where(Shipment.id == args[0])
    else:
        return None
    with runtime.sessions() as session:
        return session.scalar(query)
