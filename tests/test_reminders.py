"""Reminders: each guest reminded at the meeting's lead time by the channel that carried their
link, once however often the job is tried; the maker told at the start with their host links;
a reminder due while the bot was down sent if the meeting has not started, else dropped and
audited; none for a cancelled meeting, the new time's for a changed one, none for a meeting
starting sooner than the lead (and the links message says so). Through the conversation over a
real store whose clock is the conversation's, moved by hand."""

from __future__ import annotations

import email.message
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.conversation.plan import PlanContext, inputs_from_options, plan_from_inputs
from bot.errors import InvalidRequest
from bot.events import TEXT_STATUS, Event
from bot.jobs.runner import Attempt
from bot.jobs.storage import Job, open_store
from bot.meetings.record import Meeting, from_json, public_json
from bot.settings import Settings, SettingsError
from cards import inputs as ids
from cards.form import ContactWay, meeting_form
from tests.support.conversation import ALICE, DM, NOW, Bot

NEW_YORK = ZoneInfo("America/New_York")  # Alice's
ZOE, ZOE_MOBILE = "zoe@example.org", "+33612345678"
DAY = datetime.fromtimestamp(NOW, NEW_YORK).date().isoformat()  # today for Alice: 03:00 now
START = datetime.fromisoformat(f"{DAY}T09:00").replace(tzinfo=NEW_YORK).timestamp()
MINUTE = 60.0


class Worker(Bot):
    """The harness, each event's job completed once processed, as a worker does."""

    def process(self, event: Event, *, last: bool = False) -> Job:
        job = super().process(event, last=last)
        self.store.complete(job.event_id, "test-worker")
        return job


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    """The conversation over a SQLite store that keeps the conversation's time."""
    made: list[Bot] = []
    store = open_store(f"sqlite:///{tmp_path}/store.sqlite3",
                       clock=lambda: made[0].now() if made else NOW)
    made.append(Worker(store))
    yield made[0]
    store.close()


def make(bot: Bot, *, at: str = "09:00", options: str = "remind=15m") -> Meeting:
    """Alice makes "Follow-up" today at ``at`` (her time) with Zoë reached both ways."""
    bot.say(f"meet Follow-up date={DAY} time={at} for=30m to={ZOE},{ZOE_MOBILE} {options}")
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    return meeting


def until(bot: Bot, moment: float) -> list[Job]:
    """Move the clock to ``moment``; claim and process each job due by then, as a worker
    would, each completed."""
    bot.advance(moment - bot.now())
    done = []
    while (job := bot.store.claim("test-worker", 60.0)) is not None:
        bot.conversation.process(Attempt(job, last=False))
        bot.store.complete(job.event_id, "test-worker")
        done.append(job)
    return done


def plain(message: email.message.EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert isinstance(body, email.message.EmailMessage)
    return str(body.get_content())


def said(bot: Bot) -> list[dict[str, Any]]:
    return bot.sends()


def audited(bot: Bot) -> list[tuple[str, str]]:
    return [(row.what, row.detail) for row in bot.book.audit_rows(since=0)]


def test_each_guest_is_reminded_at_its_time_by_their_channel_with_the_same_link(
        bot: Bot) -> None:
    meeting = make(bot)
    assert meeting.remind_before == 15 * MINUTE and meeting.links is not None
    assert until(bot, START - 15 * MINUTE - 1) == []  # not a second early
    [job] = until(bot, START - 15 * MINUTE)
    invitation, reminder = bot.mail.sent
    assert reminder["Subject"] == "Reminder: Your video meeting: Follow-up"
    assert reminder["To"] == ZOE and reminder["Content-Language"] == "en"
    text = plain(reminder)
    assert text.startswith("Reminder: Alice Doctor invites you to a video meeting: Follow-up")
    assert "When: Fri, Jan 15, 2027, 9:00\u2009\u2013\u20099:30\u202fAM " \
           "(America/New_York, UTC-05:00)" in text
    link = meeting.links.guests[0]
    assert f"Join: {link.short_url}" in text and f"Join: {link.short_url}" in plain(invitation)
    assert not any(part.get_content_type() == "text/calendar" for part in reminder.walk())
    _, (number, sms) = bot.sms.sent
    assert number == ZOE_MOBILE and sms == (
        "Reminder: Alice Doctor invites you to a video meeting (Follow-up), Fri, Jan 15, "
        f"2027, 9:00 - 9:30 AM (America/New_York, UTC-05:00). Join: "
        f"{meeting.links.guests[1].short_url}")
    [report] = [s for s in said(bot) if s["markdown"].startswith("**Guests reminded")]
    assert report["room_id"] == DM and report["parent_id"] == meeting.links_message
    assert "Guest 1 reminded at zoe@example.org" in report["markdown"]
    assert [what for what, _ in audited(bot)].count("guest reminded") == 2
    kept = bot.book.get(meeting.id)
    assert kept is not None and kept.deliveries == meeting.deliveries  # the links' outcomes stay

    before = len(bot.webex.sent)
    bot.conversation.process(Attempt(replace(job, attempts=2), last=False))  # tried again
    assert (len(bot.mail.sent), len(bot.sms.sent), len(bot.webex.sent)) == (2, 2, before)


def test_a_reminder_text_the_carrier_could_not_deliver_is_told_in_the_thread(bot: Bot) -> None:
    """With a status callback, the links message promises to say so: a reminder's text too."""
    bot.sms.reports_fate = True
    meeting = make(bot)
    until(bot, START - 15 * MINUTE)
    assert "I will say here if one is not delivered" in said(bot)[-1]["markdown"]
    sid = f"SM{len(bot.sms.sent)}"  # the reminder's
    before = len(bot.webex.sent)
    bot.process(Event(*TEXT_STATUS, data_id=f"{sid}:undelivered",
                      data={"sid": sid, "status": "undelivered", "errorCode": 30003}))
    [told] = said(bot)[before:]
    assert told["parent_id"] == meeting.links_message
    assert told["markdown"].startswith("The text message to guest 2 of **Follow-up** at "
                                       f"{ZOE_MOBILE} was not delivered")


def test_the_maker_is_told_at_the_start_with_the_host_links(bot: Bot) -> None:
    meeting = make(bot)
    until(bot, START - 15 * MINUTE)
    assert meeting.links is not None
    before = len(bot.webex.sent)
    assert until(bot, START - 1) == []
    [job] = until(bot, START)
    [told] = said(bot)[before:]
    assert told["to_person_id"] == ALICE.id
    assert told["markdown"].startswith("**Your meeting starts now: Follow-up**")
    assert meeting.links.hosts[0].best_url in told["markdown"]
    assert ("start told to the maker", "") in audited(bot)
    bot.conversation.process(Attempt(replace(job, attempts=2), last=False))
    assert len(bot.webex.sent) == before + 1


def test_a_reminder_due_while_the_bot_was_down_is_sent_if_the_meeting_has_not_started(
        bot: Bot) -> None:
    make(bot)
    [job] = until(bot, START - 2 * MINUTE)  # 13 minutes late
    assert job.due_at == START - 15 * MINUTE
    _, reminder = bot.mail.sent
    assert plain(reminder).startswith("Reminder: Alice Doctor invites you")
    assert "minutes" not in bot.sms.sent[-1][1]  # no "in 15 minutes" that is no longer true


def test_a_reminder_due_while_the_bot_was_down_is_dropped_and_audited_once_it_started(
        bot: Bot) -> None:
    make(bot)
    sent = len(bot.webex.sent)
    jobs = until(bot, START + 10 * MINUTE)  # the guests' reminder and the maker's start
    assert len(jobs) == 2
    assert (len(bot.mail.sent), len(bot.sms.sent), len(bot.webex.sent)) == (1, 1, sent)
    skipped = [detail for what, detail in audited(bot) if what == "reminder skipped"]
    assert sorted(skipped) == ["to the guests: the meeting had started",
                               "to the maker: the meeting had started"]


def test_the_maker_is_still_told_a_few_minutes_late(bot: Bot) -> None:
    make(bot, options="remind=none")
    before = len(bot.webex.sent)
    until(bot, START + 4 * MINUTE)
    [told] = said(bot)[before:]
    assert told["markdown"].startswith("**Your meeting starts now")


def test_a_meeting_cancelled_before_its_reminder_sends_none(bot: Bot) -> None:
    meeting = make(bot)
    card_id = _meetings_card(bot)
    bot.submit(card_id, {ids.ACTION: ids.ACTION_CANCEL_MEETING, ids.MEETING: meeting.id},
               room=DM)
    mails, texts = len(bot.mail.sent), len(bot.sms.sent)
    assert bot.store.scheduled() == 0  # its jobs went with it
    assert until(bot, START + MINUTE) == []
    assert (len(bot.mail.sent), len(bot.sms.sent)) == (mails, texts)


def test_a_changed_meeting_reminds_at_its_new_time_with_its_new_link(bot: Bot) -> None:
    meeting = make(bot)
    card_id = _meetings_card(bot)
    bot.submit(card_id, {ids.ACTION: ids.ACTION_CHANGE_TIME, ids.MEETING: meeting.id,
                         ids.meeting_input(ids.NEW_START_DATE, meeting.id): DAY,
                         ids.meeting_input(ids.NEW_START_TIME, meeting.id): "11:00"}, room=DM)
    changed = bot.book.get(meeting.id)
    assert changed is not None and changed.links is not None and changed.sequence == 1
    mails = len(bot.mail.sent)
    assert until(bot, START) == []  # nothing at the old time
    assert len(bot.mail.sent) == mails
    [job] = until(bot, START + 2 * 3600 - 15 * MINUTE)
    assert job.event_id.endswith(":guests:1")
    reminder = bot.mail.sent[-1]
    assert reminder["Subject"].startswith("Reminder:")
    assert "11:00" in plain(reminder) and changed.links.guests[0].short_url in plain(reminder)
    assert changed.links.guests[1].short_url in bot.sms.sent[-1][1]


def test_a_stale_job_sends_nothing_even_when_its_cancel_did_not_happen(bot: Bot) -> None:
    """A job of an earlier version (one whose cancel was lost) reads the meeting as it is."""
    meeting = make(bot)
    bot.book.save(replace(meeting, sequence=1))  # changed since, by a try that died before
    mails = len(bot.mail.sent)
    until(bot, START - 15 * MINUTE)
    assert len(bot.mail.sent) == mails


def test_a_meeting_starting_sooner_than_the_lead_gets_no_guest_reminder_and_says_so(
        bot: Bot) -> None:
    bot.advance(START - 10 * MINUTE - NOW)
    make(bot)
    links = next(s["markdown"] for s in said(bot) if s["markdown"].startswith("**Meeting links"))
    assert "No reminder goes to the guests: the meeting starts in less than 15 minutes." in links
    assert bot.store.scheduled() == 1  # the maker's, at the start
    until(bot, START)
    assert (len(bot.mail.sent), len(bot.sms.sent)) == (1, 1)


def test_no_reminder_when_none_is_chosen_and_no_note_for_a_meeting_starting_now(
        bot: Bot) -> None:
    make(bot, options="remind=none")
    assert bot.store.scheduled() == 1  # the maker's only
    bot.say(f"meet Now to={ZOE}")
    assert not any("No reminder" in s["markdown"] for s in said(bot))
    assert bot.store.scheduled() == 1


# The choice: the quick path, the form, the setting, and records made before it --------------

CONTEXT = PlanContext(catalog=(), tz=NEW_YORK, now=datetime.fromtimestamp(NOW, NEW_YORK),
                      group_space=False)


def test_the_lead_time_is_chosen_per_meeting_and_defaults_to_the_setting() -> None:
    def lead(options: dict[str, str], **context: Any) -> timedelta | None:
        plan = plan_from_inputs(inputs_from_options("Follow-up", options, ()),
                                replace(CONTEXT, **context))
        return plan.remind_before

    assert lead({}) == timedelta(minutes=15)
    assert lead({"remind": "1h"}) == timedelta(hours=1)
    assert lead({"remind": "none"}) is None
    assert lead({}, remind_before="1d") == timedelta(days=1)
    assert lead({}, remind_before="none") is None
    with pytest.raises(InvalidRequest) as refused:
        lead({"remind": "8d"})
    assert "Remind the guests: Choose when the guests are reminded" in str(refused.value)


def test_the_form_offers_the_lead_times_the_default_chosen() -> None:
    card = meeting_form((), group_space=False, timezone_name="UTC", channels=[_way()],
                        remind_before="2h")
    [choice] = _inputs(card, ids.REMIND_BEFORE)
    assert choice["value"] == "2h"
    assert [c["value"] for c in choice["choices"]] == ["2h", "15m", "1h", "1d", "none"]


def test_remind_before_is_a_setting() -> None:
    env = {"WEBEX_BOT_TOKEN": "token"}
    assert Settings.from_env(env).conversation_config().remind_before == "15m"
    assert Settings.from_env({**env, "REMIND_BEFORE": "none"}).remind_before == "none"
    with pytest.raises(SettingsError, match="REMIND_BEFORE must be a duration"):
        Settings.from_env({**env, "REMIND_BEFORE": "soon"})


def test_a_record_made_before_reminders_reads_as_reminding_nobody(bot: Bot) -> None:
    meeting = make(bot)
    public = public_json(meeting).replace(',"remind_before":900', "")
    assert "remind_before" not in public
    assert from_json(public, None).remind_before is None


def _meetings_card(bot: Bot) -> str:
    before = len(bot.webex.sent)
    bot.say("meetings")
    return str(bot.webex.sent[before]["id"])


def _way() -> ContactWay:
    return ContactWay("email addresses", ZOE)


def _inputs(node: Any, input_id: str) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("id") == input_id else []
        return found + [i for value in node.values() for i in _inputs(value, input_id)]
    if isinstance(node, list):
        return [i for item in node for i in _inputs(item, input_id)]
    return []
