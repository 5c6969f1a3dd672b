"""The load generator, in its own process so that sending webhooks never steals the GIL from
the sandbox that plays Webex, and acknowledgement times are taken where Webex would take them.

Usage::

    with Driver() as driver:
        results = driver.fire(url, shots, concurrency=8)   # one result per shot, in shot order

Times are ``time.monotonic()``: on Linux that is the system-wide CLOCK_MONOTONIC, so the
orchestrator can compare them with the moments it sees the sandbox record the bot's replies.
"""

from __future__ import annotations

import http.client
import multiprocessing
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from urllib.parse import urlsplit

from bot.web.envelope import SIGNATURE_HEADER

SEND_TIMEOUT = 30.0


@dataclass(frozen=True)
class Shot:
    """One signed webhook delivery, ready to POST."""

    body: bytes
    signature: str


@dataclass(frozen=True)
class Result:
    """When a delivery left, when its answer came back, and the status (0: no answer)."""

    sent: float
    acked: float
    status: int

    @property
    def ack_seconds(self) -> float:
        """How long the server took to acknowledge."""
        return self.acked - self.sent


def post(url: str, shot: Shot) -> Result:
    """POST one delivery on a fresh connection, as a webhook sender with no pool would."""
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"no host in the webhook URL {url!r}")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=SEND_TIMEOUT)
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: shot.signature}
    sent = time.monotonic()
    try:
        connection.request("POST", parts.path, body=shot.body, headers=headers)
        response = connection.getresponse()
        response.read()
        status = response.status
    except OSError:
        status = 0
    finally:
        connection.close()
    return Result(sent, time.monotonic(), status)


def fire(url: str, shots: Sequence[Shot], concurrency: int) -> list[Result]:
    """Send every shot with at most ``concurrency`` in flight; each sender takes the next one."""
    results: list[Result | None] = [None] * len(shots)
    cursor = iter(range(len(shots)))
    lock = threading.Lock()

    def sender() -> None:
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            results[index] = post(url, shots[index])

    senders = [threading.Thread(target=sender) for _ in range(min(concurrency, len(shots)))]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    return [result for result in results if result is not None]


def serve(connection: Connection) -> None:
    """The driver process: fire each batch it is sent, answer with the results, stop on None."""
    while (batch := connection.recv()) is not None:
        url, shots, concurrency = batch
        connection.send(fire(url, shots, concurrency))


class Driver:
    """The orchestrator's handle on the driver process (spawned: no fork of a threaded parent)."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=serve, args=(child,), name="bench-driver")
        self._process.start()
        child.close()

    def fire(self, url: str, shots: Sequence[Shot], concurrency: int) -> list[Result]:
        """Send the shots from the driver process and return their results."""
        self._connection.send((url, list(shots), concurrency))
        return self._connection.recv()

    def close(self) -> None:
        """Stop the driver process."""
        self._connection.send(None)
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def __enter__(self) -> Driver:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
