"""A shop's webhook subscriptions: list what it has, create what is missing, remove duplicates.

The app-wide subscriptions of ``shopify.app.toml`` are the main path. Shopify sends an event once
per matching subscription, so a shop-level subscription to a topic the TOML already declares
doubles every delivery (distinct webhook ids, one X-Shopify-Event-Id). When the TOML is this
app's (its ``client_id`` is ``SHOPIFY_API_KEY``, so ``shopify app deploy`` registered its
topics), the check creates shop-level subscriptions only for topics it does not declare, and
deletes the shop-level ones an earlier install created for declared topics. When it is not
(the repository's template, an app managed elsewhere), every topic is subscribed per shop as
before. Subscriptions declared in the TOML are not listed by ``webhookSubscriptions``, so the
ones listed (and deleted) are only shop-level ones. Compliance topics exist only in the TOML.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from integrations.errors import InvalidRequestError
from integrations.shopify.admin import AdminClient, ShopifyUserError
from integrations.shopify.app_config import APP_TOML, app_config, graphql_topic

log = logging.getLogger(__name__)

SUBSCRIPTIONS = """
query WebhookSubscriptions($after: String) {
  webhookSubscriptions(first: 100, after: $after) {
    nodes { id topic uri }
    pageInfo { hasNextPage endCursor }
  }
}
"""

SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""


SUBSCRIPTION_DELETE = """
mutation WebhookSubscriptionDelete($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}
"""


@dataclass
class SubscriptionReport:
    """What the check found and did, topic by topic (GraphQL enum spelling)."""

    present: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # topic → Shopify's message
    app_wide: list[str] = field(default_factory=list)  # declared in the TOML: no shop-level copy
    removed: list[str] = field(default_factory=list)  # shop-level duplicates of app-wide topics deleted

    def as_dict(self) -> dict[str, object]:
        return {
            "present": self.present,
            "created": self.created,
            "refused": self.refused,
            "app_wide": self.app_wide,
            "removed": self.removed,
        }


def app_wide_topics(api_key: str, path: Path = APP_TOML) -> frozenset[str]:
    """The topics ``shopify.app.toml`` subscribes app-wide, when that file is this app's (its
    ``client_id`` is ``api_key``); none when it is not, so every shop then gets its own."""
    if not api_key:
        return frozenset()
    data = tomllib.loads(path.read_text())
    if str(data.get("client_id", "")) != api_key:
        return frozenset()
    return frozenset(app_config(path).topics)


def listed(client: AdminClient) -> list[dict[str, str]]:
    """Every shop-level subscription of this app (id, topic, uri), all pages."""
    found: list[dict[str, str]] = []
    after: str | None = None
    while True:
        page = client.query(SUBSCRIPTIONS, {"after": after})["webhookSubscriptions"]
        found.extend(
            {"id": str(n["id"]), "topic": str(n["topic"]), "uri": str(n.get("uri") or "")} for n in page["nodes"]
        )
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def existing(client: AdminClient) -> set[tuple[str, str]]:
    """Every (topic, uri) the shop has for this app, all pages."""
    return {(n["topic"], n["uri"]) for n in listed(client)}


def ensure(
    client: AdminClient, address: str, topics: Iterable[str], app_wide: Iterable[str] = ()
) -> SubscriptionReport:
    """Subscribe ``address`` to every topic (``orders/create`` spelling) the shop lacks, except the
    ``app_wide`` ones (declared in the deployed TOML), whose shop-level copies at ``address`` are
    deleted instead. Safe to repeat. A topic Shopify refuses (e.g. protected customer data not
    yet approved) is reported, not raised, so one refusal does not hide the others."""
    subscribed = listed(client)
    have = {(n["topic"], n["uri"]) for n in subscribed}
    declared = {graphql_topic(t) for t in app_wide}
    report = SubscriptionReport()
    for topic in topics:
        enum = graphql_topic(topic)
        if enum in declared:
            report.app_wide.append(enum)
            continue
        if (enum, address) in have:
            report.present.append(enum)
            continue
        try:
            client.mutate(
                SUBSCRIPTION_CREATE,
                {"topic": enum, "webhookSubscription": {"uri": address, "format": "JSON"}},
                "webhookSubscriptionCreate",
            )
        except ShopifyUserError as exc:
            report.refused[enum] = "; ".join(e["message"] for e in exc.user_errors)
            continue
        except InvalidRequestError as exc:  # e.g. a topic this API version does not know
            report.refused[enum] = str(exc)
            continue
        report.created.append(enum)
    for sub in subscribed:
        if sub["topic"] in declared and sub["uri"] == address:
            try:
                client.mutate(SUBSCRIPTION_DELETE, {"id": sub["id"]}, "webhookSubscriptionDelete")
            except (ShopifyUserError, InvalidRequestError) as exc:
                report.refused[sub["topic"]] = f"duplicate not removed: {exc}"
                continue
            report.removed.append(sub["topic"])
    if report.removed:
        log.info("shop %s: removed shop-level duplicates of app-wide topics %s", client.shop, report.removed)
    if report.refused:
        log.warning("shop %s refused subscriptions: %s", client.shop, report.refused)
    return report
