"""Settings come from the environment once; bad values stop the process naming the variable."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from config import load_settings
from config.logging import RedactSecrets, redact
from integrations.errors import ConfigError
from store.db import transaction
from store.models import Shop
from store.shops import upsert_shop


def test_herokus_postgres_spelling_is_accepted() -> None:
    settings = load_settings({"DATABASE_URL": "postgres://u:p@db.example.com:5432/relais"})
    assert settings.database_url == "postgresql+psycopg://u:p@db.example.com:5432/relais"


def test_the_default_database_is_a_sqlite_file_and_redis_is_embedded() -> None:
    settings = load_settings({})
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
