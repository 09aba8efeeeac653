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

The job's first of a kind (queue, function, options) in a process is built by RQ
(``Queue.create_job``) and prepared as RQ's ``_prepare_for_queue`` prepares it; only the writes
are ours. Building a job costs as much CPU as the round trip, and all but five of its hash's
fields are the same for every job of a kind; so that first job also yields a template (the
constant fields), and the next jobs of that kind take the template plus the five fields that vary
(the call's data and description, the shop's meta, two timestamps), computed as ``Job.to_dict``
computes them. The template is kept only if it rebuilds, exactly, that first job's hash and the
hash of a second job RQ builds with other arguments and id; if not (an RQ upgrade added or
changed a field), that kind keeps RQ's way. ``tests/test_fairness_one_trip.py``
compares both ways, key by key and field by field, with what RQ's own ``Queue.enqueue`` writes.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Hashable, Sequence
from typing import Any

from redis.exceptions import NoScriptError
from rq import Callback, Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus
from rq.utils import get_call_string, now, utcformat

from jobs import fairness
from jobs.runtime import BULK_SUFFIX, FAIR_QUEUES, Runtime

# Options this path knows how to build a job from (``Queue.create_job``'s); any other (a rate
# limit, a dependency, ``at_front``…) takes RQ's own enqueue.
_OPTIONS = frozenset(
    {"retry", "meta", "timeout", "result_ttl", "ttl", "failure_ttl", "description"}
    | {"on_success", "on_failure", "on_stopped"}
)

ENQUEUED, ENQUEUED_BULK, DUPLICATE, PRUNE_FIRST = 1, 2, 0, -1

log = logging.getLogger(__name__)

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
    fields, ttl = job_hash(normal, func, tuple(args), job_id, options)
    keys = [
        fairness.backlog_key(shop_id),
        f"{fairness.PRUNE_PREFIX}{shop_id}",
        Job.key_for(job_id),
        normal.key,
        bulk.key,
        normal.redis_queues_keys,
    ]
    argv = [job_id, time.time(), runtime.settings.fair_share, ttl if ttl is not None else -1]
    outcome, size = _run_script(runtime, keys, [*argv, normal.name, bulk.name, *fields])
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


_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()  # Redis names scripts by their SHA-1


def _run_script(runtime: Runtime, keys: list[str], argv: list[Any]) -> Any:
    """``EVALSHA``, loading the script on Redis' first ``NOSCRIPT`` (a restart or a flush of its
    script cache); sent as a plain command, without redis-py's ``Script`` object per call."""
    try:
        return runtime.redis.execute_command("EVALSHA", _SHA, len(keys), *keys, *argv)
    except NoScriptError:
        return runtime.redis.execute_command("EVAL", SCRIPT, len(keys), *keys, *argv)


# Varying per job: computed for each; the rest of the hash comes from the kind's template.
_VARYING = frozenset({"created_at", "enqueued_at", "data", "description", "meta", "origin"})
_templates: dict[Hashable, list[Any] | None] = {}  # None: this kind keeps RQ's way
_templates_lock = threading.Lock()


def job_hash(
    queue: Queue, func: str, args: tuple[Any, ...], job_id: str, options: dict[str, Any]
) -> tuple[list[Any], int | None]:
    """The job hash's fields and values as RQ's unique enqueue writes them (without ``origin``),
    and the job's TTL; from the kind's template once it has one (see the module's note)."""
    kind = _kind(queue, func, options)
    template = _templates.get(kind) if kind is not None else None
    if template is None:
        job = _rq_job(queue, func, args, job_id, options)
        fields = _fields(job)
        if kind is not None and kind not in _templates:
            with _templates_lock:
                _templates[kind] = _template_of(fields, queue, func, args, options)
        return fields, job.ttl
    return [*template, *_varying(queue, func, args, options)], options.get("ttl")


def _rq_job(queue: Queue, func: str, args: tuple[Any, ...], job_id: str, options: dict[str, Any]) -> Job:
    job = queue.create_job(func, args=args, job_id=job_id, status=JobStatus.QUEUED, **options)
    # What RQ's Queue._prepare_for_queue sets before it saves a job (origin: the script's choice).
    job.redis_server_version = queue.get_redis_server_version()
    job.enqueued_at = now()
    return job


def _kind(queue: Queue, func: str, options: dict[str, Any]) -> Hashable | None:
    """What makes two jobs' constant fields the same; None when an option is not understood here."""
    parts: list[Hashable] = [queue.name, func]
    for name in sorted(options):
        value = options[name]
        if name == "meta":
            continue
        if isinstance(value, Retry):
            value = ("retry", value.max, tuple(value.intervals), value.enqueue_at_front)
        elif isinstance(value, Callback):
            value = ("callback", value.name, value.timeout)
        elif not isinstance(value, (int, str, type(None))):
            return None
        parts.append((name, value))
    return tuple(parts)


def _varying(queue: Queue, func: str, args: tuple[Any, ...], options: dict[str, Any]) -> list[Any]:
    """The fields that differ from job to job, as ``Job.to_dict`` computes them."""
    stamp = utcformat(now())
    fields: list[Any] = [
        "created_at",
        stamp,
        "enqueued_at",
        stamp,
        "data",
        zlib.compress(queue.serializer.dumps((func, None, args, {}))),
        "description",
        options.get("description") or get_call_string(func, args, {}, max_length=75),
    ]
    if options.get("meta"):
        fields += ["meta", queue.serializer.dumps(options["meta"])]
    return fields


def _template_of(
    fields: list[Any], queue: Queue, func: str, args: tuple[Any, ...], options: dict[str, Any]
) -> list[Any] | None:
    """The constant fields of a job RQ built, provided they and ``_varying`` rebuild its hash and
    that of a second job RQ builds with other arguments and id, exactly (timestamps aside): a
    field that varies unbeknown to ``_varying`` differs between the two. None otherwise, and this
    kind keeps RQ's way."""
    template = [part for name, value in _pairs(fields).items() if name not in _VARYING for part in (name, value)]
    probe_args = (*args, "probe")
    probe = _fields(_rq_job(queue, func, probe_args, "one-trip-template-probe", options))
    for job_args, built in ((args, fields), (probe_args, probe)):
        if _unstamped([*template, *_varying(queue, func, job_args, options)]) != _unstamped(built):
            log.warning("RQ's job hash for %s is not what the template rebuilds: RQ builds each one", func)
            return None
    return template


def _pairs(fields: list[Any]) -> dict[str, Any]:
    return dict(zip(fields[::2], fields[1::2], strict=True))


def _unstamped(fields: list[Any]) -> dict[str, Any]:
    return {name: value for name, value in _pairs(fields).items() if name not in ("created_at", "enqueued_at")}


def _fields(job: Job) -> list[Any]:
    """The job hash's fields and values as RQ's unique enqueue writes them (``Job.to_dict``, None
    left out, bytes kept, the rest as text), without ``origin``."""
    flat: list[Any] = []
    for key, value in job.to_dict().items():
        if value is None or key == "origin":
            continue
        flat += [key, value if isinstance(value, (bytes, str)) else str(value)]
    return flat
