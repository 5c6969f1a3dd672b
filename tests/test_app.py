"""The Flask edge over a real socket: the intake's decisions, body limits, health and readiness."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from bot.devtools.in_process import serve_locally
from bot.devtools.sandbox import Sandbox
from bot.jobs.storage import StoreUnavailable
from bot.jobs.storage.sqlite import SqliteStore
from bot.service import BotService
from bot.web.app import create_app
from bot.web.envelope import sign
from tests.conftest import WEBHOOK_SECRET, RunningBot, sandbox_settings


def jobs(bot: RunningBot | BotService, event_id: str | None = None) -> int:
    """How many jobs the bot's SQLite store holds (queued or done), optionally for one event."""
    service = bot.service if isinstance(bot, RunningBot) else bot
    assert isinstance(service.store, SqliteStore)
    query, args = "SELECT count(*) FROM jobs", ()
    if event_id is not None:
        query, args = query + " WHERE event_id = ?", (event_id,)
    with contextlib.closing(sqlite3.connect(service.store.path)) as db:
        return int(db.execute(query, args).fetchone()[0])


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    """POST raw bytes the way Webex does."""
    return requests.post(url, data=body, timeout=10,
                         headers={"Content-Type": "application/json", **(headers or {})})


def signed(body: bytes, header: str = "X-Spark-Signature") -> dict[str, str]:
    """The right signature of these exact bytes."""
    return {header: sign(body, WEBHOOK_SECRET)}


@pytest.fixture
def message(running_bot: RunningBot) -> dict[str, Any]:
    """A real sandbox message the bot was not told about (no mention in a group space)."""
    sb = running_bot.sandbox
    alice = sb.add_person("alice@example.com", "Alice Example")
    room = sb.add_room("Clinic", members=[alice])
    posted = sb.post_message(alice, room, "just chatting", mention_bot=False)
    assert not sb.deliveries
    return posted


def envelope(message: dict[str, Any], resource: str = "messages", event: str = "created") -> bytes:
    """The webhook body announcing ``message``."""
    keys = ("id", "roomId", "roomType", "personId", "personEmail", "created")
    return json.dumps({
        "id": "HOOK", "name": "instant-connect-bot messages", "resource": resource,
        "event": event, "actorId": message["personId"], "orgId": "ORG",
        "data": {key: message[key] for key in keys},
    }).encode()


def test_a_signed_delivery_is_accepted_once_and_processed_once(
    running_bot: RunningBot, message: dict[str, Any]
) -> None:
    """200 accepted, then 200 duplicate for the redelivery; one job, one fetch of the message."""
    body = envelope(message)
    first = post(running_bot.url, body, signed(body))
    assert (first.status_code, first.json()) == (200, {"status": "accepted"})
    again = post(running_bot.url, body, signed(body))
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    running_bot.idle()
    assert jobs(running_bot, message["id"]) == 1
    fetched = running_bot.sandbox.requests_matching("GET", f"/v1/messages/{message['id']}")
    assert len(fetched) == 1


HEADER_SPELLINGS = ("X-Spark-Signature", "x-spark-signature", "X-SPARK-SIGNATURE",
                    "x-SpArK-sIgNaTuRe")


def test_the_signature_header_is_found_in_any_case(running_bot: RunningBot) -> None:
    """Header case does not matter on the wire either (one bot, one event per spelling)."""
    sb = running_bot.sandbox
    alice = sb.add_person("alice@example.com", "Alice Example")
    room = sb.add_room("Clinic", members=[alice])
    for header in HEADER_SPELLINGS:
        posted = sb.post_message(alice, room, f"signed as {header}", mention_bot=False)
        body = envelope(posted)
        assert post(running_bot.url, body, signed(body, header)).status_code == 200, header
        assert jobs(running_bot, posted["id"]) == 1, header


FORGED = {
    "missing": lambda body: {},
    "wrong": lambda body: {"X-Spark-Signature": sign(body, "not-the-secret")},
    "re-serialised": lambda body: {
        "X-Spark-Signature": sign(json.dumps(json.loads(body), indent=2).encode(), WEBHOOK_SECRET)
    },
    "latin-1 garbage": lambda body: {"X-Spark-Signature": "\xe9" * 40},
}


def test_unsigned_or_forged_deliveries_get_401_and_store_nothing(
    running_bot: RunningBot, message: dict[str, Any]
) -> None:
    """401 with a fixed body; the store stays empty and the message is never fetched."""
    body = envelope(message)
    for name, forge in FORGED.items():
        reply = post(running_bot.url, body, forge(body))
        assert (reply.status_code, reply.json()) == (401, {"error": "invalid signature"}), name
    assert jobs(running_bot) == 0
    assert not running_bot.sandbox.requests_matching("GET", "/v1/messages/*")


def test_a_body_reformatted_by_a_proxy_is_refused(
    running_bot: RunningBot, message: dict[str, Any]
) -> None:
    """The signature of the original bytes does not cover the same JSON re-spaced."""
    body = envelope(message)
    reformatted = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert reformatted != body
    assert post(running_bot.url, reformatted, signed(body)).status_code == 401
    assert jobs(running_bot) == 0


NOT_WEBHOOKS = {
    "not json": b"not json",
    "not an object": b"[]",
    "no data.id": b'{"resource":"messages","event":"created","data":{}}',
    "no resource": b'{"event":"created","data":{"id":"M"}}',
}


def test_a_signed_body_that_is_not_a_webhook_gets_400(running_bot: RunningBot) -> None:
    """400 naming the problem, nothing stored."""
    for name, body in NOT_WEBHOOKS.items():
        reply = post(running_bot.url, body, signed(body))
        assert reply.status_code == 400, name
        assert reply.json()["error"], name
    assert jobs(running_bot) == 0


def test_an_unhandled_resource_is_acknowledged_and_ignored(
    running_bot: RunningBot, message: dict[str, Any]
) -> None:
    """rooms/updated: 200 ignored so Webex keeps the webhook, and nothing stored."""
    body = envelope(message, resource="rooms", event="updated")
    reply = post(running_bot.url, body, signed(body))
    assert (reply.status_code, reply.json()) == (200, {"status": "ignored"})
    assert jobs(running_bot) == 0


def test_flask_refuses_an_oversized_body_with_413(running_bot: RunningBot) -> None:
    """MAX_CONTENT_LENGTH answers 413 before the body is read; nothing is stored."""
    limit = running_bot.service.settings.max_body_bytes
    body = b'{"resource":"messages","event":"created","data":{"id":"BIG"},"pad":"'
    body += b"x" * (limit + 1 - len(body) - 2) + b'"}'
    assert len(body) == limit + 1
    assert post(running_bot.url, body, signed(body)).status_code == 413
    assert jobs(running_bot) == 0


def test_a_chunked_oversized_body_is_refused_too(running_bot: RunningBot) -> None:
    """Without Content-Length the limit still holds while the body streams in."""
    limit = running_bot.service.settings.max_body_bytes
    chunks = [b'{"data":{"id":"BIG"},"pad":"'] + [b"x" * 8192] * (limit // 8192 + 1) + [b'"}']
    reply = requests.post(running_bot.url, data=iter(chunks), timeout=10,
                          headers={"X-Spark-Signature": "0" * 40})
    assert reply.status_code == 413
    assert jobs(running_bot) == 0


def test_deliveries_from_the_sandbox_are_verified_end_to_end(
    running_bot: RunningBot, message: dict[str, Any]
) -> None:
    """A signed sandbox delivery is accepted; forged bytes or a forged signature are refused."""
    sb = running_bot.sandbox
    hook = sb.register_webhook(running_bot.url, WEBHOOK_SECRET, "messages", "created",
                               name="instant-connect-bot messages")
    data = json.loads(envelope(message))["data"]
    forged = sb.deliver(hook, data, signature_override="0" * 40)
    genuine = sb.deliver(hook, data)
    respaced = json.dumps(json.loads(genuine.body), indent=2).encode()
    tampered = sb.deliver(hook, data, body_override=respaced, signature_override=genuine.signature)
    assert genuine.signature == sign(genuine.body, WEBHOOK_SECRET)
    assert [forged.status, genuine.status, tampered.status] == [401, 200, 401]
    assert jobs(running_bot, message["id"]) == 1


def test_healthz_answers_while_the_process_lives(running_bot: RunningBot) -> None:
    """GET /healthz is 200 without asking anything of Webex."""
    base = running_bot.url.rsplit("/", 1)[0]
    before = len(running_bot.sandbox.requests)
    reply = requests.get(f"{base}/healthz", timeout=10)
    assert (reply.status_code, reply.json()) == (200, {"status": "alive"})
    assert len(running_bot.sandbox.requests) == before


@contextlib.contextmanager
def served(service: BotService) -> Iterator[str]:
    """The app for ``service`` on a real local port; yields its base URL."""
    server = make_server("127.0.0.1", 0, create_app(service), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        service.stop()


def readyz(base: str) -> tuple[int, dict[str, Any]]:
    reply = requests.get(f"{base}/readyz", timeout=10)
    return reply.status_code, reply.json()


def test_readyz_is_200_when_the_token_works_and_the_store_answers(
    sandbox: Sandbox, tmp_path: Any
) -> None:
    """Ready: no problems, and the token really was checked with people/me."""
    with serve_locally(sandbox_settings(sandbox, tmp_path)) as local:
        status, body = readyz(local.webhook_url.rsplit("/", 1)[0])
    assert (status, body) == (200, {"status": "ready", "problems": []})
    assert sandbox.requests_matching("GET", "/v1/people/me")


def test_readyz_is_503_naming_a_rejected_token(sandbox: Sandbox, tmp_path: Any) -> None:
    """A 401 from people/me makes the bot not ready, and says it is the token."""
    sandbox.fail("GET", "/v1/people/me", status=401)
    with serve_locally(sandbox_settings(sandbox, tmp_path)) as local:
        status, body = readyz(local.webhook_url.rsplit("/", 1)[0])
    assert (status, body["status"]) == (503, "not ready")
    assert len(body["problems"]) == 1
    assert "token" in body["problems"][0] and "401" in body["problems"][0]
    assert sandbox.bot_token not in json.dumps(body)


class DownStore(SqliteStore):
    """A SQLite store whose ping and accept fail as if the engine were unreachable."""

    def ping(self) -> None:
        raise StoreUnavailable("database is locked")

    def accept(
        self, event_id: str, kind: str, payload: str, max_backlog: int | None = None
    ) -> bool:
        raise StoreUnavailable("database is locked")


def test_an_unreachable_store_makes_readyz_503_and_deliveries_503(
    sandbox: Sandbox, tmp_path: Any
) -> None:
    """Not ready while storage is down, and a signed delivery gets 503 so Webex retries."""
    settings = sandbox_settings(sandbox, tmp_path)
    service = BotService(settings, store=DownStore(tmp_path / "down.sqlite3"))
    body = b'{"resource":"messages","event":"created","data":{"id":"M-503"}}'
    with served(service) as base:
        status, ready = readyz(base)
        delivery = post(base + settings.webhook_path, body, signed(body))
    assert (status, ready["problems"]) == (503, ["storage unavailable"])
    assert (delivery.status_code, delivery.json()) == (503, {"error": "storage unavailable"})
