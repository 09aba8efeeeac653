"""SQLite's WAL checkpointed by a background thread (``store.wal_checkpoint``), so that a webhook's
commit only appends: the log is copied back into the database file without any writer doing it,
while readers and writers go on; other databases get no thread."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from store import wal_checkpoint


def a_wal_database(path: Path) -> sqlite3.Connection:
    """A writer as the receiver's would be, minus its own checkpoints (so only the thread's count)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE deliveries (id INTEGER PRIMARY KEY, body BLOB)")
    return conn


ROWS = 300
BODY = b"x" * 8192


def deliveries(writer: sqlite3.Connection, reader: sqlite3.Connection) -> None:
    for n in range(ROWS):
        writer.execute("INSERT INTO deliveries (body) VALUES (?)", (BODY,))
        if n == ROWS // 2:
            assert reader.execute("SELECT count(*) FROM deliveries").fetchall() == [(n + 1,)]  # a reader meanwhile
        time.sleep(0.001)


def copied_back(path: Path) -> bool:
    """Whether the database file itself holds the deliveries (a checkpoint copied them from the log)."""
    return path.stat().st_size > ROWS * len(BODY)


def test_the_thread_copies_the_log_back_while_a_writer_keeps_committing(tmp_path: Path) -> None:
    path = tmp_path / "relais.db"
    writer, reader = a_wal_database(path), sqlite3.connect(path)
    stop = wal_checkpoint.start(f"sqlite:///{path}", every=0.01)
    assert stop is not None
    try:
        deliveries(writer, reader)
        deadline = time.monotonic() + 5
        while not copied_back(path) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
    assert copied_back(path)  # with no checkpoint by the writer, nor by anyone here
    writer.close()
    assert reader.execute("SELECT count(*) FROM deliveries").fetchall() == [(ROWS,)]
    reader.close()


def test_without_the_thread_the_log_holds_every_commit_until_someone_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "relais.db"
    writer, reader = a_wal_database(path), sqlite3.connect(path)
    deliveries(writer, reader)
    time.sleep(0.1)
    assert not copied_back(path)
    busy, frames, copied = wal_checkpoint.checkpoint(writer)
    assert busy == 0 and frames > 0 and copied == frames
    assert copied_back(path)
    writer.close()
    reader.close()


def test_other_databases_get_no_thread() -> None:
    assert wal_checkpoint.start("postgresql+psycopg://postgres@127.0.0.1:5432/relais") is None
    assert wal_checkpoint.start("sqlite://") is None  # in memory: no file, no log
    assert wal_checkpoint.sqlite_path("sqlite:////var/data/relais.db") == "/var/data/relais.db"
