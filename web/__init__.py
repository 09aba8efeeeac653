"""HTTP edges: blueprints only. ``current_app`` and ``request`` stay in this package."""

from __future__ import annotations

from flask import current_app

from jobs.runtime import Runtime


def runtime() -> Runtime:
    """The app's runtime (settings, sessions, Redis, vault), set by ``create_app``."""
    return current_app.extensions["relais"]  # type: ignore[no-any-return]
