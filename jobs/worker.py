"""The worker process (Procfile ``worker``): a pool of RQ workers plus RQ's cron scheduler.

The worker model was chosen by measurement. First (``bench/worker_throughput.py``, 2 cores, a
provider answering in 100 ms, PostgreSQL): RQ's forking ``Worker`` (a work-horse per job)
reached only ~12 orders/s with 6 workers, the fork of a process holding SQLAlchemy, requests and
marshmallow costing more than the job itself; ``SimpleWorker`` (no fork) reached 50 with 8
processes, ~315 MB. A push spends most of its time waiting for the provider, so one job at a
time per process wastes the memory of a process per job in flight. Now (``bench/pipeline.py``,
webhook to provider): each process runs ``RELAIS_WORKER_THREADS`` jobs at once
(``ThreadedWorker``, ``jobs/threaded.py``), 2 processes x 16 threads by default: the same
throughput in half the memory (~160 MB), throughput then bound by CPU, not by jobs in flight.
Each worker is recycled after ``RECYCLE_AFTER_JOBS`` jobs (the pool starts a fresh one) so
that a slow leak cannot grow without bound; one job at a time (``RELAIS_WORKER_THREADS=1``) and
the forking model (``RELAIS_WORKER_CLASS=fork``) stay one setting away. Job modules are
imported once here, before the pool forks its workers, so no worker pays for imports.

Crash recovery: the pool's parent process holds RQ's scheduler itself (``jobs.scheduling``),
asking for the locks every tick and taking over those of a dead scheduler, so scheduled retries
run within seconds of a restart or a Redis flush (RQ's workers would retry only every 10
minutes); it also restarts the cron process when it dies. On SIGTERM (Heroku gives 30 s) each
worker finishes its job, or requeues it after ``shutdown_grace_seconds``; the scheduler locks are
released and the process exits 0.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

import redis
from rq.exceptions import SchedulerNotFound, ShutDownImminentException, StopRequested
from rq.job import Job
from rq.queue import Queue
from rq.worker import HerokuWorker, SimpleWorker
from rq.worker_pool import WorkerPool

from config import Settings
from config.logging import configure_logging
from config.startup import settings_or_exit
from integrations import fulfilment, platforms
from jobs.runtime import Runtime, build_runtime, get_runtime, set_runtime
from jobs.scheduling import SchedulerKeeper, mark_workers_alive
from jobs.threaded import ThreadedWorkerMixin

log = logging.getLogger(__name__)


def preload(settings: Settings) -> None:
    """Import every job module and every registered adapter before forking."""
    import jobs.events
    import jobs.maintenance
    import jobs.orders
    import jobs.tracking  # noqa: F401

    if settings.sandbox_enabled:
        importlib.import_module("sandbox").preload()

    fulfilment.check()
    platforms.check()


RECYCLE_AFTER_JOBS = 5000
# RQ's maintenance pass (abandoned jobs of dead workers retried, registries cleaned) runs every
# 10 minutes by default; once a minute bounds how long a SIGKILLed job's slot stays taken.
MAINTENANCE_INTERVAL = 60


class _PoolWorker:
    """What every Relais pool worker does differently from RQ's defaults.

    - No scheduler of its own: the pool's parent holds RQ's scheduler (``SchedulerKeeper``).
    - Maintenance every minute, not every 10.
    - A job interrupted by the shutdown (Heroku's SIGTERM, then its 30 s limit) goes back to the
      front of its queue with its retry count untouched, instead of being recorded as failed.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        # Jobs interrupted by the shutdown, by id: a threaded worker has several in flight.
        self._requeue_job_ids: set[str] = set()

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs["with_scheduler"] = False
        return super().work(*args, **kwargs)  # type: ignore[misc]

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        if exc_info and exc_info[0] is not None and issubclass(exc_info[0], (ShutDownImminentException, SystemExit)):
            self._requeue_job_ids.add(job.id)
        super().handle_exception(job, *exc_info)  # type: ignore[misc]

    def handle_job_failure(
        self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = "", execution: Any = None
    ) -> None:
        interrupted = job.id in self._requeue_job_ids
        self._requeue_job_ids.discard(job.id)
        if interrupted and not job.has_rate_limit:
            with self.connection.pipeline() as pipeline:  # type: ignore[attr-defined]
                self.cleanup_execution(job, pipeline=pipeline, execution=execution)  # type: ignore[attr-defined]
                pipeline.execute()
            queue.enqueue_job(job, at_front=True)
            log.warning("job %s interrupted by the shutdown: back at the front of %s", job.id, queue.name)
            return
        # A rate-limited job is recorded as failed (its slot must be released); the sweep
        # re-creates its work from the database.
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)  # type: ignore[misc]


class RecyclingWorker(_PoolWorker, SimpleWorker):
    """A ``SimpleWorker`` that exits after ``RECYCLE_AFTER_JOBS`` jobs; the pool replaces it.

    On a warm shutdown while a job runs, the job gets ``shutdown_grace_seconds`` to finish; then
    ``ShutDownImminentException`` is raised in it (as RQ's ``HerokuWorker`` does in its horse) and
    it is requeued."""

    _in_job = False
    _grace_timer: threading.Timer | None = None

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs.setdefault("max_jobs", RECYCLE_AFTER_JOBS)
        signal.signal(signal.SIGUSR1, self._interrupt_job)
        return super().work(*args, **kwargs)

    def execute_job(self, job: Job, queue: Queue) -> None:
        self._in_job = True
        try:
            super().execute_job(job, queue)
        finally:
            self._in_job = False
            if self._grace_timer is not None:
                self._grace_timer.cancel()

    def request_stop(self, signum: int, frame: Any) -> None:
        if self._in_job and self._grace_timer is None:
            grace = get_runtime().settings.shutdown_grace_seconds
            self._grace_timer = threading.Timer(grace, os.kill, (os.getpid(), signal.SIGUSR1))
            self._grace_timer.daemon = True
            self._grace_timer.start()
        super().request_stop(signum, frame)

    def _interrupt_job(self, signum: int, frame: Any) -> None:
        if self._in_job:
            raise ShutDownImminentException("shutdown grace period over", {})


class ThreadedWorker(_PoolWorker, ThreadedWorkerMixin, SimpleWorker):
    """A ``SimpleWorker`` running up to ``RELAIS_WORKER_THREADS`` jobs at once (``jobs.threaded``),
    recycled after ``RECYCLE_AFTER_JOBS`` jobs like ``RecyclingWorker``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_runtime().settings
        self._threaded_setup(settings.worker_threads, settings.shutdown_grace_seconds)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs.setdefault("max_jobs", RECYCLE_AFTER_JOBS)
        return super().work(*args, **kwargs)


def worker_class_for(settings: Settings) -> type:
    """The pool's worker class: forking, one job at a time, or several jobs in flight."""
    if settings.worker_class == "fork":
        return ForkingWorker
    return ThreadedWorker if settings.worker_threads > 1 else RecyclingWorker


class ForkingWorker(_PoolWorker, HerokuWorker):
    """RQ's ``HerokuWorker`` (a horse per job; on SIGTERM the horse gets the grace period, then
    ``ShutDownImminentException``), with the pool's defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.imminent_shutdown_delay = get_runtime().settings.shutdown_grace_seconds


class RelaisPool(WorkerPool):
    """RQ's worker pool whose parent process also keeps the scheduler held, tells which workers
    are alive, and keeps the cron process running (it exits when Redis is unreachable)."""

    CRON_RESTART_SECONDS = 5.0

    def __init__(self, *args: Any, keeper: SchedulerKeeper, cron: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keeper = keeper
        self.want_cron = cron
        self.cron: multiprocessing.process.BaseProcess | None = None
        self._cron_started = 0.0

    def check_workers(self, respawn: bool = True) -> None:
        super().check_workers(respawn=respawn)
        if self.status == self.Status.STOPPED:
            return
        try:
            self.keeper.tick()
            mark_workers_alive(self.connection, list(self.worker_dict))
        except redis.RedisError as exc:
            log.warning("scheduler tick failed (Redis unreachable?): %s", exc)
        except Exception:
            log.exception("scheduler tick failed")
        self._keep_cron()

    def _keep_cron(self) -> None:
        if not self.want_cron or (self.cron is not None and self.cron.is_alive()):
            return
        if time.monotonic() - self._cron_started < self.CRON_RESTART_SECONDS:
            return
        if self.cron is not None:
            log.warning("the cron process exited (code %s): starting a new one", self.cron.exitcode)
        self.cron = multiprocessing.get_context("fork").Process(target=_run_cron, name="relais-cron", daemon=True)
        self.cron.start()
        self._cron_started = time.monotonic()

    def stop_cron(self, timeout: float = 10.0) -> None:
        if self.cron is not None and self.cron.is_alive():
            self.cron.terminate()
            self.cron.join(timeout)


def _run_cron() -> None:
    from jobs.cron import build_scheduler

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # A stop may arrive twice (from the pool and from its parent); the second must not print a trace.
    # After a flush, RQ's unregistering at exit finds nothing to remove (SchedulerNotFound).
    with contextlib.suppress(StopRequested, SchedulerNotFound):
        build_scheduler(get_runtime()).start()


def _sweep_now(runtime: Runtime) -> None:
    """Redis lost its data: run the sweep now rather than at the next cron tick, and over every
    row, however recent: no job that Redis held survived (a row whose job is being recreated by
    the web process right now is deduplicated by its job id; every step is idempotent)."""
    from jobs.queues import enqueue_once

    enqueue_once(runtime, "maintenance", "jobs.maintenance.sweep", 0, job_id="sweep-after-flush")


def main(burst: bool = False) -> None:
    settings = settings_or_exit()  # every problem named at once, before anything starts
    configure_logging(settings.log_level, settings.log_format)
    runtime = build_runtime(settings)
    set_runtime(runtime)
    preload(settings)
    runtime.engine.dispose()  # no connection may cross a fork
    # Move everything imported so far out of the collector's reach: forked children then share
    # these pages instead of copying them when the GC touches their headers.
    gc.collect()
    gc.freeze()

    worker_class = worker_class_for(settings)
    log.info(
        "starting %d %s workers (%d threads each) on %s",
        settings.worker_processes,
        worker_class.__name__,
        settings.worker_threads if worker_class is ThreadedWorker else 1,
        ", ".join(runtime.queue_names),
    )
    keeper = SchedulerKeeper(
        runtime.queue_names,
        runtime.redis,
        takeover_after=settings.scheduler_takeover_seconds,
        on_flush=lambda: _sweep_now(runtime),
    )
    pool = RelaisPool(
        list(runtime.queue_names),
        connection=runtime.redis,
        num_workers=settings.worker_processes,
        worker_class=worker_class,
        keeper=keeper,
        cron=not burst,
    )
    try:
        # The cron process is started (and restarted) by the pool's parent on its first tick.
        pool.start(burst=burst, logging_level=settings.log_level)
    finally:
        # Every worker has stopped (its job finished or requeued): free the scheduler for the
        # next process at once instead of after the takeover delay, then stop cron.
        keeper.stop()
        pool.stop_cron()
    log.info("worker pool stopped")


if __name__ == "__main__":
    main(burst="--burst" in sys.argv)
