"""The sandbox's one lock, its record of requests and deliveries, and waiting on change.

Every module that touches sandbox state holds ``Journal.lock``; every change calls
``Journal.changed()`` so that ``wait_for`` wakes up without polling.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Recorded:
    """One HTTP request the sandbox received and the status it answered (0 when dropped)."""

    method: str
    path: str
    query: dict[str, str]
    json: object | None
    status: int
    headers: dict[str, str]


@dataclass(frozen=True)
class Delivery:
    """One webhook POST the sandbox made (status 0 when the connection failed)."""

    webhook_id: str
    resource: str
    event: str
    data_id: str | None
    status: int
    elapsed_seconds: float
    body: bytes = field(default=b"", repr=False)
    signature: str | None = field(default=None, repr=False)


def matches(pattern: str, value: str) -> bool:
    """Match a path exactly, or by prefix when the pattern ends in "*"."""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def method_matches(pattern: str, method: str) -> bool:
    """Match an HTTP method case-insensitively; "*" matches any."""
    return pattern == "*" or pattern.upper() == method.upper()


class Journal:
    """Hold the shared lock and what happened, and let tests wait for what should happen."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self._version = 0
        self._requests: list[Recorded] = []
        self._deliveries: list[Delivery] = []

    def changed(self) -> None:
        """Tell waiters that something happened."""
        with self.lock:
            self._version += 1
            self.lock.notify_all()

    def record_request(self, recorded: Recorded) -> None:
        """Keep a received request and wake waiters."""
        with self.lock:
            self._requests.append(recorded)
            self.changed()

    def record_delivery(self, delivery: Delivery) -> None:
        """Keep a webhook delivery and wake waiters."""
        with self.lock:
            self._deliveries.append(delivery)
            self.changed()

    @property
    def requests(self) -> list[Recorded]:
        """Every request received so far, oldest first."""
        with self.lock:
            return list(self._requests)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook delivery made so far, oldest first."""
        with self.lock:
            return list(self._deliveries)

    def requests_matching(self, method: str, path: str) -> list[Recorded]:
        """Requests with this method and this path (or path prefix ending in "*")."""
        return [
            r for r in self.requests if method_matches(method, r.method) and matches(path, r.path)
        ]

    def clear(self) -> None:
        """Forget recorded requests and deliveries."""
        with self.lock:
            self._requests.clear()
            self._deliveries.clear()
            self.changed()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Re-check predicate after every change until it is truthy; TimeoutError otherwise.

        The predicate runs without the lock held, so it may itself call the sandbox.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                seen = self._version
            result = predicate()
            if result:
                return result
            with self.lock:
                while self._version == seen:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(self._timeout_message(predicate, timeout))
                    self.lock.wait(remaining)

    def _timeout_message(self, predicate: Callable[[], object], timeout: float) -> str:
        """Say what was awaited and what did happen, so a failing test explains itself."""
        name = getattr(predicate, "__qualname__", repr(predicate))
        recent = [f"{r.method} {r.path} -> {r.status}" for r in self._requests[-8:]]
        sent = [f"{d.resource}/{d.event} {d.data_id} -> {d.status}" for d in self._deliveries[-8:]]
        return (
            f"condition {name} still false after {timeout}s; "
            f"last requests: {recent or 'none'}; last deliveries: {sent or 'none'}"
        )
