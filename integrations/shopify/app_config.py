"""The app's own declaration, ``shopify.app.toml`` at the repository root: one source for the
scopes asked at install and the webhook topics every shop must be subscribed to.

Shopify CLI deploys the same file, so what Relais asks for and what Shopify registered cannot drift.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

APP_TOML = Path(__file__).resolve().parents[2] / "shopify.app.toml"


@dataclass(frozen=True)
class AppConfig:
    scopes: tuple[str, ...]
    topics: tuple[str, ...]  # ordinary topics, e.g. "orders/create"
    compliance_topics: tuple[str, ...]  # declared in the TOML only; no API creates them
    api_version: str


@functools.cache
def app_config(path: Path = APP_TOML) -> AppConfig:
    data = tomllib.loads(path.read_text())
    scopes = tuple(s.strip() for s in str(data.get("access_scopes", {}).get("scopes", "")).split(",") if s.strip())
    topics: list[str] = []
    compliance: list[str] = []
    for sub in data.get("webhooks", {}).get("subscriptions", []):
        topics.extend(t for t in sub.get("topics", []) if t not in topics)
        compliance.extend(t for t in sub.get("compliance_topics", []) if t not in compliance)
    return AppConfig(
        scopes=scopes,
        topics=tuple(topics),
        compliance_topics=tuple(compliance),
        api_version=str(data.get("webhooks", {}).get("api_version", "")),
    )


def graphql_topic(topic: str) -> str:
    """``orders/create`` → ``ORDERS_CREATE`` (the ``WebhookSubscriptionTopic`` enum spelling)."""
    return topic.replace("/", "_").upper()
