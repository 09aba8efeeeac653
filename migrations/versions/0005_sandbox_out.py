"""the development sandbox keeps its own tables: drop them from the product's schema

Revision ID: 0005_sandbox_out
Revises: 0004_app

The sandbox (``sandbox/``) now creates its tables itself, in development only. A production
database got them empty from 0001; they are dropped here. A development database whose sandbox
holds orders or stock keeps them (the sandbox goes on using them), so no demo data is lost.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_sandbox_out"
down_revision = "0004_app"
branch_labels = None
depends_on = None

# children first
TABLES = ("sandbox_shipments", "sandbox_lines", "sandbox_stock", "sandbox_orders")


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    tables = [t for t in TABLES if t in present]
    if any(bind.execute(sa.text(f"SELECT 1 FROM {t} LIMIT 1")).first() for t in tables):  # noqa: S608 - fixed names
        return
    for table in tables:
        op.drop_table(table)


def downgrade() -> None:
    # The sandbox recreates its tables when it is enabled (``sandbox.enable``); nothing to restore.
    pass
