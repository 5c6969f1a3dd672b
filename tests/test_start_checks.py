"""``serve``, ``work`` and ``listen`` try the token and the port before anything starts.

A token Webex refuses used to look healthy: gunicorn booted and only ``/readyz`` said so. Now
each command asks ``GET /people/me`` first: refused (401/403) is one line naming
``WEBEX_BOT_TOKEN``, exit 2, and ``serve``'s supervisor takes a worker process's exit 2 as the
end, not as a crash to restart. Webex unreachable is not fatal (it may come back): said once.
A port already taken used to be gunicorn's 16 lines and exit 1.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.devtools.as_deployed import free_port
from bot.devtools.sandbox import Sandbox
from bot.service import check_port
from bot.settings import SettingsError
from bot.web.server import ServerSettings
from tests.support.keys import MEETING_KEYS

SECRET = "start-check-tests-secret-5d2a"
WRONG_TOKEN = "not-the-bots-token-7c1e"
COMMANDS = {"serve": ["serve"], "work": ["work"], "listen": ["listen"]}


def environment(box: Sandbox, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The bot's settings pointed at the sandbox, on a free port, with nothing inherited; at
    WARNING (the SDK's own "User-Agent" line at INFO is another matter)."""
    inherited = {key: value for key, value in os.environ.items()
                 if key not in ("LOG_LEVEL", "STORAGE_URL", "WEB_CONCURRENCY", "PORT", "HOST",
                                "EVENTS", "WORKER_PROCESSES")}
    return {**inherited, "WEBEX_BOT_TOKEN": box.bot_token, "WEBEX_API_URL": box.webex_base_url,
            "U2C_URL": box.u2c_url, "WEBHOOK_SECRET": SECRET, "MEETING_KEYS": MEETING_KEYS,
            "HOST": "127.0.0.1",
            "PORT": str(free_port()), "STORAGE_URL": f"sqlite:///{tmp_path}/bot.sqlite3",
            "LOG_LEVEL": "WARNING", **extra}


def run(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *COMMANDS[command]], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_token_webex_refuses_is_one_line_and_exit_2(
    command: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    started = time.monotonic()
    done = run(command, environment(sandbox, tmp_path, WEBEX_BOT_TOKEN=WRONG_TOKEN), tmp_path)
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - started < 20
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: WEBEX_BOT_TOKEN: Webex refused the bot's token (HTTP 401)")
    assert WRONG_TOKEN not in done.stderr
    assert [r.path for r in sandbox.requests if r.path.startswith("/v1/")] == ["/v1/people/me"]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_without_meeting_keys_each_refuses_in_one_line_saying_how_to_make_one(
    command: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The meetings the bot remembers keep contacts and links, sealed: no key, no start (and
    nothing asked of Webex or the store first)."""
    done = run(command, environment(sandbox, tmp_path, MEETING_KEYS=""), tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: MEETING_KEYS is not set: it encrypts the guests' contacts")
    assert line.endswith("Make one with 'python -m bot new-key'.")
    assert [r.path for r in sandbox.requests if r.path.startswith("/v1/")] == []
    assert not (tmp_path / "bot.sqlite3").exists()


def test_a_403_is_refused_the_same_way(sandbox: Sandbox, tmp_path: Path) -> None:
    """Webex answers 403 to a token of an account it will not serve: no restart mends it."""
    sandbox.fail("GET", "/v1/people/me", status=403)
    done = run("work", environment(sandbox, tmp_path), tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: WEBEX_BOT_TOKEN: Webex refused the bot's token (HTTP 403)")


def test_webex_unreachable_at_start_is_said_once_and_the_worker_runs(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Nothing listens where WEBEX_API_URL points: one warning naming the host, and the worker
    process runs on (and stops cleanly on SIGTERM)."""
    env = environment(sandbox, tmp_path, WEBEX_API_URL=f"http://127.0.0.1:{free_port()}/v1/")
    process = subprocess.Popen([sys.executable, "-m", "bot", "work"], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr or ()])
    reader.start()
    try:
        said = []
        while not said:
            line = lines.get(timeout=30)
            said += [line] if "could not check the bot's token" in line else []
        assert '"level": "warning"' in said[0]
        assert "Webex at 127.0.0.1" in said[0] and "starting anyway" in said[0]
        assert "(connection refused)" in said[0]  # the cause, for the operator
        assert process.poll() is None  # still running
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        reader.join(timeout=10)
    assert code == 0
    rest = list(lines.queue)
    assert not [line for line in rest if "could not check the bot's token" in line]
    assert sandbox.bot_token not in "".join(said + rest)


def test_a_port_in_use_is_one_line_naming_port_and_host_before_gunicorn(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = run("serve", environment(sandbox, tmp_path, PORT=str(port)), tmp_path)
    assert done.returncode == 2
    assert time.monotonic() - started < 20
    [line] = done.stderr.splitlines()
    assert line == (f"error: PORT: {port} on HOST 127.0.0.1 is already in use by another "
                    "process; stop it or choose another PORT (or HOST).")


def test_a_metrics_port_in_use_is_named_too() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError, match=rf"^METRICS_PORT: {port} on METRICS_HOST "
                                                r"127\.0\.0\.1 is already in use"):
            check_port(ServerSettings(host="127.0.0.1", port=free_port(), metrics_port=port))


def test_a_host_that_is_not_this_machines_is_named() -> None:
    with pytest.raises(SettingsError, match=r"^HOST: 192\.0\.2\.1 is not an address of this "):
        check_port(ServerSettings(host="192.0.2.1", port=free_port()))


SUPERVISED = """
import sys
from bot.supervisor import supervise
sys.exit(supervise([sys.executable, "-c", "import time; time.sleep(120)"], 1,
                   worker_command=[sys.executable, "-c", "raise SystemExit(2)"],
                   release_command=[sys.executable, "-c", "pass"]))
"""


def test_the_supervisor_stops_everything_when_a_worker_process_exits_2() -> None:
    """A worker process's exit 2 (its token refused, say): no restart, serve exits 2, and the
    web server is stopped with it."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SUPERVISED], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - started < 30
    assert "stopping everything" in done.stderr
    assert "starting another" not in done.stderr
