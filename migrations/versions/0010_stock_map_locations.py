"""the SKU map keeps an entry per item and shop location, so a stock mapping onto several
locations does not re-read the whole catalogue for each one at every sync

Revision ID: 0010_stock_map_locations
Revises: 0009_fulfilment_service

``stock_sku_map`` was unique on (shop, item) with the one location its ``stocked`` flag was read
at; it becomes unique on (shop, item, location): one row per location the map was read at.
Downgrade keeps the newest row of each (shop, item), as the old map held.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_stock_map_locations"
down_revision = "0009_fulfilment_service"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stock_sku_map", schema=None) as batch_op:
        batch_op.drop_constraint("uq_stock_sku_map_shop_item", type_="unique")
        batch_op.create_unique_constraint("uq_stock_sku_map_shop_item_location", ["shop_id", "item_id", "location_id"])


def downgrade() -> None:
    sku_map = sa.table("stock_sku_map", sa.column("id"), sa.column("shop_id"), sa.column("item_id"))
    newer = sa.alias(sku_map, "newer")
    op.execute(
        sku_map.delete().where(
            sa.exists().where(
                newer.c.shop_id == sku_map.c.shop_id, newer.c.item_id == sku_map.c.item_id, newer.c.id > sku_map.c.id
            )
        )
    )
    with op.batch_alter_table("stock_sku_map", schema=None) as batch_op:
        batch_op.drop_constraint("uq_stock_sku_map_shop_item_location", type_="unique")
        batch_op.create_unique_constraint("uq_stock_sku_map_shop_item", ["shop_id", "item_id"])
