"""Finishing a shop's connection and keeping its webhooks alive, for any platform.

After a store hands us keys (WooCommerce's authorize callback, or the manual form), the answer
to the store must be immediate, so the live check of the keys and the creation of our webhooks
happen here, in a job. The scheduled check then lists the shop's webhooks, re-activates the ones
the platform disabled after failed deliveries and recreates missing ones, and tells the merchant
(reconciliation recovers what was lost while they were off). A platform without this upkeep
(``NotImplementedError``) is skipped.

What the merchant is told is stored and shown on the connect pages and the settings page: the
plain reasons of ``integrations.outbound`` and the platform's short error messages, never an
exception's text, an answer's body or a URL (``merchant_text`` cuts those out of anything else).
"""

from __future__ import annotations

import logging

from rq import Retry

from integrations.errors import AuthError, InvalidRequestError, RetryableError
from integrations.outbound import StoreUnreachable, merchant_text
from jobs.parties import platform_for
from jobs.queues import enqueue_once, for_each_active_shop, next_retry
from jobs.runtime import Runtime, get_runtime
from store.db import transaction
from store.models import Shop, utcnow
from store.sync_models import sync_row, tell_merchant

log = logging.getLogger(__name__)

WEBHOOK_CHECK_INTERVAL = 900  # seconds; WooCommerce disables a webhook after 7 failed deliveries in a row


def enqueue_setup(runtime: Runtime, shop_id: int, attempt: str) -> bool:
    job_id = f"setup-{shop_id}-{attempt}"
    return enqueue_once(runtime, "maintenance", "jobs.shop_setup.finish_setup", shop_id, job_id=job_id)


def finish_setup(shop_id: int) -> Retry | str:
    """Check the new keys with a live call, open the shop for orders, then subscribe our webhooks.

    The shop is opened before the webhooks exist, so that the first delivery never finds it still
    ``connecting``; if subscribing fails, the scheduled check creates them and reconciliation
    (whose cursor starts here) brings in what was placed meanwhile. Runs again harmlessly.
    """
    runtime = get_runtime()
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status not in ("connecting", "active"):
            return "gone"
        held = dict(runtime.vault.open(shop.credentials_enc) or {})
        pending = held.pop("pending", None)
        trying = {**held, **pending} if pending else held
        platform = platform_for(runtime, shop, trying)
    try:
        checked = platform.verify_access()
    except RetryableError as exc:
        return _retry_or(runtime, shop_id, exc, "the store did not answer")
    except StoreUnreachable as exc:
        if pending:
            _drop_pending(runtime, shop_id)
        return _refused(runtime, shop_id, f"Relais did not contact the store: {exc.reason}")
    except (AuthError, InvalidRequestError) as exc:
        if pending:
            _drop_pending(runtime, shop_id)
            return _refused(
                runtime, shop_id, f"new keys refused by the store, the working ones are kept: {merchant_text(exc)}"
            )
        return _refused(runtime, shop_id, f"the store refused our keys: {merchant_text(exc)}")
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id, with_for_update=True)
        if pending:  # the new keys work: they replace the old ones
            shop.credentials_enc = runtime.vault.seal(trying)
        shop.status = "active"
        row = sync_row(session, shop_id)
        row.orders_cursor = row.orders_cursor or utcnow()  # reconciliation starts at the connection
        tell_merchant(session, shop_id, f"connected: {checked}; creating webhooks")
    try:
        report = platform.ensure_webhooks(rotate_secret=True)
    except RetryableError as exc:
        return _retry_or(runtime, shop_id, exc, "webhooks not created yet")
    except (AuthError, InvalidRequestError) as exc:
        return _refused(runtime, shop_id, f"connected, but our webhooks were refused: {merchant_text(exc)}")
    with transaction(runtime.sessions) as session:
        sync_row(session, shop_id).webhooks_checked_at = utcnow()
        created = ", ".join(report.created) or "none needed"
        tell_merchant(session, shop_id, f"connected: {checked}; webhooks created: {created}")
    log.info("shop %s connected (%s)", shop_id, checked)
    return "connected"


def _drop_pending(runtime: Runtime, shop_id: int) -> None:
    with transaction(runtime.sessions) as session:
        shop = session.get(Shop, shop_id, with_for_update=True)
        held = dict(runtime.vault.open(shop.credentials_enc) or {})
        held.pop("pending", None)
        shop.credentials_enc = runtime.vault.seal(held)


def _retry_or(runtime: Runtime, shop_id: int, exc: RetryableError, what: str) -> Retry | str:
    retry = next_retry(runtime, exc.retry_after)
    return retry if retry is not None else _refused(runtime, shop_id, f"{what}: {merchant_text(exc)}")


def _refused(runtime: Runtime, shop_id: int, text: str) -> str:
    with transaction(runtime.sessions) as session:
        tell_merchant(session, shop_id, text)
    log.warning("shop %s: %s", shop_id, text)
    return "refused"


def check_all_webhooks() -> int:
    """Cron: one webhook check per active shop (deterministic job ids: a slow one is not doubled)."""
    return for_each_active_shop(get_runtime(), "maintenance", "jobs.shop_setup.check_webhooks", "webhooks")


def check_webhooks(shop_id: int) -> str:
    """Repair one shop's webhooks and tell the merchant what was wrong."""
    runtime = get_runtime()
    with runtime.sessions() as session:
        shop = session.get(Shop, shop_id)
        if shop is None or shop.status != "active":
            return "shop inactive"
        platform = platform_for(runtime, shop)
    try:
        report = platform.ensure_webhooks()
    except NotImplementedError:
        return "not supported"
    except (RetryableError, AuthError, InvalidRequestError) as exc:
        report = None
        problem = f"webhooks could not be checked: {merchant_text(exc)}"
    with transaction(runtime.sessions) as session:
        sync_row(session, shop_id).webhooks_checked_at = utcnow()
        if report is None:
            tell_merchant(session, shop_id, problem)
            log.warning("shop %s: %s", shop_id, problem)
            return "failed"
        problems = [*report.problems, *(f"webhook {t} was missing and is created again" for t in report.created)]
        if problems:
            tell_merchant(session, shop_id, "; ".join(problems))
            log.warning("shop %s webhooks: %s", shop_id, "; ".join(problems))
    return f"created {len(report.created)}, reactivated {len(report.reactivated)}"
