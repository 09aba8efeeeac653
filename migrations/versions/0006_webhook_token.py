"""a per-shop webhook token: provider deliveries naming no reference of ours are routed by it

Revision ID: 0006_webhook_token
Revises: 0005_sandbox_out

Before this, such a delivery was tried against every active shop of its provider (each shop's
secret decrypted): linear in shops and open to anyone. Now ``/webhooks/fulfilment/<provider>/<token>``
names the shop with an unguessable value, found by one unique-index lookup. Existing shops get
a fresh token here; new ones get theirs from the model's default.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006_webhook_token"
down_revision = "0005_sandbox_out"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_token", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    shops = sa.table("shops", sa.column("id", sa.BigInteger()), sa.column("webhook_token", sa.String(length=64)))
    for (shop_id,) in bind.execute(sa.select(shops.c.id).where(shops.c.webhook_token.is_(None))).all():
        bind.execute(shops.update().where(shops.c.id == shop_id).values(webhook_token=secrets.token_urlsafe(24)))
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.alter_column("webhook_token", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(batch_op.f("ix_shops_webhook_token"), ["webhook_token"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shops_webhook_token"))
        batch_op.drop_column("webhook_token")
