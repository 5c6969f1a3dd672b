"""A worker killed at every step of making, changing and cancelling a meeting, on both engines.

Each test arms one kill, lets the event's first try die on it (a try that never reaches it fails
the test), hands the job back as ``serve`` does when a worker process dies (``release``), moves
the clock on as a retry's wait would, and lets a fresh worker claim the same event and finish it;
one test per act is killed four times in a row, each time further on, and finishes on its last
allowed try. Then it counts what went out and reads what each person was given: the broker
asked once per version of the meeting (twice, with the very same request, when its first answer
was lost), each message posted once, each email and text message at most once (an email in
doubt reported as perhaps delivered, not sent again), one audit row per thing done, and the
host, the space and the guests all given the same links, the same window and the same SEQUENCE.

The one message that may be seen twice is the one the outbox documents: a post to a group space
cut short after Webex made it. A bot may list a group space's messages only where they mention
it, which its own never do, so the retry cannot find the message and posts it again; the fake
Webex here refuses such a listing as Webex does (403), so that case is played for real.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.conversation import replies
from bot.conversation.guest_messages import MessageKind, gsm7_date
from bot.conversation.link_messages import escape_markdown
from bot.conversation.timewindow import describe_appointment, describe_window
from bot.events import Event
from bot.jobs.runner import Attempt
from bot.jobs.storage import Store, open_store
from bot.meetings.record import Meeting
from bot.upstream.webex import AttachmentAction
from cards import inputs as ids
from tests.support.conversation import (
    ALICE,
    CLINIC,
    DM,
    NOW,
    THREAD,
    Bot,
    message_event,
    submit_event,
)
from tests.support.guests import Killed
from tests.support.webex import direct_space

SUBJECT = "Consultation"
MEET = f"meet {SUBJECT} to=zoe@example.org,+33612345678"
ALICE_DIRECT = direct_space(ALICE.id)  # where her host links go when she asks in a group space
GROUP_SPACES = {CLINIC}
LEASE = 60.0
RETRY_WAIT = 120.0  # the clock moves on before the retry: a window read again would move too
NEW_DAY, NEW_TIME = "2027-01-16", "10:00"  # "Change the time" to this, in Alice's zone
NEW_START = int(datetime(2027, 1, 16, 10, 0, tzinfo=ZoneInfo("America/New_York")).timestamp())
MAX_ATTEMPTS = 5  # the MAX_ATTEMPTS setting's default: the fifth try is the last
URL = re.compile(r"https://ic\.example\.test/[^\s)\]>\\]+")


Post = tuple[str, str | None, str]  # a message's space, thread and first line


# The engines ------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (f"sqlite:///{tmp_path}/bot.sqlite3" if request.param == "sqlite" else
           f"{request.getfixturevalue('redis_url')}?prefix=crash-{uuid.uuid4().hex}:")
    store = open_store(url)
    yield store
    store.close()


@pytest.fixture
def bot(store: Store) -> Bot:
    return Bot(store)  # its Webex refuses to list a group space to the bot, as Webex does


# Killing and retrying ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """Where the worker dies: in the ``at``-th call of one method that ``picks`` chooses,
    before the call reaches its service, or ``after`` it did its work, before its answer is read.
    ``target``: "broker" (asking for links), "book" (writing the meeting's record), "webex" (a
    post), "mail", "sms" (a guest delivery)."""

    target: str
    after: bool
    at: int = 1
    picks: str = "any"  # or "version" (the record of the new version), "one guest" (its outcome)


def arm(bot: Bot, monkeypatch: pytest.MonkeyPatch, kill: Kill,
        version: Callable[[Meeting], bool]) -> list[dict[str, Any]]:
    """Make the worker die once at ``kill``; the calls before it run clean. Returns the keywords
    of the call it died in, once it has (a post's: where it went)."""
    owner, method = {"broker": (bot.meetings, "create_links"), "book": (bot.book, "save"),
                     "webex": (bot.webex, "send"), "mail": (bot.mail, "send"),
                     "sms": (bot.sms, "send")}[kill.target]
    picks: Callable[..., bool] = {
        "any": lambda *args, **kwargs: True,
        "version": version,
        "one guest": lambda meeting: version(meeting) and sum(
            d.sequence == meeting.sequence for d in meeting.deliveries) == 1,
    }[kill.picks]
    real = getattr(owner, method)
    seen = itertools.count(1)
    died: list[dict[str, Any]] = []

    def dying(*args: Any, **kwargs: Any) -> Any:
        if died or not picks(*args, **kwargs) or next(seen) != kill.at:
            return real(*args, **kwargs)
        died.append(kwargs)
        if kill.after:
            real(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(owner, method, dying)
    return died


def handled(bot: Bot, event: Event) -> None:
    """The event processed to its end by a worker, as the job runner does."""
    assert bot.store.accept(event.data_id, event.resource, event.to_json())
    job = bot.store.claim("worker", LEASE)
    assert job is not None and job.event_id == event.data_id
    bot.conversation.process(Attempt(job, last=False))
    bot.store.complete(job.event_id, "worker")


def killed_then_retried(bot: Bot, event: Event, kills: tuple[Kill, ...],
                        version: Callable[[Meeting], bool]) -> list[Post]:
    """Each try of the event but the last dies at its kill; each time the job goes back, time
    passes and a fresh worker claims it. Returns the posts to a group space that died after
    Webex made them: the ones people may see twice."""
    assert bot.store.accept(event.data_id, event.resource, event.to_json())
    seen_twice = []
    for attempt, kill in enumerate(kills, 1):
        job = bot.store.claim(f"worker-{attempt}", LEASE)
        assert job is not None and (job.event_id, job.attempts) == (event.data_id, attempt)
        with pytest.MonkeyPatch.context() as patch, pytest.raises(Killed):
            died = arm(bot, patch, kill, version)
            bot.conversation.process(Attempt(job, last=False))
        assert bot.store.release(f"worker-{attempt}") == 1  # as serve does when a worker dies
        bot.advance(RETRY_WAIT)
        if kill.target == "webex" and kill.after and died[0].get("room_id") in GROUP_SPACES:
            seen_twice.append((died[0]["room_id"], died[0]["parent_id"],
                               first_line(died[0]["markdown"])))
    job = bot.store.claim("worker-last", LEASE)
    assert job is not None and job.attempts == len(kills) + 1
    bot.conversation.process(Attempt(job, last=job.attempts >= MAX_ATTEMPTS))
    bot.store.complete(job.event_id, "worker-last")
    assert bot.store.backlog() == 0
    return seen_twice


# The kills of each act --------------------------------------------------------------------------


ANSWER_LOST = Kill("broker", after=True)
RECORDED = Kill("book", after=True, picks="version")
EMAIL_SENT = Kill("mail", after=True)
BETWEEN_GUESTS = Kill("book", after=True, picks="one guest")


def every_step(posts: int, *, broker: bool) -> list[Any]:
    """Every step of an act that posts ``posts`` messages (asking the broker when ``broker``),
    each killing one try."""
    steps = [
        pytest.param(Kill("broker", after=False), id="before-the-broker-answers"),
        pytest.param(ANSWER_LOST, id="broker-answered-answer-lost"),
    ] if broker else []
    steps.append(pytest.param(RECORDED, id="just-after-the-record"))
    for number in range(1, posts + 1):
        steps += [
            pytest.param(Kill("webex", after=False, at=number), id=f"post-{number}-never-made"),
            pytest.param(Kill("webex", after=True, at=number), id=f"post-{number}-made-id-lost"),
        ]
    steps += [
        pytest.param(Kill("mail", after=False), id="email-about-to-go"),
        pytest.param(EMAIL_SENT, id="email-sent-not-recorded"),
        pytest.param(BETWEEN_GUESTS, id="between-the-guests"),
        pytest.param(Kill("sms", after=False), id="text-about-to-go"),
        pytest.param(Kill("sms", after=True), id="text-sent-not-recorded"),
    ]
    return [pytest.param((step.values[0],), id=step.id) for step in steps]


# What everyone was given ------------------------------------------------------------------------


def first_line(markdown: str) -> str:
    return markdown.split("\n", 1)[0]


def posted(bot: Bot) -> Counter[Post]:
    """Each message the spaces hold from the bot, by space, thread and first line."""
    return Counter((item["roomId"], item.get("parentId"), first_line(item["markdown"]))
                   for item in bot.webex.messages if item.get("sent"))


def expected_posts(order: list[Post], seen_twice: list[Post]) -> Counter[Post]:
    """Each message of ``order`` once, but a post to a group space cut short after Webex made
    it: twice (the retry cannot list it)."""
    assert set(seen_twice) <= set(order)
    return Counter(order) + Counter(seen_twice)


def calendar(mail: EmailMessage) -> str:
    [part] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"
              and p.get_content_disposition() != "attachment"]
    return str(part.get_content()).replace("\r\n ", "").replace("\n ", "")


def plain(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def ics(mail: EmailMessage, name: str) -> str:
    [value] = re.findall(rf"^{name}[:;](.*?)\r?$", calendar(mail), re.MULTILINE)
    return str(value)


def utc(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")


def the_meeting(bot: Bot) -> Meeting:
    [listed] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    meeting = bot.book.get(listed.id)
    assert meeting is not None
    return meeting


def check_links(bot: Bot, meeting: Meeting, mails: list[EmailMessage],
                texts: list[tuple[str, str]]) -> None:
    """The links the meeting recorded are the broker's last answer and the only ones anyone was
    given: the host's in the host links message, the guests' in the space's links message, each
    guest's in their email or text; every links message shows the same window."""
    links = meeting.links
    assert links is not None and links == bot.meetings.answers[-1]
    told = [item["markdown"] for item in bot.webex.messages if item.get("sent")]
    told += [plain(mail) for mail in mails] + [t for _, t in texts]
    stale = {link.url for answer in bot.meetings.answers[:-1] for link in answer.all} | {
        link.short_url for answer in bot.meetings.answers[:-1] for link in answer.all}
    assert not stale & set(URL.findall("\n".join(told)))  # no other answer's link, anywhere
    valid = f"Valid {escape_markdown(describe_window(links.nbf, links.exp, meeting.zone))}"
    messages = [item["markdown"] for item in bot.webex.messages
                if item.get("sent") and "links: " in first_line(item["markdown"])]
    assert messages and all(message.split("\n")[1] == valid for message in messages)
    in_messages = set(URL.findall("\n".join(messages)))
    assert {link.url for link in links.all} <= in_messages
    for mail in mails:
        assert links.guests[0].best_url in plain(mail)
        assert (ics(mail, "DTSTART"), ics(mail, "DTEND")) == (utc(meeting.start), utc(meeting.end))
    for _, text in texts:
        assert text.endswith(f"Join: {links.guests[1].best_url}")
        when = describe_appointment(meeting.start, meeting.end, meeting.zone, meeting.language)
        assert gsm7_date(when) in text


def check_guests(meeting: Meeting, kills: tuple[Kill, ...], mails: list[EmailMessage],
                 texts: list[tuple[str, str]], report: str) -> None:
    """Each guest reached at most once; an email in doubt said to be so, never sent again."""
    in_doubt = [kill for kill in kills if kill.target == "mail"]
    email_in_doubt = bool(in_doubt)
    assert len(mails) == (0 if in_doubt and not in_doubt[0].after else 1)
    assert len(texts) == 1  # Twilio is asked what it sent: found, or sent now
    assert [d.outcome for d in meeting.deliveries if d.sequence == meeting.sequence] == [
        "unconfirmed" if email_in_doubt else "sent", "sent"]
    lines = [line for line in report.split("\n") if line.startswith("- ")]
    assert len(lines) == 2 and ["may have been delivered" in line for line in lines] == [
        email_in_doubt, False]


def check_audit(bot: Bot, meeting: Meeting, expected: dict[str, int]) -> None:
    """One row per thing done, however often the event was tried."""
    rows = [row for row in bot.book.audit_rows(0) if row.meeting == meeting.id]
    assert Counter(row.what for row in rows) == expected


# Making a meeting -------------------------------------------------------------------------------


PLACES: dict[str, tuple[dict[str, Any], list[Post]]] = {
    "1:1": ({"room": DM}, [
        (DM, None, f"**Meeting links: {SUBJECT}**"),
        (DM, None, f"**Guest links for {SUBJECT}**"),
    ]),
    "group": ({"room": CLINIC, "parent_id": THREAD, "mention": True}, [
        (ALICE_DIRECT, None, f"**Host links: {SUBJECT}**"),
        (CLINIC, THREAD, replies.ready(SUBJECT, ALICE.display_name)),
        (CLINIC, THREAD, f"**Meeting links: {SUBJECT}**"),
        (CLINIC, THREAD, f"**Guest links for {SUBJECT}**"),
    ]),
}
MADE = {"created": 1, "guest link sent": 2}


UNRECORDED = Kill("book", after=False)  # the meeting not yet written: nothing is fixed
MAKE_CASES = [
    *(pytest.param(place, *case.values, id=f"{place}-{case.id}")
      for place, (_, order) in PLACES.items()
      for case in [pytest.param((UNRECORDED,), id="before-the-meeting-is-recorded"),
                   *every_step(len(order), broker=True)]),
    pytest.param("group", (ANSWER_LOST, RECORDED, Kill("webex", after=True, at=3), EMAIL_SENT),
                 id="group-killed-four-times-further-on"),  # the 3rd post: the links message
]


@pytest.mark.parametrize(("place", "kills"), MAKE_CASES)
def test_a_meeting_whose_worker_is_killed_is_made_once_and_told_once(
    bot: Bot, place: str, kills: tuple[Kill, ...]
) -> None:
    where, order = PLACES[place]
    seen_twice = killed_then_retried(bot, message_event(bot.add_message(MEET, **where)), kills,
                                     lambda meeting: meeting.links is not None)

    requests = bot.meetings.requests
    assert len(requests) == 1 + kills.count(ANSWER_LOST)
    assert len(set(requests)) == 1  # asked again, it is the very same request: sub and window
    meeting = the_meeting(bot)
    # Not moved by the wait, once recorded; a try that died before then planned nothing.
    start = NOW + (RETRY_WAIT if UNRECORDED in kills else 0)
    assert meeting.request == requests[0] and meeting.start == int(start)
    assert posted(bot) == expected_posts(order, seen_twice)
    mails, texts = bot.mail.sent, bot.sms.sent
    check_links(bot, meeting, mails, texts)
    [report] = {item["markdown"] for item in bot.webex.messages
                if item.get("sent") and item["markdown"].startswith("**Guest links")}
    check_guests(meeting, kills, mails, texts, report)
    for mail in mails:
        assert (ics(mail, "METHOD"), ics(mail, "SEQUENCE")) == ("REQUEST", "0")
    check_audit(bot, meeting, MADE)


# Changing the time and cancelling, pressed on the meetings card in Alice's 1:1 space ------------


def made_in_the_clinic(bot: Bot) -> tuple[Meeting, str]:
    """A meeting made in the clinic's thread, and the meetings card Alice then asked for."""
    handled(bot, message_event(bot.add_message(MEET, room=CLINIC, parent_id=THREAD,
                                               mention=True)))
    handled(bot, message_event(bot.add_message("meetings")))
    card = bot.webex.sent[-1]
    assert card["markdown"].startswith("**Meetings**")
    meeting = the_meeting(bot)
    assert meeting.links_message is not None
    bot.clear()
    return meeting, str(card["id"])


def pressed(bot: Bot, card: str, inputs: dict[str, Any]) -> Event:
    action = AttachmentAction(f"action-{uuid.uuid4().hex[:8]}", card, ALICE.id, DM, inputs)
    bot.webex.actions[action.id] = action
    return submit_event(action)


def invitation_uid(bot: Bot) -> str:
    return ics(bot.mail.sent[0], "UID")


CHANGE_ORDER = 5  # posts: "replaced" in the old links' thread, host links, ready, links, report
CANCEL_ORDER = 3  # posts: the report and "cancelled" in the meeting's thread, "cancelled" here


@pytest.mark.parametrize("kills", [
    *every_step(CHANGE_ORDER, broker=True),
    pytest.param((ANSWER_LOST, Kill("webex", after=True), BETWEEN_GUESTS, Kill("sms", after=True)),
                 id="killed-four-times-further-on"),
])
def test_a_change_of_time_whose_worker_is_killed_moves_the_meeting_once(
    bot: Bot, kills: tuple[Kill, ...]
) -> None:
    meeting, card = made_in_the_clinic(bot)
    uid, told_mails, told_texts = invitation_uid(bot), len(bot.mail.sent), len(bot.sms.sent)
    seen_twice = killed_then_retried(bot, pressed(bot, card, {
        ids.ACTION: ids.ACTION_CHANGE_TIME, ids.MEETING: meeting.id,
        ids.meeting_input(ids.NEW_START_DATE, meeting.id): NEW_DAY,
        ids.meeting_input(ids.NEW_START_TIME, meeting.id): NEW_TIME}), kills,
        lambda changed: changed.sequence == 1)

    requests = bot.meetings.requests
    assert len(requests) == 1 + kills.count(ANSWER_LOST)
    assert len(set(requests)) == 1 and requests[0].sub != meeting.request.sub
    changed = the_meeting(bot)
    assert (changed.request, changed.start, changed.sequence) == (requests[0], NEW_START, 1)
    order: list[Post] = [
        (CLINIC, THREAD, replies.REPLACED_BELOW),
        (ALICE_DIRECT, None, f"**New host links: {SUBJECT}**"),
        (CLINIC, THREAD, replies.moved(SUBJECT, ALICE.display_name)),
        (CLINIC, THREAD, f"**New meeting links: {SUBJECT}**"),
        (CLINIC, THREAD, first_line(replies.guest_report(SUBJECT, [], kind=MessageKind.UPDATE))),
    ]
    assert posted(bot) == expected_posts(order, seen_twice)
    mails, texts = bot.mail.sent[told_mails:], bot.sms.sent[told_texts:]
    check_links(bot, changed, mails, texts)
    [report] = {item["markdown"] for item in bot.webex.messages
                if item.get("sent") and item["markdown"].startswith("**Guests told")}
    check_guests(changed, kills, mails, texts, report)
    for mail in mails:  # the guest's calendar moves the event it has
        assert (ics(mail, "METHOD"), ics(mail, "SEQUENCE"), ics(mail, "UID")) == (
            "REQUEST", "1", uid)
    check_audit(bot, changed, {**MADE, "changed": 1, "guest told of the new time": 2})


@pytest.mark.parametrize("kills", [
    *every_step(CANCEL_ORDER, broker=False),
    pytest.param((RECORDED, EMAIL_SENT, BETWEEN_GUESTS, Kill("webex", after=True)),
                 id="killed-four-times-further-on"),
])
def test_a_cancel_whose_worker_is_killed_tells_each_guest_once(
    bot: Bot, kills: tuple[Kill, ...]
) -> None:
    meeting, card = made_in_the_clinic(bot)
    uid, told_mails, told_texts = invitation_uid(bot), len(bot.mail.sent), len(bot.sms.sent)
    seen_twice = killed_then_retried(bot, pressed(bot, card, {
        ids.ACTION: ids.ACTION_CANCEL_MEETING, ids.MEETING: meeting.id}), kills,
        lambda cancelled: cancelled.cancelled)

    assert bot.meetings.requests == []
    cancelled = the_meeting(bot)
    assert cancelled.cancelled and cancelled.sequence == 1 and cancelled.links == meeting.links
    until = describe_window(meeting.start, meeting.request.exp or meeting.end, meeting.zone)
    order: list[Post] = [
        (CLINIC, THREAD, first_line(replies.guest_report(SUBJECT, [],
                                                          kind=MessageKind.CANCELLATION))),
        (CLINIC, THREAD, replies.cancelled(SUBJECT, until)),  # links stay valid until their end
        (DM, None, replies.cancelled(SUBJECT, until)),  # and where the button was pressed
    ]
    assert posted(bot) == expected_posts(order, seen_twice)
    mails, texts = bot.mail.sent[told_mails:], bot.sms.sent[told_texts:]
    [report] = {item["markdown"] for item in bot.webex.messages
                if item.get("sent") and item["markdown"].startswith("**Guests told")}
    check_guests(cancelled, kills, mails, texts, report)
    assert "cancelled" in texts[0][1] and "Join" not in texts[0][1]
    for mail in mails:
        assert (ics(mail, "METHOD"), ics(mail, "SEQUENCE"), ics(mail, "UID"),
                ics(mail, "STATUS")) == ("CANCEL", "1", uid, "CANCELLED")
    check_audit(bot, cancelled, {**MADE, "cancelled": 1, "guest told of the cancellation": 2})
