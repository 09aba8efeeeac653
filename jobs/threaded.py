"""A pool worker that keeps several jobs in flight in one process, each in its own thread.

Why: a push spends ~100 ms waiting for the provider and a few ms of CPU; one job at a time per
process needed 8 processes (~315 MB) for 50 orders/s. RQ 3 has no threaded worker (``Worker``
forks, ``SpawnWorker`` spawns, ``SimpleWorker`` runs one job in the main thread), but its
bookkeeping already allows several executions per worker (``worker.executions``, one
``Execution`` per job in the started registry) and ``get_current_job()`` is thread-local. So
this worker keeps RQ's loop and bookkeeping and changes only where a job runs:

- the main thread dequeues a job only when one of ``threads`` slots is free, prepares its
  execution (RQ's registries, as ``SimpleWorker`` does) and hands it to a thread;
- a job's thread runs RQ's own ``perform_job`` (success, retry, failure, callbacks unchanged);
  timeouts are raised in the job's thread by one watchdog thread (RQ's default uses SIGALRM,
  which only the main thread receives);
- every guarantee lives outside the worker and is thread-safe: Redis clients from one
  connection pool, a SQLAlchemy session per unit of work (``store.db.transaction``), the
  order's row lock and state machine, the provider's idempotent reference, the per-account
  limiter in Redis;
- SIGTERM: no new job is taken; the jobs in flight get ``shutdown_grace_seconds`` to finish,
  then ``ShutDownImminentException`` is raised in each of their threads and they put
  themselves back at the front of their queue (``_PoolWorker``). Such an exception lands only
  when the thread next runs Python code, so a job still waiting on a socket a second later is
  put back by the main thread, and the process ends at once (``os._exit``), as a killed
  work-horse would: the abandoned thread never records anything, and the job's next run is
  idempotent like every run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker, WorkerStatus

from jobs.job_threads import (
    GraceOver,
    WatchdogDeathPenalty,
    block_stop_signals,
    raise_in_thread,
    stop_signals_blocked,
)

log = logging.getLogger(__name__)

#: after the grace period's interruption, how long a job may take to put itself back in its queue
INTERRUPT_WAIT = 1.0
#: longest wait for a job in one Redis call (then the main thread looks around and waits again)
DEQUEUE_SLICE = 5
#: how often the main thread renews the worker's heartbeat while every slot is busy
HEARTBEAT_EVERY = 5.0
#: how often the worker asks Redis whether an operator suspended the workers (``rq suspend``)
SUSPENSION_CHECK_EVERY = 1.0


class ThreadedWorkerMixin:
    """Runs up to ``threads`` jobs at once; mixed into a ``SimpleWorker`` subclass."""

    death_penalty_class = WatchdogDeathPenalty
    threads = 4
    shutdown_grace = 20.0
    _last_beat = 0.0
    _suspension_checked = float("-inf")

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ renews the worker's key (3 Redis calls) before and after every dequeue; with a
        hundred jobs a second, once every ``HEARTBEAT_EVERY`` seconds is plenty for a key that
        lives ``worker_ttl`` (7 minutes). Heartbeats inside RQ's own pipelines are kept."""
        if pipeline is None and timeout is None:
            if time.monotonic() - self._last_beat < HEARTBEAT_EVERY:
                return
            self._last_beat = time.monotonic()
        super().heartbeat(timeout, pipeline)  # type: ignore[misc]

    def check_for_suspension(self, burst: bool) -> None:
        """RQ asks Redis before every job whether the workers are suspended: a round trip per
        job, 7% of an empty job's CPU. A suspension is an operator's command, and taking it
        within ``SUSPENSION_CHECK_EVERY`` is as good; RQ's own wait while suspended is kept."""
        if time.monotonic() - self._suspension_checked < SUSPENSION_CHECK_EVERY:
            return
        super().check_for_suspension(burst)  # type: ignore[misc]
        self._suspension_checked = time.monotonic()

    def _threaded_setup(self, threads: int, shutdown_grace: float) -> None:
        self.threads = max(1, threads)
        self.shutdown_grace = shutdown_grace
        self._slots = threading.BoundedSemaphore(self.threads)
        self._in_flight: dict[str, int] = {}  # job id → thread ident, while the job runs
        self._running: dict[str, tuple[Job, Queue, Any]] = {}  # job id → (job, queue, execution)
        self._stop_at = 0.0
        self._flight_lock = threading.Lock()
        self._idle = threading.Condition(self._flight_lock)
        self._dequeuing = False
        self._grace_timer: threading.Timer | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix="relais-job", initializer=block_stop_signals
        )

    @property
    def dequeue_timeout(self) -> int:
        """Wait for a job in slices of a few seconds, not RQ's 7 minutes: whatever wakes the
        main thread late (a stop signal taken by another thread), it stops within one slice."""
        return DEQUEUE_SLICE

    def subscribe(self) -> None:
        """RQ's pubsub thread (commands such as "stop job") must not take the stop signals."""
        with stop_signals_blocked():
            super().subscribe()  # type: ignore[misc]

    # -- taking jobs ------------------------------------------------------------------------

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        """Wait for a free slot, then dequeue as RQ does. In burst mode an empty queue ends the
        worker only once no job is in flight (a job in flight may enqueue its follow-up)."""
        self._wait_for_slot()
        try:
            while True:
                self._dequeuing = True
                try:
                    if self._stop_requested:  # type: ignore[attr-defined]
                        raise StopRequested()
                    result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)  # type: ignore[misc]
                finally:
                    self._dequeuing = False
                if result is not None or timeout is not None or not self.jobs_in_flight():
                    break
                self.wait_until_idle()
        except BaseException:
            self._slots.release()
            raise
        if result is None:
            self._slots.release()
        return result

    def _wait_for_slot(self) -> None:
        last_beat = time.monotonic()
        while not self._slots.acquire(timeout=0.5):
            if self._stop_requested:  # type: ignore[attr-defined]
                raise StopRequested()
            if time.monotonic() - last_beat > HEARTBEAT_EVERY:
                self.heartbeat()  # type: ignore[attr-defined]
                last_beat = time.monotonic()

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Record the execution here (the main thread), run the job in a thread."""
        try:
            execution = self.prepare_execution(job)  # type: ignore[attr-defined]
            with self._flight_lock:
                self._in_flight[job.id] = 0
                self._running[job.id] = (job, queue, execution)
            self._executor.submit(self._run, job, queue, execution)
        except BaseException:
            with self._flight_lock:
                self._in_flight.pop(job.id, None)
                self._running.pop(job.id, None)
            self._slots.release()
            raise

    def _run(self, job: Job, queue: Queue, execution: Any) -> None:
        with self._flight_lock:
            self._in_flight[job.id] = threading.get_ident()
        try:
            self.perform_job(job, queue, execution)  # type: ignore[attr-defined]
        except BaseException:  # perform_job records every failure itself; never lose the slot
            log.exception("job %s: unexpected error around its execution", job.id)
        finally:
            with self._flight_lock:
                self._in_flight.pop(job.id, None)
                self._running.pop(job.id, None)
                if not self._in_flight:
                    self._idle.notify_all()
            self._slots.release()
            if not self._in_flight:
                with contextlib.suppress(Exception):
                    self.set_state(WorkerStatus.IDLE)  # type: ignore[attr-defined]

    # -- what is running ----------------------------------------------------------------------

    def jobs_in_flight(self) -> int:
        with self._flight_lock:
            return len(self._in_flight)

    def wait_until_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is in flight; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left if left is not None else 1.0)
        return True

    # -- stopping -----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """A warm stop: take no new job; interrupt the dequeue if the main thread waits in it
        (elsewhere the main thread sees the request within half a second)."""
        self._stop_requested = True
        self._stop_at = self._stop_at or time.monotonic()
        if self.jobs_in_flight():
            self.set_shutdown_requested_date()  # type: ignore[attr-defined]
            self._start_grace_timer()
        if self._dequeuing:
            raise StopRequested()

    def request_force_stop(self, signum: int, frame: Any) -> None:
        """A second stop signal (a cold stop): interrupt the jobs in flight now, not after the
        grace period; RQ ignores a duplicate arriving within a second."""
        try:
            super().request_force_stop(signum, frame)  # type: ignore[misc]
        except SystemExit:
            self.shutdown_grace = 0
            self.interrupt_jobs()
            raise

    def _start_grace_timer(self) -> None:
        if self._grace_timer is None:
            self._grace_timer = threading.Timer(self.shutdown_grace, self.interrupt_jobs)
            self._grace_timer.daemon = True
            with stop_signals_blocked():
                self._grace_timer.start()

    def interrupt_jobs(self) -> int:
        """The grace period is over: raise ``ShutDownImminentException`` in every job still
        running, so that each is put back at the front of its queue. Returns how many."""
        with self._flight_lock:
            targets = [(job_id, ident) for job_id, ident in self._in_flight.items() if ident]
        for job_id, ident in targets:
            log.warning("job %s still running after the shutdown grace period: interrupting it", job_id)
            raise_in_thread(ident, GraceOver)
        return len(targets)

    def teardown(self) -> None:
        """Before RQ unregisters the worker: let the jobs in flight end. When stopping, they get
        the grace period; then those still running are interrupted, and those that cannot be
        (a thread waiting on a socket or in a sleep) are put back at the front of their queue
        by this thread and the process ends at once, as a killed work-horse would: their
        threads never record anything, and their next run is idempotent."""
        if self.jobs_in_flight():
            if not self._stop_requested:  # type: ignore[attr-defined]
                self.wait_until_idle()  # recycling after max_jobs: no hurry
            else:
                self._start_grace_timer()
                left = self._stop_at + self.shutdown_grace + INTERRUPT_WAIT - time.monotonic()
                if not self.wait_until_idle(max(left, 0.1)):
                    self._abandon_in_flight()
                    super().teardown()  # type: ignore[misc]
                    logging.shutdown()
                    os._exit(0)
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        self._executor.shutdown(wait=False)
        super().teardown()  # type: ignore[misc]

    def _abandon_in_flight(self) -> None:
        with self._flight_lock:
            running = list(self._running.values())
        for job, queue, execution in running:
            if job.has_rate_limit:
                # Its RQ RateLimit slot is freed, and the job retried, by the maintenance pass
                # that finds it in the started registry of a dead worker.
                log.warning("job %s abandoned by the shutdown: left to the maintenance pass", job.id)
                continue
            with self.connection.pipeline() as pipeline:  # type: ignore[attr-defined]
                self.cleanup_execution(job, pipeline=pipeline, execution=execution)  # type: ignore[attr-defined]
                pipeline.execute()
            queue.enqueue_job(job, at_front=True)
            log.warning("job %s interrupted by the shutdown: back at the front of %s", job.id, queue.name)


class ThreadedSimpleWorker(ThreadedWorkerMixin, SimpleWorker):
    """``SimpleWorker`` with ``threads`` jobs in flight (for tests and tools outside the pool)."""

    def __init__(self, *args: Any, threads: int = 4, shutdown_grace: float = 20.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._threaded_setup(threads, shutdown_grace)
