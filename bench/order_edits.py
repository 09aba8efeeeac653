"""Order edits after push, measured: what comparing every later delivery with what the provider
holds costs.

Two figures. The pure diff and plan (``jobs.order_diff``) per order of 5 and of 100 lines. Then the
order pipeline's ``apply_order_event`` on a real database (SQLite file, or ``BENCH_DATABASE_URL``)
for N pushed orders, each receiving an ``orders/updated`` that changes nothing (the common case:
Shopify repeats it), against N orders still waiting for payment receiving the same (no snapshot to
compare with). The ratio is the cost of edit detection on a repeated delivery (goal: below 1.5).
No Redis: the decision's follow-ups are returned, not enqueued.

    .venv/bin/python -m bench.order_edits [--orders 1000] [--calls 20000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from config import normalise_database_url  # noqa: E402
from integrations import fulfilment  # noqa: E402
from integrations.model import Address, Line, Order  # noqa: E402
from integrations.platforms import OrderEvent  # noqa: E402
from jobs import edits, order_diff, states  # noqa: E402
from jobs.orders import apply_order_event  # noqa: E402
from store import orders as order_store  # noqa: E402
from store.crypto import Vault  # noqa: E402
from store.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from store.models import Base, Shop  # noqa: E402
from store.models import Order as OrderRow  # noqa: E402
from store.shops import upsert_shop  # noqa: E402

HOME = Address(name="Ada Lovelace", address1="5 rue de la Paix", city="Paris", country_code="FR", zip="75002")
AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def order(order_id: int, lines: int, paid: bool = True, minutes: int = 0) -> Order:
    return Order(
        platform_order_id=str(order_id),
        name=f"#{order_id}",
        paid=paid,
        cancelled=False,
        updated_at=AT + timedelta(minutes=minutes),
        lines=tuple(Line(str(order_id * 1000 + n), f"SKU-{n}", 1 + n % 3, True, f"Item {n}") for n in range(lines)),
        ship_to=HOME,
        shipping_method="Standard",
    )


def pure(calls: int, lines: int) -> float:
    """Microseconds per diff + plan of an order with one address change."""
    sent = order_diff.sent_from(order(1, lines), "1-1")
    now = dataclasses.replace(order(1, lines), ship_to=dataclasses.replace(HOME, city="Lyon"))
    start = time.perf_counter()
    for _ in range(calls):
        changes = order_diff.diff(sent, now)
        order_diff.plan(changes, now, states.PUSHED, "shipbob", frozenset({"address"}))
    return (time.perf_counter() - start) / calls * 1e6


def pipeline(count: int) -> tuple[float, float]:
    """Milliseconds per repeated ``orders/updated``: on pushed orders, on orders waiting for payment."""
    url = normalise_database_url(os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    sessions = make_sessionmaker(engine)
    vault = Vault(Fernet.generate_key())
    fulfilment.register("sandbox", "sandbox.provider:SandboxProvider")  # the shop's provider, never called
    with transaction(sessions) as session:
        shop_id = upsert_shop(session, vault, "shopify", "bench.myshopify.com", {"access_token": "x"}, "sandbox", {}).id
    pushed, waiting = range(1, count + 1), range(count + 1, 2 * count + 1)
    with transaction(sessions) as session:
        shop = session.get(Shop, shop_id)
        for n in pushed:
            apply_order_event(session, shop, OrderEvent(str(n), order(n, 5)), None)
        for n in waiting:
            apply_order_event(session, shop, OrderEvent(str(n), order(n, 5, paid=False)), None)
        for row in session.query(OrderRow).filter(OrderRow.paid.is_(True)):
            row.state, row.provider_order_id = states.PUSHED, f"p{row.id}"
            row.provider_reference = f"{shop_id}-{row.id}"
            sent = order_diff.sent_from(order_store.to_model(row), row.provider_reference)
            edits.record_sent(session, row, sent)  # as the push records it
    spent = {True: 0.0, False: 0.0}
    for pair in zip(pushed, waiting, strict=True):  # interleaved: both see the same machine load
        for n, paid in zip(pair, (True, False), strict=True):
            start = time.perf_counter()
            with transaction(sessions) as session:
                shop = session.get(Shop, shop_id)
                apply_order_event(session, shop, OrderEvent(str(n), order(n, 5, paid=paid, minutes=1)), None)
            spent[paid] += time.perf_counter() - start
    figures = [spent[True] / count * 1e3, spent[False] / count * 1e3]
    engine.dispose()
    return figures[0], figures[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    print(f"diff + plan, 5 lines:   {pure(args.calls, 5):8.1f} µs per order")
    print(f"diff + plan, 100 lines: {pure(args.calls // 10, 100):8.1f} µs per order")
    at_provider, before = pipeline(args.orders)
    print(f"repeated orders/updated, pushed order (snapshot compared): {at_provider:6.2f} ms")
    print(f"repeated orders/updated, unpaid order (nothing to compare): {before:6.2f} ms")
    print(f"ratio (goal < 1.5): {at_provider / before:.2f}")


if __name__ == "__main__":
    main()
