"""The systemd unit and its environment file (bot/deploy/) say what the code does: systemd
accepts the unit, its stop and restart rules match ``serve``'s, and the settings read the file."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.limits import GRACEFUL_STOP_SECONDS
from bot.settings import Settings
from bot.supervisor import STOP_SECONDS
from bot.web.server import ServerSettings

DEPLOY = Path(__file__).resolve().parents[1] / "bot" / "deploy"
UNIT = DEPLOY / "instant-connect-bot.service"
ENVIRONMENT = DEPLOY / "instant-connect-bot.env.example"
INTERPRETER = "/opt/instant-connect-bot/.venv/bin/python"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the case
    parser.read_string(UNIT.read_text())
    return parser


def environment_file() -> dict[str, str]:
    """The variables the file sets, read as systemd's EnvironmentFile= reads them."""
    lines = [line.strip() for line in ENVIRONMENT.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text()
    assert INTERPRETER in text
    # verify checks that the program exists: this machine's interpreter stands in for the venv's.
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INTERPRETER, sys.executable))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


def test_the_unit_stops_and_restarts_serve_as_serve_expects() -> None:
    service = unit()["Service"]
    assert service["ExecStart"] == f"{INTERPRETER} -m bot serve"
    assert service["KillMode"] == "mixed"  # SIGTERM to serve alone: it stops its children
    assert float(service["TimeoutStopSec"]) > STOP_SECONDS  # serve's own wait, then its kill
    assert service["RestartPreventExitStatus"] == "2"  # a settings mistake: no restart loop
    assert service["Restart"] == "on-failure"


def test_the_stop_waits_are_tied_not_equal_by_chance() -> None:
    """gunicorn is told how long its web processes may finish their requests; serve waits that
    long and a margin, and the unit (which says how long) waits longer still."""
    command = ServerSettings().gunicorn_command("x:app")
    graceful = command[command.index("--graceful-timeout") + 1]
    assert float(graceful) == GRACEFUL_STOP_SECONDS < STOP_SECONDS
    assert f"at most {STOP_SECONDS:g} s" in UNIT.read_text()


def test_the_environment_example_is_read_by_the_settings() -> None:
    variables = environment_file()
    settings = Settings.from_env(variables)
    state = Path("/var/lib") / unit()["Service"]["StateDirectory"]
    assert Path(settings.storage_url.removeprefix("sqlite:///")).parent == state
    assert settings.webhook_secret is not None
    # Named, and left empty: each deployment makes its own key (serve refuses until then).
    assert "MEETING_KEYS" in variables and settings.meeting_keys is None
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
