"""``woocommerce connect-link [STORE_URL]``: the signed, expiring link a merchant connects with.

The connect and keys pages refuse anonymous visitors (they store keys and make Relais call the
address given); the operator hands a merchant this link instead. Bound to one store address
when one is given (the merchant cannot then name another), for 24 hours by default.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from integrations.errors import ConfigError
from integrations.woocommerce.connect import normalise_store_url
from web.app_session import LINK_LIFETIME
from web.woocommerce_access import connect_link

woocommerce = AppGroup("woocommerce", help="WooCommerce stores: links to connect them.")


@woocommerce.command("connect-link")
@click.argument("store_url", required=False, default="")
@click.option(
    "--hours",
    type=click.FloatRange(min=0.1, max=LINK_LIFETIME / 3600),
    default=LINK_LIFETIME / 3600,
    show_default=True,
    help="How long the link works.",
)
def connect_link_command(store_url: str, hours: float) -> None:
    """Print a link to the connect page; with STORE_URL, it connects that store only."""
    runtime = current_app.extensions["relais"]
    try:
        bound = normalise_store_url(store_url) if store_url else ""
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(connect_link(runtime.settings, bound, lifetime=int(hours * 3600)))
    click.echo(f"works for {hours:g} hours" + (f", for {bound} only" if bound else ", for any store address"), err=True)
