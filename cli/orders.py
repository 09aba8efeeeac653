"""``orders list|show``, ``events replay`` and ``sweep``: what an operator needs to see and repair."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import or_, select

from jobs.maintenance import enqueue_event, sweep
from store.db import transaction
from store.models import Order, WebhookEvent

orders = AppGroup("orders", help="Inspect orders.")


@orders.command("list")
@click.option("--state", default=None, help="Only orders in this state.")
@click.option("--limit", default=50, show_default=True)
def list_orders(state: str | None, limit: int) -> None:
    runtime = current_app.extensions["relais"]
    with runtime.sessions() as session:
        stmt = select(Order).order_by(Order.id.desc()).limit(limit)
        if state:
            stmt = stmt.where(Order.state == state)
        rows = list(session.scalars(stmt))
        if not rows:
            click.echo("no orders" + (f" in state {state}" if state else ""))
            return
        click.echo(f"{'id':>6}  {'shop':<9} {'order':<12} {'state':<18} {'reference':<24} reason")
        for row in rows:
            click.echo(
                f"{row.id:>6}  shop {row.shop_id:<4} {row.name or row.platform_order_id:<12} {row.state:<18} "
                f"{row.provider_reference or '':<24} {row.failure_reason or ''}"
            )


@orders.command("show")
@click.argument("ident")
def show(ident: str) -> None:
    """An order's lines, shipments, provider attempts and timeline (by id, name or platform id)."""
    runtime = current_app.extensions["relais"]
    with runtime.sessions() as session:
        clauses = [Order.name == ident, Order.platform_order_id == ident]
        if ident.isdigit():
            clauses.append(Order.id == int(ident))
        row = session.scalars(select(Order).where(or_(*clauses)).order_by(Order.id)).first()
        if row is None:
            raise click.ClickException(f"no order {ident}")
        click.echo(f"order {row.id} {row.name} (platform id {row.platform_order_id}), shop {row.shop_id}")
        click.echo(f"  state: {row.state}   reference: {row.provider_reference}   provider id: {row.provider_order_id}")
        if row.failure_reason:
            click.echo(f"  failure: {row.failure_reason}")
        click.echo("  lines:")
        for line in row.lines:
            ship = "" if line.requires_shipping else "  (no shipping)"
            click.echo(f"    {line.quantity} × {line.sku or '(no sku)'}  {line.name}{ship}")
        if row.shipments:
            click.echo("  shipments:")
            for s in row.shipments:
                click.echo(f"    {s.provider_shipment_id}: {s.status} {s.carrier} {s.tracking_number} {s.tracking_url}")
        click.echo("  attempts:")
        for a in row.attempts:
            click.echo(f"    {a.at:%Y-%m-%d %H:%M:%S} {a.action} {a.outcome} {a.detail or ''}")
        click.echo("  timeline:")
        for t in row.history:
            click.echo(f"    {t.at:%Y-%m-%d %H:%M:%S} {t.from_state or '-'} → {t.to_state}  {t.reason}")


events = AppGroup("events", help="Inspect and replay stored webhook deliveries.")


@events.command("replay")
@click.argument("event_ids", nargs=-1, type=int)
@click.option("--failed", is_flag=True, help="Replay every event whose processing failed.")
def replay(event_ids: tuple[int, ...], failed: bool) -> None:
    """Process stored deliveries again (safe: every step is idempotent)."""
    runtime = current_app.extensions["relais"]
    with transaction(runtime.sessions) as session:
        stmt = select(WebhookEvent)
        if failed:
            stmt = stmt.where(WebhookEvent.status == "failed")
        elif event_ids:
            stmt = stmt.where(WebhookEvent.id.in_(event_ids))
        else:
            raise click.UsageError("give event ids or --failed")
        rows = session.scalars(stmt).all()
        for row in rows:
            row.status, row.error = "received", None
        ids = [row.id for row in rows]
    for event_id in ids:
        enqueue_event(runtime, event_id)
    click.echo(f"replaying {len(ids)} event(s): {', '.join(map(str, ids))}")


@click.command("sweep")
@with_appcontext
@click.option("--older-than", default=None, type=int, help="Seconds (default RELAIS_SWEEP_AFTER_SECONDS).")
def sweep_command(older_than: int | None) -> None:
    """Enqueue stored deliveries and stuck orders whose jobs were lost."""
    click.echo(sweep(older_than))
