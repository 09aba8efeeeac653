"""The worker process (Procfile ``worker``): a pool of RQ workers plus RQ's cron scheduler.

The worker model was chosen by measurement (``bench/worker_throughput.py``, 2 cores, a provider
answering in 100 ms, PostgreSQL): RQ's forking ``Worker`` (a work-horse per job) reached only
~12 orders/s with 6 workers, the fork of a process holding SQLAlchemy, requests and marshmallow
costing more than the job itself; ``SimpleWorker`` (no fork) reached ~39 orders/s with 6 and
above 50 with 8, inside 512 MB. So the default is ``SimpleWorker`` x 8, each recycled after
``RECYCLE_AFTER_JOBS`` jobs (the pool starts a fresh one) so that a slow leak cannot grow
without bound; the forking model stays one setting away (RELAIS_WORKER_CLASS=fork) where
isolation matters more than speed. Job modules are imported once here, before the pool forks
its workers, so no worker pays for imports.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import multiprocessing
import signal
import sys

from rq.exceptions import StopRequested
from rq.worker import SimpleWorker, Worker
from rq.worker_pool import WorkerPool

from config import Settings, load_settings
from config.logging import configure_logging
from integrations import fulfilment, platforms
from jobs.runtime import build_runtime, set_runtime

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


class RecyclingWorker(SimpleWorker):
    """A ``SimpleWorker`` that exits after ``RECYCLE_AFTER_JOBS`` jobs; the pool replaces it."""

    def work(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("max_jobs", RECYCLE_AFTER_JOBS)
        return super().work(*args, **kwargs)


def _run_cron() -> None:
    from jobs.cron import build_scheduler
    from jobs.runtime import get_runtime

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # A stop may arrive twice (from the pool and from its parent); the second must not print a trace.
    with contextlib.suppress(StopRequested):
        build_scheduler(get_runtime()).start()


def main(burst: bool = False) -> None:
    settings = load_settings()
    configure_logging(settings.log_level)
    runtime = build_runtime(settings)
    set_runtime(runtime)
    preload(settings)
    runtime.engine.dispose()  # no connection may cross a fork
    # Move everything imported so far out of the collector's reach: forked children then share
    # these pages instead of copying them when the GC touches their headers.
    gc.collect()
    gc.freeze()

    cron = None
    if not burst:
        cron = multiprocessing.get_context("fork").Process(target=_run_cron, name="relais-cron", daemon=True)
        cron.start()
    worker_class = RecyclingWorker if settings.worker_class == "simple" else Worker
    log.info(
        "starting %d %s workers on %s", settings.worker_processes, worker_class.__name__, ", ".join(runtime.queue_names)
    )
    try:
        pool = WorkerPool(
            list(runtime.queue_names),
            connection=runtime.redis,
            num_workers=settings.worker_processes,
            worker_class=worker_class,
        )
        pool.start(burst=burst, logging_level=settings.log_level)
    finally:
        if cron is not None and cron.is_alive():
            cron.terminate()


if __name__ == "__main__":
    main(burst="--burst" in sys.argv)
