"""The bot started exactly as the Procfile starts it (``python -m bot serve``), as a child process.

Used by the fault tests and the benchmark, which need real processes they can measure and kill:
``serve`` runs gunicorn (a master and its web processes) and the worker processes. Usage::

    with launched_bot(sandbox_env(box, storage_url), workers=2) as bot:
        requests.post(bot.webhook_url, ...)
        bot.web_pids()             # gunicorn's web processes, to SIGKILL in a crash test
        bot.worker_pids()          # the ``python -m bot work`` processes, the same
        requests.get(bot.metrics_url)   # its metrics, on a free port of their own
        bot.metrics_dir                 # where its processes keep them (METRICS_DIR)
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

from bot.meetings.sealing import new_key

if TYPE_CHECKING:
    from bot.devtools.sandbox import Sandbox

STARTUP_SECONDS = 30.0
SUPERVISOR, MASTER, WEB, WORKER, OTHER = "supervisor", "gunicorn master", "web", "worker", "other"


def free_port() -> int:
    """A port the OS says is free right now on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sandbox_env(box: Sandbox, storage_url: str, secret: str, **extra: str) -> dict[str, str]:
    """The environment that points a launched bot at a sandbox, with a meeting key of its own
    (one ``extra`` may replace)."""
    return {
        "WEBEX_BOT_TOKEN": box.bot_token,
        "WEBEX_API_URL": box.webex_base_url,
        "IC_BROKER_URL": box.broker_url,
        "WEBHOOK_SECRET": secret,
        "MEETING_KEYS": new_key(),
        "STORAGE_URL": storage_url,
        **extra,
    }


@dataclass
class LaunchedBot:
    """A running ``python -m bot serve`` and how to reach and hurt it."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    metrics_url: str = ""
    metrics_dir: Path | None = None

    @property
    def webhook_url(self) -> str:
        """Where webhooks go."""
        return self.url + "/webhooks"

    def roles(self) -> dict[int, str]:
        """Each process of the server by role (see :func:`process_roles`)."""
        return process_roles(self.process.pid)

    def web_pids(self) -> list[int]:
        """gunicorn's web processes, which its master forked."""
        return [pid for pid, role in self.roles().items() if role == WEB]

    def worker_pids(self) -> list[int]:
        """The worker processes (``python -m bot work``) that ``serve`` started."""
        return [pid for pid, role in self.roles().items() if role == WORKER]

    def pids(self) -> list[int]:
        """Every web and worker process: what a crash test may kill."""
        return [pid for pid, role in self.roles().items() if role in (WEB, WORKER)]

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


def process_roles(root: int) -> dict[int, str]:
    """The role of a launched server's process ``root`` and of every process under it, parents
    first: the ``serve`` supervisor, the gunicorn master (``root`` itself when gunicorn was
    launched bare), the web processes it forked, the worker processes, or other."""
    roles = {root: MASTER if _is_gunicorn(command_line(root)) else SUPERVISOR}
    waiting = [root]
    while waiting:
        parent = waiting.pop()
        for child in children_of(parent):
            roles[child] = _role(command_line(child), roles[parent])
            waiting.append(child)
    return roles


def _role(argv: tuple[str, ...], parent_role: str) -> str:
    if parent_role == MASTER:
        return WEB
    if _is_gunicorn(argv):
        return MASTER
    return WORKER if _module_run(argv)[:2] == ("bot", "work") else OTHER


def _is_gunicorn(argv: tuple[str, ...]) -> bool:
    """``python -m gunicorn ...``, or a process gunicorn retitled ("gunicorn: master [...]")."""
    retitled = bool(argv) and argv[0].startswith("gunicorn:")
    return retitled or _module_run(argv)[:1] == ("gunicorn",)


def _module_run(argv: tuple[str, ...]) -> tuple[str, ...]:
    """What ``python -m`` runs and its arguments; empty for any other command."""
    return argv[argv.index("-m") + 1:] if "-m" in argv else ()


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started, read from every one of its threads: a child is listed in
    the ``children`` file of the thread that started it, not always the main thread's."""
    found: list[int] = []
    for listing in sorted(Path(f"/proc/{pid}/task").glob("*/children")):
        with contextlib.suppress(OSError):  # the thread or the process has just ended
            found.extend(int(child) for child in listing.read_text().split())
    return found


def command_line(pid: int) -> tuple[str, ...]:
    """The process's argv (empty when it is gone, or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ()
    return tuple(text.removesuffix("\0").split("\0")) if text else ()


@contextlib.contextmanager
def launched_bot(
    env: Mapping[str, str], *, workers: int = 2, threads: int = 8, log_dir: Path | None = None,
    port: int | None = None,
) -> Iterator[LaunchedBot]:
    """Run ``python -m bot serve`` on ``port`` (a free one by default) until the block ends,
    then stop it."""
    with launched([sys.executable, "-m", "bot", "serve"], env, workers=workers,
                  threads=threads, log_dir=log_dir, name="bot", port=port) as bot:
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
    port: int | None = None,
) -> Iterator[LaunchedBot]:
    """Run a gunicorn-style server on ``port`` (a free one by default; ``command`` may be built
    from the final environment) until /healthz answers, yield it, and stop it when the block
    ends."""
    port = port or free_port()
    metrics_port = free_port()
    folder = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    log_path = folder / f"{name}-{port}.log"
    child_env = {
        **os.environ,
        **env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "METRICS_PORT": str(metrics_port),
        "METRICS_DIR": str(folder / f"{name}-{port}-metrics"),
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": str(threads),
    }
    argv = command(child_env) if callable(command) else command
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, env=child_env, stdout=log, stderr=log)
    server = LaunchedBot(process, f"http://127.0.0.1:{port}", log_path,
                         f"http://127.0.0.1:{metrics_port}/metrics",
                         Path(child_env["METRICS_DIR"]))
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
