"""one inbox row per Shopify event, whichever subscription delivered it

Revision ID: 0007_event_dedup
Revises: 0006_webhook_token

Shopify sends an event once per matching subscription (an app-wide one from shopify.app.toml and
a shop-level one created at install, until now), each copy with its own X-Shopify-Webhook-Id but
the same X-Shopify-Event-Id. ``event_key`` ("<topic>:<event id>") is unique per source and shop;
rows without the header (older rows, other sources) keep it NULL and never collide.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_event_dedup"
down_revision = "0006_webhook_token"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_key", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint("uq_webhook_events_event", ["source", "shop_id", "event_key"])


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_webhook_events_event", type_="unique")
        batch_op.drop_column("event_key")
