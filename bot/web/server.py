"""How ``python -m bot serve`` runs gunicorn: where it listens, how many of what, the command,
and how many worker processes (``python -m bot work``) it runs beside the web processes."""

from __future__ import annotations

import sys
from dataclasses import dataclass

WORKER_CLASS = "bot.web.gunicorn_worker.BufferingThreadWorker"
LOGGER_CLASS = "bot.web.gunicorn_logging.JsonLogger"  # gunicorn's own lines as JSON too


@dataclass(frozen=True)
class ServerSettings:
    """The web processes: address, port, processes (WEB_CONCURRENCY), threads (WEB_THREADS);
    and the worker processes ``serve`` starts beside them (WORKER_PROCESSES; 0 when they run
    elsewhere, as the Procfile's ``worker:`` line)."""

    host: str = "0.0.0.0"
    port: int = 8080
    processes: int = 2
    threads: int = 8  # per process
    worker_processes: int = 1

    @property
    def bind(self) -> str:
        """gunicorn's ``--bind``: an IPv6 address goes in brackets."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def gunicorn_command(self, app: str) -> list[str]:
        """The command ``serve`` runs; the benchmark's floor runs the very same one."""
        return [
            sys.executable, "-m", "gunicorn", "--worker-class", WORKER_CLASS,
            "--logger-class", LOGGER_CLASS,
            "--workers", str(self.processes),
            "--threads", str(self.threads),
            "--timeout", "30", "--no-control-socket",
            "--bind", self.bind,
            app,
        ]
