"""Shopify fulfilment-service mode: the service Relais created per shop, and the fulfilment
orders assigned to its location

Revision ID: 0009_fulfilment_service
Revises: 0008_reconcile
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_fulfilment_service"
down_revision = "0008_reconcile"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "shopify_fulfilment_services",
        sa.Column("id", Id, primary_key=True),
        sa.Column("shop_id", Id, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("location_id", sa.String(128), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("shop_id", "name", name="uq_shopify_fulfilment_services_shop_name"),
    )
    op.create_index("ix_shopify_fulfilment_services_shop_id", "shopify_fulfilment_services", ["shop_id"])
    op.create_table(
        "shopify_fulfilment_orders",
        sa.Column("id", Id, primary_key=True),
        sa.Column("shop_id", Id, sa.ForeignKey("shops.id", ondelete="CASCADE"), nullable=False),
        sa.Column("order_id", Id, sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=True),
        sa.Column("fulfilment_order_id", sa.String(128), nullable=False),
        sa.Column("platform_order_id", sa.String(64), nullable=False),
        sa.Column("location_id", sa.String(128), nullable=False),
        sa.Column("shopify_status", sa.String(32), nullable=False),
        sa.Column("request_status", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("shop_id", "fulfilment_order_id", name="uq_shopify_fulfilment_orders_shop_fo"),
    )
    op.create_index("ix_shopify_fulfilment_orders_shop_id", "shopify_fulfilment_orders", ["shop_id"])
    op.create_index("ix_shopify_fulfilment_orders_order_id", "shopify_fulfilment_orders", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_shopify_fulfilment_orders_order_id", "shopify_fulfilment_orders")
    op.drop_index("ix_shopify_fulfilment_orders_shop_id", "shopify_fulfilment_orders")
    op.drop_table("shopify_fulfilment_orders")
    op.drop_index("ix_shopify_fulfilment_services_shop_id", "shopify_fulfilment_services")
    op.drop_table("shopify_fulfilment_services")
