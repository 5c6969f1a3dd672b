"""The webhook front door without Flask: signature, envelope, size, dedupe and storage."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import bot.web.envelope
from bot.events import Event
from bot.jobs.acceptance import REFUSAL_REPORT_SECONDS, Outcome
from bot.jobs.storage import Store, StoreUnavailable
from bot.secret import Secret
from bot.settings import Settings, SettingsError
from bot.web.envelope import sign, signature_matches
from bot.web.intake import Intake
from tests.conftest import WEBHOOK_SECRET

LIMIT = 4096


def envelope(data_id: str = "MSG-1", resource: str = "messages", event: str = "created",
             **data: Any) -> bytes:
    """A webhook body as Webex sends it (compact JSON, as a raw byte string)."""
    body = {"id": "HOOK-1", "name": "instant-connect-bot messages", "resource": resource,
            "event": event, "orgId": "ORG", "actorId": "PERSON-1",
            "data": {"id": data_id, "roomId": "ROOM-1", "personId": "PERSON-1", **data}}
    return json.dumps(body, separators=(",", ":")).encode()


def signed(body: bytes, header: str = "X-Spark-Signature") -> dict[str, str]:
    """Headers carrying the right signature of these exact bytes."""
    return {"Content-Type": "application/json", header: sign(body, WEBHOOK_SECRET)}


def settings(**changes: Any) -> Settings:
    """Minimal settings for the intake: a token, the secret and a small body limit."""
    values: dict[str, Any] = {"bot_token": Secret("token-abc"),
                              "webhook_secret": Secret(WEBHOOK_SECRET), "max_body_bytes": LIMIT}
    values.update(changes)
    return Settings(**values)


class Intakes:
    """An intake over a real SQLite store, counting how often workers were woken."""

    def __init__(self, store: Store, **changes: Any) -> None:
        self.store = store
        self.wakeups = 0
        self.intake = Intake(settings(**changes).intake_config(), store, on_accepted=self._woken)

    def _woken(self) -> None:
        self.wakeups += 1

    def receive(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        reply = self.intake.receive(body, headers)
        return reply.status, reply.body


@pytest.fixture
def front(store: Store) -> Intakes:
    return Intakes(store)


class DownStore:
    """A store whose engine cannot be reached."""

    def accept(
        self, event_id: str, kind: str, payload: str, max_backlog: int | None = None
    ) -> bool:
        raise StoreUnavailable("connection refused")

    def ping(self) -> None:
        raise StoreUnavailable("connection refused")


def test_a_signed_delivery_is_accepted_stored_once_and_wakes_a_worker(front: Intakes) -> None:
    """A correctly signed event: 200 accepted, one durable job, one wake-up."""
    body = envelope("MSG-ok")
    assert front.receive(body, signed(body)) == (200, {"status": "accepted"})
    assert front.store.backlog() == 1
    assert front.wakeups == 1
    job = front.store.claim("test", 30)
    assert job is not None and job.event_id == "MSG-ok" and job.kind == "messages"
    stored = Event.from_json(job.payload)
    assert (stored.resource, stored.event, stored.data_id) == ("messages", "created", "MSG-ok")
    assert stored.room_id == "ROOM-1" and stored.actor_id == "PERSON-1" and stored.org_id == "ORG"


def test_the_same_delivery_again_is_a_duplicate_and_stores_nothing_new(front: Intakes) -> None:
    """Webex redelivering the same event gets 200 duplicate and no second job."""
    body = envelope("MSG-dup")
    assert front.receive(body, signed(body))[1] == {"status": "accepted"}
    assert front.receive(body, signed(body)) == (200, {"status": "duplicate"})
    assert front.store.backlog() == 1
    assert front.wakeups == 1


def test_a_redelivery_with_other_envelope_fields_is_still_a_duplicate(front: Intakes) -> None:
    """Dedupe is on data.id, not on the bytes: a later retry with a new envelope is dropped."""
    created = datetime.now(UTC).isoformat(timespec="seconds")
    first, second = envelope("MSG-same"), envelope("MSG-same", created=created)
    assert first != second
    assert front.receive(first, signed(first))[1] == {"status": "accepted"}
    assert front.receive(second, signed(second))[1] == {"status": "duplicate"}
    assert front.store.backlog() == 1


@pytest.mark.parametrize(
    "header", ["X-Spark-Signature", "x-spark-signature", "X-SPARK-SIGNATURE", "x-SpArK-sIgNaTuRe"]
)
def test_the_signature_header_name_is_case_insensitive(front: Intakes, header: str) -> None:
    """Proxies change header case; the signature is found whatever the case."""
    body = envelope(f"MSG-{header}")
    assert front.receive(body, signed(body, header))[0] == 200
    assert front.store.backlog() == 1


def test_an_upper_case_hex_signature_is_the_same_signature(front: Intakes) -> None:
    """Hex digits are compared case-insensitively (and surrounding blanks are ignored)."""
    body = envelope("MSG-upper")
    headers = {"X-Spark-Signature": f" {sign(body, WEBHOOK_SECRET).upper()} "}
    assert front.receive(body, headers)[0] == 200


def reserialised(body: bytes) -> bytes:
    """What a proxy that parses and re-encodes JSON would forward."""
    return json.dumps(json.loads(body), indent=1).encode()


FORGERIES: dict[str, Callable[[bytes], dict[str, str]]] = {
    "missing": lambda body: {"Content-Type": "application/json"},
    "empty": lambda body: {"X-Spark-Signature": ""},
    "wrong secret": lambda body: {"X-Spark-Signature": sign(body, "another-secret")},
    "truncated": lambda body: {"X-Spark-Signature": sign(body, WEBHOOK_SECRET)[:-1]},
    "sha256": lambda body: {"X-Spark-Signature": hmac.new(
        WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()},
    "re-serialised body": lambda body: {"X-Spark-Signature": sign(reserialised(body),
                                                                  WEBHOOK_SECRET)},
    "non-ascii": lambda body: {"X-Spark-Signature": "é" * 40},
    "other header": lambda body: {"X-Webex-Signature": sign(body, WEBHOOK_SECRET)},
}


@pytest.mark.parametrize("forgery", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_missing_or_wrong_signature_is_refused_and_nothing_is_stored(
    front: Intakes, forgery: Callable[[bytes], dict[str, str]]
) -> None:
    """401 for every delivery not signed over these bytes with the secret; nothing stored."""
    body = envelope("MSG-forged")
    assert front.receive(body, forgery(body)) == (401, {"error": "invalid signature"})
    assert front.store.backlog() == 0
    assert front.wakeups == 0


def test_a_body_reserialised_by_a_proxy_no_longer_matches_its_signature(front: Intakes) -> None:
    """The signature is over raw bytes: the same JSON with other spacing is refused."""
    original = envelope("MSG-proxy")
    headers = signed(original)
    changed = reserialised(original)
    assert json.loads(changed) == json.loads(original)
    assert front.receive(changed, headers)[0] == 401
    assert front.store.backlog() == 0
    assert front.receive(original, headers)[0] == 200


def test_unusual_but_signed_bytes_are_verified_as_sent(front: Intakes) -> None:
    """Whitespace, key order and unicode escapes are kept: the check never re-encodes."""
    body = (b'{ "data" : {"id":"MSG-\\u00e9", "roomId":"R"},\n "event":"created",'
            b' "resource":"messages" }')
    assert front.receive(body, signed(body))[0] == 200
    job = front.store.claim("test", 30)
    assert job is not None and job.event_id == "MSG-\u00e9"


def test_the_comparison_is_constant_time_over_the_raw_bytes(
    monkeypatch: pytest.MonkeyPatch, front: Intakes
) -> None:
    """hmac.compare_digest decides, given the HMAC-SHA1 of the exact bytes received."""
    calls: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(bot.web.envelope.hmac, "compare_digest", recording)
    body = envelope("MSG-ct")
    expected = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert front.receive(body, {"X-Spark-Signature": "0" * 40})[0] == 401
    assert front.receive(body, {"X-Spark-Signature": expected})[0] == 200
    assert len(calls) == 2
    assert {_text(a) for a, _ in calls} == {expected}
    assert [_text(b) for _, b in calls] == ["0" * 40, expected]


PREVIOUS_SECRET = "the-secret-being-rotated-out"


def test_during_a_rotation_either_secret_signs_and_no_other(store: Store) -> None:
    """WEBHOOK_SECRET_PREVIOUS: Webex may still sign with the old secret while ``webhooks sync``
    moves each webhook to the new one; both pass, a third does not, and once the old secret is
    dropped from the settings its deliveries are refused."""
    rotating = Intakes(store, previous_webhook_secret=Secret(PREVIOUS_SECRET))
    bodies = [envelope(f"MSG-rot-{n}") for n in range(3)]
    assert rotating.receive(bodies[0], {"X-Spark-Signature": sign(bodies[0], PREVIOUS_SECRET)}
                            )[0] == 200
    assert rotating.receive(bodies[1], signed(bodies[1]))[0] == 200
    assert rotating.receive(bodies[2], {"X-Spark-Signature": sign(bodies[2], "x" * 20)}
                            )[0] == 401
    rotated = Intakes(store)
    assert rotated.receive(bodies[2], {"X-Spark-Signature": sign(bodies[2], PREVIOUS_SECRET)}
                           )[0] == 401
    assert store.backlog() == 2


def test_during_a_rotation_both_secrets_are_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, store: Store
) -> None:
    """Each secret's signature is compared with compare_digest, the second even when the first
    matched: the time taken does not tell which secret signed."""
    front = Intakes(store, previous_webhook_secret=Secret(PREVIOUS_SECRET))
    compared: list[Any] = []
    original = hmac.compare_digest
    monkeypatch.setattr(bot.web.envelope.hmac, "compare_digest",
                        lambda a, b: compared.append(a) or original(a, b))
    body = envelope("MSG-ct-rot")
    assert front.receive(body, signed(body))[0] == 200
    assert {_text(a) for a in compared} == {sign(body, WEBHOOK_SECRET), sign(body, PREVIOUS_SECRET)}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@pytest.mark.parametrize(
    "signature", [None, "", "é" * 40, "\ud800", "g" * 40],
    ids=["none", "empty", "latin-1", "lone surrogate", "not hex"],
)
def test_signature_matches_refuses_odd_values_without_raising(signature: str | None) -> None:
    """Absent, empty, non-ASCII or non-hex signatures are simply not a match."""
    assert signature_matches(b"{}", signature, WEBHOOK_SECRET) is False


MALFORMED = {
    "not json": b"this is not json",
    "not utf-8": b"\xff\xfe\xfa not text",
    "a list": b"[1, 2]",
    "a string": b'"messages"',
    "empty object": b"{}",
    "data not an object": b'{"resource":"messages","event":"created","data":"MSG-1"}',
    "no data.id": b'{"resource":"messages","event":"created","data":{"roomId":"R"}}',
    "data.id not text": b'{"resource":"messages","event":"created","data":{"id":7}}',
    "no resource": b'{"event":"created","data":{"id":"MSG-1"}}',
    "empty resource": b'{"resource":"","event":"created","data":{"id":"MSG-1"}}',
    "no event": b'{"resource":"messages","data":{"id":"MSG-1"}}',
    "actorId not text": b'{"resource":"messages","event":"created","actorId":1,'
                        b'"data":{"id":"MSG-1"}}',
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_signed_body_that_is_not_a_webhook_is_a_bad_request(front: Intakes, body: bytes) -> None:
    """400 with a reason for anything that is not an envelope, even correctly signed."""
    status, reply = front.receive(body, signed(body))
    assert status == 400
    assert reply["error"]
    assert front.store.backlog() == 0


@pytest.mark.parametrize(
    ("resource", "event"),
    [("rooms", "updated"), ("messages", "deleted"), ("memberships", "deleted")],
)
def test_an_event_the_bot_does_not_handle_is_acknowledged_and_not_stored(
    front: Intakes, resource: str, event: str
) -> None:
    """200 ignored, so Webex does not retry it or disable the webhook, and no job."""
    body = envelope("ROOM-1", resource=resource, event=event)
    assert front.receive(body, signed(body)) == (200, {"status": "ignored"})
    assert front.store.backlog() == 0
    assert front.wakeups == 0


@pytest.mark.parametrize(
    ("resource", "data_id"), [("attachmentActions", "ACTION-1"), ("memberships", "MEMBERSHIP-1")]
)
def test_card_submits_and_new_memberships_are_accepted(
    front: Intakes, resource: str, data_id: str
) -> None:
    """The other two handled kinds are stored with their resource as the job kind."""
    body = envelope(data_id, resource=resource)
    assert front.receive(body, signed(body))[0] == 200
    job = front.store.claim("test", 30)
    assert job is not None and (job.event_id, job.kind) == (data_id, resource)


def padded(size: int) -> bytes:
    """A valid envelope of exactly ``size`` bytes."""
    bare = envelope("MSG-big", pad="")
    return envelope("MSG-big", pad="x" * (size - len(bare)))


def test_an_oversized_body_is_refused_before_anything_else(front: Intakes) -> None:
    """413 for one byte over the limit, even when signed; nothing stored."""
    body = padded(LIMIT + 1)
    assert len(body) == LIMIT + 1
    assert front.receive(body, signed(body)) == (413, {"error": "body too large"})
    assert front.store.backlog() == 0


def test_a_body_of_exactly_the_limit_is_accepted(front: Intakes) -> None:
    """The limit itself is allowed."""
    body = padded(LIMIT)
    assert len(body) == LIMIT
    assert front.receive(body, signed(body))[0] == 200


def test_store_unavailable_asks_webex_to_deliver_again() -> None:
    """503 when the event cannot be stored durably, so Webex delivers it again later."""
    front = Intakes(DownStore())  # type: ignore[arg-type]
    body = envelope("MSG-down")
    assert front.receive(body, signed(body)) == (503, {"error": "storage unavailable"})
    assert front.wakeups == 0


def test_store_unavailable_does_not_hide_a_bad_signature() -> None:
    """The signature is checked first: a forged delivery is 401 even when the store is down."""
    front = Intakes(DownStore())  # type: ignore[arg-type]
    assert front.receive(envelope(), {"X-Spark-Signature": "0" * 40})[0] == 401


def test_the_intake_refuses_to_be_built_without_a_webhook_secret(store: Store) -> None:
    """No secret and no explicit opt-out: building the intake fails and says what to set."""
    with pytest.raises(SettingsError) as raised:
        Intake(settings(webhook_secret=None).intake_config(), store)
    assert "WEBHOOK_SECRET" in str(raised.value)
    assert "ALLOW_UNSIGNED_WEBHOOKS" in str(raised.value)


def test_unsigned_deliveries_are_accepted_only_when_explicitly_allowed(store: Store) -> None:
    """ALLOW_UNSIGNED_WEBHOOKS without a secret accepts an unsigned event (local development)."""
    front = Intakes(store, webhook_secret=None, allow_unsigned_webhooks=True)
    body = envelope("MSG-unsigned")
    assert front.receive(body, {})[0] == 200
    assert store.backlog() == 1


def test_a_configured_secret_is_enforced_even_when_unsigned_is_allowed(store: Store) -> None:
    """The opt-out never weakens a secret that is set: unsigned is still 401."""
    front = Intakes(store, allow_unsigned_webhooks=True)
    assert front.receive(envelope("MSG-x"), {})[0] == 401
    assert store.backlog() == 0


def test_a_full_backlog_is_refused_and_nothing_grows(store: Store, caplog: Any) -> None:
    """Events beyond MAX_BACKLOG get 503 and are not stored; the log says why."""
    intake = Intake(settings(max_backlog=3).intake_config(), store)
    bodies = [envelope(data_id=f"m{n}") for n in range(6)]
    statuses = [intake.receive(body, signed(body)).status for body in bodies]
    assert statuses == [200, 200, 200, 503, 503, 503]
    assert store.backlog() == 3
    assert "backlog full" in caplog.text


def test_a_flood_beyond_the_backlog_is_said_in_a_few_lines(store: Store, caplog: Any) -> None:
    """600 refused deliveries, with events taken as the workers free room: one line when
    refusing starts, one count after REFUSAL_REPORT_SECONDS, one once it has stopped; not a
    line per delivery, nor a start and a stop each time a slot frees."""
    now = [1_000.0]
    intake = Intake(settings(max_backlog=1).intake_config(), store, clock=lambda: now[0])
    caplog.set_level(logging.INFO)

    def deliver(data_id: str) -> int:
        body = envelope(data_id)
        return intake.receive(body, signed(body)).status

    def finish_one() -> None:  # a worker frees a slot
        job = store.claim("test", 30)
        assert job is not None
        store.complete(job.event_id, "test")

    assert deliver("MSG-first") == 200
    start = now[0]
    for n in range(600):
        now[0] = start + n / 64  # 600 refusals over 9.4 seconds
        if n % 100 == 50:
            finish_one()
            assert deliver(f"MSG-taken-{n}") == 200
        assert deliver(f"MSG-flood-{n}") == 503
    finish_one()
    now[0] += 1
    assert deliver("MSG-soon-after") == 200  # no refusal for a second only: not over yet
    finish_one()
    now[0] += REFUSAL_REPORT_SECONDS
    assert deliver("MSG-later") == 200

    said = [(r.levelname, r.getMessage().split(":")[0], getattr(r, "refused", None),
             getattr(r, "refused_total", None)) for r in caplog.records
            if r.name == "bot.jobs.acceptance" and r.levelno >= logging.WARNING]
    assert said == [("ERROR", "backlog full (MAX_BACKLOG)", None, None),
                    ("ERROR", "backlog still full", 320, 321),
                    ("WARNING", "backlog has room again", None, 600)]


def test_an_event_older_than_the_dedupe_retention_is_acknowledged_and_dropped(
    store: Store,
) -> None:
    """A captured delivery replayed after DEDUPE_RETENTION cannot be deduped: 200, not stored."""
    front = Intakes(store, dedupe_retention=timedelta(hours=2))
    now = datetime.now(UTC)
    old = envelope("MSG-old", created=(now - timedelta(hours=3)).isoformat())
    recent = envelope("MSG-new", created=(now - timedelta(hours=1)).isoformat())
    assert front.receive(old, signed(old)) == (200, {"status": "too old"})
    assert front.receive(recent, signed(recent)) == (200, {"status": "accepted"})
    assert store.backlog() == 1 and front.wakeups == 1


def test_only_an_event_the_store_could_not_take_must_come_again() -> None:
    """A duplicate, an ignored or a too old event is acknowledged as surely as an accepted one:
    none of them is stored now, so the name says what the outcome means for the sender."""
    assert {outcome for outcome in Outcome if not outcome.safe_to_acknowledge} == {
        Outcome.BUSY, Outcome.STORAGE_UNAVAILABLE}
