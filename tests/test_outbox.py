"""The outbox: a retried event never sends a message twice, and never takes another's message.

Each test drives `Outbox.for_event(...).send(...)` against a real SQLite store and a small fake
Webex that hands out ids, keeps the messages it "created" per space and thread (a message to a
person in their 1:1 space), and lists them newest first as Webex does. A try killed between Webex
creating a message and the record being written is played by a Webex that creates the message
and then raises `Killed`.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.errors import NotAuthorized, Rejected, Unavailable, Unconfirmed, UpstreamError
from bot.jobs import outbox as outbox_module
from bot.jobs.outbox import CLOCK_SKEW, Outbox
from bot.jobs.storage import Store, StoreUnavailable
from tests.support.guests import Killed
from tests.support.webex import BOT, FakeWebex, direct_space

BOT_ID = BOT.id
SOMEONE_ELSE = "someone-else-id"
ROOM = "room-1to1"


@pytest.fixture
def webex() -> FakeWebex:
    return FakeWebex()


def outbox(webex: FakeWebex, store: Store) -> Outbox:
    return Outbox(webex, store)


def killed_try(
    webex: FakeWebex, store: Store, event_id: str, since: float, *messages: dict[str, Any]
) -> None:
    """A first try whose last send Webex creates, but the worker dies before recording it."""
    sender = outbox(webex, store).for_event(event_id, retry=False, since=since)
    for message in messages[:-1]:
        sender.send(**message)
    webex.die_after_creating = True
    with pytest.raises(Killed):
        sender.send(**messages[-1])
    webex.die_after_creating = False


class FlakyStore:
    """A real store whose first calls of some write methods fail as if storage went away."""

    def __init__(self, store: Store, *, fail: tuple[str, ...], times: int = 1) -> None:
        self._store = store
        self._fail = fail
        self.remaining = times
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name not in self._fail:
            return method

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if self.remaining > 0:
                self.remaining -= 1
                self.failures += 1
                raise StoreUnavailable("OperationalError: disk I/O error")
            return method(*args, **kwargs)

        return flaky


class DyingStore:
    """A real store at whose use of one method the worker is killed."""

    def __init__(self, store: Store, *, die_on: str) -> None:
        self._store = store
        self._die_on = die_on

    def __getattr__(self, name: str) -> Any:
        if name == self._die_on:
            raise Killed
        return getattr(self._store, name)


# 1. The first try ------------------------------------------------------------------------------


def test_first_try_posts_each_message_once_and_returns_the_webex_id(
    webex: FakeWebex, store: Store
) -> None:
    since = time.time()
    sender = outbox(webex, store).for_event("evt-1", retry=False, since=since)
    first = sender.send(room_id=ROOM, markdown="Hello")
    second = sender.send(room_id=ROOM, parent_id="msg-parent", markdown="Links\nhost: x")

    assert [first, second] == [m["id"] for m in webex.messages]
    assert first != second
    assert webex.sends == [  # passed through unchanged, once each
        {"room_id": ROOM, "markdown": "Hello"},
        {"room_id": ROOM, "parent_id": "msg-parent", "markdown": "Links\nhost: x"},
    ]
    assert webex.lookups == []  # the first try never looks in the space


def test_senders_of_two_events_are_independent(webex: FakeWebex, store: Store) -> None:
    since = time.time()
    box = outbox(webex, store)
    a = box.for_event("evt-a", retry=False, since=since)
    b = box.for_event("evt-b", retry=False, since=since)
    ids_a = [a.send(room_id=ROOM, markdown="Done")]
    ids_b = [b.send(room_id=ROOM, markdown="Done")]  # same text, same number: still its own
    ids_a.append(a.send(room_id=ROOM, markdown="Second"))
    ids_b.append(b.send(room_id=ROOM, markdown="Second"))

    assert len(webex.sends) == 4
    assert len(set(ids_a + ids_b)) == 4

    retry_a = box.for_event("evt-a", retry=True, since=since)
    retry_b = box.for_event("evt-b", retry=True, since=since)
    assert [retry_b.send(room_id=ROOM, markdown="Done"),
            retry_b.send(room_id=ROOM, markdown="Second")] == ids_b
    assert [retry_a.send(room_id=ROOM, markdown="Done"),
            retry_a.send(room_id=ROOM, markdown="Second")] == ids_a
    assert len(webex.sends) == 4


# 2. and 3. Retries of sends that were recorded -------------------------------------------------


def test_retry_after_a_full_first_try_sends_nothing_and_returns_the_same_ids(
    webex: FakeWebex, store: Store
) -> None:
    since = time.time()
    box = outbox(webex, store)
    messages = [
        {"room_id": ROOM, "markdown": "Form"},
        {"to_person_id": "person-1", "markdown": "Your host links"},
        {"room_id": ROOM, "parent_id": "msg-parent", "markdown": "Guest links"},
    ]
    first = box.for_event("evt-1", retry=False, since=since)
    ids = [first.send(**m) for m in messages]

    retry = box.for_event("evt-1", retry=True, since=since)
    assert [retry.send(**m) for m in messages] == ids
    assert len(webex.sends) == 3  # none by the retry
    assert webex.lookups == []  # a recorded send needs no look in the space


@pytest.mark.parametrize("same_first_line", [False, True], ids=["distinct", "same-first-line"])
def test_retry_after_a_partial_first_try_posts_only_the_sends_not_made(
    webex: FakeWebex, store: Store, same_first_line: bool
) -> None:
    since = time.time()
    box = outbox(webex, store)
    if same_first_line:  # the first one, already in the space, must not pass for the others
        messages = [{"room_id": ROOM, "markdown": f"Links\npart {n}"} for n in (1, 2, 3)]
    else:
        messages = [{"room_id": ROOM, "markdown": f"Part {n}"} for n in (1, 2, 3)]
    first_id = box.for_event("evt-1", retry=False, since=since).send(**messages[0])
    # ... and the worker died before sends 2 and 3.

    retry = box.for_event("evt-1", retry=True, since=since)
    ids = [retry.send(**m) for m in messages]

    assert ids[0] == first_id
    assert webex.sends == messages  # send 1 by the first try, 2 and 3 by the retry, once each
    assert ids == [m["id"] for m in webex.messages]
    assert len(set(ids)) == 3


# 4. A send in doubt: created by Webex, never recorded -------------------------------------------


def test_retry_finds_a_message_created_but_never_recorded(webex: FakeWebex, store: Store) -> None:
    since = time.time()
    box = outbox(webex, store)
    form = {"room_id": ROOM, "markdown": "Form"}
    links = {"room_id": ROOM, "markdown": "Links\nhost: x"}
    killed_try(webex, store, "evt-1", since, form, links)
    assert len(webex.sends) == 2
    created = [m["id"] for m in webex.messages]

    retry = box.for_event("evt-1", retry=True, since=since)
    assert [retry.send(**form), retry.send(**links)] == created
    assert len(webex.sends) == 2  # the message in doubt was found, not posted again
    assert len(webex.lookups) == 1  # only the unrecorded send looked

    again = box.for_event("evt-1", retry=True, since=since)  # and what was found is recorded
    assert [again.send(**form), again.send(**links)] == created
    assert len(webex.sends) == 2
    assert len(webex.lookups) == 1


def test_retry_finds_a_reply_in_doubt_in_its_thread(webex: FakeWebex, store: Store) -> None:
    since = time.time()
    box = outbox(webex, store)
    reply = {"room_id": ROOM, "parent_id": "msg-parent", "markdown": "Links\nguest: y"}
    killed_try(webex, store, "evt-1", since, reply)

    found = box.for_event("evt-1", retry=True, since=since).send(**reply)
    assert found == webex.messages[0]["id"]
    assert len(webex.sends) == 1
    assert webex.lookups[0][:2] == (ROOM, "msg-parent")


def test_a_message_created_within_the_clock_skew_is_still_found(
    webex: FakeWebex, store: Store
) -> None:
    """Webex's clock may trail ours: a message dated a little before acceptance is taken."""
    since = time.time()
    item = webex.add(markdown="Links\nhost: x", room_id=ROOM, created=since - CLOCK_SKEW + 5)
    found = outbox(webex, store).for_event("evt-1", retry=True, since=since).send(
        room_id=ROOM, markdown="Links\nhost: x"
    )
    assert found == item["id"]
    assert webex.sends == []


def test_the_first_line_is_what_must_match(webex: FakeWebex, store: Store) -> None:
    """The rest of a message may differ (a card's fallback, a link rendered anew)."""
    since = time.time()
    item = webex.add(markdown="Links for Follow-up\nhost: https://old", room_id=ROOM)
    found = outbox(webex, store).for_event("evt-1", retry=True, since=since).send(
        room_id=ROOM, markdown="Links for Follow-up\nhost: https://new"
    )
    assert found == item["id"]
    assert webex.sends == []


DECOYS = {
    "created-too-early": {"created_offset": -CLOCK_SKEW - 5},
    "by-another-person": {"person_id": SOMEONE_ELSE},
    "in-another-thread": {"parent_id": "msg-other-parent"},
    "top-level-for-a-reply": {"parent_id": None},
    "a-reply-for-a-top-level": {"parent_id": "msg-parent", "send_parent_id": None},
    "different-first-line": {"markdown": "Links for Other\nhost: x"},
}


@pytest.mark.parametrize("decoy", DECOYS.values(), ids=DECOYS.keys())
def test_a_message_that_is_not_this_send_s_is_not_taken(
    webex: FakeWebex, store: Store, decoy: dict[str, Any]
) -> None:
    """Each decoy differs from the send's message in one way only, so each check is needed."""
    since = time.time()
    send_parent = decoy.get("send_parent_id", "msg-parent")
    item = webex.add(
        markdown=decoy.get("markdown", "Links for Follow-up\nhost: x"),
        room_id=ROOM,
        parent_id=decoy.get("parent_id", send_parent),
        person_id=decoy.get("person_id", BOT_ID),
        created=since + decoy.get("created_offset", 0.0),
    )
    message: dict[str, Any] = {"room_id": ROOM, "markdown": "Links for Follow-up\nhost: x"}
    if send_parent is not None:
        message["parent_id"] = send_parent

    sent = outbox(webex, store).for_event("evt-1", retry=True, since=since).send(**message)

    assert len(webex.lookups) == 1  # it did look ...
    assert webex.sends == [message]  # ... and posted, the decoy left alone
    assert sent != item["id"]
    assert sent == webex.messages[-1]["id"]


# 5. The claim: every message is taken by one send at most ---------------------------------------


def test_two_events_in_doubt_with_the_same_reply_each_claim_their_own(
    webex: FakeWebex, store: Store
) -> None:
    since = time.time()
    box = outbox(webex, store)
    done = {"room_id": ROOM, "markdown": "Done"}
    killed_try(webex, store, "evt-a", since, done)
    killed_try(webex, store, "evt-b", since, done)
    both = {m["id"] for m in webex.messages}
    assert len(both) == 2

    found_b = box.for_event("evt-b", retry=True, since=since).send(**done)
    found_a = box.for_event("evt-a", retry=True, since=since).send(**done)

    assert {found_a, found_b} == both  # a different one each, never the same twice
    assert len(webex.sends) == 2
    # and each keeps its own on a further retry
    assert box.for_event("evt-a", retry=True, since=since).send(**done) == found_a
    assert box.for_event("evt-b", retry=True, since=since).send(**done) == found_b


def test_a_message_another_event_recorded_is_never_taken(webex: FakeWebex, store: Store) -> None:
    since = time.time()
    box = outbox(webex, store)
    done = {"room_id": ROOM, "markdown": "Done"}
    theirs = box.for_event("evt-a", retry=False, since=since).send(**done)
    # evt-b's first try died before its send reached Webex; its retry sees evt-a's "Done".

    mine = box.for_event("evt-b", retry=True, since=since).send(**done)

    assert len(webex.lookups) == 1
    assert mine != theirs
    assert len(webex.sends) == 2
    assert mine == webex.messages[-1]["id"]


def test_a_send_that_claimed_its_message_but_died_before_recording_it_takes_it_back(
    webex: FakeWebex, store: Store
) -> None:
    """A kill between the claim and the record: the claim is this send's own."""
    since = time.time()
    done = {"room_id": ROOM, "markdown": "Done"}
    dying = DyingStore(store, die_on="set")
    with pytest.raises(Killed):
        outbox(webex, dying).for_event("evt-1", retry=False, since=since).send(**done)
    assert len(webex.sends) == 1

    found = outbox(webex, store).for_event("evt-1", retry=True, since=since).send(**done)
    assert found == webex.messages[0]["id"]
    assert len(webex.sends) == 1


# 6. A message to a person: looked for in their 1:1 space ------------------------------------------


PRIVATE = {"to_person_id": "person-1", "markdown": "**Host links: Follow-up**\nhost: x"}


def test_a_message_to_a_person_created_but_never_recorded_is_found_not_posted_again(
    webex: FakeWebex, store: Store
) -> None:
    """Never twice: the host links Webex created before the worker died are found in the
    person's 1:1 space (a space the send never named), and recorded."""
    since = time.time()
    box = outbox(webex, store)
    killed_try(webex, store, "evt-1", since, PRIVATE)

    found = box.for_event("evt-1", retry=True, since=since).send(**PRIVATE)

    assert webex.sends == [PRIVATE]  # posted once, by the killed try
    assert found == webex.messages[0]["id"]
    assert webex.direct_lookups == [("person-1", None, outbox_module.RECENT_LIMIT)]
    assert box.for_event("evt-1", retry=True, since=since).send(**PRIVATE) == found
    assert len(webex.sends) == 1 and len(webex.direct_lookups) == 1


def test_a_message_to_a_person_that_never_reached_webex_is_posted_on_the_retry(
    webex: FakeWebex, store: Store
) -> None:
    """Still once: the try died before its post reached Webex; the 1:1 space holds only an older
    set of links (another meeting, before the event was accepted), which is not taken."""
    since = time.time()
    box = outbox(webex, store)
    older = webex.add(markdown=PRIVATE["markdown"], room_id=direct_space("person-1"),
                      created=since - CLOCK_SKEW - 60)

    sent = box.for_event("evt-1", retry=True, since=since).send(**PRIVATE)

    assert len(webex.direct_lookups) == 1
    assert webex.sends == [PRIVATE]
    assert sent == webex.messages[-1]["id"] != older["id"]
    assert box.for_event("evt-1", retry=True, since=since).send(**PRIVATE) == sent
    assert len(webex.sends) == 1


def test_a_lookup_in_a_1to1_space_webex_could_not_answer_leaves_the_event_for_later(
    webex: FakeWebex, store: Store
) -> None:
    """A 503 from GET /messages/direct says nothing: the event is retried later, and only its
    last try posts (a message twice is better than none)."""
    since = time.time()
    box = outbox(webex, store)
    killed_try(webex, store, "evt-1", since, PRIVATE)
    webex.fail(Unavailable("Webex", status=503), "recent_messages", "direct_messages")

    with pytest.raises(Unavailable):
        box.for_event("evt-1", retry=True, since=since).send(**PRIVATE)
    assert webex.sends == [PRIVATE]

    again = box.for_event("evt-1", retry=True, since=since, last_attempt=True).send(**PRIVATE)
    assert webex.sends == [PRIVATE, PRIVATE] and again == webex.messages[-1]["id"]


def test_a_person_without_a_1to1_space_gets_the_message(webex: FakeWebex, store: Store) -> None:
    """A 404 for the 1:1 space: there is none, so nothing was posted to it."""
    since = time.time()
    webex.fail(Rejected("Webex", status=404), "recent_messages", "direct_messages")

    sent = outbox(webex, store).for_event("evt-1", retry=True, since=since).send(**PRIVATE)

    assert webex.sends == [PRIVATE] and sent == webex.messages[0]["id"]


# 7. Where the space cannot be looked in: a group space, where the retry posts again -------------


@pytest.mark.parametrize(
    "error",
    [Rejected("Webex", status=403), NotAuthorized("Webex", status=403)],
    ids=["rejected-403", "not-authorized-403"],
)
def test_a_space_the_bot_may_not_list_gets_the_message_again(
    webex: FakeWebex, store: Store, error: UpstreamError
) -> None:
    since = time.time()
    box = outbox(webex, store)
    done = {"room_id": "room-group", "markdown": "Done"}
    killed_try(webex, store, "evt-1", since, done)
    webex.fail(error, "recent_messages", "direct_messages")

    again = box.for_event("evt-1", retry=True, since=since).send(**done)

    assert len(webex.lookups) == 1
    assert webex.sends == [done, done]
    assert again == webex.messages[-1]["id"]
    assert box.for_event("evt-1", retry=True, since=since).send(**done) == again
    assert len(webex.sends) == 2


def test_a_lookup_webex_could_not_answer_leaves_the_event_for_later_until_its_last_try(
    webex: FakeWebex, store: Store
) -> None:
    """A 503 while looking says nothing about the space: posting again could post twice, so the
    error goes up (the worker retries the event); on the last try, the message is posted."""
    since = time.time()
    box = outbox(webex, store)
    done = {"room_id": "room-1", "markdown": "Done"}
    killed_try(webex, store, "evt-1", since, done)
    webex.fail(Unavailable("Webex", status=503), "recent_messages", "direct_messages")

    with pytest.raises(Unavailable):
        box.for_event("evt-1", retry=True, since=since).send(**done)
    assert webex.sends == [done]

    again = box.for_event("evt-1", retry=True, since=since, last_attempt=True).send(**done)
    assert webex.sends == [done, done] and again == webex.messages[-1]["id"]


# 8. A record written while storage is briefly away ---------------------------------------------


@pytest.mark.parametrize("fail", ["set", "put_if_absent"])
def test_a_record_that_fails_briefly_is_written_once_storage_is_back(
    webex: FakeWebex, store: Store, fail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "RECORD_PATIENCE", 5.0)  # one retry takes 0.25 s
    since = time.time()
    flaky = FlakyStore(store, fail=(fail,))
    done = {"room_id": "room-group", "markdown": "Done"}

    started = time.monotonic()
    sent = outbox(webex, flaky).for_event("evt-1", retry=False, since=since).send(**done)
    assert time.monotonic() - started < 2.0

    assert flaky.failures == 1  # the outage was met ...
    assert sent == webex.messages[0]["id"]
    assert len(webex.sends) == 1
    # ... and waited out: a retry, in a space it may not look in, knows the send was made.
    webex.fail(Rejected("Webex", status=403), "recent_messages", "direct_messages")
    assert outbox(webex, store).for_event("evt-1", retry=True, since=since).send(**done) == sent
    assert len(webex.sends) == 1
    assert webex.lookups == []


def test_a_record_that_cannot_be_written_in_time_leaves_the_send_in_doubt(
    webex: FakeWebex, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the patience the error surfaces; the retry then finds the message in the space."""
    monkeypatch.setattr(outbox_module, "RECORD_PATIENCE", 0.1)
    since = time.time()
    down = FlakyStore(store, fail=("set", "put_if_absent"), times=1000)
    done = {"room_id": ROOM, "markdown": "Done"}

    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        outbox(webex, down).for_event("evt-1", retry=False, since=since).send(**done)
    assert time.monotonic() - started < 2.0
    assert len(webex.sends) == 1

    found = outbox(webex, store).for_event("evt-1", retry=True, since=since).send(**done)
    assert found == webex.messages[0]["id"]
    assert len(webex.sends) == 1


# 7. A delivery outside Webex (a guest's email or text) --------------------------------------------


class FakeService:
    """A mail server or Twilio: counts deliveries; can be killed right after one, and can list
    what it delivered (as Twilio can) or not (as a mail server cannot)."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, float]] = []
        self.die_after_delivering = False
        self.die_before_delivering = False
        self.fail_with: UpstreamError | None = None
        self.finds: list[float] = []

    def deliver(self) -> str:
        if self.die_before_delivering:
            raise Killed  # the mark is written; the service never heard of it
        if self.fail_with is not None:
            raise self.fail_with
        reference = f"ref-{len(self.delivered) + 1}"
        self.delivered.append((reference, time.time()))
        if self.die_after_delivering:
            raise Killed  # delivered; the worker never records it
        return reference

    def find(self, since: float) -> str | None:
        self.finds.append(since)
        return next((ref for ref, at in self.delivered if at >= since), None)


def deliver_once(store: Store, service: FakeService, *, retry: bool, listed: bool,
                 event_id: str = "evt-1") -> str:
    """One try at an event whose one send is a delivery outside Webex."""
    sender = Outbox(FakeWebex(), store).for_event(event_id, retry=retry, since=time.time())
    return sender.once(service.deliver, service="Twilio",
                       find=service.find if listed else None)


@pytest.mark.parametrize("listed", [True, False], ids=["Twilio", "mail server"])
def test_a_delivery_is_made_once_and_its_record_answers_the_retry(
    store: Store, listed: bool
) -> None:
    service = FakeService()
    first = deliver_once(store, service, retry=False, listed=listed)
    again = deliver_once(store, service, retry=True, listed=listed)
    assert first == again == "ref-1" and len(service.delivered) == 1 and service.finds == []


def test_a_text_delivered_before_the_worker_died_is_found_not_sent_again(store: Store) -> None:
    """Never twice: the retry asks the service what it delivered since the try began."""
    service = FakeService()
    service.die_after_delivering = True
    with pytest.raises(Killed):
        deliver_once(store, service, retry=False, listed=True)
    service.die_after_delivering = False
    assert deliver_once(store, service, retry=True, listed=True) == "ref-1"
    assert len(service.delivered) == 1 and len(service.finds) == 1
    assert deliver_once(store, service, retry=True, listed=True) == "ref-1"  # now recorded
    assert len(service.finds) == 1


def test_a_text_the_dead_worker_never_sent_goes_out_on_the_retry(store: Store) -> None:
    """Still once: the try died after marking the delivery, before the service had it."""
    service = FakeService()
    service.die_before_delivering = True
    with pytest.raises(Killed):
        deliver_once(store, service, retry=False, listed=True)
    service.die_before_delivering = False
    assert deliver_once(store, service, retry=True, listed=True) == "ref-1"
    assert len(service.delivered) == 1 and len(service.finds) == 1


def test_an_email_in_doubt_is_said_to_be_perhaps_delivered_not_sent_again(store: Store) -> None:
    """A mail server cannot be asked: the retry does not send blindly."""
    service = FakeService()
    service.die_after_delivering = True
    with pytest.raises(Killed):
        deliver_once(store, service, retry=False, listed=False)
    service.die_after_delivering = False
    with pytest.raises(Unconfirmed):
        deliver_once(store, service, retry=True, listed=False)
    assert len(service.delivered) == 1


def test_a_delivery_refused_for_sure_may_be_tried_again(store: Store) -> None:
    """A definite refusal delivered nothing: the mark is taken back, so a later try delivers
    without asking, and a doubtful answer keeps it."""
    service = FakeService()
    service.fail_with = Rejected("the mail server", status=550)
    with pytest.raises(Rejected):
        deliver_once(store, service, retry=False, listed=False)
    service.fail_with = None
    assert deliver_once(store, service, retry=True, listed=False) == "ref-1"

    doubtful = FakeService()
    doubtful.fail_with = Unconfirmed("the mail server")
    with pytest.raises(Unconfirmed):
        deliver_once(store, doubtful, retry=False, listed=False, event_id="evt-2")
    doubtful.fail_with = None
    with pytest.raises(Unconfirmed):
        deliver_once(store, doubtful, retry=True, listed=False, event_id="evt-2")
    assert doubtful.delivered == []
