"""Fuzzing the webhook front door: any bytes and headers get 200, 400, 401 or 413, never a 500.

Two targets share the strategies: ``Intake.receive`` called directly (fast, many cases) and the
Flask app of one running bot over a real socket (fewer cases). Properties: nothing that is not
signed over its exact bytes is stored or processed, and a signed envelope is always accepted.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.devtools.sandbox import Sandbox
from bot.events import HANDLED
from bot.jobs.storage import open_store
from bot.jobs.storage.sqlite import SqliteStore
from bot.secret import Secret
from bot.settings import Settings
from bot.web.envelope import MAX_DEPTH
from bot.web.intake import Intake
from tests.conftest import (
    CONTACT,
    WEBHOOK_SECRET,
    RunningBot,
    report_fuzz_cases,
    sandbox_settings,
    serve,
)

LIMIT = Settings.max_body_bytes
ALLOWED = {200, 400, 401, 413}
HEADER = "X-Spark-Signature"
TRIED: Counter[str] = Counter()
FAST = {"deadline": None, "database": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                  HealthCheck.large_base_example]}


@pytest.fixture(scope="module", autouse=True)
def cases_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module, print how many cases each fuzz target tried."""
    yield
    report_fuzz_cases(request, "webhook", TRIED)


# Strategies ---------------------------------------------------------------------------------

# Hypothesis also draws the project's own string constants, a guest's address among them; the
# bot logs the kind of an ignored event, so text that reads as a contact would trip the log audit.
texts = st.text(max_size=40).filter(lambda text: not CONTACT.search(text))
utf8_texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1,
                     max_size=60).filter(lambda text: not CONTACT.search(text))
lone_surrogates = st.sampled_from(["\ud800", "a\udfff", "\udc80x"])
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts | lone_surrogates
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=10,
)
DATA_KEYS = ("roomId", "roomType", "personId", "personEmail", "messageId", "created",
             "mentionedPeople", "type")


@st.composite
def envelopes(draw: st.DrawFn, kinds: st.SearchStrategy[tuple[str, str]] | None = None) -> dict:
    """A well-formed webhook envelope with any extra fields (the kinds Webex sends, or any)."""
    any_kind = st.tuples(utf8_texts, utf8_texts)
    resource, event = draw(kinds if kinds is not None
                           else st.sampled_from(sorted(HANDLED)) | any_kind)
    data = draw(st.dictionaries(st.sampled_from(DATA_KEYS) | texts, json_values, max_size=5))
    data["id"] = draw(utf8_texts)
    envelope = {"resource": resource, "event": event, "data": data}
    for name in ("id", "actorId", "orgId", "name"):
        if draw(st.booleans()):
            envelope[name] = draw(utf8_texts)
    envelope.update(draw(st.dictionaries(st.sampled_from(["status", "created", "ownedBy"]),
                                         json_values, max_size=2)))
    return envelope


@st.composite
def mangled_envelopes(draw: st.DrawFn) -> object:
    """An envelope with fields removed or given the wrong JSON type."""
    envelope = draw(envelopes())
    for name in draw(st.sets(st.sampled_from(["resource", "event", "data", "id", "actorId",
                                              "orgId", "data.id"]), min_size=1)):
        target, key = (envelope.get("data"), "id") if name == "data.id" else (envelope, name)
        if not isinstance(target, dict):
            continue
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(json_values | lone_surrogates | st.text(min_size=513,
                                                                         max_size=600))
    return envelope


@st.composite
def encoded(draw: st.DrawFn, values: st.SearchStrategy[object]) -> bytes:
    """JSON as any sender might write it: spacing, key order, escapes and encoding vary."""
    value = draw(values)
    text = json.dumps(
        value,
        indent=draw(st.none() | st.integers(0, 3)),
        separators=draw(st.sampled_from([None, (",", ":"), (", ", ": "), (" ,", " : ")])),
        ensure_ascii=draw(st.booleans()),
        sort_keys=draw(st.booleans()),
    )
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32"]))
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:  # a lone surrogate written unescaped
        return text.encode("utf-8", "surrogatepass")


def nested(depth: int, kind: str) -> bytes:
    """JSON nesting ``depth`` levels deep, alone or inside a valid envelope's data."""
    shapes = {
        "lists": b"[" * depth + b"]" * depth,
        "objects": b'{"a":' * depth + b"1" + b"}" * depth,
        "unclosed": b"[" * depth,
        # memberships/created about someone else: accepted, and the bot has nothing to do.
        "in data": b'{"resource":"memberships","event":"created","data":{"id":"DEEP",'
                   b'"personId":"SOMEONE-ELSE","x":'
                   + b"[" * depth + b"]" * depth + b"}}",
    }
    return shapes[kind]


# Around the limit, where json parses but copying recursed too deep (depends on the stack), and
# where the parser itself gives up.
DEPTHS = st.sampled_from([MAX_DEPTH - 3, MAX_DEPTH + 1, 300, 500, 700, 900, 1000, 100_000])
deep_bodies = st.builds(nested, DEPTHS | st.integers(1, 100_000),
                        st.sampled_from(["lists", "objects", "unclosed", "in data"]))
oversized = st.integers(1, 4096).map(lambda extra: b"{" + b" " * (LIMIT + extra) + b"}")
bodies = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
    encoded(json_values),
    encoded(mangled_envelopes()),
    encoded(envelopes()),
    deep_bodies,
    oversized,
)


def signature(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """What Webex sends: hex HMAC-SHA1 of the exact bytes."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def reserialised(body: bytes) -> bytes:
    """The body as a JSON-rewriting proxy would forward it (or one byte longer if not JSON)."""
    try:
        rewritten = json.dumps(json.loads(body), indent=2).encode()
    except (ValueError, RecursionError):
        rewritten = body
    return rewritten if rewritten != body else body + b" "


FORGERIES: dict[str, Callable[[bytes, str], str]] = {
    "wrong secret": lambda body, _: signature(body, "not-" + WEBHOOK_SECRET),
    "other bytes": lambda body, _: signature(reserialised(body)),
    "truncated": lambda body, _: signature(body)[:-1],
    "sha256": lambda body, _: hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest(),
    "random": lambda body, noise: noise,
    "hex noise": lambda body, noise: hashlib.sha1(noise.encode("utf-8", "replace")).hexdigest(),
}
RIGHT = {
    "exact": lambda sig: sig,
    "upper case": str.upper,
    "blank around": lambda sig: sig + " \t",
}
header_names = st.sampled_from([HEADER, HEADER.lower(), HEADER.upper()]) | st.lists(
    st.booleans(), min_size=len(HEADER), max_size=len(HEADER)
).map(lambda upper: "".join(c.upper() if u else c.lower() for c, u in zip(HEADER, upper,
                                                                           strict=True)))
noise = st.text(max_size=60)


@st.composite
def forged_headers(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """Headers whose signature is missing, misnamed or wrong for these bytes."""
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "text/plain", ""]))}
    kind = draw(st.sampled_from(["missing", "other name", *FORGERIES]))
    if kind == "other name":
        headers[draw(st.sampled_from(["X-Spark-Signature2", "X-Webex-Signature", "Signature"]))] \
            = signature(body)
    elif kind != "missing":
        headers[draw(header_names)] = FORGERIES[kind](body, draw(noise))
    return headers


@st.composite
def signed_headers(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """Headers carrying the right signature, the header name in any case."""
    spelling = RIGHT[draw(st.sampled_from(sorted(RIGHT)))]
    return {"Content-Type": "application/json", draw(header_names): spelling(signature(body))}


@st.composite
def deliveries(draw: st.DrawFn, signed: bool | None = None) -> tuple[bytes, dict[str, str]]:
    """Any body with forged or right headers (or either when ``signed`` is None)."""
    body = draw(bodies)
    sign_it = draw(st.booleans()) if signed is None else signed
    return body, draw(signed_headers(body) if sign_it else forged_headers(body))


def is_signed(body: bytes, headers: Mapping[str, str]) -> bool:
    """The oracle: the first signature header (any case) is the HMAC of these bytes."""
    value = next((v for k, v in headers.items() if k.lower() == HEADER.lower()), None)
    return value is not None and value.strip().lower() == signature(body)


# Targets ------------------------------------------------------------------------------------


def job_count(store: SqliteStore, event_id: str | None = None) -> int:
    """Every job the store holds, queued or done (only those of ``event_id`` when given)."""
    query, args = "SELECT count(*) FROM jobs", ()
    if event_id is not None:
        query, args = query + " WHERE event_id = ?", (event_id,)
    with contextlib.closing(sqlite3.connect(store.path)) as db:
        return int(db.execute(query, args).fetchone()[0])


@dataclass
class Front:
    """An intake over a real SQLite store, with nothing consuming its jobs."""

    intake: Intake
    store: SqliteStore

    def send(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str]]:
        """The intake's status and body for one delivery."""
        reply = self.intake.receive(body, headers)
        return reply.status, reply.body


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Front:
    """One intake for the module; its backlog limit is out of the way of many accepted cases."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/intake.sqlite3")
    assert isinstance(store, SqliteStore)
    config = Settings(bot_token=Secret("fuzz-token"), webhook_secret=Secret(WEBHOOK_SECRET),
                      max_backlog=1_000_000)
    return Front(Intake(config.intake_config(), store), store)


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBot]:
    """One bot served over a real socket for the whole module."""
    with Sandbox(seed=23) as box:
        yield from serve(box, sandbox_settings(box, tmp_path_factory.mktemp("fuzz-bot")))


def over_socket(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, Any]:
    """POST raw bytes; the status and the JSON answer (Flask's own 413 page is HTML: None)."""
    reply = requests.post(url, data=body, headers=dict(headers), timeout=30)
    try:
        return reply.status_code, reply.json()
    except ValueError:
        return reply.status_code, None


def wire_safe(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers as an HTTP client can send them: latin-1, one line, no leading blank."""
    return {
        name: "".join(c if " " <= c <= "\xff" and c != "\x7f" else "?" for c in value).lstrip()
        for name, value in headers.items()
    }


# Properties: the intake directly ------------------------------------------------------------


@settings(max_examples=700, **FAST)
@given(delivery=deliveries())
def test_intake_answers_only_200_400_401_413_and_stores_only_signed(
    front: Front, delivery: tuple[bytes, dict[str, str]]
) -> None:
    """Any delivery: an allowed status; oversize is 413; unsigned is 401 and stores nothing."""
    TRIED["intake, any delivery"] += 1
    body, headers = delivery
    before = job_count(front.store)
    status, reply = front.send(body, headers)
    assert status in ALLOWED, reply
    if len(body) > LIMIT:
        assert status == 413
    elif not is_signed(body, headers):
        assert (status, reply) == (401, {"error": "invalid signature"})
    if status != 200:
        assert job_count(front.store) == before


@settings(max_examples=400, **FAST)
@given(envelope=envelopes(), raw=st.data())
def test_intake_accepts_every_signed_envelope(
    front: Front, envelope: dict, raw: st.DataObject
) -> None:
    """A correctly signed envelope is 200, however it is spaced or encoded; handled kinds stored."""
    TRIED["intake, signed envelope"] += 1
    body = raw.draw(encoded(st.just(envelope)))
    status, reply = front.send(body, raw.draw(signed_headers(body)))
    assert status == 200, reply
    handled = (envelope["resource"], envelope["event"]) in HANDLED
    assert reply["status"] in (("accepted", "duplicate") if handled else ("ignored",))
    if handled:
        assert job_count(front.store, envelope["data"]["id"]) == 1


@settings(max_examples=300, **FAST)
@given(envelope=envelopes(st.sampled_from(sorted(HANDLED))), raw=st.data())
def test_intake_refuses_a_signed_body_rewritten_by_a_proxy(
    front: Front, envelope: dict, raw: st.DataObject
) -> None:
    """Signed as sent, forwarded re-serialised: 401 and nothing stored, whatever the JSON."""
    TRIED["intake, re-serialised"] += 1
    original = json.dumps(envelope, separators=(",", ":")).encode()
    rewritten = raw.draw(encoded(st.just(envelope)).filter(lambda b: b != original))
    before = job_count(front.store)
    assert front.send(rewritten, raw.draw(signed_headers(original)))[0] == 401
    assert job_count(front.store) == before


# Properties: the Flask app over a real socket -----------------------------------------------


@settings(max_examples=100, **FAST)
@given(delivery=deliveries(signed=False))
def test_socket_refuses_every_unsigned_delivery_and_the_bot_does_nothing(
    bot: RunningBot, delivery: tuple[bytes, dict[str, str]]
) -> None:
    """Over HTTP: 401 (413 when oversized), no job, and the sandbox sees no call from the bot."""
    TRIED["socket, unsigned"] += 1
    body, headers = delivery[0], wire_safe(delivery[1])
    bot.idle()
    jobs, calls = job_count(bot.service.store), len(bot.sandbox.requests)
    status, _ = over_socket(bot.url, body, headers)
    assert status == (413 if len(body) > LIMIT else 401)
    assert job_count(bot.service.store) == jobs
    bot.idle()
    assert len(bot.sandbox.requests) == calls


def harmless(envelope: dict, bot_id: str) -> dict:
    """A handled envelope the bot can process without talking to anyone: its own message."""
    if (envelope["resource"], envelope["event"]) in HANDLED:
        envelope["resource"], envelope["event"] = "messages", "created"
        envelope["data"]["personId"] = bot_id
    return envelope


@settings(max_examples=100, **FAST)
@given(raw=st.data())
def test_socket_answers_signed_bodies_with_200_400_or_413(
    bot: RunningBot, raw: st.DataObject
) -> None:
    """Signed: a valid envelope is 200, anything else 200 ignored, 400 or 413; never a 500."""
    TRIED["socket, signed"] += 1
    bot_id = bot.sandbox.bot["id"]
    valid = raw.draw(st.booleans())
    envelope_bodies = encoded(envelopes().map(lambda e: harmless(e, bot_id)))
    body = raw.draw(envelope_bodies if valid else bodies.filter(lambda b: not _is_handled(b)))
    status, reply = over_socket(bot.url, body, raw.draw(signed_headers(body)))
    if valid:
        assert status == 200, reply
    elif len(body) > LIMIT:
        assert status == 413
    else:
        assert status in (200, 400), reply
        assert reply == {"status": "ignored"} if status == 200 else reply["error"]


def _is_handled(body: bytes) -> bool:
    """Whether the bytes happen to be a handled envelope (so the bot would act on them)."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict) and any(
        value.get("resource") == resource and value.get("event") == event
        for resource, event in HANDLED)


# Explicit cases, on both targets ------------------------------------------------------------


def status_on(target: str, front: Front, bot: RunningBot, body: bytes) -> int:
    """The status for these bytes, correctly signed, from the intake or over the socket."""
    headers = {HEADER: signature(body)}
    if target == "intake":
        return front.send(body, headers)[0]
    return over_socket(bot.url, body, headers)[0]


@pytest.mark.parametrize("depth", [MAX_DEPTH - 3, MAX_DEPTH + 1, 500, 1000, 100_000])
@pytest.mark.parametrize("kind", ["lists", "objects", "unclosed", "in data"])
@pytest.mark.parametrize("target", ["intake", "socket"])
def test_deeply_nested_signed_bodies_are_400_not_500(
    front: Front, bot: RunningBot, target: str, kind: str, depth: int
) -> None:
    """100k nested lists must not reach a RecursionError; a shallow envelope is still accepted."""
    body = nested(depth if kind != "objects" else min(depth, 40_000), kind)
    shallow_envelope = kind == "in data" and depth <= MAX_DEPTH - 2
    assert status_on(target, front, bot, body) == (200 if shallow_envelope else 400)


@pytest.mark.parametrize("field", ["data.id", "id", "actorId", "orgId"])
@pytest.mark.parametrize("target", ["intake", "socket"])
def test_a_lone_surrogate_in_an_id_is_400_not_500(
    front: Front, bot: RunningBot, target: str, field: str
) -> None:
    """JSON may escape half a UTF-16 pair; no store can key on it, so the envelope is refused."""
    envelope: dict[str, Any] = {"resource": "memberships", "event": "created",
                                "data": {"id": f"SURROGATE-{field}", "personId": "SOMEONE-ELSE"}}
    target_dict, key = (envelope["data"], "id") if field == "data.id" else (envelope, field)
    target_dict[key] = "\ud800-" + field
    body = json.dumps(envelope).encode()  # ASCII: the surrogate travels as an escape
    assert b"\\ud800" in body
    store = front.store if target == "intake" else bot.service.store
    before = job_count(store)
    assert status_on(target, front, bot, body) == 400
    assert job_count(store) == before
