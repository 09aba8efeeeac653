"""The Alembic history builds exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from cli.serve import upgrade_database
from store.db import make_engine
from store.models import Base


def test_migrations_build_the_models_schema_with_nothing_left_over(settings) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(settings.database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade_database(settings.database_url)
    upgrade_database(settings.database_url)  # a second release step changes nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"render_as_batch": True}), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == []
    assert {"shops", "webhook_events", "orders", "order_lines", "order_transitions", "shipments"} <= tables
    assert not {t for t in tables if t.startswith("sandbox_")}  # the development sandbox keeps its own
