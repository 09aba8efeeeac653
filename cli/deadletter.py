"""``deadletter list`` and ``deadletter replay <job id | event:<id> | --all>``.

What could not be processed (failed jobs of every queue, failed or stuck deliveries) with its
reason, and running it again (``jobs.deadletter``: idempotent, jobs keep their ids).
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from jobs import deadletter as letters

deadletter = AppGroup("deadletter", help="Failed jobs and deliveries, with their reason; replay them.")


@deadletter.command("list")
@click.option("--shop", "shop_id", type=int, default=None, help="Only this shop's (id).")
@click.option("--limit", default=200, show_default=True)
def list_letters(shop_id: int | None, limit: int) -> None:
    """Failed jobs and failed/stuck deliveries, newest first."""
    found = letters.dead_letters(current_app.extensions["relais"], shop_id, limit)
    if not found:
        click.echo("nothing could not be processed")
        return
    for d in found:
        at = f"{d.at:%Y-%m-%d %H:%M:%S}" if d.at else "-"
        shop = d.shop_id if d.shop_id is not None else "-"
        click.echo(f"{d.ref}  shop {shop}  {at}  {d.what}({d.args})  {d.reason}")
    click.echo(f"{len(found)} item(s); replay one with `deadletter replay <ref>`, or `--all`")


@deadletter.command("replay")
@click.argument("refs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter.")
def replay(refs: tuple[str, ...], everything: bool) -> None:
    """Run REFS (job ids, or event:<id>) again; safe to repeat."""
    runtime = current_app.extensions["relais"]
    if everything:
        lines = letters.replay_all(runtime)
        for line in lines:
            click.echo(line)
        click.echo(f"{len(lines)} replayed")
        return
    if not refs:
        raise click.UsageError("give job ids, event:<id>, or --all")
    for ref in refs:
        click.echo(f"{ref}: {letters.replay(runtime, ref)}")
