"""Attack: use the development sandbox on a production deployment.

Before the sandbox became its own package, `/sandbox/*` (the simulated 3PL: any bearer token an
account, real customers' addresses listed) and `/sandbox/shopify/*` (a stand-in shop answering
any token) were registered whatever the environment, and `sandbox` was a provider every new shop
got. A production-configured Relais must have none of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from app import create_app
from config import load_settings
from integrations import fulfilment
from integrations.errors import ConfigError
from jobs.runtime import set_runtime

ROOT = Path(__file__).resolve().parents[2]


def _env(settings, environment: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAIS_", "SHOPIFY_", "SANDBOX_"))}
    env.update(
        RELAIS_ENV=environment,
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        SECRET_KEY="a-production-secret-key-of-some-length",
        RELAIS_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        SHOPIFY_API_KEY="production-api-key",
        SHOPIFY_API_SECRET="production-api-secret",
    )
    return env


def _routes(settings, environment: str) -> str:  # type: ignore[no-untyped-def]
    flask = Path(sys.executable).with_name("flask")
    result = subprocess.run(
        [str(flask), "--app", "app", "routes"],
        cwd=ROOT,
        env=_env(settings, environment),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_flask_routes_of_a_production_app_list_no_sandbox_route(settings) -> None:  # type: ignore[no-untyped-def]
    routes = _routes(settings, "production")
    assert "/webhooks/shopify" in routes
    assert "/sandbox" not in routes
    assert "/sandbox" in _routes(settings, "development")  # the same check sees it where it exists


@pytest.fixture
def production_client(settings):  # type: ignore[no-untyped-def]
    production = settings.with_(environment="production", encryption_key=Fernet.generate_key().decode())
    app = create_app(production)
    yield app
    fulfilment.register("sandbox", "sandbox.provider:SandboxProvider")  # the rest of the suite runs in development
    production_runtime = app.extensions["relais"]
    production_runtime.engine.dispose()  # no connection left for the garbage collector to find open
    if production_runtime.redis_client is not None:
        production_runtime.redis_client.close()
    set_runtime(None)


def test_anonymous_reads_of_the_sandbox_find_nothing_in_production(production_client) -> None:  # type: ignore[no-untyped-def]
    client = production_client.test_client()
    orders = client.get("/sandbox/api/orders", headers={"Authorization": "Bearer sandbox"})
    assert orders.status_code == 404
    shop = client.post(
        "/sandbox/shopify/victim.myshopify.com/admin/api/2026-10/graphql.json",
        json={"query": "query Skus { inventoryItems(first: 10) { nodes { sku } } }"},
        headers={"X-Shopify-Access-Token": "anything"},
    )
    assert shop.status_code == 404
    assert b"sku" not in shop.data.lower()


def test_production_knows_no_sandbox_provider_and_no_demo_command(production_client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="unknown provider 'sandbox'"):
        fulfilment.get("sandbox")
    assert "demo" not in production_client.cli.commands


def test_production_refuses_to_enable_the_sandbox_explicitly(settings) -> None:  # type: ignore[no-untyped-def]
    complete = _env(settings, "production")
    assert not load_settings(complete).sandbox_enabled
    with pytest.raises(ConfigError, match="RELAIS_SANDBOX=1 is refused in production"):
        load_settings({**complete, "RELAIS_SANDBOX": "1"})
    assert load_settings({"RELAIS_ENV": "development"}).sandbox_enabled
    assert not load_settings({"RELAIS_ENV": "development", "RELAIS_SANDBOX": "0"}).sandbox_enabled
