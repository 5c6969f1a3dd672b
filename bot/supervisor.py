"""``python -m bot serve``: gunicorn's web processes and the worker processes, side by side.

The web processes only verify, store and answer; the job workers run in processes of their own
(``python -m bot work``), so an acknowledgement shares no GIL and no thread with them. This
process starts both, starts a worker process again when one dies (at once if it had run a while,
else after a backoff, so one that cannot start does not spin), and on SIGTERM or Ctrl-C passes
the signal on and waits: gunicorn finishes its requests, the workers their current job. A worker
that exits 2 said a setting is wrong (a token Webex refuses): starting it again cannot mend
that, so everything stops and ``serve`` exits 2, for the process manager to show.

A worker that dies loses nothing and holds nothing up: each worker process is started with an
owner id of its own (``--owner``, never reused), and once it is dead (reaped, so it can write
nothing more) its jobs are handed back at once and its heartbeat forgotten (``python -m bot
release-jobs``, a process of its own so that this one stays small), before another is started:
the web processes' /readyz says "no worker process" meanwhile, and the jobs go to the next
worker process without waiting for their leases to run out.

Its children do not outlive it: each is started with a parent-death signal (see
``bot.lifeline``), so a ``serve`` SIGKILLed by a process manager takes gunicorn (whose web
processes follow their master the same way) and the workers with it, and the port is free for
the next ``serve``.

``serve`` checks the settings, then replaces itself with ``python -m bot.supervisor``: this module
imports nothing but the standard library, the log format, the metrics' counting and the shared
limits, so the process that only watches the others holds about 12 MiB rather than the whole
bot's 50.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence

from bot import logs
from bot.lifeline import child_of_this_process
from bot.limits import GRACEFUL_STOP_SECONDS
from bot.metrics import forget_process

log = logging.getLogger("bot.supervisor")  # __name__ is "__main__" under python -m

WORKER_COMMAND = (sys.executable, "-m", "bot", "work")
RELEASE_COMMAND = (sys.executable, "-m", "bot", "release-jobs")
RELEASE_SECONDS = 15.0  # the store client's own timeouts and retries, and a margin
CHECK_SECONDS = 0.2  # how often dead children are looked for; wake-ups do not wait on it
STEADY_SECONDS = 30.0  # a worker that ran this long is started again at once
MAX_BACKOFF_SECONDS = 30.0
STOP_SECONDS = GRACEFUL_STOP_SECONDS + 10.0  # the web processes' graceful stop and a margin
FATAL_EXIT = 2  # a child's "the settings are wrong" (such as a token Webex refuses): stop all


class WorkerProcess:
    """One ``python -m bot work`` child, started again whenever it dies, once its jobs are
    handed back."""

    def __init__(self, number: int, command: Sequence[str],
                 release_command: Sequence[str]) -> None:
        self.number = number
        self.owner = ""
        self._command = list(command)
        self._release_command = list(release_command)
        self._quick_deaths = 0
        self._restart_at = 0.0
        self._started_at = 0.0
        self.process: subprocess.Popen[bytes] | None = None

    def keep_running(self, now: float) -> bool:
        """Start the process if it is not running and its backoff has passed; False when it
        exited with :data:`FATAL_EXIT` (a mistake starting it again cannot mend)."""
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return True
            forget_process(self.process.pid)
            if code == FATAL_EXIT:
                log.error("worker process stopped on a mistake in the settings (its line above "
                          "names it); stopping everything", extra={"worker": self.number})
                self.process = None
                self._release()
                return False
            self._died(code, now)
            self._release()
        if now >= self._restart_at:
            self.owner = f"{socket.gethostname()}:{uuid.uuid4().hex}"
            self.process = subprocess.Popen([*self._command, "--owner", self.owner],
                                            preexec_fn=child_of_this_process())
            self._started_at = now
            log.info("worker process started", extra={"worker": self.number,
                                                       "pid": self.process.pid})
        return True

    def _release(self) -> None:
        """Hand the dead process's jobs back now; if that fails, their leases still run out."""
        try:
            code = subprocess.run([*self._release_command, self.owner], timeout=RELEASE_SECONDS,
                                  preexec_fn=child_of_this_process()).returncode
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            log.warning("could not hand back the jobs of the worker process that died; they are "
                        "taken again when their leases run out", extra={"worker": self.number})

    def _died(self, code: int, now: float) -> None:
        self.process = None
        ran = now - self._started_at
        self._quick_deaths = 0 if ran >= STEADY_SECONDS else self._quick_deaths + 1
        delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (self._quick_deaths - 1)) \
            if self._quick_deaths else 0.0
        self._restart_at = now + delay
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        log.error("worker process died; starting another", extra={
            "worker": self.number, "how": how, "ran_seconds": round(ran, 1),
            "restart_in_seconds": delay})


def command(web_command: Sequence[str], worker_processes: int, log_level: str) -> list[str]:
    """The command line that runs :func:`main` in a fresh, small interpreter."""
    return [sys.executable, "-m", "bot.supervisor", "--workers", str(worker_processes),
            "--log-level", log_level, *web_command]


def main(argv: Sequence[str]) -> int:
    """Read :func:`command`'s line and supervise."""
    parser = argparse.ArgumentParser(prog="python -m bot.supervisor")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--log-level", required=True)
    parser.add_argument("web_command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    logs.configure(args.log_level)
    return supervise(args.web_command, args.workers)


def supervise(web_command: Sequence[str], worker_processes: int,
              worker_command: Sequence[str] = WORKER_COMMAND,
              release_command: Sequence[str] = RELEASE_COMMAND) -> int:
    """Run gunicorn and ``worker_processes`` workers until gunicorn exits, a worker exits with
    :data:`FATAL_EXIT` or a signal comes; return gunicorn's exit code, FATAL_EXIT, or 0 after a
    signal."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    workers = [WorkerProcess(number, worker_command, release_command)
               for number in range(1, worker_processes + 1)]
    for worker in workers:
        worker.keep_running(time.monotonic())
    web = subprocess.Popen(list(web_command), preexec_fn=child_of_this_process())
    try:
        while not stopping.wait(CHECK_SECONDS):
            if web.poll() is not None:
                log.error("the web server exited; stopping the workers",
                          extra={"exit_code": web.returncode})
                return web.returncode or 1
            if not all([worker.keep_running(time.monotonic()) for worker in workers]):
                return FATAL_EXIT
        log.info("stopping: the web server finishes its requests, the workers their jobs")
        return 0
    finally:
        _stop([web, *(worker.process for worker in workers if worker.process is not None)])


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child still running, wait for them, SIGKILL what outlives the wait."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
