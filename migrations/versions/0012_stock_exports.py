"""stock exports: the platform-side export (Shopify bulk operation) a SKU map is being read from

Revision ID: 0012_stock_exports
Revises: 0011_order_edits

``stock_exports`` holds each bulk operation Relais started for a shop's SKU map, stored the
moment it starts so that a restarted worker resumes it instead of starting a second one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_stock_exports"
down_revision = "0011_order_edits"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stock_exports",
        sa.Column("id", ID, nullable=False),
        sa.Column("shop_id", ID, nullable=False),
        sa.Column("location_id", sa.String(length=128), nullable=False),
        sa.Column("export_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("items", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stock_exports", schema=None) as batch_op:
        batch_op.create_index("ix_stock_exports_shop_started", ["shop_id", "started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stock_exports", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_exports_shop_started")
    op.drop_table("stock_exports")
