"""Keeping RQ's scheduler held by a live process, whatever happened to the last one.

Retries with an interval (``Retry``) and ``enqueue_in`` wait in each queue's
``ScheduledJobRegistry``; only the process holding that queue's scheduler lock
(``rq:scheduler-lock:<queue>``) moves them back to the queue when due. RQ's workers take the lock
once at start and try again only in their maintenance pass (every 10 minutes), and a SIGKILLed
scheduler keeps its locks for their TTL (61 s): after a crash or a Redis flush, retries waited up
to 10 minutes. ``SchedulerKeeper`` is RQ's own ``RQScheduler`` driven from the worker pool's
parent process every second or two: it asks for the locks on every tick, takes over a lock whose
owner stopped sending heartbeats (or is a dead process on this host), refreshes what it holds and
moves due jobs. It also notices a flushed Redis (its marker key vanished) and enqueues a sweep at
once, so what was lost with the flush comes back from the database without waiting for cron.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from datetime import UTC

import redis
from rq.scheduler import RQScheduler
from rq.scripts import release_lock
from rq.utils import utcparse

log = logging.getLogger(__name__)

# Set once by the keeper; a Redis that lost it was flushed (or replaced by an empty one).
MARKER_KEY = "relais:redis-marker"
# Pool workers alive now (short TTL, refreshed by the pool's parent) and ever known (long TTL):
# the sweep treats a job started by a known worker that is no longer alive as lost.
LIVE_WORKER_KEY = "relais:worker-alive:{}"
KNOWN_WORKER_KEY = "relais:worker-known:{}"
LIVE_WORKER_TTL = 15
KNOWN_WORKER_TTL = 7 * 86400


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SchedulerKeeper:
    """RQ's scheduler, run in this process by repeated ``tick()`` calls instead of its own loop."""

    def __init__(
        self,
        queues: Iterable[str],
        connection: redis.Redis,
        takeover_after: float = 10.0,
        on_flush: Callable[[], None] | None = None,
    ) -> None:
        self.scheduler = RQScheduler(list(queues), connection=connection)
        self.connection = connection
        self.takeover_after = takeover_after
        self.on_flush = on_flush
        self._born = False
        self._marker_seen = False

    @property
    def name(self) -> str:
        return self.scheduler.name

    @property
    def held(self) -> set[str]:
        """The queues whose scheduled jobs this process moves now."""
        return set(self.scheduler.acquired_locks)

    def tick(self) -> None:
        """One pass: notice a flush, take over dead locks, acquire/refresh, move due jobs."""
        if not self._born:
            self.scheduler.register_birth()
            self._born = True
        self._check_marker()
        self._take_over_dead_locks()
        before = self.held
        self.scheduler.acquire_locks()  # acquires free locks, refreshes ours (RQ's own script)
        gained = self.held - before
        if gained:
            log.info("scheduler %s now holds %s", self.name, ", ".join(sorted(gained)))
        self.scheduler.heartbeat()
        if self.held:
            self.scheduler.enqueue_scheduled_jobs()

    def stop(self) -> None:
        """Release the locks this process holds, so a successor takes them at once."""
        try:
            self.scheduler.release_locks()
            self.scheduler.register_death()
        except redis.RedisError as exc:  # Redis gone: the locks expire on their own (61 s)
            log.warning("could not release the scheduler locks: %s", exc)

    def _check_marker(self) -> None:
        created = self.connection.set(MARKER_KEY, self.name, nx=True)
        if created and self._marker_seen:
            log.warning("Redis lost its data (flushed or replaced): asking for a sweep now")
            if self.on_flush is not None:
                self.on_flush()
        self._marker_seen = True

    def _take_over_dead_locks(self) -> None:
        for queue in self.scheduler._queue_names:
            key = RQScheduler.get_locking_key(queue)
            owner = self.connection.get(key)
            if owner is None:
                continue
            owner_name = owner.decode() if isinstance(owner, bytes) else str(owner)
            if owner_name == self.name or not self._owner_dead(owner_name):
                continue
            if release_lock(self.connection, key, owner_name):
                log.warning("scheduler lock for %s held by dead scheduler %s: taken over", queue, owner_name)

    def _owner_dead(self, owner: str) -> bool:
        """An owner is dead when its metadata is gone, its heartbeat is older than
        ``takeover_after``, or it was a process on this host that no longer exists."""
        meta = self.connection.hgetall(f"rq:scheduler:{owner}")
        if not meta:
            return True
        data = {k.decode(): v.decode() for k, v in meta.items()}
        try:
            beat = utcparse(data.get("last_heartbeat", "")).replace(tzinfo=UTC)
        except (ValueError, TypeError):
            return True
        if time.time() - beat.timestamp() > self.takeover_after:
            return True
        if data.get("hostname") == socket.gethostname():
            pid = int(data.get("pid") or 0)
            # Our own pid under another name is a previous life of this container's process tree.
            return pid == os.getpid() or not _pid_alive(pid)
        return False


def mark_workers_alive(connection: redis.Redis, names: Iterable[str]) -> None:
    """Called by the pool's parent each tick for the workers it sees alive."""
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.set(LIVE_WORKER_KEY.format(name), 1, ex=LIVE_WORKER_TTL)
            pipe.set(KNOWN_WORKER_KEY.format(name), 1, ex=KNOWN_WORKER_TTL)
        pipe.execute()


def worker_is_dead(connection: redis.Redis, name: str | None) -> bool:
    """True only for a pool worker we knew that is no longer reported alive (a process outside
    the pool, e.g. a test's or an operator's ``rq worker``, is never declared dead)."""
    if not name:
        return False
    known, alive = connection.mget(KNOWN_WORKER_KEY.format(name), LIVE_WORKER_KEY.format(name))
    return known is not None and alive is None
