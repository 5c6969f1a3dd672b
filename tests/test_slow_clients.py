"""Slow clients cost a socket, not a request thread (issue 8): the gunicorn worker class at work.

Unit tests feed the worker's framing (``Incoming``) a byte at a time: a request is complete at
its last byte and not before, and what cannot be buffered is refused as soon as it shows. The
quick tests run a tiny echo app under the bot's own gunicorn command line with a subclass of the
worker whose read deadline is short, and check over raw sockets: exact bytes, Content-Length and
chunked bodies, keep-alive and pipelining, "100 Continue", 413 JSON for oversized bodies, 408
and a closed connection at the deadline, and slow clients not holding the threads. The slow
tests start the bot as deployed (``python -m bot serve``) against the sandbox and show that a
genuine signed delivery is answered while more slow clients than request threads trickle their
bodies a byte at a time, and that the deployed deadline cuts off a body that never ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config

from bot.devtools.as_deployed import LaunchedBot, launched, launched_bot, sandbox_env
from bot.devtools.sandbox import Sandbox
from bot.devtools.sandbox.delivery import message_event
from bot.settings import server_settings
from bot.web.envelope import SIGNATURE_HEADER, sign
from bot.web.gunicorn_worker import BufferingThreadWorker
from bot.web.request_framing import (
    BAD_CHUNKS,
    HEAD_LIMIT_BYTES,
    HEAD_TOO_LARGE,
    REQUEST_READ_SECONDS,
    TOO_LARGE,
    Incoming,
    Refused,
)

ROOT = Path(__file__).resolve().parent.parent
ECHO_BODY_LIMIT = 4096
QUICK_DEADLINE = 2.0
SECRET = "slow-client-tests-secret-41c7"
IO_TIMEOUT = 15.0


# The echo server: the worker under test, a short deadline, an app that reports what it got ---


class QuickDeadlineWorker(BufferingThreadWorker):  # type: ignore[misc]
    """The worker as deployed, with a read deadline short enough for quick tests."""

    read_seconds = QUICK_DEADLINE


def echo_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Answers with the length and SHA-256 of the body it read, and the worker's pid."""
    body = environ["wsgi.input"].read()
    answer = json.dumps({"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                         "path": environ["PATH_INFO"], "pid": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(answer)))])
    return [answer]


def echo_command(env: Mapping[str, str]) -> list[str]:
    """The bot's gunicorn command line, serving the echo app with the quick-deadline worker."""
    argv = server_settings(env).gunicorn_command(f"{__name__}:echo_app")
    argv[argv.index("--worker-class") + 1] = f"{__name__}.QuickDeadlineWorker"
    return argv


@pytest.fixture(scope="module")
def echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedBot]:
    env = {"WEBEX_BOT_TOKEN": "unused-by-the-echo-app", "MAX_BODY_BYTES": str(ECHO_BODY_LIMIT),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with launched(echo_command, env, workers=1, threads=2,
                  log_dir=tmp_path_factory.mktemp("echo"), name="echo") as server:
        yield server


def test_serve_runs_the_buffering_worker_and_the_echo_server_the_same_command_line() -> None:
    """``serve`` (and so the benchmark's floor) runs the worker; the echo server's command line
    differs only in the worker's quick-deadline subclass and in the app."""
    env = {"PORT": "1", "HOST": "127.0.0.1"}
    deployed, echoed = server_settings(env).gunicorn_command("x:app"), echo_command(env)
    at = deployed.index("--worker-class") + 1
    assert deployed[at] == "bot.web.gunicorn_worker.BufferingThreadWorker"
    assert deployed[:at] + deployed[at + 1:-1] == echoed[:at] + echoed[at + 1:-1]
    assert issubclass(QuickDeadlineWorker, BufferingThreadWorker)


# Raw HTTP/1.1 over a socket ---------------------------------------------------------------


class Client:
    """One connection, written byte for byte and read response by response."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=IO_TIMEOUT)
        self.rfile = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """The next response: status, headers (lower-case names) and body."""
        status_line = self.rfile.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.rfile.read(int(headers.get("content-length", "0")))
        return status, headers, body

    def closed_by_server(self) -> bool:
        """True once the server has closed its side (reads end of stream)."""
        return self.rfile.read(1) == b""

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


def request(path: str, body: bytes = b"", *, length: int | None = None,
            **headers: str) -> bytes:
    """A POST with these extra headers (``_`` in a name becomes ``-``). Content-Length is
    ``length`` when given, else the body's, and absent when the request is chunked."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if length is None and "Transfer_Encoding" not in headers:
        length = len(body)
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(pieces: Iterable[bytes], trailers: bytes = b"") -> bytes:
    """A chunked body, with an extension on every chunk-size line."""
    return b"".join(b"%x;piece=1\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + \
        trailers + b"\r\n"


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# The framing the loop follows, a byte at a time (no server) ---------------------------------


CFG = Config()
PEER = ("127.0.0.1", 40000)


def feed_bytewise(data: bytes, limit: int = ECHO_BODY_LIMIT) -> tuple[int | None, int]:
    """Feed ``data`` one byte at a time; the end found and how many bytes it took."""
    incoming = Incoming(b"", deadline=0.0, max_body=limit)
    for count in range(1, len(data) + 1):
        incoming.buf += data[count - 1:count]
        end = incoming.advance(CFG, PEER)
        if end is not None:
            return end, count
    return None, len(data)


@pytest.mark.parametrize("raw", [
    request("/a", b'{"x": "\r\n\r\n"}'),
    request("/a"),
    request("/a", Transfer_Encoding="chunked") + chunked([b"ab", b"\r\n0\r\n", b"c" * 40]),
    request("/a", Transfer_Encoding="chunked") + chunked([b"ab"], trailers=b"X-T: 1\r\n"),
    request("/a", Transfer_Encoding="chunked") + b"0\r\n\r\n",
])
def test_a_request_is_complete_exactly_at_its_last_byte_and_not_before(raw: bytes) -> None:
    pipelined = request("/next", b"more")
    assert feed_bytewise(raw + pipelined) == (len(raw), len(raw))


@pytest.mark.parametrize(("raw", "refusal"), [
    (request("/a", length=ECHO_BODY_LIMIT + 1), TOO_LARGE),
    (request("/a", Transfer_Encoding="chunked") + b"%x\r\n" % (ECHO_BODY_LIMIT + 1), TOO_LARGE),
    (request("/a", Transfer_Encoding="chunked") + chunked([b"x" * 1000] * 5), TOO_LARGE),
    (request("/a", Transfer_Encoding="chunked") + b"1;e=%s\r\nx\r\n" % (b"e" * 8000) * 10,
     TOO_LARGE),  # ten body bytes in 80 KB of chunk extensions
    (request("/a", Transfer_Encoding="chunked") + b"-1\r\n", BAD_CHUNKS),
    (request("/a", Transfer_Encoding="chunked") + b"2\r\nabcd", BAD_CHUNKS),
    (b"POST /a HTTP/1.1\r\nX: " + b"y" * (HEAD_LIMIT_BYTES + 1), HEAD_TOO_LARGE),
])
def test_what_cannot_be_buffered_is_refused_as_soon_as_it_shows(raw: bytes,
                                                                refusal: bytes) -> None:
    with pytest.raises(Refused) as refused:
        feed_bytewise(raw)
    assert refused.value.response == refusal


def test_a_head_gunicorn_refuses_is_handed_over_at_once_for_its_parser_to_answer() -> None:
    both = request("/a", b"ab", length=2, Transfer_Encoding="chunked")
    assert feed_bytewise(both)[0] == both.index(b"\r\n\r\n") + 4  # not waiting for a body
    bare = b"POST /a HTTP/1.1\nHost: a\n"
    assert feed_bytewise(bare) == (len(b"POST /a HTTP/1.1\n"), len(b"POST /a HTTP/1.1\n"))


def test_100_continue_is_wanted_only_for_an_announced_body() -> None:
    for raw, wanted in ((request("/a", length=5, Expect="100-continue"), True),
                        (request("/a", length=0, Expect="100-continue"), False),
                        (request("/a", length=5), False)):
        incoming = Incoming(raw, deadline=0.0, max_body=ECHO_BODY_LIMIT)
        incoming.advance(CFG, PEER)
        assert incoming.wants_continue is wanted


# Quick tests against the echo server -----------------------------------------------------


def test_a_content_length_body_reaches_the_app_byte_for_byte(echo: LaunchedBot) -> None:
    body = bytes(random.Random(1).randrange(256) for _ in range(ECHO_BODY_LIMIT))  # at the limit
    client = Client(echo.url)
    try:
        client.send(request("/exact", body[:10], length=len(body)))
        for at in range(10, len(body), 1000):  # the rest in pieces, as a slow network would
            time.sleep(0.01)
            client.send(body[at:at + 1000])
        status, _, answer = client.response()
    finally:
        client.close()
    assert status == 200
    assert json.loads(answer)["sha256"] == digest(body)
    assert json.loads(answer)["length"] == len(body)


def test_a_chunked_body_with_extensions_and_trailers_reaches_the_app_decoded(
    echo: LaunchedBot,
) -> None:
    pieces = [b"{\"a\":", b"\r\n", b"1}", b"x" * 3000]
    client = Client(echo.url)
    try:
        client.send(request("/chunked", Transfer_Encoding="chunked"))
        client.send(chunked(pieces, trailers=b"X-Checksum: 1\r\n"))
        status, _, answer = client.response()
    finally:
        client.close()
    assert status == 200
    assert json.loads(answer)["sha256"] == digest(b"".join(pieces))


def test_keep_alive_and_pipelined_requests_are_each_answered_on_one_connection(
    echo: LaunchedBot,
) -> None:
    client = Client(echo.url)
    try:
        client.send(request("/one", b"first"))
        first = client.response()
        client.send(request("/two", b"second"))  # the kept-alive connection's next request
        second = client.response()
        client.send(request("/three", b"third") + request("/four", b"fourth")
                    + request("/five", Transfer_Encoding="chunked") + chunked([b"fifth"]))
        pipelined = [client.response() for _ in range(3)]
    finally:
        client.close()
    answers = [first, second, *pipelined]
    assert [status for status, _, _ in answers] == [200] * 5
    assert all(headers["connection"] == "keep-alive" for _, headers, _ in answers)
    got = [json.loads(body) for _, _, body in answers]
    assert [g["path"] for g in got] == ["/one", "/two", "/three", "/four", "/five"]
    assert [g["sha256"] for g in got] == [digest(b) for b in
                                          (b"first", b"second", b"third", b"fourth", b"fifth")]


def test_an_oversized_content_length_is_refused_with_413_json_before_the_body_is_sent(
    echo: LaunchedBot,
) -> None:
    client = Client(echo.url)
    try:
        client.send(request("/big", length=ECHO_BODY_LIMIT + 1))  # the body is not sent
        status, headers, body = client.response()
        assert client.closed_by_server()
    finally:
        client.close()
    assert (status, json.loads(body)) == (413, {"error": "body too large"})
    assert headers["content-type"] == "application/json"


def test_an_oversized_chunked_body_is_refused_with_413_json(echo: LaunchedBot) -> None:
    client = Client(echo.url)
    try:
        client.send(request("/big", Transfer_Encoding="chunked"))
        client.send(chunked([b"x" * 1000] * 5)[:-5])  # 5000 bytes, no last chunk yet
        status, _, body = client.response()
    finally:
        client.close()
    assert (status, json.loads(body)) == (413, {"error": "body too large"})


def test_a_client_that_expects_100_continue_gets_it_once_then_its_answer(
    echo: LaunchedBot,
) -> None:
    client = Client(echo.url)
    try:
        client.send(request("/expect", length=4, Expect="100-continue"))
        interim = client.response()
        client.send(b"body")
        status, _, answer = client.response()
    finally:
        client.close()
    assert interim[0] == 100
    assert status == 200 and json.loads(answer)["sha256"] == digest(b"body")


def test_a_request_not_complete_by_the_deadline_gets_408_and_is_closed(
    echo: LaunchedBot,
) -> None:
    client = Client(echo.url)
    started = time.monotonic()
    try:
        client.send(request("/slow", b"abc", length=10))  # 7 bytes never come
        status, headers, _ = client.response()
        waited = time.monotonic() - started
        assert client.closed_by_server()
    finally:
        client.close()
    assert (status, headers["connection"]) == (408, "close")
    assert waited >= QUICK_DEADLINE * 0.9  # not before the deadline (no upper bound: shared CPU)


def test_heads_and_framing_the_loop_cannot_buffer_are_answered_not_waited_on(
    echo: LaunchedBot,
) -> None:
    """Each is answered long before the read deadline; gunicorn's parser answers its own."""
    cases = {
        b"POST /x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 70_000: 431,  # head over the limit
        request("/x", Transfer_Encoding="chunked") + b"zz\r\n": 400,  # not a chunk size
        request("/x", b"ab", length=2, Transfer_Encoding="chunked"): 400,  # CL and TE
        b"POST /x HTTP/1.1\nHost: a\n\n": 400,  # bare line feeds: gunicorn's 400
    }
    started = time.monotonic()
    statuses = []
    for raw, _ in cases.items():
        client = Client(echo.url)
        try:
            client.send(raw)
            statuses.append(client.response()[0])
        finally:
            client.close()
    assert statuses == list(cases.values())
    assert time.monotonic() - started < QUICK_DEADLINE * len(cases)


def test_slow_clients_do_not_hold_the_request_threads(echo: LaunchedBot) -> None:
    """Three times more trickling clients than threads; a whole request is still answered."""
    slow = [Client(echo.url) for _ in range(6)]
    try:
        for client in slow:
            client.send(request("/slow", b"a", length=100))
        time.sleep(0.2)  # under gthread each would now hold a thread, reading its body
        quick = Client(echo.url)
        try:
            quick.send(request("/quick", b"now"))
            status, _, answer = quick.response()
        finally:
            quick.close()
        for client in slow:  # none answered yet: they are still being read, in the loop
            client.sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                client.sock.recv(1)
    finally:
        for client in slow:
            client.close()
    assert status == 200 and json.loads(answer)["path"] == "/quick"


# Slow tests: the bot as deployed ---------------------------------------------------------


class Trickler(threading.Thread):
    """``count`` clients that each send a signed webhook's head at once, then its body a byte
    every ``interval`` seconds, and record when the first of them finished sending."""

    def __init__(self, url: str, count: int, body: bytes, trickled: int, interval: float) -> None:
        super().__init__(name="trickler", daemon=True)
        self.url, self.count, self.body = url, count, body
        self.split = len(body) - trickled
        self.interval = interval
        self.clients: list[Client] = []
        self.ready = threading.Event()
        self.first_finished: float | None = None
        self.failed: BaseException | None = None

    def run(self) -> None:
        try:
            head = request("/webhooks", self.body[:self.split], length=len(self.body), **{
                "Content_Type": "application/json", SIGNATURE_HEADER: sign(self.body, SECRET)})
            for _ in range(self.count):
                client = Client(self.url)
                client.send(head)
                self.clients.append(client)
            self.ready.set()
            for at in range(self.split, len(self.body)):
                time.sleep(self.interval)
                for client in self.clients:
                    client.send(self.body[at:at + 1])
            self.first_finished = time.monotonic()
        except BaseException as error:  # reported by the test
            self.failed = error
            self.ready.set()

    def answers(self) -> list[tuple[int, bytes]]:
        """Each client's response, once they have all sent everything."""
        self.join(timeout=60)
        assert self.failed is None, f"a slow client failed: {self.failed!r}"
        out = []
        for client in self.clients:
            status, _, body = client.response()
            out.append((status, body))
            client.close()
        return out


def ignored_envelope() -> bytes:
    """A valid, signed-later webhook body the bot acknowledges as ignored (no work queued)."""
    return json.dumps({"id": "HOOK-SLOW", "name": "slow", "resource": "rooms",
                       "event": "updated", "orgId": "ORG", "actorId": "SOMEONE",
                       "data": {"id": "ROOM-SLOW", "pad": "p" * 200}}).encode()


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[tuple[Sandbox, LaunchedBot, str]]:
    """The bot as ``python -m bot serve`` runs it (2 workers x 8 threads), a webhook for
    messages that only the test delivers."""
    with Sandbox(seed=8) as box:
        env = sandbox_env(box, f"sqlite:///{tmp_path}/bot.sqlite3", SECRET)
        with launched_bot(env, workers=2, threads=8, log_dir=tmp_path) as bot:
            hook = box.register_webhook(bot.webhook_url, SECRET, "messages", "created")
            box.disable_webhook(hook)
            yield box, bot, str(hook["id"])


@pytest.mark.slow
def test_a_genuine_delivery_is_answered_while_slow_clients_hold_more_sockets_than_threads(
    deployed: tuple[Sandbox, LaunchedBot, str],
) -> None:
    """40 clients trickle a webhook body a byte every 0.4 s (16 request threads in all); a
    signed delivery from the sandbox gets its 200 and its answer before any of them is done."""
    box, bot, hook = deployed
    person = box.add_person("slow.test@example.com", "Slow Test")
    room = box.direct_room(person)
    message = box.post_message(person, room, "help")
    trickler = Trickler(bot.url, 40, ignored_envelope(), trickled=15, interval=0.4)
    trickler.start()
    assert trickler.ready.wait(30) and trickler.failed is None
    time.sleep(1.0)  # under plain gthread every request thread is now blocked reading a body

    delivery = box.deliver(hook, message_event(message).data)
    delivered = time.monotonic()
    answered = box.wait_for(
        lambda: [m for m in box.messages_in(room) if m["personId"] == box.bot["id"]],
        timeout=20)

    assert delivery.status == 200, delivery
    assert trickler.first_finished is None or trickler.first_finished > delivered, (
        f"the delivery was answered only after the slow clients finished "
        f"({delivery.elapsed_seconds:.1f} s)")
    assert answered
    # The trickled bodies arrive whole and exact: their signatures verify, they are ignored.
    answers = [(status, json.loads(body)) for status, body in trickler.answers()]
    assert answers == [(200, {"status": "ignored"})] * 40


@pytest.mark.slow
def test_the_deployed_read_deadline_answers_408_and_closes(
    deployed: tuple[Sandbox, LaunchedBot, str],
) -> None:
    """A body that never completes is cut off after REQUEST_READ_SECONDS, not held forever."""
    _, bot, _ = deployed
    client = Client(bot.url)
    started = time.monotonic()
    try:
        client.send(request("/webhooks", b"{", length=1000))
        status, _, _ = client.response()
        waited = time.monotonic() - started
        assert client.closed_by_server()
    finally:
        client.close()
    assert status == 408
    assert REQUEST_READ_SECONDS * 0.9 <= waited < REQUEST_READ_SECONDS + 10
