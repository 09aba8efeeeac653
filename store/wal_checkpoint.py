"""SQLite: WAL checkpoints in a background thread of each web process, not in a webhook's commit.

In WAL mode SQLite appends every commit to the ``-wal`` file, and the connection whose commit
takes the file past ``wal_autocheckpoint`` pages (1,000, ~4 MB) copies the pages back into the
database and syncs it before its statement returns. On the receiver that connection is a
webhook's insert: every few hundred deliveries one of them waited for a whole checkpoint (45 ms
p99 at half peak, 1 s stalls, bench/ingest.py). Here a thread of the web process runs a
``PASSIVE`` checkpoint every ``EVERY_SECONDS``, on its own connection and with the GIL released
by the driver, so the log rarely reaches the threshold and the commits only append. Nothing is
traded: every commit is still synced (``synchronous`` stays FULL), a passive checkpoint waits for
no reader or writer, and the commit-time checkpoint stays as the backstop should the thread fall
behind. Started by gunicorn's ``post_worker_init`` (``config/gunicorn.py``); PostgreSQL needs
none.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

EVERY_SECONDS = 0.25


def sqlite_path(database_url: str) -> str | None:
    """The database file of a SQLite URL; None for any other database or an in-memory one."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """One passive checkpoint: (busy, frames in the log, frames copied back to the database)."""
    [(busy, frames, copied)] = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # done: no lock kept
    return int(busy), int(frames), int(copied)


def start(database_url: str, every: float = EVERY_SECONDS) -> threading.Event | None:
    """Checkpoint ``database_url``'s WAL every ``every`` seconds from a daemon thread of this
    process, until the returned event is set; None (and no thread) unless it is a SQLite file."""
    path = sqlite_path(database_url)
    if path is None:
        return None
    stop = threading.Event()
    threading.Thread(target=_run, args=(path, every, stop), name="wal-checkpoint", daemon=True).start()
    return stop


def _run(path: str, every: float, stop: threading.Event) -> None:
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    try:
        while not stop.wait(every):
            try:
                checkpoint(conn)
            except sqlite3.Error as exc:  # locked, or the file went away: the commits' backstop remains
                log.warning("WAL checkpoint skipped: %s", exc)
    finally:
        conn.close()
