"""``reconcile SHOP``: reconcile one shop now, in this process, and print its drift report.

The same run the cron does every 10 minutes (``jobs.reconcile.run``): the shop's orders changed
since the cursor go through the order pipeline, the provider's side is checked, and the report is
stored (the settings page shows it). Repairs are jobs (a push, a cancel, a tracking write): a
running worker carries them out.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from cli.stock import find_shop
from jobs import reconcile as reconcile_job
from jobs.drift import report_lines
from store.sync_models import ShopSync


@click.command("reconcile")
@click.argument("shop")
@with_appcontext
def reconcile(shop: str) -> None:
    """Reconcile SHOP (id or domain) now and print the drift report."""
    runtime = current_app.extensions["relais"]
    shop_id = find_shop(shop)
    outcome, report = reconcile_job.run(shop_id)
    if report is None:
        raise click.ClickException(f"shop {shop} is not active: nothing to reconcile")
    with runtime.sessions() as session:
        row = session.get(ShopSync, shop_id)
        stored = row.drift_report if row is not None else None
    for line in report_lines(stored or report.as_json()):
        click.echo(line)
    click.echo(f"Shop side: {outcome}")
    if outcome == "failed":
        raise SystemExit(1)
