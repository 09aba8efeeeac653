"""Alembic environment: the URL comes from Relais' settings; the metadata from ``store.models``."""

from __future__ import annotations

from alembic import context
from alembic.util import CommandError
from sqlalchemy import create_engine, pool

from config import load_settings
from integrations.errors import ConfigError
from store.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    if config.attributes.get("database_url"):
        return config.attributes["database_url"]
    try:
        return load_settings().database_url
    except ConfigError as exc:
        # alembic's own command line prints a CommandError as one "FAILED:" line, no traceback.
        raise CommandError(str(exc)) from None


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # batch mode lets ALTER-style migrations run on SQLite too
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
