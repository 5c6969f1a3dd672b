"""A call that fails on the network is logged with the host and the cause an operator can act on
(DNS, refused, timeout, TLS, proxy), never a secret; the person still reads plain words.

Each failure is real: a closed port, a server that never answers, a server that does not speak
TLS, a proxy that is not there; only the name lookup is refused in-process (no DNS query leaves
the machine).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.devtools.as_deployed import free_port
from bot.errors import Timeout, Unreachable, UpstreamError
from bot.logs import JsonFormatter
from bot.secret import Secret
from bot.upstream import webex
from bot.upstream.retry import RetryPolicy
from bot.upstream.webex import WebexClient

TOKEN = "tok-network-failures-NjY2ZmYt"
PROXY_PASSWORD = "proxy-pass-5e1f9"
TWO_TRIES = RetryPolicy(max_attempts=2, base_delay=0.01, max_wait=0.02)


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """The TLS hello it cannot read is no news."""


@contextlib.contextmanager
def plain_http_server() -> Iterator[int]:
    """A plain HTTP server: a client that expects TLS there fails its handshake."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_such_host(monkeypatch: pytest.MonkeyPatch) -> str:
    """A host name the resolver does not know, refused here rather than by a DNS server."""
    name = "webex.does-not-resolve.example"
    real = socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return name


def failing_call(base_url: str) -> Callable[[], object]:
    client = WebexClient(Secret(TOKEN), base_url, timeout=1, retry=TWO_TRIES)
    return lambda: client.recent_messages("ROOM-secret-query", None, 5)


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The retry log lines as the bot writes them (masking the token like ``serve`` does)."""
    formatter = JsonFormatter([TOKEN, PROXY_PASSWORD])
    lines = [formatter.format(record) for record in caplog.records]
    assert not any(secret in line for line in lines for secret in (TOKEN, PROXY_PASSWORD))
    assert not any("ROOM-secret-query" in line for line in lines), "no query string in the log"
    entries = [json.loads(line) for line in lines]
    return [entry for entry in entries if entry["message"] == "retrying after a failed call"]


def test_a_refused_connection_names_the_host_and_port(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    with pytest.raises(Unreachable) as raised:
        failing_call(f"http://127.0.0.1:{port}/v1/")()
    [line] = retry_lines(caplog)
    assert (line["service"], line["host"], line["cause"]) == (
        "Webex", f"127.0.0.1:{port}", "connection refused")
    assert raised.value.describe() == "The bot could not reach Webex. Please try again shortly."


def test_a_name_that_does_not_resolve_says_dns(
    no_such_host: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(Unreachable):
        failing_call(f"https://{no_such_host}/v1/")()
    [line] = retry_lines(caplog)
    assert (line["host"], line["cause"]) == (no_such_host, "DNS: the host name does not resolve")


def test_a_server_that_never_answers_says_timeout(caplog: pytest.LogCaptureFixture) -> None:
    """Not retried (the request may have been acted on), so it is the failure's own fields,
    which the line telling the person's failure carries, that say it."""
    with silent_server() as port, pytest.raises(Timeout) as raised:
        failing_call(f"http://127.0.0.1:{port}/v1/")()
    assert retry_lines(caplog) == []
    fields = raised.value.log_fields()
    assert (fields["host"], fields["cause"]) == (f"127.0.0.1:{port}",
                                                 "timeout waiting for the answer")
    assert "did not answer in time" in raised.value.describe()


def test_a_failed_tls_handshake_says_tls(caplog: pytest.LogCaptureFixture) -> None:
    with plain_http_server() as port, pytest.raises(Unreachable) as raised:
        failing_call(f"https://127.0.0.1:{port}/v1/")()
    [line] = retry_lines(caplog)
    assert line["host"] == f"127.0.0.1:{port}" and line["cause"].startswith("TLS: ")
    assert "TLS" not in raised.value.describe()


def test_a_proxy_that_is_not_there_says_proxy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """HTTPS_PROXY with a password: the cause names the proxy, the password is nowhere."""
    monkeypatch.setenv("HTTP_PROXY", f"http://bot:{PROXY_PASSWORD}@127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(Unreachable):
        failing_call("http://webexapis.test.example/v1/")()
    [line] = retry_lines(caplog)
    assert (line["host"], line["cause"]) == ("webexapis.test.example", "proxy: connection refused")


def test_the_fields_are_for_the_log_and_absent_from_what_a_person_reads() -> None:
    """host and cause are kept beside the explanation, never inside it."""
    error = Unreachable("Webex", host="webexapis.com", cause="connection refused")
    assert error.log_fields() == {"service": "Webex", "status": None, "tracking_id": None,
                                  "error_type": "Unreachable", "host": "webexapis.com",
                                  "cause": "connection refused"}
    assert "webexapis.com" not in error.describe() and "refused" not in error.describe()
    assert "host" not in UpstreamError("Webex", status=503).log_fields()


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_the_sdk_user_agent_line_is_said_once_at_most_and_at_debug(
    level: int, caplog: pytest.LogCaptureFixture
) -> None:
    """webexpythonsdk logs its User-Agent at INFO for every client: at most one debug line."""
    caplog.set_level(level)
    webex._SDK_USER_AGENT_FILTER._said.clear()  # as in a new process
    for _ in range(3):
        WebexClient(Secret(TOKEN), "http://127.0.0.1:9/v1/")
    said = [r for r in caplog.records if r.getMessage().startswith("User-Agent:")]
    assert [r.levelno for r in said] == ([] if level == logging.INFO else [logging.DEBUG])
