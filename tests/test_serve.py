"""`./dev serve` (``flask --app app serve``) as a newcomer runs it: on ``$PORT``, on this machine
only, saying where it really is, and stopping everything it started on SIGTERM.

Before: ``PORT=5077 ./dev serve`` served on 5000, printed 127.0.0.1 while gunicorn listened on
0.0.0.0 (with development secrets on every interface).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.process_support import ROOT, alive, clean_env, descendants, free_port, listening, redis_servers_in


def _public_address() -> str | None:
    """This machine's address on its default route (no packet is sent), None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address  # noqa: S104


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_serve_listens_on_port_on_loopback_only_and_sigterm_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    redis_folder = tmp_path / "redis"
    log = tmp_path / "serve.log"
    env = clean_env(
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'relais.db'}",
        RELAIS_REDISLITE_PATH=str(redis_folder / "relais.rdb"),
        RELAIS_DEV_SECRET_FILE=str(tmp_path / "development-secret"),
        RELAIS_WORKER_PROCESSES="1",
        WEB_CONCURRENCY="1",
    )
    flask = Path(sys.executable).with_name("flask")
    # The release step first: on an empty database `serve` trips over the sandbox's own tables
    # (created by `sandbox.enable` before 0001 creates them again), a separate defect.
    subprocess.run([sys.executable, "-m", "cli.release"], cwd=ROOT, env=env, check=True, capture_output=True)
    with log.open("w") as out:
        serve = subprocess.Popen(
            [str(flask), "--app", "app", "serve"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 120
        while not _healthy(port):
            assert serve.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve never answered /healthz on $PORT:\n" + log.read_text()
            time.sleep(0.5)
        assert f"Relais on http://127.0.0.1:{port} " in log.read_text()
        public = _public_address()
        if public is not None:
            assert not listening(public, port), f"serve is reachable on {public}:{port}"

        children = descendants(serve.pid)
        embedded = redis_servers_in(redis_folder)
        assert children and embedded  # the checks below look at real processes
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(pid) for pid in children | embedded):
            time.sleep(0.2)
        left = {pid for pid in children | embedded if alive(pid)}
        assert not left, f"still running after SIGTERM: {left}\n{log.read_text()}"
        assert not listening("127.0.0.1", port)
        if public is None:
            pytest.skip("everything else checked; this machine has no non-loopback address to try")
    finally:
        if serve.poll() is None:
            for pid in descendants(serve.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            serve.kill()
            serve.wait()
        for pid in redis_servers_in(redis_folder):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_serve_refuses_every_interface_with_development_secrets(tmp_path: Path) -> None:
    env = clean_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'relais.db'}",
        RELAIS_REDISLITE_PATH=str(tmp_path / "redis" / "relais.rdb"),
        RELAIS_DEV_SECRET_FILE=str(tmp_path / "development-secret"),
        PORT=str(free_port()),
    )
    flask = Path(sys.executable).with_name("flask")
    done = subprocess.run(
        [str(flask), "--app", "app", "serve", "--host", "0.0.0.0"],  # noqa: S104 - the address refused
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert "refusing to listen on 0.0.0.0" in done.stderr and "SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr
