"""``flask shop locations SHOP``: the shop's locations, its provider's centres, and the mapping."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import or_, select

from integrations.errors import ConfigError
from jobs import locations as where
from store.models import Shop
from store.shops import DEFAULT_SETTINGS


@click.command("locations")
@click.argument("shop_ref", metavar="SHOP")
@with_appcontext
def locations_command(shop_ref: str) -> None:
    """List a shop's locations (id or domain) and its provider's fulfilment centres, with where
    each centre's stock goes; read live (never the page's cache)."""
    runtime = current_app.extensions["relais"]
    with runtime.sessions() as session:
        clauses = [Shop.domain == shop_ref.strip().lower()]
        if shop_ref.isdigit():
            clauses.append(Shop.id == int(shop_ref))
        found = session.scalars(select(Shop).where(or_(*clauses)).order_by(Shop.id)).all()
        if len(found) != 1:
            raise click.ClickException(f"no single shop {shop_ref!r}" + (" (several match)" if found else ""))
        shop = found[0]
        shop_id, label, provider = shop.id, f"{shop.platform} {shop.domain}", shop.provider or "none"
        settings = {**DEFAULT_SETTINGS, **(shop.settings or {})}
    listed = where.listing(runtime, shop_id, fresh=True)
    click.echo(f"shop {shop_id}: {label}")
    click.echo("shop locations:")
    if listed.locations_error:
        click.echo(f"  could not be listed: {listed.locations_error}")
    for loc in listed.locations:
        notes = [
            n
            for n, on in (
                ("fulfils online orders", loc.fulfils_online_orders),
                ("fulfilment service", loc.fulfilment_service),
            )
            if on
        ]
        click.echo(f"  {loc.id}  {loc.name}" + (f"  ({', '.join(notes)})" if notes else ""))
    names = {loc.id: loc.name for loc in listed.locations}
    mapping = {str(k): str(v) for k, v in (settings.get("stock_locations") or {}).items() if v}
    click.echo(f"provider fulfilment centres ({provider}):")
    if listed.centres_error:
        click.echo(f"  could not be listed: {listed.centres_error}")
    for centre in listed.centres:
        goes = mapping.get(centre.id) or ("" if mapping else settings.get("location_id") or "")
        shown = f"{names.get(goes, goes)} ({goes})" if goes else "(not mapped)"
        click.echo(f"  {centre.id}  {centre.name}  → {shown}")
    if listed.locations_error and not (mapping or settings.get("location_id")):
        click.echo("stock sync: decided once the shop's locations can be listed")
        return
    try:
        target = where.stock_target(settings, lambda: listed.locations)
    except ConfigError as exc:
        click.echo(f"stock sync: refuses: {exc}")
        return
    click.echo("stock sync writes to: " + ", ".join(f"{names.get(i, i)} ({i})" for i in target.locations))
