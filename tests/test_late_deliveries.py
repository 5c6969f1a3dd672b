"""Guests' messages that outlast a short outage: tried again later as due jobs, at most once.

Driven through the conversation harness over a real store whose clock is the conversation's:
the clock is moved, the jobs that became due are claimed from the store and run as a worker
runs them. The mail server and Twilio fail as their clients report it (out of reach, a 503, an
answer lost after Twilio made the text, a connection lost after DATA); last, the real clients
against the sandbox's relay and Twilio, with a real runner and gaps of a second.
"""

from __future__ import annotations

import dataclasses
import email.message
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot.conversation.channels import EmailChannel, SmsChannel
from bot.conversation.late_deliveries import GAPS
from bot.conversation.router import Conversation, ConversationConfig
from bot.devtools.in_process import sandbox_guest_channels
from bot.devtools.sandbox import Sandbox
from bot.errors import Deferred, Rejected, Timeout, Unavailable, Unconfirmed, Unreachable
from bot.jobs.runner import Attempt, JobRunner
from bot.jobs.storage import Job, open_store
from bot.meetings.record import Delivery, Meeting
from bot.upstream.mail import SERVICE as MAIL
from bot.upstream.mail import SmtpMailer
from bot.upstream.sms import SERVICE as TWILIO
from bot.upstream.sms import TwilioSms
from cards import inputs as ids
from tests.conftest import FAST_RETRY
from tests.support.conversation import (
    ALICE,
    CATALOG,
    CLINIC,
    DM,
    NOW,
    THREAD,
    Bot,
    message_event,
)
from tests.support.guests import FakeSms, channels

ZOE = "zoe@example.org"
ZOE_MASKED = "z•••@example.org"
ZOE_MOBILE = "+33612345678"
WORKER = "test-worker"
TOMORROW = "date={} time=09:00".format(
    (datetime.fromtimestamp(NOW, ZoneInfo("America/New_York")) + timedelta(days=1)).date())


class LostAnswer(FakeSms):
    """Twilio making the first text, and the client ending with ``error`` as it does when the
    answer was lost: ``Timeout`` when Twilio's list did not show the text yet, ``Unconfirmed``
    when the list could not be read."""

    def __init__(self, error: Timeout | Unconfirmed) -> None:
        super().__init__(reports_fate=True)
        self.lost: Timeout | Unconfirmed | None = error
        self.asked = 0

    def send(self, to: str, body: str) -> str:
        self.sent.append((to, body))
        if self.lost is not None:
            error, self.lost = self.lost, None
            raise error
        return f"SM{len(self.sent)}"

    def sent_since(self, to: str, body: str, since: float) -> str | None:
        self.asked += 1
        return super().sent_since(to, body, since)


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    """The harness over a store that reads the conversation's clock."""
    made: list[Bot] = []
    store = open_store(f"sqlite:///{tmp_path}/store.sqlite3", clock=lambda: made[0].now())
    made.append(Bot(store, remind_before="none"))  # only the later tries are scheduled here
    yield made[0]
    store.close()


def meet(bot: Bot, *, to: str = ZOE, room: str = CLINIC, when: str = TOMORROW) -> Meeting:
    """Alice makes a meeting with a guest reached outside Webex (in the clinic's thread)."""
    bot.store.complete(bot.say(f"meet Consultation to={to} {when}", room=room,
                               mention=room != DM, parent_id=THREAD if room != DM else None),
                       WORKER)
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    return meeting


def run_due(bot: Bot) -> list[Job]:
    """Every job due by now, claimed and run as a worker does."""
    ran = []
    while (job := bot.store.claim(WORKER, 60.0)) is not None:
        bot.conversation.process(Attempt(job, last=False))
        bot.store.complete(job.event_id, WORKER)
        ran.append(job)
    return ran


def later(bot: Bot, seconds: float) -> list[Job]:
    bot.advance(seconds)
    return run_due(bot)


def tries_waiting(bot: Bot, meeting: Meeting) -> int:
    """The later tries waiting: the store's scheduled jobs but the maker's "starts now" message,
    due at the start of a meeting that starts later."""
    return bot.store.scheduled() - (bot.now() < meeting.start)


def said(bot: Bot, words: str) -> list[dict]:
    return [sent for sent in bot.sends() if words in sent["markdown"]]


def delivery(bot: Bot, meeting: Meeting) -> Delivery:
    found = bot.book.get(meeting.id)
    assert found is not None
    last = found.last_delivery(0)
    assert last is not None
    return last


def invite(message: email.message.EmailMessage) -> icalendar.Event:
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    [event] = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    return event


def test_a_mail_server_down_then_back_sends_one_email_and_says_late_then_sent_once(
    bot: Bot,
) -> None:
    bot.mail.error = Unreachable(MAIL)
    meeting = meet(bot)
    [report] = said(bot, "Guest links for")
    assert (f"- Guest 1 link to {ZOE_MASKED} (email, with calendar invite) is late: I could not "
            "get through to the mail server. I will keep trying for an hour and say how it "
            "ends.") in report["markdown"]
    assert ZOE not in report["markdown"]  # masked in a group space
    assert delivery(bot, meeting).outcome == "late" and tries_waiting(bot, meeting) == 1
    assert later(bot, GAPS[0] - 1) == []  # not early
    assert len(later(bot, 1)) == 1 and bot.mail.sent == []  # still down: tried, quiet
    assert said(bot, "** went out.") == []
    bot.mail.error = None
    [job] = later(bot, GAPS[1])
    assert job.event_id.startswith(f"delivery:{meeting.id}:0:0:") and job.event_id.endswith(":2")
    [sent] = bot.mail.sent
    assert sent["To"] == ZOE and meeting.links is not None
    assert meeting.links.guests[0].best_url in sent.get_body(("plain",)).get_content()
    [told] = said(bot, "** went out.")
    assert told["room_id"] == CLINIC and told["parent_id"] == THREAD
    assert told["markdown"] == (f"The late Guest 1 link to {ZOE_MASKED} (email, with calendar "
                                "invite) for **Consultation** went out.")
    assert later(bot, 2 * 3600) == [] and len(bot.mail.sent) == 1
    assert len(said(bot, "is late")) == 1 and len(said(bot, "** went out.")) == 1
    assert delivery(bot, meeting).outcome == "sent"
    rows = [(row.who, row.detail) for row in bot.book.audit_rows(since=0)
            if row.what == "guest link sent"]
    assert rows == [(ALICE.emails[0], f"guest 1 email {ZOE_MASKED}: late"),
                    ("the bot", f"guest 1 email {ZOE_MASKED}: late (later try 1)"),
                    ("the bot", f"guest 1 email {ZOE_MASKED}: sent (later try 2)")]


def test_a_twilio_503_then_ok_sends_one_text(bot: Bot) -> None:
    bot.sms.error = Unavailable(TWILIO, status=503)
    meeting = meet(bot, to=ZOE_MOBILE, room=DM)
    [report] = said(bot, "Guest links for")
    assert (f"Guest 1 link to {ZOE_MOBILE} (SMS) is late: I could not get through to "
            "Twilio (HTTP 503).") in report["markdown"]  # whole in the 1:1 space
    bot.sms.error = None
    later(bot, GAPS[0])
    assert len(bot.sms.sent) == 1 and meeting.links is not None
    assert meeting.links.guests[0].best_url in bot.sms.sent[0][1]
    [told] = said(bot, "** went out.")
    assert told["room_id"] == DM and ZOE_MOBILE in told["markdown"]
    assert later(bot, 2 * 3600) == [] and len(bot.sms.sent) == 1


def test_a_twilio_rate_limit_waits_what_twilio_asked_when_longer_than_the_gap(bot: Bot) -> None:
    bot.sms.error = Unavailable(TWILIO, status=429, retry_after=300.0)
    meet(bot, to=ZOE_MOBILE)
    bot.sms.error = None
    assert later(bot, GAPS[0]) == [] and bot.sms.sent == []
    assert len(later(bot, 300 - GAPS[0])) == 1 and len(bot.sms.sent) == 1


def test_a_text_twilio_made_though_its_answer_was_lost_is_found_not_sent_again(bot: Bot) -> None:
    """The client's own look at the Messages list failed too (``Unconfirmed``): the later try
    asks Twilio first, finds the text, and records it as sent, with its SID."""
    sms = LostAnswer(Unconfirmed(TWILIO, detail="Twilio could not be asked"))
    bot.conversation = bot.built(channels(bot.mail, sms), phone_region="FR")
    meeting = meet(bot, to=ZOE_MOBILE)
    assert "is late: Twilio did not say whether it went out, so I will ask it first" in said(
        bot, "Guest links for")[0]["markdown"]
    assert delivery(bot, meeting).outcome == "unconfirmed"  # until Twilio says
    later(bot, GAPS[0])
    assert len(sms.sent) == 1 and sms.asked == 1  # asked, found: not sent again
    [told] = said(bot, "** went out.")
    assert "+33 6 •• •• •• 78" in told["markdown"]
    assert delivery(bot, meeting).reference == "SM1"
    assert bot.book.sent_text("SM1") is not None  # what Twilio says of it later is heard
    assert later(bot, 2 * 3600) == [] and len(sms.sent) == 1


def test_a_twilio_timeout_is_asked_about_first_on_the_later_try(bot: Bot) -> None:
    """Twilio's answer lost and Twilio's list saying nothing yet: the later try asks again
    before it sends, and finds the text Twilio listed meanwhile."""
    sms = LostAnswer(Timeout(TWILIO, detail="the connection ended before Twilio answered"))
    bot.conversation = bot.built(channels(bot.mail, sms), phone_region="FR")
    listed: list[tuple[str, str]] = []
    sms.sent_since = lambda to, body, since: (  # type: ignore[method-assign]
        "SM1" if (to, body) in listed else None)
    meet(bot, to=ZOE_MOBILE)
    assert "is late: I could not get through to Twilio" in said(bot, "Guest links for")[0][
        "markdown"]
    listed.extend(sms.sent)  # Twilio lists it now
    later(bot, GAPS[0])
    assert len(sms.sent) == 1 and len(said(bot, "** went out.")) == 1


def test_an_email_in_doubt_is_not_sent_again_and_said_maybe_delivered(bot: Bot) -> None:
    bot.mail.error = Unconfirmed(MAIL, detail="the connection ended after the message was "
                                              "handed over, before the server confirmed it")
    meeting = meet(bot)
    assert "may have been delivered" in said(bot, "Guest links for")[0]["markdown"]
    assert tries_waiting(bot, meeting) == 0 and delivery(bot, meeting).outcome == "unconfirmed"
    assert later(bot, 2 * 3600) == []


def test_an_email_in_doubt_on_a_later_try_ends_the_tries_maybe_delivered(bot: Bot) -> None:
    bot.mail.error = Deferred(MAIL, detail="451: sender refused for now")
    meeting = meet(bot)
    assert "could not get through to the mail server (451: sender refused for now)" in said(
        bot, "Guest links for")[0]["markdown"]
    bot.mail.error = Unconfirmed(MAIL, detail="the connection ended after the message was "
                                              "handed over")
    later(bot, GAPS[0])
    [told] = said(bot, "may have been delivered")
    assert told["parent_id"] == THREAD
    assert delivery(bot, meeting).outcome == "unconfirmed"
    bot.mail.error = None
    assert later(bot, 2 * 3600) == [] and bot.mail.sent == []


def test_a_mail_server_down_for_good_is_given_up_after_an_hour_and_said_once(bot: Bot) -> None:
    bot.mail.error = Unreachable(MAIL)
    meeting = meet(bot)
    tries = [len(later(bot, gap)) for gap in GAPS]
    assert tries == [1] * len(GAPS) and 55 * 60 <= sum(GAPS) <= 60 * 60
    [told] = said(bot, "gave up")
    assert told["markdown"] == (
        f"I gave up on the late Guest 1 link to {ZOE_MASKED} (email, with calendar invite) "
        "for **Consultation** after an hour: I could not get through to the mail server. Reach "
        "the guest another way, or send the links again from **meetings** later.")
    assert later(bot, 30 * 60) == [] and tries_waiting(bot, meeting) == 0
    assert delivery(bot, meeting).outcome == "failed" and len(said(bot, "gave up")) == 1


def test_a_meeting_over_before_its_guest_was_reached_is_no_longer_tried(bot: Bot) -> None:
    bot.mail.error = Unreachable(MAIL)
    meeting = meet(bot, when="for=15m")  # from now
    tries = [len(later(bot, gap)) for gap in GAPS]
    assert tries == [1, 1, 1, 1, 0, 0]  # 1, 3, 8 minutes; at 18 it is over
    [told] = said(bot, "I stopped trying")
    assert told["markdown"] == (
        f"I stopped trying the late Guest 1 link to {ZOE_MASKED} (email, with calendar invite) "
        "for **Consultation**: the meeting is over.")
    assert delivery(bot, meeting).outcome == "failed" and tries_waiting(bot, meeting) == 0


def test_a_refusal_on_a_later_try_ends_the_tries_and_says_why(bot: Bot) -> None:
    bot.mail.error = Unreachable(MAIL)
    meeting = meet(bot)
    bot.mail.error = Rejected(MAIL, detail="550: recipient refused")
    later(bot, GAPS[0])
    [told] = said(bot, "could not be sent")
    assert "550: recipient refused" in told["markdown"] and tries_waiting(bot, meeting) == 0


def test_a_meeting_changed_before_the_later_try_reaches_the_guest_with_its_new_link_once(
    bot: Bot,
) -> None:
    bot.mail.error = Unreachable(MAIL)
    meeting = meet(bot, room=DM)
    bot.advance(GAPS[0] / 2)
    change_time(bot, meeting, "14:30")  # the mail server still down: the update is late too
    changed = bot.book.get(meeting.id)
    assert changed is not None and changed.links is not None and changed.sequence == 1
    assert len(said(bot, "is late")) == 2
    bot.mail.error = None
    assert len(later(bot, GAPS[0] / 2)) == 1 and bot.mail.sent == []  # the invitation: replaced
    assert len(later(bot, GAPS[0] / 2)) == 1  # the update's first later try
    [update] = bot.mail.sent
    assert update["Subject"].startswith("Moved: ") and invite(update)["SEQUENCE"] == 1
    body = update.get_body(("plain",)).get_content()
    assert changed.links.guests[0].best_url in body
    assert meeting.links is not None and meeting.links.guests[0].best_url not in body
    [told] = said(bot, "** went out.")
    assert "new time and link" in told["markdown"]
    assert later(bot, 2 * 3600) == [] and len(bot.mail.sent) == 1


def test_a_meeting_cancelled_before_the_later_try_sends_the_guest_nothing(bot: Bot) -> None:
    bot.mail.error = Unreachable(MAIL)
    meeting = meet(bot, room=DM)
    press(bot, ids.ACTION_CANCEL_MEETING, meeting)
    assert said(bot, "never received the link, so is not told of the cancellation")
    bot.mail.error = None
    assert len(later(bot, GAPS[0])) == 1
    assert later(bot, 2 * 3600) == [] and bot.mail.sent == []
    assert said(bot, "** went out.") == [] and said(bot, "gave up") == []
    assert delivery(bot, meeting).outcome == "withheld"


def test_a_meeting_cancelled_while_a_text_is_in_doubt_tells_the_guest_of_it(bot: Bot) -> None:
    """Twilio may have made the text: the guest may know of the meeting, so hears it is off."""
    sms = LostAnswer(Unconfirmed(TWILIO, detail="Twilio could not be asked"))
    bot.conversation = bot.built(channels(bot.mail, sms), phone_region="FR")
    meeting = meet(bot, to=ZOE_MOBILE, room=DM)
    press(bot, ids.ACTION_CANCEL_MEETING, meeting)
    invitation, cancellation = sms.sent
    assert "cancelled" in cancellation[1] and "cancelled" not in invitation[1]
    assert len(later(bot, GAPS[0])) == 1 and len(sms.sent) == 2  # the invitation's try: no more


def test_a_later_try_run_again_sends_nothing_twice(bot: Bot) -> None:
    """A worker killed after the later try sent, and one after it handed over to the next
    try: the job runs again (its attempts counted) and nothing goes out twice."""
    bot.mail.error = Unreachable(MAIL)
    meeting = meet(bot)
    bot.advance(GAPS[0])
    first = bot.store.claim(WORKER, 60.0)
    assert first is not None
    bot.conversation.process(Attempt(first, last=False))  # down: hands over to try 2
    bot.conversation.process(Attempt(dataclasses.replace(first, attempts=2), last=False))
    bot.store.complete(first.event_id, WORKER)
    assert tries_waiting(bot, meeting) == 1
    bot.mail.error = None
    bot.advance(GAPS[1])
    second = bot.store.claim(WORKER, 60.0)
    assert second is not None
    bot.conversation.process(Attempt(second, last=False))
    bot.conversation.process(Attempt(dataclasses.replace(second, attempts=2), last=False))
    assert len(bot.mail.sent) == 1 and len(said(bot, "** went out.")) == 1
    assert len(said(bot, "is late")) == 1


def test_an_event_run_again_schedules_its_later_try_once(bot: Bot) -> None:
    bot.mail.error = Unreachable(MAIL)
    message = bot.add_message(f"meet Consultation to={ZOE}")
    job = bot.job(message_event(message))
    bot.conversation.process(Attempt(job, last=False))
    bot.conversation.process(Attempt(dataclasses.replace(job, attempts=2), last=False))
    bot.store.complete(job.event_id, WORKER)
    assert bot.store.scheduled() == 1
    bot.mail.error = None
    assert len(later(bot, GAPS[0])) == 1 and len(bot.mail.sent) == 1


def test_sending_again_by_hand_replaces_the_later_tries(bot: Bot) -> None:
    bot.mail.error = Unreachable(MAIL)
    meeting = meet(bot, room=DM)
    bot.mail.error = None
    press(bot, ids.ACTION_RESEND_GUEST_LINKS, meeting)
    assert len(bot.mail.sent) == 1
    assert len(later(bot, GAPS[0])) == 1 and len(bot.mail.sent) == 1  # the try: nothing to do
    assert said(bot, "** went out.") == []


# Against the sandbox's SMTP relay and Twilio, in real time


def test_against_the_sandbox_a_relay_refusing_for_a_while_and_twilio_503s_reach_the_guest_once(
    sandbox: Sandbox, tmp_path: Path,
) -> None:
    """The real mail and SMS clients, a real runner sleeping until each later try is due (gaps
    of a second here). The relay answers 451 until the first later try has failed; Twilio 503s
    the first try's every attempt."""
    store = open_store(f"sqlite:///{tmp_path}/store.sqlite3")
    bot = Bot(store)
    bot.meetings.now = time.time()  # the conversation's clock where the store's is: real time
    guests = sandbox_guest_channels(sandbox, retry=FAST_RETRY)
    bot.conversation = Conversation(
        ConversationConfig(device_catalog=CATALOG, phone_region="FR", remind_before="none"),
        bot.webex, bot.meetings,
        store, bot.book, clock=bot.now, late_gaps=(0.2, 1.0, 1.0, 1.0),
        channels=[EmailChannel(SmtpMailer(guests["mail"])), SmsChannel(TwilioSms(guests["sms"]))])
    sandbox.smtp_fault("tempfail", times=None)
    sandbox.twilio_fault("before_create", status=503, times=FAST_RETRY.max_attempts)
    meet(bot, to=f"{ZOE},{ZOE_MOBILE}", room=DM)
    assert len(said(bot, "is late")) == 1 and len(said(bot, "I will keep trying")) == 1
    ran: list[str] = []
    changed = threading.Condition()

    def process(attempt: Attempt) -> None:
        bot.conversation.process(attempt)
        with changed:
            ran.append(attempt.job.event_id)
            changed.notify_all()

    runner = JobRunner(store, process, threads=1, lease_seconds=30.0, max_attempts=3,
                       poll_seconds=0.05)
    runner.start()
    try:
        with changed:
            assert changed.wait_for(lambda: len(ran) == 2, timeout=10)  # each guest's first
        assert sandbox.mail() == [] and len(sandbox.sms()) == 1
        sandbox.clear_faults()  # the relay is back
        with changed:
            assert changed.wait_for(lambda: len(said(bot, "** went out.")) == 2, timeout=10)
    finally:
        runner.stop()
        store.close()
    [mail] = sandbox.mail()
    assert mail.rcpt_tos == (ZOE,) and len(sandbox.sms()) == 1
    creates = [call.status for call in sandbox.requests_matching("POST", "/twilio/*")]
    assert creates == [503] * FAST_RETRY.max_attempts + [201]
    assert len(sandbox.requests_matching("GET", "/twilio/*")) > FAST_RETRY.max_attempts  # asked
    assert len(said(bot, "is late")) == 1


# Helpers of the meetings card, pressed as Webex delivers a submit


def press(bot: Bot, action: str, meeting: Meeting, **inputs: str) -> None:
    bot.store.complete(bot.submit("meetings-card", {ids.ACTION: action, ids.MEETING: meeting.id,
                                                    **inputs}, room=DM), WORKER)


def change_time(bot: Bot, meeting: Meeting, at: str) -> None:
    day = (datetime.fromtimestamp(NOW, ZoneInfo("America/New_York"))
           + timedelta(days=1)).date().isoformat()
    press(bot, ids.ACTION_CHANGE_TIME, meeting,
          **{ids.meeting_input(ids.NEW_START_DATE, meeting.id): day,
             ids.meeting_input(ids.NEW_START_TIME, meeting.id): at})
