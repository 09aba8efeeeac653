"""stock sync: SKU map, beliefs, sync runs

Revision ID: 0002_stock
Revises: 0001
Create Date: 2026-11-25 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_stock"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stock_sku_map",
        sa.Column("id", ID, nullable=False),
        sa.Column("shop_id", ID, nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("managed", sa.Boolean(), nullable=False),
        sa.Column("location_id", sa.String(length=128), nullable=False),
        sa.Column("stocked", sa.Boolean(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "item_id", name="uq_stock_sku_map_shop_item"),
    )
    with op.batch_alter_table("stock_sku_map", schema=None) as batch_op:
        batch_op.create_index("ix_stock_sku_map_shop_sku", ["shop_id", "sku"], unique=False)

    op.create_table(
        "stock_beliefs",
        sa.Column("id", ID, nullable=False),
        sa.Column("shop_id", ID, nullable=False),
        sa.Column("location_id", sa.String(length=128), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "location_id", "sku", name="uq_stock_beliefs_shop_location_sku"),
    )

    op.create_table(
        "stock_sync_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("shop_id", ID, nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("map_refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("read", sa.JSON(), nullable=True),
        sa.Column("written", sa.JSON(), nullable=True),
        sa.Column("skipped", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stock_sync_runs", schema=None) as batch_op:
        batch_op.create_index("ix_stock_sync_runs_shop_started", ["shop_id", "started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stock_sync_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_sync_runs_shop_started")
    op.drop_table("stock_sync_runs")
    op.drop_table("stock_beliefs")
    with op.batch_alter_table("stock_sku_map", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_sku_map_shop_sku")
    op.drop_table("stock_sku_map")
