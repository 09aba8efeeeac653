"""reconciliation keeps a drift report per shop, and where its provider-side check got to

Revision ID: 0008_reconcile
Revises: 0007_event_dedup

``shop_sync.drift_report``: the last run's report (missing on each side, repaired, still wrong),
shown on the settings page and by ``flask reconcile SHOP``. ``shop_sync.provider_cursor``: the
last order id whose parcels were checked at the provider, so each run checks the next batch.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_reconcile"
down_revision = "0007_event_dedup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("shop_sync", schema=None) as batch_op:
        batch_op.add_column(sa.Column("drift_report", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("provider_cursor", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shop_sync", schema=None) as batch_op:
        batch_op.drop_column("provider_cursor")
        batch_op.drop_column("drift_report")
