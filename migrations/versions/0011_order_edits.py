"""what the provider holds of each order, and the edits applied to it after the push

Revision ID: 0011_order_edits
Revises: 0010_stock_map_locations

``order_sent_snapshots``: the address and lines last sent to (and accepted by) the provider, one
row per order, so an edit on the shop is diffed against what the provider has rather than against
the order row (which always holds the shop's latest view). ``order_edits``: each edit after push
and the step it reached (update, cancel of the old provider order, re-create under a new
reference), so an interrupted edit resumes where it stopped. Orders pushed before this revision
get their snapshot from their row the first time a change arrives (``jobs.edits.remember_sent``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_order_edits"
down_revision = "0010_stock_map_locations"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "order_sent_snapshots",
        sa.Column("order_id", _ID, sa.ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("reference", sa.String(length=128), nullable=False),
        sa.Column("ship_to", sa.JSON(), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "order_edits",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("order_id", _ID, sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("changes", sa.Text(), nullable=False),
        sa.Column("old_reference", sa.String(length=128), nullable=False),
        sa.Column("old_provider_order_id", sa.String(length=64), nullable=False),
        sa.Column("new_reference", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_order_edits_order_status", "order_edits", ["order_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_order_edits_order_status", table_name="order_edits")
    op.drop_table("order_edits")
    op.drop_table("order_sent_snapshots")
