"""What every Relais process does before it serves or works: check its configuration, and stop
with one plain message when it is wrong.

A traceback naming one variable per try (or a web server answering 500 to every request) is how
a bad deploy used to look. Here the web server (``config/gunicorn.py``), the worker
(``jobs/worker.py``), the release step (``cli/release.py``) and the ``flask`` commands (through
``SettingsError`` being a Click exception) all stop before anything starts, with every problem
named at once and exit status 78 (``EX_CONFIG``).
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterable, Mapping

from config import EXIT_CONFIG, Settings, load_settings
from integrations.errors import ConfigError


def refuse(message: str) -> SystemExit:
    """Print ``message`` once on stderr; the caller raises the returned ``SystemExit``."""
    print(message, file=sys.stderr, flush=True)
    return SystemExit(EXIT_CONFIG)


def settings_or_exit(env: Mapping[str, str] | None = None) -> Settings:
    """The settings, or exit non-zero naming every missing or invalid variable (no traceback)."""
    try:
        return load_settings(env)
    except ConfigError as exc:
        raise refuse(str(exc)) from None


def _host(address: str) -> str | None:
    """The host of a gunicorn bind address (``host:port``, ``[v6]:port``, ``unix:…``, ``fd://…``);
    ``None`` for the local-only kinds."""
    if address.startswith(("unix:", "fd://")):
        return None
    if address.startswith("["):
        return address[1 : address.index("]")]
    host, _, _ = address.rpartition(":")
    return host if ":" in address else address


def is_loopback(address: str) -> bool:
    """Whether a bind address is reachable from this machine only (every address its name has)."""
    host = _host(address)
    if host is None:
        return True
    if host in ("", "*"):
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def refuse_public_bind(settings: Settings, addresses: Iterable[str]) -> None:
    """Raise ``ConfigError`` when development, running on secrets it made up, would listen on an
    address other machines reach: those secrets sign webhooks, settings links and derive the key
    of credentials at rest, so they are for this machine only."""
    if settings.environment == "production" or not settings.unset_secrets:
        return
    public = [address for address in addresses if not is_loopback(address)]
    if public:
        raise ConfigError(
            f"refusing to listen on {', '.join(public)} in development without "
            f"{' and '.join(settings.unset_secrets)} set: listen on 127.0.0.1 (RELAIS_BIND / --host), "
            "or set them explicitly"
        )
