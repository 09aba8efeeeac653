"""The scheduled jobs, registered on RQ's cron scheduler (``rq.cron.CronScheduler``)."""

from __future__ import annotations

from rq.cron import CronScheduler

from jobs.runtime import Runtime

SWEEP_INTERVAL = 60  # seconds


def build_scheduler(runtime: Runtime) -> CronScheduler:
    """Every periodic job Relais runs; one scheduler process per deployment is enough (RQ
    registers each scheduler, and the jobs themselves are idempotent if two ever overlap)."""
    from jobs import maintenance

    scheduler = CronScheduler(connection=runtime.redis, logging_level=runtime.settings.log_level)
    scheduler.register(maintenance.sweep, "maintenance", interval=SWEEP_INTERVAL, name="sweep")
    return scheduler
