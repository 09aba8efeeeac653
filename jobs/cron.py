"""The scheduled jobs, registered on RQ's cron scheduler (``rq.cron.CronScheduler``)."""

from __future__ import annotations

from rq.cron import CronScheduler

from jobs.runtime import Runtime

SWEEP_INTERVAL = 60  # seconds


def build_scheduler(runtime: Runtime) -> CronScheduler:
    """Every periodic job Relais runs; one scheduler process per deployment is enough (RQ
    registers each scheduler, and the jobs themselves are idempotent if two ever overlap).

    RQ's cron scheduler keeps its timetable in the process, not in Redis (Redis only holds a
    monitoring entry that its heartbeat re-creates), so a flush does not stop it; a Redis outage
    makes it raise and exit, and the worker pool's parent then starts a new one (jobs/worker.py)."""
    from jobs import maintenance, polling

    scheduler = CronScheduler(connection=runtime.redis, logging_level=runtime.settings.log_level)
    # RELAIS_SWEEP_INTERVAL_SECONDS (60 s by default; tests and drills shorten it).
    sweep_every = runtime.settings.sweep_interval_seconds or SWEEP_INTERVAL
    scheduler.register(maintenance.sweep, "maintenance", interval=sweep_every, name="sweep")
    scheduler.register(polling.poll_all, "maintenance", interval=polling.POLL_INTERVAL, name="poll-shipments")
    from jobs import reconcile, shop_setup

    scheduler.register(reconcile.reconcile_all, "maintenance", interval=reconcile.RECONCILE_INTERVAL, name="reconcile")
    scheduler.register(
        shop_setup.check_all_webhooks, "maintenance", interval=shop_setup.WEBHOOK_CHECK_INTERVAL, name="webhook-health"
    )
    from jobs import tokens

    scheduler.register(tokens.refresh_expiring, "maintenance", interval=tokens.REFRESH_INTERVAL, name="refresh-tokens")
    from jobs import fulfilment_service, stock

    # Fulfilment-service mode: requests whose webhook or ping was lost.
    scheduler.register(
        fulfilment_service.poll_all, "orders", interval=fulfilment_service.POLL_INTERVAL, name="fulfilment-requests"
    )

    # Every minute: enqueue a sync for each shop whose stock_interval_minutes has passed.
    scheduler.register(stock.enqueue_due, "stock", interval=60, name="stock-sync-due")
    return scheduler
