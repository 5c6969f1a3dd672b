"""A gunicorn worker that reads each whole request in its event loop before a thread sees it.

Why: gthread hands a connection to a request thread once its first bytes arrive, and the thread
then blocks reading headers and body; twenty clients sending a body a byte a second held all 16
threads of ``python -m bot serve`` and genuine Webex deliveries waited as long (issue 8). Here
the worker's selector loop buffers head and body without blocking and hands the request to a
thread only once it is complete, its bytes exactly as received: a slow client costs a socket,
not a thread. Threads, keep-alive, the app and gunicorn's own parser are gthread's unchanged.
The loop answers itself, and closes, what it cannot buffer: 408 after ``REQUEST_READ_SECONDS``,
413 ``{"error": "body too large"}`` over ``MAX_BODY_BYTES`` (Content-Length or chunked), 431 for
a head over ``HEAD_LIMIT_BYTES``, 400 for broken chunking. TLS, HTTP/2, uWSGI and the PROXY
protocol (none used here) fall back to plain gthread. Usage::

    gunicorn --worker-class bot.web.gunicorn_worker.BufferingThreadWorker ... bot.web.wsgi:app
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import signal
import socket
import time
from concurrent.futures import Future
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from bot.lifeline import die_with_parent
from bot.metrics import record
from bot.web.request_framing import (
    CONTINUE,
    REQUEST_READ_SECONDS,
    TIMED_OUT,
    Incoming,
    MemoryUnreader,
    Refused,
)

#: Bytes read from a socket per readiness event.
RECV_BYTES = 64 * 1024
#: After an answer that closes the connection: how long, and how much, to keep reading what the
#: client still sends, so that closing does not reset the connection before it reads the answer
#: (gunicorn's own close_graceful does the same, but blocking).
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 1024 * 1024


class Connection(TConn):  # type: ignore[misc]
    """gthread's connection, with the bytes read past the end of its current request."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.ahead = b""  # the start of a pipelined next request
        self.drained = 0  # bytes discarded while lingering
        self.closed = False


def can_buffer(cfg: Any) -> bool:
    """Whether requests on this configuration are plain HTTP/1.x that the loop can frame."""
    return (not cfg.is_ssl
            and getattr(cfg, "protocol", "http") == "http"
            and getattr(cfg, "proxy_protocol", "off") in ("off", False, None)
            and getattr(cfg, "http2_cleartext", "off") in ("off", False, None))


def max_body_bytes() -> int:
    """The bot's MAX_BODY_BYTES (the default when the environment is not a bot's, e.g. the
    benchmark's bare floor app). Imported here, in the worker: the gunicorn master loads this
    module to find the worker class and need not carry the bot's settings."""
    from bot.settings import Settings, SettingsError

    try:
        return Settings.from_env().max_body_bytes
    except SettingsError:
        return Settings.max_body_bytes


class BufferingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread whose event loop buffers each whole request before a thread handles it."""

    read_seconds: float = REQUEST_READ_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffering = can_buffer(self.cfg)
        self.max_body = 0  # read in init_process, in the worker process
        # Insertion order is deadline order: every deadline is "now + a constant".
        self.incoming: dict[Connection, Incoming] = {}
        self.lingering: dict[Connection, float] = {}

    def init_process(self) -> None:
        """Follow the master when it dies, read the body limit, then run gthread's loop.

        gthread notices a dead master only between two turns of its loop (it compares its
        parent's pid, up to a second later); the parent-death signal ends it at once, through
        the same graceful stop as a SIGTERM from the master. Until gthread sets its own signal
        handlers the process still has the master's, which would swallow a SIGTERM (from the
        master stopping, or the parent-death signal) while the body limit's import takes half a
        second: the stop is taken here from the start (gthread's loop then never starts)."""
        signal.signal(signal.SIGTERM, self._stop_before_the_loop)
        die_with_parent(self.ppid)
        self.max_body = max_body_bytes()
        if not self.buffering:
            self.log.warning("BufferingThreadWorker: TLS, HTTP/2, uWSGI or PROXY protocol "
                             "configured; requests are read by threads, as gthread does")
        super().init_process()

    # connections arriving: accepted, or a kept-alive one with a next request ----------------

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection and start reading its first request in the loop."""
        if not self.buffering:
            super().accept(listener)
            return
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = Connection(self.cfg, client_sock, client_addr, listener.getsockname())
        self._read_request(conn, b"")

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection has a next request: read it in the loop, not in a thread."""
        if not self.buffering or not isinstance(conn, Connection):
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_request(conn, b"")
        self._on_readable(conn, client)

    def _read_request(self, conn: Connection, data: bytes) -> None:
        """Start buffering a request (``data``: what was already read of it)."""
        now = time.monotonic()
        deadline = now + self.read_seconds
        if not self.alive:
            deadline = min(deadline, now + STOP_KEEPALIVE_LINGER)
        self.incoming[conn] = Incoming(data, deadline, self.max_body)
        conn.sock.setblocking(False)
        if data and self._advance(conn):
            return
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Connection, _fileobj: Any) -> None:
        """Read what the client sent; hand the request over once it is complete."""
        incoming = self.incoming.get(conn)
        if incoming is None:
            return
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not data:  # the client left before finishing its request: nobody to answer
            self._close(conn)
            return
        incoming.buf += data
        self._advance(conn)

    def _advance(self, conn: Connection) -> bool:
        """Follow the request's framing; dispatch or refuse it when it can be. True when the
        request has left the loop."""
        incoming = self.incoming[conn]
        try:
            end = incoming.advance(self.cfg, conn.client)
        except Refused as refusal:
            self.log.debug("refused a request from %s: %s", conn.client, refusal)
            self._answer_and_close(conn, refusal.response)
            return True
        if end is None:
            if incoming.wants_continue:
                incoming.continued = True
                self._send_quietly(conn, CONTINUE)
            return False
        self._dispatch(conn, end)
        return True

    def _dispatch(self, conn: Connection, end: int) -> None:
        """Give a complete request to a thread, its bytes in the parser's memory."""
        incoming = self.incoming.pop(conn)
        self._unwatch(conn)
        conn.ahead = bytes(incoming.buf[end:])
        if conn.parser is None:
            conn.parser = RequestParser(self.cfg, [], conn.client)
            conn.parser.unreader = MemoryUnreader()
        conn.parser.unreader.feed(bytes(incoming.buf[:end]))
        conn.data_ready = True  # gthread must not wait on the socket for it
        self.enqueue_req(conn)

    # in the thread ---------------------------------------------------------------------------

    def handle_request(self, req: Any, conn: Any) -> bool:
        """gthread's, except that "100 Continue" was the loop's to send: the body is here."""
        if self.buffering and isinstance(conn, Connection):
            req._expected_100_continue = False
        return bool(super().handle_request(req, conn))

    # after the thread ------------------------------------------------------------------------

    def finish_request(self, conn: Any, fs: Future[Any]) -> None:
        """Keep the connection alive (reading the next request in the loop) or close it."""
        if not self.buffering or not isinstance(conn, Connection):
            super().finish_request(conn, fs)
            return
        try:
            keep = (not fs.cancelled()) and fs.result() is True
            if keep and conn.parser.unreader.held():
                keep = False  # the parser did not end where the loop did: unknown next request
            if not keep:
                self._linger(conn)
            elif conn.ahead:
                ahead, conn.ahead = conn.ahead, b""
                self._read_request(conn, ahead)
            else:
                conn.sock.setblocking(False)
                conn.set_timeout()
                if not self.alive:
                    conn.timeout = min(conn.timeout, time.monotonic() + STOP_KEEPALIVE_LINGER)
                self.keepalived_conns.append(conn)
                self.poller.register(conn.sock, selectors.EVENT_READ,
                                     partial(self.on_client_socket_readable, conn))
        except Exception:
            self._close(conn)

    def _answer_and_close(self, conn: Connection, response: bytes) -> None:
        """Send one short answer the loop wrote itself, then close."""
        record.webhook(int(response[9:12]), "")  # "HTTP/1.1 413 ...": refused before the app
        self.incoming.pop(conn, None)
        self._send_quietly(conn, response)
        self._linger(conn)

    def _send_quietly(self, conn: Connection, data: bytes) -> None:
        """One non-blocking send of a few bytes (they fit in any socket buffer)."""
        with contextlib.suppress(OSError):
            conn.sock.send(data)

    def _linger(self, conn: Connection) -> None:
        """Close as RFC 9112 9.6 says, without blocking the loop: send FIN, read and discard
        what the client still sends for a while, then close."""
        self._unwatch(conn)
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        self.lingering[conn] = time.monotonic() + LINGER_SECONDS
        self.poller.register(conn.sock, selectors.EVENT_READ,
                             partial(self._on_linger_readable, conn))

    def _on_linger_readable(self, conn: Connection, _fileobj: Any) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_MAX_BYTES:
            self._close(conn)

    def _unwatch(self, conn: Connection) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def _close(self, conn: Connection) -> None:
        """Close for good and forget the connection (once)."""
        if conn.closed:
            return
        conn.closed = True
        self._unwatch(conn)
        self.incoming.pop(conn, None)
        self.lingering.pop(conn, None)
        util.close(conn.sock)
        self.nr_conns -= 1

    # deadlines -------------------------------------------------------------------------------

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        """gthread's wait, woken in time for the next read deadline."""
        deadlines = [next(iter(self.incoming.values())).deadline] if self.incoming else []
        if self.lingering:
            deadlines.append(next(iter(self.lingering.values())))
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)

    def murder_pending(self) -> None:
        """gthread's, then 408 for requests past their deadline and the end of lingering."""
        super().murder_pending()
        now = time.monotonic()
        while self.incoming:
            conn, incoming = next(iter(self.incoming.items()))
            if incoming.deadline > now:
                break
            if incoming.buf:
                self.log.debug("request from %s not complete in time: 408", conn.client)
                self._answer_and_close(conn, TIMED_OUT)
            else:
                self._close(conn)  # it never said anything: nothing to answer
        while self.lingering:
            conn, deadline = next(iter(self.lingering.items()))
            if deadline > now:
                break
            self._close(conn)

    def _stop_before_the_loop(self, signum: int, frame: object) -> None:
        """SIGTERM before gthread's handlers are set (its own needs its loop's queue)."""
        self.alive = False

    def _cap_keepalive(self, deadline: float) -> None:
        """When stopping: requests being read get as long as kept-alive connections."""
        super()._cap_keepalive(deadline)
        for incoming in self.incoming.values():
            incoming.deadline = min(incoming.deadline, deadline)

    def murder_keepalived(self, force: bool = False) -> None:
        """gthread's; when forced (the worker exits), every connection of the loop goes too."""
        super().murder_keepalived(force)
        if force:
            for conn in [*self.incoming, *self.lingering]:
                self._close(conn)
