"""The worker process (Procfile ``worker``): a pool of RQ workers plus the cron scheduler.

Job modules, Flask-free, are imported here once, before the pool forks, so that neither a worker
nor the work-horse it forks per job pays for imports (RQ measured ~15 jobs/s per worker when
each job imported Flask-sized modules, ~86 with light ones). Each worker forks a horse per job,
which isolates a crashing or leaking job; the number of workers is what lets slow provider calls
overlap: at 100 ms per call, 6 workers give ~50 pushes/s while staying well under 512 MB, as
the pool shares the parent's pages copy-on-write.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys

from rq.worker import SimpleWorker, Worker
from rq.worker_pool import WorkerPool

from config import load_settings
from config.logging import configure_logging
from integrations import fulfilment, platforms
from jobs.runtime import QUEUES, build_runtime, set_runtime

log = logging.getLogger(__name__)


def preload() -> None:
    """Import every job module and every registered adapter before forking."""
    import jobs.events
    import jobs.maintenance
    import jobs.orders
    import jobs.sandbox
    import jobs.tracking  # noqa: F401

    fulfilment.check()
    platforms.check()


def _run_cron() -> None:
    from jobs.cron import build_scheduler
    from jobs.runtime import get_runtime

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    build_scheduler(get_runtime()).start()


def main(burst: bool = False) -> None:
    settings = load_settings()
    configure_logging(settings.log_level)
    runtime = build_runtime(settings)
    set_runtime(runtime)
    preload()
    runtime.engine.dispose()  # no connection may cross a fork

    cron = None
    if not burst:
        cron = multiprocessing.get_context("fork").Process(target=_run_cron, name="relais-cron", daemon=True)
        cron.start()
    worker_class = SimpleWorker if settings.worker_class == "simple" else Worker
    log.info("starting %d %s workers on %s", settings.worker_processes, worker_class.__name__, ", ".join(QUEUES))
    try:
        pool = WorkerPool(
            list(QUEUES),
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
