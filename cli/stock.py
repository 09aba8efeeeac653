"""``stock sync SHOP`` and ``stock report SHOP``: run a stock sync now, and show what the last one did."""

from __future__ import annotations

from collections import defaultdict

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import or_, select

from integrations.errors import RetryableError
from jobs import stock as stock_job
from store.models import Shop
from store.stock_models import StockSyncRun

stock = AppGroup("stock", help="Sync the provider's stock to a shop, and report on it.")

SHOWN = 20  # SKUs listed per reason or location before "… and N more"


def find_shop(ident: str) -> int:
    """A shop by id or domain."""
    runtime = current_app.extensions["relais"]
    with runtime.sessions() as session:
        clauses = [Shop.domain == ident.strip().lower()]
        if ident.isdigit():
            clauses.append(Shop.id == int(ident))
        shop_id = session.scalars(select(Shop.id).where(or_(*clauses)).order_by(Shop.id)).first()
    if shop_id is None:
        raise click.ClickException(f"no shop {ident} (give its id or domain; `shop list` shows them)")
    return shop_id


@stock.command("sync")
@click.argument("shop")
def sync(shop: str) -> None:
    """Sync now, in this process (if a sync of the shop is running already, says so and stops;
    a large catalogue's SKU map export is waited for here)."""
    runtime = current_app.extensions["relais"]
    try:
        outcome = stock_job.run(runtime, find_shop(shop), trigger="cli", wait=True)
    except RetryableError as exc:
        raise click.ClickException(f"transient failure, try again later: {exc}") from None
    click.echo(str(outcome))
    if outcome.status == "failed":
        raise SystemExit(1)


@stock.command("report")
@click.argument("shop")
@click.option("--all", "show_all", is_flag=True, help="List every SKU instead of the first few per group.")
def report(shop: str, show_all: bool) -> None:
    """What the last sync read, wrote and skipped (and why)."""
    runtime = current_app.extensions["relais"]
    with runtime.sessions() as session:
        row = stock_job.last_report(session, find_shop(shop))
        if row is None:
            raise click.ClickException("no stock sync has run for this shop yet")
        for line in report_lines(row, None if show_all else SHOWN):
            click.echo(line)


def report_lines(row: StockSyncRun, limit: int | None = SHOWN) -> list[str]:
    """The report as lines of text (the settings page can show the same)."""
    read = row.read or {}
    provider = read.get("provider") or {}
    # Counts are exact; the per-SKU detail of a large run keeps its first entries (``jobs.stock_record``).
    counts = read.get("counts") or {}
    levels = counts.get("levels", sum(len(skus) for skus in provider.values()))
    lines = [
        f"stock sync {row.id} of shop {row.shop_id} ({row.trigger}): {row.status}",
        f"  started {row.started_at:%Y-%m-%d %H:%M:%S}, finished "
        + (f"{row.finished_at:%Y-%m-%d %H:%M:%S}" if row.finished_at else "-")
        + (", SKU map rebuilt" if row.map_refreshed_at else ""),
    ]
    if row.error:
        lines.append(f"  error: {row.error}")
    reserved = read.get("reserved") or {}
    lines.append(
        f"  read: {levels} provider level(s) at {len(provider)} location(s); "
        f"{sum(reserved.values())} unit(s) of {len(reserved)} SKU(s) reserved by orders"
    )
    written = row.written or {}
    written_count = counts.get("written", sum(len(v) for v in written.values()))
    lines.append(f"  written: {written_count} SKU(s) in {row.calls} call(s)")
    for location, skus in sorted(written.items()):
        lines.append(f"    at {location}:")
        lines.extend(_listed([f"{sku} → {qty}" for sku, qty in sorted(skus.items())], limit, "      "))
    by_reason: dict[str, list[str]] = defaultdict(list)
    for sku, reason in (row.skipped or {}).items():
        by_reason[reason].append(sku)
    per_reason = counts.get("skipped_by_reason") or {reason: len(skus) for reason, skus in by_reason.items()}
    lines.append(f"  skipped: {counts.get('skipped', len(row.skipped or {}))} SKU(s)")
    for reason, number in sorted(per_reason.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"    {reason}: {number}")
        lines.extend(_listed(sorted(by_reason.get(reason, [])), limit, "      "))
    return lines


def _listed(items: list[str], limit: int | None, indent: str) -> list[str]:
    shown = items if limit is None else items[:limit]
    lines = [indent + ", ".join(shown[i : i + 8]) for i in range(0, len(shown), 8)]
    if len(shown) < len(items):
        lines.append(f"{indent}… and {len(items) - len(shown)} more (--all lists them)")
    return lines
