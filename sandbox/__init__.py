"""The development sandbox: a simulated 3PL, a stand-in Shopify shop and a stand-in WooCommerce store.

It lets a fresh machine run the whole journey with no outside account (``./dev serve`` and
``flask demo``). It is a package of its own so that a production deployment carries none of it:
product code never imports it; ``jobs.runtime.build_runtime`` calls ``enable`` by name, and
``create_app`` calls ``mount``, only when ``Settings.sandbox_enabled`` (development and tests, or
``RELAIS_SANDBOX=1``, which production refuses). Without it the provider registry has no
``sandbox`` entry, so a shop naming it fails loudly, and no ``/sandbox`` route exists.

- ``provider.py``: Relais' adapter for the simulated 3PL (registered as provider ``sandbox``);
- ``api.py``, ``faults.py``, ``validation.py``, ``models.py``, ``jobs.py``, ``carriers.py``: the
  simulated 3PL itself (HTTP API, its own tables, shipping jobs, realistic tracking numbers);
- ``shop.py``: a stand-in for a Shopify store's Admin GraphQL API;
- ``woocommerce/``: a stand-in WooCommerce store on a real port (also the tests' fake);
- ``demo.py``, ``demo_woocommerce.py``: the ``flask demo`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import Engine

    from jobs.runtime import Runtime

QUEUE = "sandbox"


def enable(runtime: Runtime) -> None:
    """Register the sandbox provider and its redactor (its copies of recipients and the stand-in
    shop's records go with every redaction). The sandbox's tables are created on first use
    (``ensure_tables``), not here: a process building its app before the release step has run
    must not create tables that the migrations are about to create."""
    from integrations import fulfilment
    from jobs import privacy
    from sandbox import privacy as sandbox_privacy

    fulfilment.register("sandbox", "sandbox.provider:SandboxProvider")
    privacy.register_redactor(sandbox_privacy.redact)


_ready: set[int] = set()


def ensure_tables(engine: Engine) -> None:
    """Create the sandbox's own tables if they are missing, once per engine and process."""
    if id(engine) in _ready:
        return
    from sandbox.models import SandboxBase

    SandboxBase.metadata.create_all(engine)
    _ready.add(id(engine))


def mount(app: Flask) -> None:
    """The simulated 3PL under ``/sandbox``, the stand-in shop, and the ``demo`` command."""
    from sandbox import api, demo, shop

    app.register_blueprint(api.blueprint, url_prefix="/sandbox")
    app.register_blueprint(shop.blueprint)
    app.cli.add_command(demo.demo)


def preload() -> None:
    """Import the sandbox's jobs before the worker pool forks."""
    import sandbox.jobs  # noqa: F401
