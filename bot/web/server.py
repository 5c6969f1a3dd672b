"""How ``python -m bot serve`` runs gunicorn: where it listens, how many of what, the command,
and how many worker processes (``python -m bot work``) it runs beside the web processes.

gunicorn listens on a second port for the metrics (``METRICS_PORT``; the web processes answer
``/metrics`` there and only there) and reads its hooks from :mod:`bot.web.gunicorn_hooks`."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from bot.limits import GRACEFUL_STOP_SECONDS

WORKER_CLASS = "bot.web.gunicorn_worker.BufferingThreadWorker"
LOGGER_CLASS = "bot.web.gunicorn_logging.JsonLogger"  # gunicorn's own lines as JSON too
HOOKS = "python:bot.web.gunicorn_hooks"
SILENT_PROCESS_SECONDS = 30  # gunicorn's --timeout: a web process silent this long is replaced


@dataclass(frozen=True)
class ServerSettings:
    """The web processes: address, port, processes (WEB_CONCURRENCY), threads (WEB_THREADS);
    and the worker processes ``serve`` starts beside them (WORKER_PROCESSES; 0 when they run
    elsewhere, as the Procfile's ``worker:`` line); where the metrics are scraped (METRICS_PORT,
    0 for none, on METRICS_HOST, by default HOST) and where the processes keep them
    (METRICS_DIR)."""

    host: str = "0.0.0.0"
    port: int = 8080
    processes: int = 2
    threads: int = 8  # per process
    worker_processes: int = 1
    metrics_port: int = 9464
    metrics_host: str | None = None  # None: HOST's
    metrics_dir: str | None = None  # None: one in the temporary directory (settings.py)

    @property
    def bind(self) -> str:
        """gunicorn's ``--bind``: an IPv6 address goes in brackets."""
        return _address(self.host, self.port)

    @property
    def metrics_bind(self) -> str:
        """Where gunicorn listens for scrapes."""
        return _address(self.metrics_host or self.host, self.metrics_port)

    def gunicorn_command(self, app: str) -> list[str]:
        """The command ``serve`` runs; the benchmark's floor runs the very same one."""
        return [
            sys.executable, "-m", "gunicorn", "--worker-class", WORKER_CLASS,
            "--logger-class", LOGGER_CLASS,
            "--workers", str(self.processes),
            "--threads", str(self.threads),
            "--timeout", str(SILENT_PROCESS_SECONDS),
            "--graceful-timeout", str(GRACEFUL_STOP_SECONDS),
            "--no-control-socket",
            "--bind", self.bind,
            *(("--bind", self.metrics_bind) if self.metrics_port else ()),
            "--config", HOOKS,
            app,
        ]


def _address(host: str, port: int) -> str:
    """host:port, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
