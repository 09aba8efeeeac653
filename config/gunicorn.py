"""gunicorn settings for the Procfile's ``web`` line (Heroku sets PORT and WEB_CONCURRENCY).

Webhook requests only verify, insert and enqueue, so a few sync-threaded workers answer far
inside Shopify's 5 s limit; threads overlap the database commit and the Redis round trip.

gunicorn reads this file in its master process, before it binds or forks: Relais' settings are
checked here, so a misconfigured deploy exits at once naming every missing variable, instead of
booting workers that answer 500 to every request.
"""

import os
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # the `gunicorn` script puts its own folder first, not the app's
    sys.path.insert(0, _ROOT)

from config.startup import refuse, refuse_public_bind, settings_or_exit  # noqa: E402
from integrations.errors import ConfigError  # noqa: E402

_settings = settings_or_exit()

# RELAIS_BIND when set; else 0.0.0.0:$PORT in production (Heroku's router), 127.0.0.1:$PORT in development.
bind = _settings.bind
try:
    refuse_public_bind(_settings, [bind])  # again in on_starting, for a --bind given on the command line
except ConfigError as _exc:
    raise refuse(f"Relais cannot start: {_exc}") from None
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = "-"
# Never log query strings of the OAuth callback with their codes; the path is enough.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
# Workers are recycled to bound slow leaks, but each recycle costs a boot (imports, a cold pool,
# cold statement caches) while the other worker carries the load: at 2,000 requests a worker
# recycled every ~10 s under a webhook burst, which cost ~25% of the receiver's CPU per request
# and put ~1 s stalls in its p99 (bench/ingest.py). At 20,000 a worker still recycled every
# ~40 s at a flash sale's ~1,000 deliveries/s, and a recycle during the half-peak run put p99 at
# 159 ms instead of 7 ms. 100,000 keeps the guard, minutes apart even then.
max_requests = 100_000
max_requests_jitter = 10_000


def on_starting(server) -> None:  # type: ignore[no-untyped-def]
    """Before binding: development's made-up secrets never listen beyond this machine (the final
    addresses, ``--bind`` on the command line included)."""
    try:
        refuse_public_bind(_settings, server.cfg.bind)
    except ConfigError as exc:
        raise refuse(f"Relais cannot start: {exc}") from None


def post_worker_init(worker) -> None:  # type: ignore[no-untyped-def]
    """In each worker, once forked: on SQLite, WAL checkpoints in a thread of their own rather
    than in whichever webhook's commit crosses the threshold (``store.wal_checkpoint``)."""
    from store import wal_checkpoint

    wal_checkpoint.start(_settings.database_url)
