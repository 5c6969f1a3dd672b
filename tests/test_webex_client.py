"""WebexClient against the sandbox: its connection pool under many threads, its retry log lines,
and the 1:1 messages it can list to find a post whose answer it never got."""

from __future__ import annotations

import logging

import pytest

from bot.devtools.sandbox import Fault, Sandbox
from bot.errors import RateLimited, Rejected, Unavailable
from bot.secret import Secret
from bot.upstream.retry import RetryPolicy
from bot.upstream.webex import WebexClient
from tests.support.pools import all_at_once, pool_log

ME = "/v1/people/me"
ROUNDS = 3
LATENCY = 0.1  # long enough that every thread's call is in flight at the same time


@pytest.mark.parametrize(
    ("threads", "options"),
    [pytest.param(16, {"pool_size": 16}, id="pool_size-16"),
     pytest.param(32, {}, id="default-for-32-worker-threads")],
)
def test_threads_sharing_the_client_reuse_their_connections(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, threads: int, options: dict[str, int]
) -> None:
    """No "Connection pool is full", and no more connections opened than threads calling."""
    caplog.set_level(logging.DEBUG, logger="urllib3")
    sandbox.fail("GET", ME, status=None, latency=LATENCY)
    webex = WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url, **options)
    all_at_once(threads, ROUNDS, webex.check_token)
    assert len(sandbox.requests_matching("GET", ME)) == threads * ROUNDS
    opened, discarded = pool_log(caplog)
    assert discarded == []
    assert 0 < len(opened) <= threads


def test_pool_size_must_be_positive(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="pool_size"):
        WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url, pool_size=0)


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The bot's own "retrying after a failed call" records."""
    return [r for r in caplog.records if r.getMessage() == "retrying after a failed call"]


@pytest.mark.parametrize("retry_after", ["1.5", "0.25"])
def test_a_fractional_retry_after_is_logged_as_the_wait_really_made(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, retry_after: str
) -> None:
    """The SDK's "Malformed Retry-After ... Defaulting to 15 seconds" is gone; the bot's own line
    says the wait it sleeps: what Retry-After asked, never less (plus its small jitter)."""
    caplog.set_level(logging.DEBUG)
    waits: list[float] = []
    webex = WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url,
                        retry=RetryPolicy(max_attempts=2, sleep=waits.append))
    sandbox.fail("GET", ME, status=429, times=1, retry_after=retry_after)
    webex.check_token()

    assert [r.status for r in sandbox.requests_matching("GET", ME)] == [429, 200]
    assert [r.getMessage() for r in caplog.records if "Retry-After" in r.getMessage()] == []
    assert [r.getMessage() for r in caplog.records if "15 seconds" in r.getMessage()] == []
    [retrying] = retry_lines(caplog)
    assert (vars(retrying)["service"], vars(retrying)["status"]) == ("Webex", 429)
    [wait] = waits
    assert vars(retrying)["wait_seconds"] == round(wait, 3)
    assert float(retry_after) <= wait <= float(retry_after) * 1.1


def test_a_retry_after_without_jitter_is_logged_exactly(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """With the jitter drawing 0, every 429 of a persisting limit logs and waits exactly 1.5 s."""
    caplog.set_level(logging.DEBUG)
    waits: list[float] = []
    retry = RetryPolicy(max_attempts=3, sleep=waits.append, jitter=lambda: 0.0)
    webex = WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url, retry=retry)
    sandbox.fail("GET", ME, status=429, retry_after="1.5")
    with pytest.raises(RateLimited):
        webex.check_token()
    assert waits == [1.5, 1.5]
    assert [vars(r)["wait_seconds"] for r in retry_lines(caplog)] == [1.5, 1.5]
    assert [r for r in caplog.records if "Malformed Retry-After" in r.getMessage()] == []


def test_other_sdk_warnings_still_reach_the_log(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the one misleading line is filtered, not the SDK's logger."""
    caplog.set_level(logging.DEBUG)
    WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url)
    sdk = logging.getLogger("webexpythonsdk.exceptions")
    sdk.warning("Error parsing JSON response body")
    sdk.warning("Malformed Retry-After header received: 1.5. Defaulting to 15 seconds.")
    assert [r.getMessage() for r in caplog.records if r.name == sdk.name] == [
        "Error parsing JSON response body"]


# The bot's 1:1 messages with a person (GET /messages/direct) ---------------------------------


def test_direct_messages_lists_the_1to1_space_of_a_person_newest_first(sandbox: Sandbox) -> None:
    webex = WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url)
    alice = sandbox.add_person("alice@example.com", "Alice")
    first = webex.send(to_person_id=alice["id"], markdown="First")
    dm = sandbox.direct_room(alice)["id"]
    sandbox.post_message(alice, dm, "Hello", mention_bot=False)
    reply = webex.send(room_id=dm, parent_id=first, markdown="In the thread")
    last = webex.send(to_person_id=alice["id"], markdown="Last")

    listed = webex.direct_messages(alice["id"], None, 10)
    assert [m["id"] for m in listed[:2]] == [last, reply]
    texts = [m.get("markdown", m["text"]) for m in listed]
    assert texts == ["Last", "In the thread", "Hello", "First"]
    assert {m["roomType"] for m in listed} == {"direct"}
    assert [m["id"] for m in webex.direct_messages(alice["id"], first, 10)] == [reply]
    assert [m["id"] for m in webex.direct_messages(alice["id"], None, 2)] == [last, reply]
    [asked, *_] = sandbox.requests_matching("GET", "/v1/messages/direct")
    assert asked.query == {"personId": alice["id"]}  # no max: Webex documents none here


def test_direct_messages_of_a_person_without_a_1to1_space_is_a_404(sandbox: Sandbox) -> None:
    webex = WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url)
    bob = sandbox.add_person("bob@example.com", "Bob")
    with pytest.raises(Rejected) as refused:
        webex.direct_messages(bob["id"], None, 10)
    assert refused.value.status == 404


def test_a_post_webex_created_but_never_answered_is_in_the_1to1_space(sandbox: Sandbox) -> None:
    """The sandbox's ``after`` fault: the message is created, then its answer is a 503 (or a
    dropped connection): the client learns nothing, yet the person has the message."""
    webex = WebexClient(Secret(sandbox.bot_token), sandbox.webex_base_url,
                        retry=RetryPolicy(max_attempts=1))
    alice = sandbox.add_person("alice@example.com", "Alice")
    sandbox.add_fault(Fault.parse("POST /v1/messages status=503 times=1 after"))
    with pytest.raises(Unavailable):
        webex.send(to_person_id=alice["id"], markdown="Host links")
    [created] = webex.direct_messages(alice["id"], None, 10)
    assert created["markdown"] == "Host links"
    assert [r.status for r in sandbox.requests_matching("POST", "/v1/messages")] == [503]
