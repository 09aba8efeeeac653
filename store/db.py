"""Engine and session factory, built once per process from the database URL."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session, sessionmaker

#: False while a caller that retries a dead connection itself checks one out (``unpinged``).
_ping_on_checkout: contextvars.ContextVar[bool] = contextvars.ContextVar("ping_on_checkout", default=True)


def make_engine(url: str, threads: int = 5) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so web and worker share the file.

    ``threads``: how many threads of this process may hold a connection at once (a threaded
    worker's jobs in flight), so that none waits for the pool; connections open lazily."""
    pool_size = max(5, threads)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, pool_size=pool_size, max_overflow=10)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=5)
    _ping_pooled_connections(engine)
    return engine


def _ping_pooled_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling, as ``pool_pre_ping=True`` does it, except inside
    ``unpinged``: a connection taken back from the pool is pinged first (a dead one, after a
    database restart or failover, is replaced before anyone uses it). A new connection is not.

    Done in the pool's ``checkout`` event rather than by ``pool_pre_ping`` so that a caller can
    do without the ping: it is a round trip per checkout, as long as the webhook insert itself
    on a busy receiver (bench/ingest.py), and that insert is safe to run again on a fresh
    connection (``store.inbox.store``). Raising ``DisconnectionError`` here makes the pool throw
    the connection away and check out a fresh one (SQLAlchemy's documented checkout-event hook)."""
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["relais_fresh"] = True

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        if record.info.pop("relais_fresh", False) or not _ping_on_checkout.get():
            return
        try:
            alive = dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as error:
            if not dialect.is_disconnect(error, dbapi_conn, None):
                raise
            alive = False
        if not alive:
            # As pool_pre_ping: a dead one means the server went away, so every connection pooled
            # before now is replaced, and this checkout gets a fresh one.
            raise exc.InvalidatePoolError("pooled connection is dead (ping on checkout)")


@contextmanager
def unpinged() -> Iterator[None]:
    """Connections checked out inside are not pinged first (``_ping_pooled_connections``). Only
    for a caller that, when its first statement fails with ``connection_invalidated``, runs it
    again on a fresh connection, and whose statement is harmless to run twice."""
    token = _ping_on_checkout.set(False)
    try:
        yield
    finally:
        _ping_on_checkout.reset(token)


def lock_for_write(session: Session) -> None:
    """Before a read that must not be stale when written back (``SELECT … FOR UPDATE``): on
    SQLite, take the database's write lock now. SQLite ignores ``FOR UPDATE``, and its driver
    begins a transaction only at the first write, so two threads (or processes) could both read
    a row, then both write what each read: a lost update, e.g. an order moved ``ready →
    pushing`` twice. A write that changes nothing begins the transaction and takes the lock;
    the other writer waits (busy timeout) and then reads what the first committed. On
    PostgreSQL the row lock of ``FOR UPDATE`` does this, row by row: nothing to do."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE orders SET id = id WHERE 0"))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
