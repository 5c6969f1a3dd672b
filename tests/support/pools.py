"""Helpers for connection-pool tests: many threads calling at once, and urllib3's pool lines."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest


def pool_log(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """urllib3's lines: connections opened, and connections discarded because the pool was full.

    Needs ``caplog.set_level(logging.DEBUG, logger="urllib3")`` for the opened ones.
    """
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    opened = [m for m in messages if m.startswith("Starting new HTTP connection")]
    discarded = [m for m in messages if "Connection pool is full" in m]
    return opened, discarded


def all_at_once(threads: int, rounds: int, call: Callable[[], Any]) -> None:
    """``threads`` threads make ``rounds`` calls each, every round started together."""
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(rounds):
                start.wait(timeout=10)
                call()
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)
            start.abort()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not failures, failures[0]
