"""Serve a WSGI application from a background thread on a port the OS picks, and stop at once.

The accept loop waits on the listening socket and a wake-up socket together, so stopping
needs no polling interval.
"""

from __future__ import annotations

import selectors
import socket
import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Stay quiet: the sandbox records requests itself."""


class BackgroundServer:
    """A threaded HTTP server for one WSGI app, running until stop()."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:50123."""
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> None:
        """Bind the port and start serving."""
        if self._server is not None:
            raise RuntimeError("the server is already running")
        self._server = make_server(
            self._host, self._port, self._app, threaded=True, request_handler=QuietHandler
        )
        self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="sandbox-http", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """Accept connections until the wake-up socket speaks."""
        assert self._server is not None and self._wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._server.socket, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is self._wake[0] for key, _ in ready):
                    return
                self._server.handle_request()

    def stop(self) -> None:
        """Stop accepting, wait for the loop to end and release the port."""
        if self._server is None or self._wake is None or self._thread is None:
            return
        self._wake[1].send(b"x")
        self._thread.join()
        self._server.server_close()
        for end in self._wake:
            end.close()
        self._server = self._thread = self._wake = None
