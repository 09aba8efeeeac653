"""A new row's job in one Redis round trip: per-shop fair share and RQ's unique enqueue together.

Every accepted webhook enqueues the job of the inbox row it has just inserted. Done the ordinary
way that is three round trips: the fair-share admission (``jobs.fairness``: add the job to its
shop's backlog, read the backlog's size to choose the queue or its ``-bulk`` twin), then RQ's
``Queue.enqueue`` (one to record the queue in RQ's set of queues, one for its unique-enqueue
script). On a busy receiver each round trip costs as much CPU as the database insert
(bench/ingest.py), so here the three run as one Lua script, atomically:

1. admit: ``ZADD NX`` the job id to the shop's backlog, ``ZCARD`` it;
2. route: over the fair share and pruned lately → the ``-bulk`` queue; over it and not pruned
   lately → nothing more: the caller prunes (``fairness.prune`` judges jobs one by one, which a
   script must not do) and enqueues the ordinary way;
3. RQ's unique enqueue, as RQ 3's own ``UNIQUE_ENQUEUE_SCRIPT`` (``rq.scripts``) does it: refuse
   if the job's hash exists, else ``HSET`` the fields RQ's ``Job.to_dict`` gives (its ``origin``
   the queue chosen in 2), ``EXPIRE`` when the job has a TTL, ``RPUSH`` its id to that queue;
   and ``SADD`` the queue to RQ's set of queues, as ``Queue.enqueue_job`` does.

The job itself is built by RQ (``Queue.create_job``) and prepared as RQ's ``_prepare_for_queue``
prepares it; only the writes are ours. ``tests/test_one_trip.py`` compares them, key by key and
field by field, with what RQ's own ``Queue.enqueue`` writes, so an RQ upgrade that changes them
fails there rather than in production.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus
from rq.utils import now

from jobs import fairness
from jobs.runtime import BULK_SUFFIX, FAIR_QUEUES, Runtime

# Options this path knows how to build a job from (``Queue.create_job``'s); any other (a rate
# limit, a dependency, ``at_front``…) takes RQ's own enqueue.
_OPTIONS = frozenset(
    {"retry", "meta", "timeout", "result_ttl", "ttl", "failure_ttl", "description"}
    | {"on_success", "on_failure", "on_stopped"}
)

ENQUEUED, ENQUEUED_BULK, DUPLICATE, PRUNE_FIRST = 1, 2, 0, -1

SCRIPT = """
-- KEYS: 1 shop backlog, 2 shop's prune marker, 3 job hash, 4 queue, 5 its -bulk twin, 6 RQ's set of queues
-- ARGV: 1 job id, 2 now (backlog score), 3 fair share (0: off), 4 TTL (-1: none),
--       5 queue name, 6 bulk queue name, 7.. the job hash's fields and values (no origin)
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
local size = redis.call('ZCARD', KEYS[1])
local share = tonumber(ARGV[3])
local queue, origin, outcome = KEYS[4], ARGV[5], 1
if share > 0 and size > share then
    if redis.call('EXISTS', KEYS[2]) == 0 then
        return {-1, size}
    end
    queue, origin, outcome = KEYS[5], ARGV[6], 2
end
if redis.call('EXISTS', KEYS[3]) == 1 then
    return {0, size}
end
if #ARGV > 6 then
    redis.call('HSET', KEYS[3], 'origin', origin, unpack(ARGV, 7))
else
    redis.call('HSET', KEYS[3], 'origin', origin)
end
local ttl = tonumber(ARGV[4])
if ttl and ttl > 0 then
    redis.call('EXPIRE', KEYS[3], ttl)
end
redis.call('RPUSH', queue, ARGV[1])
redis.call('SADD', KEYS[6], queue)
return {outcome, size}
"""


def enqueue_new(
    runtime: Runtime, queue: str, func: str, args: Sequence[Any], job_id: str, options: dict[str, Any]
) -> bool | None:
    """Admit and enqueue the job of a row inserted just now, uniquely. True when enqueued now;
    False when RQ already holds a job under this id (the caller judges that one); None when this
    path does not apply (not a shop's job in a fair queue, or an option it does not build): the
    caller enqueues the ordinary way. Raises ``redis.RedisError`` when Redis fails."""
    if queue not in FAIR_QUEUES or not _OPTIONS.issuperset(options):
        return None
    shop_id = fairness.shop_of(runtime, func, args)
    if shop_id is None:
        return None
    options = {**fairness.CALLBACKS, **options}
    options["meta"] = {**(options.get("meta") or {}), "shop_id": shop_id}
    normal, bulk = runtime.queue(queue), runtime.queue(queue + BULK_SUFFIX)
    job = normal.create_job(func, args=tuple(args), job_id=job_id, status=JobStatus.QUEUED, **options)
    # What RQ's Queue._prepare_for_queue sets before it saves a job (origin: the script's choice).
    job.redis_server_version = normal.get_redis_server_version()
    job.enqueued_at = now()
    keys = [
        fairness.backlog_key(shop_id),
        f"{fairness.PRUNE_PREFIX}{shop_id}",
        job.key,
        normal.key,
        bulk.key,
        normal.redis_queues_keys,
    ]
    argv = [job.id, time.time(), runtime.settings.fair_share, job.ttl if job.ttl is not None else -1]
    argv += [normal.name, bulk.name, *_fields(job)]
    outcome, size = runtime.redis.register_script(SCRIPT)(keys=keys, args=argv)
    if outcome in (ENQUEUED, ENQUEUED_BULK):
        return True
    if outcome == DUPLICATE:
        return False
    # Over the fair share and not pruned lately: judge the backlog (admitted already), then enqueue.
    share = runtime.settings.fair_share
    routed = bulk if fairness.prune(runtime.redis, shop_id, int(size), share) > share else normal
    try:
        routed.enqueue(func, *args, job_id=job_id, unique=True, **options)
    except DuplicateJobError:
        return False
    return True


def _fields(job: Job) -> list[Any]:
    """The job hash's fields and values as RQ's unique enqueue writes them (``Job.to_dict``, None
    left out, bytes kept, the rest as text), without ``origin``."""
    flat: list[Any] = []
    for key, value in job.to_dict().items():
        if value is None or key == "origin":
            continue
        flat += [key, value if isinstance(value, (bytes, str)) else str(value)]
    return flat
