"""Operator commands: ``flask --app app <group> <command>``."""

from __future__ import annotations

from flask import Flask


def register_commands(app: Flask) -> None:
    from cli import orders, serve, shops
    from cli.locations import locations_command

    shops.shop.add_command(locations_command)
    app.cli.add_command(shops.shop)
    app.cli.add_command(orders.orders)
    app.cli.add_command(orders.events)
    app.cli.add_command(orders.sweep_command)
    app.cli.add_command(serve.serve)
    app.cli.add_command(serve.worker)
    app.cli.add_command(serve.migrate)

    from cli import stock

    app.cli.add_command(stock.stock)
    from cli.reconcile import reconcile

    app.cli.add_command(reconcile)
    from cli.woocommerce import woocommerce

    app.cli.add_command(woocommerce)
    from cli.deadletter import deadletter

    app.cli.add_command(deadletter)
