"""A tiny HTTP CONNECT proxy on a free local port, recording who asked to go where."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Proxy:
    """The proxy's address and what it was asked: request lines and Proxy-Authorization."""

    port: int
    requests: list[str] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)


def _relay(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _tunnel(client: socket.socket, proxy: Proxy) -> None:
    with client:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        proxy.requests.append(lines[0])
        proxy.authorizations += [line.split(":", 1)[1].strip() for line in lines[1:]
                                 if line.lower().startswith("proxy-authorization:")]
        method, target, _ = lines[0].split(" ", 2)
        host, _, port = target.rpartition(":")
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        with socket.create_connection((host, int(port))) as upstream:
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            back = threading.Thread(target=_relay, args=(upstream, client), daemon=True)
            back.start()
            _relay(client, upstream)
            back.join()


@contextlib.contextmanager
def connect_proxy() -> Iterator[Proxy]:
    """Run the proxy until the block ends."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        proxy = Proxy(server.getsockname()[1])
        server.settimeout(0.1)
        stopping = threading.Event()

        def accept() -> None:
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    client, _ = server.accept()
                    client.settimeout(None)
                    threading.Thread(target=_tunnel, args=(client, proxy), daemon=True).start()

        loop = threading.Thread(target=accept, daemon=True)
        loop.start()
        try:
            yield proxy
        finally:
            stopping.set()
            loop.join()
