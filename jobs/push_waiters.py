"""Provider events that came while their order's push was still out, woken when it lands.

A shipment can reach us before our create call's answer does (the provider ships fast, or our
worker was killed between its call and its commit). Such an event cannot be matched yet
(``jobs.shipments.PushInFlight``), so its job fails and RQ schedules it again, 5 s, then 30 s,
then 120 s later (``jobs.maintenance.EVENT_RETRY``). Left to that schedule, a parcel whose order
was recorded a second after the second retry waits two more minutes to reach the shop. So the
event is noted here under its order, and the push that records the provider's order id moves
the noted events' scheduled jobs to their queue at once. Redis only holds a shortcut: if the
note is lost (a flush) or the wake comes before RQ has scheduled the job, the schedule still
runs it, exactly as before.
"""

from __future__ import annotations

import logging

import redis

from jobs.queues import run_now
from jobs.runtime import Runtime

log = logging.getLogger(__name__)

TTL_SECONDS = 24 * 3600  # longer than every event retry together (jobs.maintenance.EVENT_RETRY)


def _key(order_id: int) -> str:
    return f"relais:push-waiters:{order_id}"


def wait(runtime: Runtime, order_id: int, event_id: int) -> None:
    """Note that ``event_id`` waits for ``order_id``'s push. Best effort: see the module's note."""
    try:
        with runtime.redis.pipeline(transaction=False) as pipe:
            pipe.sadd(_key(order_id), event_id)
            pipe.expire(_key(order_id), TTL_SECONDS)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("order %s: event %s will wait for its retry (%s)", order_id, event_id, exc)


def wake(runtime: Runtime, order_id: int) -> int:
    """Move the scheduled jobs of the events waiting for ``order_id`` to their queue now; called
    once the push has committed the provider's order id. Returns how many were moved."""
    try:
        with runtime.redis.pipeline(transaction=True) as pipe:
            pipe.smembers(_key(order_id))
            pipe.delete(_key(order_id))
            members, _ = pipe.execute()
        return sum(run_now(runtime, f"event-{int(member)}") for member in members)
    except redis.RedisError as exc:
        log.warning("order %s: waiting events keep their retry schedule (%s)", order_id, exc)
        return 0
