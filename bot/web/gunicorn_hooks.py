"""gunicorn's hooks for ``serve`` (``--config python:bot.web.gunicorn_hooks``): run in its master.

gunicorn takes any top-level name here that is one of its settings as that setting: only
hooks are defined.
"""

from __future__ import annotations

from typing import Any

from bot.metrics import forget_process


def child_exit(server: Any, worker: Any) -> None:
    """A web process died and was reaped: it no longer counts as alive in the metrics."""
    forget_process(worker.pid)
