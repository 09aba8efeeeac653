"""The stock sync's writes, on their own thread while the next batches are read and planned.

Writes to Shopify are paced by its cost bucket: a large sync spends most of its writing time
waiting for points, while reading the provider, joining with the SKU map and planning are work
for this process. ``Writer`` takes planned changes from the planning thread through a short
queue (so at most a few batches are held), gathers them per shop location into requests of
``CHUNK`` (Shopify's cap on an input array: a 1%-changed sync still sends full requests), and
writes each with compare-and-set as ``jobs.stock`` always has: a SKU refused as stale is read
back and written again with the shop's unexplained sales kept subtracted (``after_refusal``), up
to ``WRITE_ROUNDS`` times. What each request wrote or read back becomes the belief of its SKUs
in the same step, and beliefs of SKUs whose drop orders explained are rolled forward once their
write (if any) is done.

A failure on either side stops both: the planner checks ``error`` before each hand-over, and
``abort`` makes the writer drop what is queued (those SKUs are simply written by the next run).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from integrations.errors import RetryableError
from integrations.platforms import Platform, StockChange
from jobs.runtime import Runtime
from jobs.stock_compute import PlannedChange, after_refusal
from jobs.stock_record import RunRecord
from store import stock as stock_store
from store.db import transaction
from store.models import utcnow

log = logging.getLogger(__name__)

CHUNK = 250  # changes per write request (Shopify's cap on any input array)
DEPTH = 4  # planned batches queued for the writer at most
WRITE_ROUNDS = 3  # a SKU refused as stale this many times in one run waits for the next run
_END = object()


class Writer:
    """One run's writes, in order, on one thread (``start``, ``put``…, ``finish``)."""

    def __init__(
        self, runtime: Runtime, run_id: int, shop_id: int, platform: Platform, record: RunRecord, as_of: datetime
    ) -> None:
        self._runtime, self._run_id, self._shop_id, self._platform = runtime, run_id, shop_id, platform
        self._record = record
        self._as_of = as_of  # when the orders behind rolled beliefs were read
        self._queue: queue.Queue[object] = queue.Queue(maxsize=DEPTH)
        self._thread = threading.Thread(target=self._loop, name=f"stock-write-{run_id}", daemon=True)
        self._pending: dict[str, list[PlannedChange]] = {}
        self._rolls: dict[tuple[str, str], tuple[str, int]] = {}
        self._nonce = secrets.token_hex(4)
        self._requests = 0
        self._stop = threading.Event()
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def put(self, location: str, changes: Sequence[PlannedChange], rolls: Mapping[str, tuple[str, int]]) -> None:
        """Hand over one batch's changes at ``location``, and the beliefs to roll forward there
        (sku → (item id, what the shop shows after the orders received since)). Blocks while
        the writer is ``DEPTH`` batches behind; raises the writer's error if it failed."""
        while True:
            self._raise()
            try:
                self._queue.put((location, list(changes), dict(rolls)), timeout=0.5)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Write what is gathered, wait for the thread, and raise its error if it failed."""
        self._raise()
        self._queue.put(_END)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        """The planning side failed: drop what is queued and stop (never raises)."""
        self._stop.set()
        with contextlib.suppress(queue.Full):  # full: the thread sees the flag at its next item
            self._queue.put(_END, timeout=5)
        self._thread.join(timeout=60)

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        ended = False
        try:
            while True:
                item = self._queue.get()
                ended = item is _END
                if ended or self._stop.is_set():
                    break
                location, changes, rolls = item  # type: ignore[misc]
                self._take(location, changes, rolls)
            if not self._stop.is_set():
                for location in list(self._pending):
                    while self._pending[location]:
                        self._write_chunk(location)
        except Exception as exc:  # noqa: BLE001 - handed to the planning thread, which raises it
            self.error = exc
            while not ended and not self._stop.is_set():  # keep the queue moving so ``put`` never hangs
                try:
                    if self._queue.get(timeout=0.5) is _END:
                        break
                except queue.Empty:
                    continue

    def _take(self, location: str, changes: list[PlannedChange], rolls: dict[str, tuple[str, int]]) -> None:
        changed = {c.sku for c in changes}
        now = {sku: value for sku, value in rolls.items() if sku not in changed}
        if now:  # nothing to write for these: their belief rolls forward at once
            with transaction(self._runtime.sessions) as session:
                stock_store.remember(session, self._shop_id, location, now, self._as_of, written=False)
        for sku, value in rolls.items():
            if sku in changed:
                self._rolls[(location, sku)] = value
        pending = self._pending.setdefault(location, [])
        pending.extend(changes)
        while len(pending) >= CHUNK:
            self._write_chunk(location)

    def _write_chunk(self, location: str) -> None:
        pending = self._pending[location][:CHUNK]
        del self._pending[location][:CHUNK]
        chunk_skus = [c.sku for c in pending]
        touched: set[str] = set()
        skipped: dict[str, str] = {}
        self._requests += 1
        for attempt in range(WRITE_ROUNDS):
            if not pending:
                break
            item_of = {c.sku: c.item_id for c in pending}
            key = f"{self._run_id}-{self._requests}-{attempt}-{self._nonce}"
            try:
                outcome = self._platform.write_stock(
                    location, [StockChange(c.sku, c.quantity, c.expected, c.item_id) for c in pending], key
                )
            except RetryableError:
                # Some requests may have been applied, their answers lost: a guess would be
                # refused as stale and the refusal misread as sales. Read before the next write.
                with transaction(self._runtime.sessions) as session:
                    stock_store.uncertain(session, self._shop_id, location, item_of, utcnow())
                raise
            skipped.update(outcome.skipped)
            touched.update(outcome.written, outcome.stale)
            retry: list[PlannedChange] = []
            read_back: dict[str, tuple[str, int | None]] = {}
            for change in pending:
                if change.sku not in outcome.stale:
                    continue
                current = outcome.stale[change.sku]
                quantity = after_refusal(change.quantity, change.expected, current)
                read_back[change.sku] = (change.item_id, current)
                if quantity != current:
                    retry.append(PlannedChange(location, change.sku, change.item_id, quantity, current))
            with transaction(self._runtime.sessions) as session:
                at = utcnow()
                stock_store.remember(session, self._shop_id, location, read_back, at, written=False)
                written = {sku: (item_of[sku], qty) for sku, qty in outcome.written.items()}
                stock_store.remember(session, self._shop_id, location, written, at, written=True, run_id=self._run_id)
            self._record.wrote(location, outcome.written, outcome.calls)
            pending = retry
        for change in pending:
            skipped[change.sku] = f"not written: the shop's quantity kept changing ({WRITE_ROUNDS} tries)"
        self._record.skip(skipped)
        # Roll beliefs forward where orders explained a drop and nothing was written or read back.
        rolled = {}
        for sku in chunk_skus:
            value = self._rolls.pop((location, sku), None)
            if value is not None and sku not in touched:
                rolled[sku] = value
        if rolled:
            with transaction(self._runtime.sessions) as session:
                stock_store.remember(session, self._shop_id, location, rolled, self._as_of, written=False)


def read_ahead(batches: Iterable[list[Any]], depth: int = 2) -> Iterator[list[Any]]:
    """``batches`` read on a thread of their own, at most ``depth`` ahead of the caller.

    Reading the provider is waiting on its HTTP answers; planning is waiting on the database:
    the two overlap. An error while reading is raised here, where the batch would have come."""
    handed: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand(item: object) -> bool:
        while not stop.is_set():
            try:
                handed.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False  # the caller has gone

    def reader() -> None:
        try:
            for batch in batches:
                if not hand(batch):
                    return
            hand(_END)
        except Exception as exc:  # noqa: BLE001 - raised on the caller's side
            hand(_Failed(exc))

    thread = threading.Thread(target=reader, name="stock-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = handed.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error
