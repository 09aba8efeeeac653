"""A shop's webhook subscriptions: list what it has, create what is missing.

The app-wide subscriptions of ``shopify.app.toml`` are the main path; this shop-specific check
runs at install (and may run again later) because a subscription created through the API is
deleted by Shopify after persistent delivery failures (reference/shopify.md §1.3). Subscriptions
declared in the TOML are not listed by ``webhookSubscriptions``, so a shop may end up with both:
each delivery then arrives twice under distinct webhook ids, which the pipeline absorbs (every
step is idempotent on its business key). Compliance topics cannot be created through the API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from integrations.errors import InvalidRequestError
from integrations.shopify.admin import AdminClient, ShopifyUserError
from integrations.shopify.app_config import graphql_topic

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


@dataclass
class SubscriptionReport:
    """What the check found and did, topic by topic (GraphQL enum spelling)."""

    present: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # topic → Shopify's message

    def as_dict(self) -> dict[str, object]:
        return {"present": self.present, "created": self.created, "refused": self.refused}


def existing(client: AdminClient) -> set[tuple[str, str]]:
    """Every (topic, uri) the shop has for this app, all pages."""
    found: set[tuple[str, str]] = set()
    after: str | None = None
    while True:
        page = client.query(SUBSCRIPTIONS, {"after": after})["webhookSubscriptions"]
        found.update((str(n["topic"]), str(n.get("uri") or "")) for n in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def ensure(client: AdminClient, address: str, topics: Iterable[str]) -> SubscriptionReport:
    """Subscribe ``address`` to every topic (``orders/create`` spelling) the shop lacks. Safe to
    repeat. A topic Shopify refuses (e.g. protected customer data not yet approved) is reported,
    not raised, so one refusal does not hide the others."""
    have = existing(client)
    report = SubscriptionReport()
    for topic in topics:
        enum = graphql_topic(topic)
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
    if report.refused:
        log.warning("shop %s refused subscriptions: %s", client.shop, report.refused)
    return report
