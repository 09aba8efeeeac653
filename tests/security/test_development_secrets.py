"""Attack: forge with the development secrets that used to be public constants.

Before, with ``RELAIS_ENV`` unset, the secrets were fixed strings in the source code
(``relais-development-secret-not-for-production``, ``relais-development-shopify-secret``): anyone
could sign webhooks and settings links for a development Relais reachable on a public interface,
and derive its Fernet key. Now a development process makes up its secret once (a 0600 file under
``var/``) and refuses to listen beyond loopback with it (``tests/test_serve.py`` shows that with a
real ``serve``).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import create_app
from config import DEV_SECRET, load_settings
from integrations.shopify.webhooks import sign
from jobs.runtime import set_runtime
from sandbox.models import SandboxBase
from store.db import transaction
from store.models import Base, Shop, WebhookEvent
from store.shops import upsert_shop
from tests.fakes.shopify_webhooks import body_of, headers_for, paid_order
from web.app_session import signed_link

FORMER_SHOPIFY_SECRET = "relais-development-shopify-secret"
SHOP = "dev-victim.myshopify.com"


@pytest.fixture
def development_app(tmp_path: Path, redis_url: str):  # type: ignore[no-untyped-def]
    """A development Relais as `./dev serve` builds it: no SECRET_KEY, no SHOPIFY_API_SECRET."""
    settings = load_settings(
        {
            "RELAIS_DEV_SECRET_FILE": str(tmp_path / "var" / "development-secret"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'relais.db'}",
            "REDIS_URL": redis_url,
        }
    )
    app = create_app(settings)
    runtime = app.extensions["relais"]
    Base.metadata.create_all(runtime.engine)
    SandboxBase.metadata.create_all(runtime.engine)
    with transaction(runtime.sessions) as session:
        shop_id = upsert_shop(session, runtime.vault, "shopify", SHOP, {"access_token": "shpat_victim"}, "", {}).id
    yield app, shop_id
    runtime.engine.dispose()
    runtime.redis.close()
    set_runtime(None)


def test_a_webhook_signed_with_the_former_public_secret_is_refused_and_stores_nothing(development_app) -> None:  # type: ignore[no-untyped-def]
    app, _ = development_app
    body = body_of(paid_order(4_000_001))
    answer = app.test_client().post(
        "/webhooks/shopify", data=body, headers=headers_for(SHOP, "orders/paid", body, FORMER_SHOPIFY_SECRET)
    )
    assert answer.status_code == 401
    with app.extensions["relais"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    # the process's own made-up secret is what signs (the demo uses it), and it is not guessable
    secret = app.extensions["relais"].settings.shopify_api_secret
    assert secret not in (FORMER_SHOPIFY_SECRET, DEV_SECRET) and len(secret) >= 32
    own = app.test_client().post(
        "/webhooks/shopify", data=body, headers={**headers_for(SHOP, "orders/paid", body, secret)}
    )
    assert own.status_code == 200
    assert sign(secret, body) != sign(FORMER_SHOPIFY_SECRET, body)


def test_a_settings_link_signed_with_the_former_public_secret_opens_nothing(development_app) -> None:  # type: ignore[no-untyped-def]
    app, shop_id = development_app
    settings = app.extensions["relais"].settings
    forged = signed_link(settings.with_(secret_key=DEV_SECRET), shop_id)
    answer = app.test_client().get(forged.removeprefix(settings.public_url))
    assert answer.status_code == 401
    assert SHOP not in answer.get_data(as_text=True)


def test_stored_credentials_cannot_be_opened_with_a_key_derived_from_the_former_public_secret(development_app) -> None:  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet, InvalidToken

    app, shop_id = development_app
    runtime = app.extensions["relais"]
    with runtime.sessions() as session:
        stored = session.get(Shop, shop_id).credentials_enc
    former_key = base64.urlsafe_b64encode(hashlib.sha256(b"relais-fernet:" + DEV_SECRET.encode()).digest())
    with pytest.raises(InvalidToken):
        Fernet(former_key).decrypt(stored)
    assert runtime.vault.open(stored)["access_token"] == "shpat_victim"
