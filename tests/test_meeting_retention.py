"""What the bot keeps of a meeting, and for how long, on both engines, with the store's clock
moved: the guests' contacts and the links go first (``SECRETS_GRACE`` after the later of the
appointment's end and the links' expiry) while the meeting is still listed; the meeting goes
``MEETING_RETENTION`` after its end; its audit rows outlive it and go ``AUDIT_RETENTION`` after
the later of their writing and the meeting's end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.jobs.storage import open_store
from bot.meetings.book import (
    DEFAULT_AUDIT_RETENTION,
    DEFAULT_RETENTION,
    MEETINGS,
    SECRETS,
    SECRETS_GRACE,
)
from bot.meetings.record import Meeting
from tests.support.conversation import ALICE, NOW, Bot

CONTACTS = "to=zoe@example.org,+33612345678"


@pytest.fixture(params=["sqlite", "redis"])
def bot(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bot]:
    """The conversation over a store whose clock is the conversation's: moving one moves both."""
    url = (f"sqlite:///{tmp_path}/bot.sqlite3" if request.param == "sqlite" else
           f"{request.getfixturevalue('redis_url')}?prefix=test-{uuid.uuid4().hex}:")
    harness: Bot
    store = open_store(url, clock=lambda: harness.now())
    harness = Bot(store)
    yield harness
    store.close()


def made(bot: Bot, text: str) -> Meeting:
    """Make a meeting in the 1:1 space through the conversation; the meeting as recorded."""
    bot.say(text)
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    assert meeting.contacts and meeting.links is not None
    return meeting


def listed(bot: Bot) -> list[str]:
    return [meeting.id for meeting in bot.book.listed(person_id=ALICE.id, since=0, limit=10)]


def move_to(bot: Bot, at: float) -> None:
    bot.advance(at - bot.now())


def test_contacts_and_links_go_after_the_links_expiry_and_the_meeting_stays_listed(
    bot: Bot,
) -> None:
    meeting = made(bot, f"meet Consultation {CONTACTS} for=30m valid=3h")
    assert meeting.request.exp is not None and meeting.request.exp > meeting.end  # 3h > 30m
    secrets_end = meeting.request.exp + SECRETS_GRACE

    move_to(bot, secrets_end - 1)
    kept = bot.book.get(meeting.id)
    assert kept is not None and kept.contacts == meeting.contacts and kept.links == meeting.links

    move_to(bot, secrets_end)
    gone = bot.book.get(meeting.id)
    assert gone is not None and gone.contacts == () and gone.links is None
    assert gone.subject == "Consultation" and gone.deliveries == meeting.deliveries
    assert bot.store.record(SECRETS, meeting.id) is None
    assert listed(bot) == [meeting.id]


def test_the_appointment_ending_after_the_links_keeps_them_until_its_end(bot: Bot) -> None:
    """Links that open long before a short appointment ends are not what decides: the later."""
    meeting = made(bot, f"meet Consultation {CONTACTS} for=2h valid=3h")
    assert meeting.secrets_until == max(meeting.end, meeting.request.exp or 0)
    move_to(bot, meeting.secrets_until + SECRETS_GRACE - 1)
    assert bot.book.get(meeting.id).contacts  # type: ignore[union-attr]
    move_to(bot, meeting.secrets_until + SECRETS_GRACE)
    assert bot.book.get(meeting.id).contacts == ()  # type: ignore[union-attr]


def test_the_meeting_goes_after_its_retention_and_its_audit_rows_stay(bot: Bot) -> None:
    meeting = made(bot, f"meet Consultation {CONTACTS}")
    rows = bot.book.audit_rows(since=0)
    assert {row.what for row in rows} == {"created", "guest link sent"}

    move_to(bot, meeting.end + DEFAULT_RETENTION - 1)
    assert listed(bot) == [meeting.id] and bot.book.get(meeting.id) is not None

    move_to(bot, meeting.end + DEFAULT_RETENTION)
    assert listed(bot) == [] and bot.book.get(meeting.id) is None
    assert bot.store.record(MEETINGS, meeting.id) is None
    assert bot.book.audit_rows(since=0) == rows

    move_to(bot, meeting.end + DEFAULT_AUDIT_RETENTION - 1)
    assert bot.book.audit_rows(since=0) == rows
    move_to(bot, meeting.end + DEFAULT_AUDIT_RETENTION)
    assert bot.book.audit_rows(since=0) == []


def test_a_meeting_made_months_ahead_is_outlived_by_its_audit_trail(bot: Bot) -> None:
    """Made on 15 January for 11 November: a year after the row was written is February, the
    meeting is kept until the next February: the trail is kept a year after the meeting."""
    meeting = made(bot, f"meet Consultation {CONTACTS} date=2027-11-11 time=09:00")
    assert datetime.fromtimestamp(meeting.start, UTC).date().isoformat() == "2027-11-11"
    assert meeting.end + DEFAULT_RETENTION > NOW + DEFAULT_AUDIT_RETENTION
    created = [row for row in bot.book.audit_rows(since=0) if row.what == "created"]
    assert created and created[0].at == NOW

    move_to(bot, meeting.end + DEFAULT_RETENTION)
    assert bot.book.get(meeting.id) is None
    assert [row for row in bot.book.audit_rows(since=0) if row.what == "created"] == created
    move_to(bot, meeting.end + DEFAULT_AUDIT_RETENTION)
    assert bot.book.audit_rows(since=0) == []

