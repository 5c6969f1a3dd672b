"""The sandbox command line: a real process that prints its endpoints and serves until signalled."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import requests

from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.cli import main
from bot.meetings.sealing import Keyring


@pytest.fixture
def process() -> Iterator[subprocess.Popen[str]]:
    command = [
        sys.executable,
        "-m",
        "bot.devtools.sandbox.cli",
        "--seed",
        "4",
        "--fault",
        "GET /v1/people/me status=503 times=1 retry_after=7",
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def read_endpoints(proc: subprocess.Popen[str]) -> dict[str, str]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else "no output"
    return json.loads(line)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_with_faults_until_signalled(
    process: subprocess.Popen[str], sig: signal.Signals
) -> None:
    endpoints = read_endpoints(process)
    assert set(endpoints) == {"url", "webex_base_url", "u2c_url", "broker_url", "bot_token",
                              "smtp_url",
                              "smtp_ca_file", "twilio_api_url", "twilio_account_sid",
                              "twilio_auth_token", "twilio_from"}
    assert endpoints["webex_base_url"] == endpoints["url"] + "/v1/"
    auth = {"Authorization": f"Bearer {endpoints['bot_token']}"}
    first = requests.get(endpoints["webex_base_url"] + "people/me", headers=auth, timeout=5)
    assert (first.status_code, first.headers["Retry-After"]) == (503, "7")
    second = requests.get(endpoints["webex_base_url"] + "people/me", headers=auth, timeout=5)
    assert second.json()["emails"] == ["instant-connect@webex.bot"]
    process.send_signal(sig)
    assert process.wait(timeout=10) == 0


def test_cli_is_seeded() -> None:

    with subprocess.Popen(
        [sys.executable, "-m", "bot.devtools.sandbox.cli", "--seed", "4"],
        stdout=subprocess.PIPE, text=True,
    ) as proc:
        endpoints = read_endpoints(proc)
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert endpoints["bot_token"] == Sandbox(seed=4).bot_token != Sandbox(seed=5).bot_token


@pytest.mark.parametrize(
    "argv",
    [
        ["--cluster", "mars"],
        ["--port", "x"],
        ["--seed"],
        ["--fault", "GET"],
        ["--fault", "GET /x colour=red"],
        ["--fault", "GET /x"],
        ["--unknown"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("sandbox: error: ")


def test_bad_arguments_in_a_real_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.devtools.sandbox.cli", "--fault", "nonsense"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]


def exported(stream: IO[str]) -> dict[str, str]:
    """The ``export NAME=value`` lines the sandbox prints for a person, up to MAIL_FROM."""
    settings: dict[str, str] = {}
    while "MAIL_FROM" not in settings:
        line = stream.readline()
        assert line, "the sandbox stopped printing before MAIL_FROM"
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            settings[name] = shlex.split(value)[0]
    return settings


def test_the_settings_it_prints_point_listen_at_it(tmp_path: Path) -> None:
    """What the sandbox prints on stderr is all ``python -m bot listen`` needs (U2C_URL and a
    fresh MEETING_KEYS among it): pasted as is, the listener opens the sandbox's websocket."""
    with subprocess.Popen([sys.executable, "-m", "bot", "sandbox", "--seed", "6"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as box:
        try:
            endpoints = read_endpoints(box)
            assert box.stderr is not None
            settings = exported(box.stderr)
            assert settings["U2C_URL"] == endpoints["u2c_url"]
            assert len(Keyring.parse(settings["MEETING_KEYS"]).ids) == 1
            env = {key: value for key, value in os.environ.items() if key != "LOG_LEVEL"}
            env.update(settings, STORAGE_URL=f"sqlite:///{tmp_path}/bot.sqlite3")
            with subprocess.Popen([sys.executable, "-m", "bot", "listen"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True) as listener:
                assert listener.stderr is not None
                lines = iter(listener.stderr.readline, "")
                heard = next((line for line in lines if "listening to Webex" in line), "")
                listener.send_signal(signal.SIGTERM)
                assert listener.wait(timeout=30) == 0
                assert heard, "the listener never opened the sandbox's websocket"
        finally:
            box.send_signal(signal.SIGTERM)
            box.wait(timeout=10)
