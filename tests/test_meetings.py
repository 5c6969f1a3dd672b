"""The meetings the bot remembers, as people use them: "meetings", then its buttons.

Driven through the conversation harness (the fakes of Webex, the broker, the mail server and the
SMS provider over a real store). A meeting is made with the quick path, in Alice's 1:1 space or
in the clinic's space; the meetings card's buttons are pressed as Webex delivers a submit: the
card's message id, the button's data and the card's inputs.
"""

from __future__ import annotations

import email.policy
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot.conversation import replies
from bot.errors import Rejected
from bot.jobs.runner import Attempt
from bot.jobs.storage import Store
from bot.meetings.record import Meeting
from bot.upstream.webex import Person
from cards import inputs as ids
from tests.support.conversation import (
    ALICE,
    CLINIC,
    DM,
    NOW,
    ORG,
    STRANGER,
    Bot,
    submit_event,
)

BOB = Person("bob-id", ("bob@clinic.example.com",), "Bob Nurse", ORG, timezone="Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
ZOE = "zoe@example.org"
ZOE_MOBILE = "+33612345678"


@pytest.fixture
def bot(store: Store) -> Bot:
    made = Bot(store)
    made.webex.people[BOB.id] = BOB
    made.webex.members |= {(CLINIC, ALICE.id), (CLINIC, BOB.id)}
    return made


def tomorrow(at: str = "09:00") -> tuple[str, str]:
    """Tomorrow in Alice's zone (the bot's clock), as the quick path and the card type it."""
    day = (datetime.fromtimestamp(NOW, NEW_YORK) + timedelta(days=1)).date().isoformat()
    return day, at


def make(bot: Bot, *, room: str = DM, contacts: str = f"{ZOE},{ZOE_MOBILE}") -> Meeting:
    """Alice makes "Follow-up" for tomorrow 09:00 with guests reached outside Webex."""
    day, at = tomorrow()
    bot.say(f"meet Follow-up date={day} time={at} for=45m to={contacts}", room=room,
            mention=room != DM)
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    return meeting


def meetings_card(bot: Bot, *, person: Person = ALICE, room: str = DM) -> tuple[str, dict]:
    """Say "meetings"; the card's message id and the card."""
    before = len(bot.webex.sent)
    bot.say("meetings", person=person, room=room, mention=room != DM)
    [posted] = bot.webex.sent[before:]
    return str(posted["id"]), posted.get("card") or {}


def press(bot: Bot, card_id: str, action: str, meeting: Meeting, *, person: Person = ALICE,
          room: str = DM, **inputs: str) -> str:
    return bot.submit(card_id, {ids.ACTION: action, ids.MEETING: meeting.id, **inputs},
                      person=person, room=room)


def new_time(meeting: Meeting, day: str, at: str) -> dict[str, str]:
    """The change-time inputs of one meeting, as the meetings card names them."""
    return {ids.meeting_input(ids.NEW_START_DATE, meeting.id): day,
            ids.meeting_input(ids.NEW_START_TIME, meeting.id): at}


def buttons(card: Any) -> list[dict[str, Any]]:
    """Every Action.Submit's data in a card, ShowCards opened."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "Action.Submit":
                found.append(node.get("data") or {})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    return found


def invite(message: email.message.EmailMessage) -> icalendar.Event:
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    [event] = icalendar.Calendar.from_ical(part.get_content()).walk("VEVENT")
    return event


# 1. Made, remembered -------------------------------------------------------------------------


def test_a_meeting_is_remembered_with_its_appointment_links_and_each_guests_outcome(
    bot: Bot,
) -> None:
    meeting = make(bot)
    day, _ = tomorrow()
    start = datetime.fromisoformat(f"{day}T09:00").replace(tzinfo=NEW_YORK).timestamp()
    assert (meeting.start, meeting.end) == (start, start + 45 * 60)
    assert meeting.maker_id == ALICE.id and meeting.room_id == DM and meeting.subject == "Follow-up"
    [request] = bot.meetings.requests
    assert meeting.request == request and meeting.links is not None
    assert [c.address for c in meeting.contacts] == [ZOE, ZOE_MOBILE]
    assert [(d.guest, d.channel, d.outcome) for d in meeting.deliveries] == [
        (0, "email", "sent"), (1, "sms", "sent")]
    rows = bot.book.audit_rows(since=0)
    assert sorted(row.what for row in rows) == ["created", "guest link sent", "guest link sent"]
    assert all(row.who == ALICE.emails[0] and row.meeting == meeting.id for row in rows)
    assert not any(ZOE in row.detail or "612345678" in row.detail or "Follow-up" in row.detail
                   for row in rows)


def test_a_broker_refusal_forgets_the_meeting(bot: Bot) -> None:
    bot.meetings.error = Rejected("Instant Connect", status=400)
    bot.say("meet Follow-up")
    assert bot.book.listed(person_id=ALICE.id, since=0, limit=10) == []


# 2. "meetings" -------------------------------------------------------------------------------


def test_meetings_in_1to1_lists_the_persons_meetings_with_buttons_for_each(bot: Bot) -> None:
    meeting = make(bot)
    _, card = meetings_card(bot)
    data = buttons(card)
    actions = {d[ids.ACTION] for d in data if d.get(ids.MEETING) == meeting.id}
    assert actions == {ids.ACTION_SEND_HOST_LINKS, ids.ACTION_RESEND_GUEST_LINKS,
                       ids.ACTION_CHANGE_TIME, ids.ACTION_CANCEL_MEETING}
    text = str(card)
    assert "Follow-up" in text and ZOE in text  # the maker's own 1:1: contacts whole


def test_meetings_in_a_group_space_lists_those_made_there_with_contacts_masked(bot: Bot) -> None:
    make(bot, room=CLINIC)
    bot.say("meet Elsewhere")  # made in Alice's 1:1 space: not listed in the clinic's
    _, card = meetings_card(bot, person=BOB, room=CLINIC)
    text = str(card)
    assert "Follow-up" in text and "Elsewhere" not in text
    assert ZOE not in text and "z•••@example.org" in text


def test_meetings_with_none_says_so(bot: Bot) -> None:
    bot.say("meetings")
    assert bot.sends()[-1]["markdown"] == replies.NO_MEETINGS


def test_long_lists_page(bot: Bot) -> None:
    day, _ = tomorrow()
    for hour in range(ids.MEETINGS_PER_PAGE + 2):
        bot.say(f"meet Visit {hour} date={day} time={10 + hour}:00")
    card_id, card = meetings_card(bot)
    assert {d.get(ids.PAGE) for d in buttons(card) if d[ids.ACTION] == ids.ACTION_LIST_MEETINGS} \
        == {"2"}
    before = len(bot.webex.sent)
    bot.submit(card_id, {ids.ACTION: ids.ACTION_LIST_MEETINGS, ids.PAGE: "2"}, room=DM)
    [page_two] = bot.webex.sent[before:]
    assert "Visit 0" in str(page_two["card"]) and "Visit 5" not in str(page_two["card"])


# 3. Acting on a meeting ----------------------------------------------------------------------


def test_send_me_the_host_links_sends_them_privately_to_whoever_pressed(bot: Bot) -> None:
    meeting = make(bot, room=CLINIC)
    card_id, _ = meetings_card(bot, person=BOB, room=CLINIC)
    bot.clear()
    press(bot, card_id, ids.ACTION_SEND_HOST_LINKS, meeting, person=BOB, room=CLINIC)
    private = [s for s in bot.sends() if s.get("to_person_id") == BOB.id]
    assert private and meeting.links is not None
    assert meeting.links.hosts[0].url in private[0]["markdown"]
    assert ("host links sent", BOB.emails[0]) in {(r.what, r.who) for r in bot.book.audit_rows(0)}


def test_send_the_guests_their_links_again_sends_the_same_invitation_once(bot: Bot) -> None:
    meeting = make(bot)
    card_id, _ = meetings_card(bot)
    press(bot, card_id, ids.ACTION_RESEND_GUEST_LINKS, meeting)
    first, again = bot.mail.sent
    assert invite(again)["UID"] == invite(first)["UID"]
    assert invite(again)["SEQUENCE"] == invite(first)["SEQUENCE"] == 0
    assert len(bot.sms.sent) == 2 and bot.sms.sent[0] == bot.sms.sent[1]
    assert len(bot.meetings.requests) == 1


def test_change_the_time_makes_new_links_and_moves_each_guests_event(bot: Bot) -> None:
    meeting = make(bot)
    old_links = meeting.links
    card_id, _ = meetings_card(bot)
    day, _ = tomorrow()
    press(bot, card_id, ids.ACTION_CHANGE_TIME, meeting, **new_time(meeting, day, "14:30"))
    first, second = bot.meetings.requests
    assert second.sub != first.sub  # the old links lead nowhere anyone waits
    changed = bot.book.get(meeting.id)
    assert changed is not None and changed.sequence == 1 and changed.links != old_links
    start = datetime.fromisoformat(f"{day}T14:30").replace(tzinfo=NEW_YORK).timestamp()
    assert (changed.start, changed.end) == (start, start + 45 * 60)
    invitation, update = bot.mail.sent
    assert invite(update)["UID"] == invite(invitation)["UID"]
    calendar = next(p for p in update.walk() if p.get_content_type() == "text/calendar")
    assert invite(update)["SEQUENCE"] == 1 and "METHOD:REQUEST" in calendar.get_content()
    assert update["Subject"].startswith("Moved: ")
    assert changed.links is not None and changed.links.guests[1].best_url in bot.sms.sent[-1][1]
    said = [s["markdown"] for s in bot.sends()]
    assert replies.REPLACED_BELOW in said
    assert [row.what for row in bot.book.audit_rows(since=0)].count("changed") == 1


def test_a_new_time_in_the_past_is_refused_by_name_and_nothing_changes(bot: Bot) -> None:
    meeting = make(bot)
    card_id, _ = meetings_card(bot)
    yesterday = (datetime.fromtimestamp(NOW, NEW_YORK) - timedelta(days=1)).date().isoformat()
    press(bot, card_id, ids.ACTION_CHANGE_TIME, meeting, **new_time(meeting, yesterday, "09:00"))
    reply = bot.sends()[-1]["markdown"]
    assert reply.startswith(replies.FIX_NEW_TIME) and "New start time" in reply
    assert len(bot.meetings.requests) == 1 and bot.book.get(meeting.id) == meeting


def test_cancel_tells_each_guest_and_the_space_and_says_the_links_stay_valid(bot: Bot) -> None:
    meeting = make(bot)
    card_id, _ = meetings_card(bot)
    press(bot, card_id, ids.ACTION_CANCEL_MEETING, meeting)
    cancelled = bot.book.get(meeting.id)
    assert cancelled is not None and cancelled.cancelled and cancelled.sequence == 1
    invitation, cancellation = bot.mail.sent
    event = invite(cancellation)
    assert event["UID"] == invite(invitation)["UID"] and event["SEQUENCE"] == 1
    assert str(event["STATUS"]) == "CANCELLED"
    assert "cancelled" in bot.sms.sent[-1][1]
    assert "stay valid until" in bot.sends()[-1]["markdown"]
    assert len(bot.meetings.requests) == 1  # nothing asked of the broker: it revokes nothing


def test_a_cancelled_meeting_shows_no_buttons_and_refuses_a_forged_press(bot: Bot) -> None:
    meeting = make(bot)
    card_id, _ = meetings_card(bot)
    press(bot, card_id, ids.ACTION_CANCEL_MEETING, meeting)
    _, card = meetings_card(bot)
    assert not [d for d in buttons(card) if d.get(ids.MEETING) == meeting.id]
    day, _ = tomorrow()
    press(bot, card_id, ids.ACTION_CHANGE_TIME, meeting, **new_time(meeting, day, "15:00"))
    assert bot.sends()[-1]["markdown"] == replies.OVER
    assert len(bot.meetings.requests) == 1


def test_a_pressed_button_retried_acts_once(bot: Bot) -> None:
    meeting = make(bot)
    card_id, _ = meetings_card(bot)
    day, _ = tomorrow()
    inputs = {ids.ACTION: ids.ACTION_CHANGE_TIME, ids.MEETING: meeting.id,
              **new_time(meeting, day, "16:00")}
    action = bot.submit(card_id, inputs, room=DM)
    sent_before = (len(bot.mail.sent), len(bot.sms.sent), len(bot.webex.sends))
    assert bot.store.claim("another-worker", 60.0) is None  # done; a redelivery is deduped
    # The same press handled again, as after a crash once it was done, changes nothing more.
    event = submit_event(bot.webex.actions[action])
    retried = bot.store.accept(f"{event.data_id}-retry", event.resource, event.to_json())
    assert retried
    claimed = bot.store.claim("test-worker", 60.0)
    assert claimed is not None
    bot.conversation.process(Attempt(claimed, last=False))
    assert len(bot.meetings.requests) == 2  # the first making and one change, not two
    changed = bot.book.get(meeting.id)
    assert changed is not None and changed.sequence == 1
    assert (len(bot.mail.sent), len(bot.sms.sent)) == sent_before[:2]


# 4. Who may act -------------------------------------------------------------------------------


def test_a_member_of_the_space_may_act_on_a_meeting_made_there(bot: Bot) -> None:
    meeting = make(bot, room=CLINIC)
    card_id, _ = meetings_card(bot, person=BOB, room=CLINIC)
    press(bot, card_id, ids.ACTION_CANCEL_MEETING, meeting, person=BOB, room=CLINIC)
    cancelled = bot.book.get(meeting.id)
    assert cancelled is not None and cancelled.cancelled
    assert ("cancelled", BOB.emails[0]) in {(r.what, r.who) for r in bot.book.audit_rows(0)}
    # The organiser of the guests' calendar event stays the maker.
    assert "alice@clinic.example.com" in str(invite(bot.mail.sent[-1])["ORGANIZER"])


def test_with_meeting_actions_maker_only_the_maker_may_act(bot: Bot) -> None:
    bot.conversation = bot.built([], meeting_actions="maker")
    bot.say("meet Follow-up", room=CLINIC, mention=True)
    [meeting] = bot.book.listed(person_id=ALICE.id, since=0, limit=10)
    card_id, card = meetings_card(bot, person=BOB, room=CLINIC)
    assert not [d for d in buttons(card) if d.get(ids.MEETING) == meeting.id]
    press(bot, card_id, ids.ACTION_CANCEL_MEETING, meeting, person=BOB, room=CLINIC)
    assert bot.sends()[-1]["markdown"] == replies.NOT_YOURS
    still = bot.book.get(meeting.id)
    assert still is not None and not still.cancelled


def test_a_forged_press_for_anothers_1to1_meeting_is_refused(bot: Bot) -> None:
    meeting = make(bot)  # in Alice's 1:1 space: only Alice may act on it
    bot.submit("any-card", {ids.ACTION: ids.ACTION_SEND_HOST_LINKS, ids.MEETING: meeting.id},
               person=BOB, room=CLINIC)
    assert bot.sends()[-1]["markdown"] == replies.NOT_YOURS
    assert not [s for s in bot.sends() if s.get("to_person_id") == BOB.id]


def test_a_press_for_an_unknown_meeting_is_told_it_is_gone(bot: Bot) -> None:
    bot.submit("any-card", {ids.ACTION: ids.ACTION_CANCEL_MEETING, ids.MEETING: "m-nope"},
               room=DM)
    assert bot.sends()[-1]["markdown"] == replies.MEETING_GONE


def test_a_stranger_is_refused_before_any_meeting_is_read(bot: Bot) -> None:
    meeting = make(bot)
    bot.submit("any-card", {ids.ACTION: ids.ACTION_CANCEL_MEETING, ids.MEETING: meeting.id},
               person=STRANGER, room=DM)
    assert bot.sends()[-1]["markdown"] == replies.NOT_ALLOWED
