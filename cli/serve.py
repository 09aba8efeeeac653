"""``serve`` (web + worker in one process tree, for a fresh machine), ``worker`` and ``migrate``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

ROOT = Path(__file__).resolve().parent.parent


def upgrade_database(url: str) -> None:
    """``alembic upgrade head`` against ``url`` (the Procfile's release step does the same)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


@click.command("migrate")
@with_appcontext
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    upgrade_database(current_app.extensions["relais"].settings.database_url)
    click.echo("database is up to date")


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
def worker(burst: bool) -> None:
    """Run the RQ worker pool and the cron scheduler (Procfile ``worker``)."""
    from jobs.worker import main

    main(burst=burst)


@click.command("serve")
@with_appcontext
@click.option("--port", default=5000, show_default=True)
def serve(port: int) -> None:
    """Run everything with embedded defaults: web, worker and the sandbox provider; Ctrl-C stops all."""
    runtime = current_app.extensions["relais"]
    settings = runtime.settings
    upgrade_database(settings.database_url)
    runtime.redis.ping()  # starts the embedded Redis now, owned by this process
    env = dict(
        os.environ, PORT=str(port), RELAIS_PUBLIC_URL=os.environ.get("RELAIS_PUBLIC_URL", f"http://127.0.0.1:{port}")
    )
    env.setdefault("WEB_CONCURRENCY", "2")
    env.setdefault("RELAIS_WORKER_PROCESSES", "3")
    py = sys.executable
    children = [
        subprocess.Popen(
            [py, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.py"), "app:app"], cwd=ROOT, env=env
        ),
        subprocess.Popen([py, "-m", "jobs.worker"], cwd=ROOT, env=env),
    ]
    click.echo(
        f"Relais on http://127.0.0.1:{port}  (database {settings.database_url.split('://')[0]}, "
        f"redis {'embedded' if not settings.redis_url else 'REDIS_URL'}); Ctrl-C stops everything"
    )

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    # Ctrl-C reaches the whole process group; SIGTERM (or SIGINT sent to us alone) is relayed.
    signal.signal(signal.SIGTERM, lambda *a: stop())
    signal.signal(signal.SIGINT, lambda *a: stop())
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        deadline = time.monotonic() + 20
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        if not settings.redis_url:
            # The embedded Redis outlives its last client otherwise; save its data and stop it.
            with contextlib.suppress(Exception):  # already gone is fine
                runtime.redis.shutdown(save=True)
