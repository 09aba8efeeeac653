"""Engine and session factory, built once per process from the database URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker


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
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=5)


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
