"""The bot started exactly as the Procfile starts it (``python -m bot serve``), as a child process.

Used by the fault tests and the benchmark, which need real processes they can measure and kill:
``serve`` runs gunicorn (a master and its web processes) and the worker processes. Usage::

    with launched_bot(sandbox_env(box, storage_url), workers=2) as bot:
        requests.post(bot.webhook_url, ...)
        bot.web_pids()             # gunicorn's web processes, to SIGKILL in a crash test
        bot.worker_pids()          # the ``python -m bot work`` processes, the same
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from bot.devtools.sandbox import Sandbox

STARTUP_SECONDS = 30.0


def free_port() -> int:
    """A port the OS says is free right now on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sandbox_env(box: Sandbox, storage_url: str, secret: str, **extra: str) -> dict[str, str]:
    """The environment that points a launched bot at a sandbox."""
    return {
        "WEBEX_BOT_TOKEN": box.bot_token,
        "WEBEX_API_URL": box.webex_base_url,
        "IC_BROKER_URL": box.broker_url,
        "WEBHOOK_SECRET": secret,
        "STORAGE_URL": storage_url,
        **extra,
    }


@dataclass
class LaunchedBot:
    """A running ``python -m bot serve`` and how to reach and hurt it."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def webhook_url(self) -> str:
        """Where webhooks go."""
        return self.url + "/webhooks"

    def web_pids(self) -> list[int]:
        """gunicorn's web processes: the children of its master, which ``serve`` started (or
        which is the launched process itself, for a bare gunicorn)."""
        launched = self.process.pid
        masters = [launched] if _is_gunicorn(launched) else \
            [pid for pid in children_of(launched) if _is_gunicorn(pid)]
        return [pid for master in masters for pid in children_of(master)]

    def worker_pids(self) -> list[int]:
        """The worker processes (``python -m bot work``) that ``serve`` started."""
        return [pid for pid in children_of(self.process.pid) if _is_worker(pid)]

    def pids(self) -> list[int]:
        """Every web and worker process: what a crash test may kill."""
        return self.web_pids() + self.worker_pids()

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        """Block until /healthz answers (bounded); raise with the log tail if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the bot did not start:\n{tail}")


def children_of(pid: int) -> list[int]:
    """A process's children (none once it is gone)."""
    try:
        return [int(child) for child in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _command(pid: int) -> list[str]:
    """A process's command line, split (empty once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
    except OSError:
        return []


def _is_gunicorn(pid: int) -> bool:
    return "gunicorn" in _command(pid)


def _is_worker(pid: int) -> bool:
    return _command(pid)[-2:] == ["bot", "work"]


@contextlib.contextmanager
def launched_bot(
    env: Mapping[str, str], *, workers: int = 2, threads: int = 8, log_dir: Path | None = None
) -> Iterator[LaunchedBot]:
    """Run ``python -m bot serve`` on a free port until the block ends, then stop it."""
    with launched([sys.executable, "-m", "bot", "serve"], env, workers=workers,
                  threads=threads, log_dir=log_dir, name="bot") as bot:
        yield bot


@contextlib.contextmanager
def launched(
    command: list[str] | Callable[[Mapping[str, str]], list[str]],
    env: Mapping[str, str],
    *,
    workers: int,
    threads: int,
    log_dir: Path | None,
    name: str,
) -> Iterator[LaunchedBot]:
    """Run a gunicorn-style server on a free port (``command`` may be built from the final
    environment) until /healthz answers, yield it, and stop it when the block ends."""
    port = free_port()
    folder = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_path = folder / f"{name}-{port}.log"
    child_env = {
        **os.environ,
        **env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": str(threads),
    }
    argv = command(child_env) if callable(command) else command
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=child_env, stdout=log, stderr=log)
    server = LaunchedBot(process, f"http://127.0.0.1:{port}", log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
