"""Slow clients, as in issue 8: each sends a webhook's head, then its body a byte a second.

The benchmark measures deliveries beside them. They never finish their bodies; a connection the
server answers or closes (the buffering worker's read deadline: 408) is counted as cut and
opened again, so ``count`` of them trickle for as long as the block lasts, at most ``hold``
seconds (under plain gthread the deliveries wait for exactly that long)::

    with SlowClients(url, 20) as slow:      # returns once all 20 have sent their heads
        ...                                 # deliveries measured here
    slow.connections, slow.cut, slow.ended
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from types import TracebackType
from urllib.parse import urlsplit

TRICKLE_SECONDS = 1.0  # one body byte per connection this often
HOLD_SECONDS = 15.0  # the slow clients give up after this long, whatever happens
ANNOUNCED_BYTES = 10_000  # the Content-Length they announce (under MAX_BODY_BYTES)
READY_SECONDS = 30.0
TICK = 0.1  # how soon a stop is noticed


class SlowClients(threading.Thread):
    """``count`` connections trickling a webhook body to ``url``, from a thread of their own."""

    def __init__(self, url: str, count: int, hold: float = HOLD_SECONDS) -> None:
        super().__init__(name="bench-slow-clients", daemon=True)
        parts = urlsplit(url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nX-Spark-Signature: " + "0" * 40 + "\r\n"
            f"Content-Length: {ANNOUNCED_BYTES}\r\n\r\n{{"
        ).encode()
        self._count = count
        self._hold = hold
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        self.connections = 0  # opened in all
        self.cut = 0  # answered or closed by the server while trickling
        self.ended = float("inf")  # time.monotonic() when they stopped trickling and closed
        self.error: OSError | None = None

    def __enter__(self) -> SlowClients:
        self.start()
        if not self._ready.wait(READY_SECONDS) or self.error is not None:
            self.stop()
            raise RuntimeError(f"the slow clients could not connect: {self.error!r}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop trickling and close every connection."""
        self._stopping.set()
        self.join()

    def run(self) -> None:
        try:
            for _ in range(self._count):
                self._open()
        except OSError as error:
            self.error = error
        self._ready.set()
        try:
            if self.error is None:
                self._trickle()
        finally:
            self.ended = time.monotonic()
            for sock in self._sockets:
                sock.close()
            self._selector.close()

    def _trickle(self) -> None:
        """A byte on every connection each TRICKLE_SECONDS; reopen what the server cuts."""
        ends = time.monotonic() + self._hold
        tick = time.monotonic() + TRICKLE_SECONDS
        while not self._stopping.is_set() and (now := time.monotonic()) < ends:
            for key, _ in self._selector.select(max(0.0, min(TICK, tick - now))):
                self._reopen(key.fileobj)  # type: ignore[arg-type]
            if time.monotonic() >= tick:
                tick += TRICKLE_SECONDS
                for sock in list(self._sockets):
                    try:
                        sock.send(b" ")
                    except OSError:
                        self._reopen(sock)

    def _open(self) -> None:
        sock = socket.create_connection(self._address, timeout=5)
        sock.sendall(self._head)
        sock.setblocking(False)
        self._selector.register(sock, selectors.EVENT_READ)
        self._sockets.append(sock)
        self.connections += 1

    def _reopen(self, sock: socket.socket) -> None:
        """The server answered or closed this one: count it, and replace it."""
        self.cut += 1
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        self._sockets.remove(sock)
        sock.close()
        try:
            self._open()
        except OSError as error:
            self.error = error
