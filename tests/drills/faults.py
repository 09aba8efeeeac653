"""The faults the drill injects that are not process kills: a provider that fails for a stretch of
time, and a database that refuses work for a few seconds.

The ShipBob fake queues failures by count; a drill needs them by time ("500 for 6 s"), so
``DrillShipBob`` adds outages that answer every API call in the window with 500, 429 (with
``x-retry-after``) or a late answer (the work is done, the answer comes after the client's
timeout: the outcome is unknown to Relais, the classic double-create trap).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.fakes.shipbob import FakeShipBob, Rule


@dataclass
class Outage:
    kind: str  # "500" | "429" | "timeout"
    until: float  # time.monotonic()


class DrillShipBob(FakeShipBob):
    """The ShipBob fake with time-boxed outages; ``outage_seconds`` sums them for the tally."""

    def __init__(self, *, late_by: float, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.late_by = late_by  # longer than Relais' provider timeout
        self.outage_seconds = 0.0
        self._outage: Outage | None = None

    def outage(self, kind: str, seconds: float) -> None:
        self._outage = Outage(kind, time.monotonic() + seconds)
        self.outage_seconds += seconds

    def _take_rule(self, method: str, path: str) -> Rule | None:
        outage = self._outage
        if outage is None or time.monotonic() >= outage.until:
            return super()._take_rule(method, path)
        with self._lock:
            self.counters[f"drill {outage.kind}"] += 1
        if outage.kind == "500":
            return Rule(1, 500, body={"message": "An error has occurred."})
        if outage.kind == "429":
            body = {"statusCode": 429, "message": "Rate limit is exceeded. Try again in 2 seconds."}
            return Rule(1, 429, body=body, headers={"x-retry-after": "2", "x-remaining-calls": "0"})
        return Rule(1, 0, delay=self.late_by)  # "timeout": done, answered too late

    def references(self) -> dict[str, dict[str, object]]:
        """Reference → (copy of) the order holding it. ShipBob keeps one order per reference
        and answers a second create with 422, so a duplicate shows as a 422, not a second row."""
        with self.state._lock:
            return {ref: dict(self.state.orders[oid]) for ref, oid in self.state.by_reference.items()}


class DatabaseOutage:
    """Make the database refuse work for ``seconds``, in a background thread.

    PostgreSQL: ``ALLOW_CONNECTIONS false`` (which binds superusers too, unlike ``CONNECTION
    LIMIT``) and every session of the database terminated: each query fails at once, each new
    connection is refused. SQLite has no server to refuse; the drill holds an exclusive write lock
    on the file, so writers wait on their busy timeout (Relais sets 30 s) and the senders' own
    5 s timeout expires first, as Shopify's does.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.total_seconds = 0.0
        self.thread: threading.Thread | None = None

    @property
    def kind(self) -> str:
        return "postgresql" if self.url.startswith("postgres") else "sqlite"

    def start(self, seconds: float) -> None:
        self.total_seconds += seconds
        target = self._postgres if self.kind == "postgresql" else self._sqlite
        self.thread = threading.Thread(target=target, args=(seconds,), name="db-outage", daemon=True)
        self.thread.start()

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=120)

    def _sqlite(self, seconds: float) -> None:
        path = self.url.split("///", 1)[1]
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            time.sleep(seconds)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def _postgres(self, seconds: float) -> None:
        import psycopg
        from psycopg import sql

        parts = urlsplit(self.url.replace("+psycopg", ""))
        name = parts.path.lstrip("/")
        admin = parts._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
            try:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                time.sleep(seconds)
            finally:
                conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
