"""A production process with a bad configuration stops before it serves or works, naming every
missing or invalid variable in one plain message (no traceback), and starts nothing.

Before: gunicorn started without SHOPIFY_API_SECRET and answered 500 to every request; release
and worker died on a traceback naming one variable per try; with REDIS_URL unset an embedded
Redis was started and outlived gunicorn.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.process_support import ROOT, clean_env, free_port, listening, redis_servers_in

MISSING = ("DATABASE_URL", "REDIS_URL", "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "RELAIS_ENCRYPTION_KEY")
BIN = Path(sys.executable).parent

COMMANDS = {
    "gunicorn (the Procfile's web line)": [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "app:app"],
    "gunicorn run as a module": [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "app:app"],
    "the worker": [sys.executable, "-m", "jobs.worker"],
    "the release step": [sys.executable, "-m", "cli.release"],
    "a flask command": [str(BIN / "flask"), "--app", "app", "orders", "list"],
}


@pytest.mark.parametrize("command", list(COMMANDS), ids=list(COMMANDS))
def test_a_production_process_missing_several_variables_exits_at_once_naming_them_all(
    command: str, tmp_path: Path
) -> None:
    port = free_port()
    redis_folder = tmp_path / "redis"
    env = clean_env(
        RELAIS_ENV="production",
        PORT=str(port),
        SECRET_KEY="a-production-secret-key",
        RELAIS_PUSH_MAX_RETRIES="many",  # an invalid value is named in the same message
        RELAIS_REDISLITE_PATH=str(redis_folder / "relais.rdb"),
    )
    started = time.monotonic()
    done = subprocess.run(COMMANDS[command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr

    assert done.returncode == 78, output
    assert elapsed < 20, f"took {elapsed:.1f} s to refuse"
    assert "Traceback" not in output
    assert output.count("Relais cannot start") == 1, output
    for name in (*MISSING, "RELAIS_PUSH_MAX_RETRIES"):
        assert name in done.stderr, f"{name} not named in: {done.stderr}"
    assert "SECRET_KEY must be set" not in output  # what is set is not reported
    assert not listening("127.0.0.1", port)
    assert not redis_folder.exists() and not redis_servers_in(redis_folder)


def test_alembic_run_by_hand_says_the_same_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = clean_env(RELAIS_ENV="production", RELAIS_REDISLITE_PATH=str(tmp_path / "redis" / "relais.rdb"))
    done = subprocess.run(
        [str(BIN / "alembic"), "upgrade", "head"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr  # alembic prints its "FAILED:" line on stdout
    assert done.returncode != 0
    assert "Traceback" not in output and output.count("Relais cannot start") == 1
    for name in MISSING:
        assert name in output


def test_the_release_step_says_which_revision_the_database_is_at(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'relais.db'}", RELAIS_DEV_SECRET_FILE=str(tmp_path / "s"))
    done = subprocess.run(
        [sys.executable, "-m", "cli.release"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("database is up to date at ") and line != "database is up to date at base"
