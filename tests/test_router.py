"""The conversation's routing and decisions, driven with fakes: no sandbox, no HTTP.

Each test builds an :class:`Event` as a webhook would carry it, stores it in a real SQLite store
(``accept`` then ``claim``, so the worker's :class:`Job` is the real one) and hands it to
``Conversation.process``. Webex is a :class:`FakeWebex` that serves the messages, card submits
and people a test puts in its tables and records every message sent with its keywords; the
broker is a :class:`FakeMeetings` that records each request and answers with links built from
it. The assertions are on what was sent, where (space, thread or person) and with which exact
words of :mod:`bot.conversation.replies`, and on what reached the broker.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta
from typing import Any

import pytest

from bot.conversation import replies, router
from bot.conversation.channels import EmailChannel, SmsChannel
from bot.conversation.commands import CommandTable, Entry
from bot.conversation.contacts import MASK, BadContact, Contact
from bot.conversation.context import Place, Sender
from bot.conversation.forms import Forms
from bot.conversation.guest_messages import Invitation
from bot.conversation.router import (
    BUTTONS,
    COMMANDS,
    Conversation,
    Pressed,
    Said,
)
from bot.errors import FieldError, Rejected, Unavailable
from bot.jobs.runner import Attempt
from bot.jobs.storage import Store
from bot.limits import LINK_COUNT_RANGE
from bot.upstream.instant_connect import (
    unique_sub,
)
from cards import inputs as ids
from cards.form import ContactWay, meeting_form
from cards.help import help_card
from tests.support.conversation import (
    ALICE,
    CATALOG,
    CLINIC,
    DM,
    NOW,
    OTHER_BOT,
    STRANGER,
    THREAD,
    Bot,
    create_inputs,
    membership_event,
    message_event,
)
from tests.support.guests import Killed, channels
from tests.support.webex import BOT


def in_space(markdown: str, card: Any = None, *, room: str = DM,
             parent_id: str | None = None) -> dict[str, Any]:
    """A reply as ``EventContext.post`` sends it."""
    return {"room_id": room, "parent_id": parent_id, "markdown": markdown, "card": card}


def help_reply(intro: str, *, room: str = DM, parent_id: str | None = None) -> dict[str, Any]:
    card = help_card(bot_name=BOT.display_name, commands=COMMANDS.help_lines())
    return in_space(replies.help_text(intro, COMMANDS.help_lines()), card, room=room,
                    parent_id=parent_id)


@pytest.fixture
def bot(store: Store) -> Bot:
    return Bot(store)


# 1. Commands in a 1:1 ---------------------------------------------------------------------------


def test_help_in_a_direct_space_gets_the_command_list_and_the_help_card(bot: Bot) -> None:
    bot.say("help")
    assert bot.sends() == [help_reply(replies.HELP)]
    assert bot.meetings.requests == []


def test_an_unknown_word_gets_the_not_understood_help(bot: Bot) -> None:
    bot.say("what is the weather")
    assert bot.sends() == [help_reply(replies.NOT_UNDERSTOOD)]


def test_devices_lists_the_catalog(bot: Bot) -> None:
    bot.say("devices")
    [sent] = bot.sends()
    assert sent == in_space(replies.devices(CATALOG))
    assert "Exam Room 1" in sent["markdown"] and "cart-7@clinic.example.com" in sent["markdown"]


def test_the_bot_added_to_a_space_introduces_itself_and_others_joining_get_nothing(
    bot: Bot,
) -> None:
    bot.process(membership_event(ALICE.id, CLINIC))
    assert bot.sends() == []
    bot.process(membership_event(BOT.id, CLINIC))
    assert bot.sends() == [help_reply(replies.WELCOME, room=CLINIC)]


# 2. The bot's own messages ----------------------------------------------------------------------


def test_the_bots_own_message_sends_nothing_and_fetches_nothing(bot: Bot) -> None:
    bot.say("help", person=BOT)
    assert bot.sends() == []
    assert bot.webex.fetched == []


def test_the_bots_own_message_is_recognised_from_the_fetched_message_too(bot: Bot) -> None:
    message = bot.add_message("help", person=BOT)
    event = message_event(message)
    event = dataclasses.replace(event, data={**event.data, "personId": ""})  # webhook said less
    bot.process(event)
    assert bot.sends() == []
    assert bot.webex.fetched == [("message", message.id)]


# 3. Groups and threads --------------------------------------------------------------------------


def test_a_mention_in_a_group_thread_is_answered_in_that_thread(bot: Bot) -> None:
    bot.say("help", room=CLINIC, parent_id=THREAD, mention=True)
    assert bot.sends() == [help_reply(replies.HELP, room=CLINIC, parent_id=THREAD)]


def test_the_mention_is_removed_before_the_command_is_read(bot: Bot) -> None:
    bot.say("devices", room=CLINIC, mention=True)
    assert bot.sends() == [in_space(replies.devices(CATALOG), room=CLINIC)]


# 4. Who may use the bot -------------------------------------------------------------------------


def test_a_person_of_another_organisation_is_told_they_are_not_allowed(bot: Bot) -> None:
    bot.say("meet Consultation", person=STRANGER, room=CLINIC, parent_id=THREAD, mention=True)
    assert bot.sends() == [in_space(replies.NOT_ALLOWED, room=CLINIC, parent_id=THREAD)]
    assert bot.meetings.requests == []


def test_another_bot_gets_no_reply_at_all(bot: Bot) -> None:
    bot.say("meet Consultation", person=OTHER_BOT, room=CLINIC, mention=True)
    assert bot.sends() == []
    assert bot.meetings.requests == []


def test_a_stranger_pressing_a_form_is_refused_and_nothing_is_created(bot: Bot) -> None:
    form_id = bot.open_form()
    bot.clear()
    bot.submit(form_id, create_inputs(), person=STRANGER)
    assert bot.sends() == [in_space(replies.NOT_ALLOWED, room=CLINIC, parent_id=THREAD)]
    assert bot.meetings.requests == [] and bot.webex.deleted == []


# 5. The quick meet command ----------------------------------------------------------------------


def test_meet_makes_one_broker_request_and_posts_the_links_in_the_space(bot: Bot) -> None:
    message_id = bot.say("meet Consultation guests=2")
    [request] = bot.meetings.requests
    assert request.num_guest == 2 and request.num_host == 1
    assert request.sub == unique_sub("Consultation", message_id)
    assert request.exp == int(NOW) + 2 * 3600  # the default validity
    [sent] = bot.sends()
    assert sent["room_id"] == DM and sent["parent_id"] is None and sent["card"] is not None
    assert sent["markdown"].startswith("**Meeting links: Consultation**")
    for role, number in (("host", 1), ("guest", 1), ("guest", 2)):
        assert f"https://ic.example.test/{role}/{request.sub}/{number}" in sent["markdown"]
    assert "guest/" + request.sub + "/3" not in sent["markdown"]


def test_meet_with_an_unknown_option_names_it_and_calls_no_broker(bot: Bot) -> None:
    bot.say("meet Consultation colour=red")
    [sent] = bot.sends()
    assert sent["room_id"] == DM and sent["card"] is None
    assert sent["markdown"].startswith(replies.FIX_OPTIONS + "\n")
    assert "Option colour" in sent["markdown"]
    assert bot.meetings.requests == []


def test_meet_in_a_group_sends_host_links_privately(bot: Bot) -> None:
    bot.say("meet Consultation", room=CLINIC, parent_id=THREAD, mention=True)
    [request] = bot.meetings.requests
    private, ready, guests = bot.sends()
    assert private["to_person_id"] == ALICE.id and "room_id" not in private
    assert f"/host/{request.sub}/1" in private["markdown"]
    assert ready == in_space(replies.ready("Consultation", ALICE.display_name), room=CLINIC,
                             parent_id=THREAD)
    assert guests["room_id"] == CLINIC and guests["parent_id"] == THREAD
    assert f"/guest/{request.sub}/1" in guests["markdown"] and "/host/" not in guests["markdown"]


# 6. The form's lifecycle ------------------------------------------------------------------------


def test_new_posts_the_form_and_records_where_it_lives(bot: Bot, store: Store) -> None:
    form_id = bot.open_form()
    card = meeting_form(CATALOG, group_space=True, timezone_name="America/New_York",
                        channels=[EmailChannel.way, SmsChannel.way])
    assert bot.sends() == [in_space(replies.FORM, card, room=CLINIC, parent_id=THREAD)]
    forms = Forms(store, bot.webex)
    assert forms.place(form_id, CLINIC) == Place(CLINIC, True, THREAD)
    assert forms.place(form_id, DM) is None  # a form belongs to its own space only


def test_a_submit_creates_the_meeting_posts_the_links_and_retires_the_form(bot: Bot) -> None:
    form_id = bot.open_form()
    bot.clear()
    action_id = bot.submit(form_id, create_inputs())
    [request] = bot.meetings.requests
    assert request.sub == unique_sub("Consultation", action_id)
    assert (request.num_host, request.num_guest) == (1, 2)
    private, ready, guests = bot.sends()  # a group form: host links privately, by default
    assert private["to_person_id"] == ALICE.id
    assert f"/host/{request.sub}/1" in private["markdown"]
    assert ready == in_space(replies.ready("Consultation", ALICE.display_name), room=CLINIC,
                             parent_id=THREAD)
    assert guests["room_id"] == CLINIC and guests["parent_id"] == THREAD
    assert f"/guest/{request.sub}/2" in guests["markdown"] and "/host/" not in guests["markdown"]
    assert bot.webex.deleted == [form_id]


def test_a_submit_without_private_host_links_posts_every_link_in_the_thread(bot: Bot) -> None:
    form_id = bot.open_form()
    bot.clear()
    bot.submit(form_id, create_inputs(**{ids.PRIVATE_HOST_LINKS: "false"}))
    [request] = bot.meetings.requests
    [links] = bot.sends()
    assert links["room_id"] == CLINIC and links["parent_id"] == THREAD
    assert f"/host/{request.sub}/1" in links["markdown"]
    assert f"/guest/{request.sub}/2" in links["markdown"]


def test_a_second_press_of_a_used_form_is_told_the_links_exist(bot: Bot) -> None:
    form_id = bot.open_form()
    bot.submit(form_id, create_inputs())
    bot.clear()
    bot.submit(form_id, create_inputs())
    assert bot.sends() == [in_space(replies.ALREADY_CREATED, room=CLINIC, parent_id=THREAD)]
    assert bot.meetings.requests == [] and bot.webex.deleted == []


def test_a_used_form_says_already_created_before_checking_inputs_or_the_rate_limit(
    store: Store,
) -> None:
    bot = Bot(store, meetings_per_person=1)
    form_id = bot.open_form()
    bot.submit(form_id, create_inputs())
    bot.clear()
    bot.submit(form_id, create_inputs(**{ids.HOSTS: "30"}))  # would fail validation
    bot.submit(form_id, create_inputs())  # would be past the limit of one meeting
    assert bot.sends() == [in_space(replies.ALREADY_CREATED, room=CLINIC, parent_id=THREAD)] * 2
    assert bot.meetings.requests == []


def test_a_submit_of_an_unknown_form_is_told_it_is_gone(bot: Bot) -> None:
    bot.submit("msg-never-posted", create_inputs())
    assert bot.sends() == [in_space(replies.FORM_GONE, room=CLINIC)]
    assert bot.meetings.requests == []


def test_a_form_submitted_from_another_space_is_gone_there(bot: Bot) -> None:
    form_id = bot.open_form()
    bot.clear()
    bot.submit(form_id, create_inputs(), room=DM)
    assert bot.sends() == [in_space(replies.FORM_GONE, room=DM)]
    assert bot.meetings.requests == []


def test_a_broker_refusal_is_told_and_the_form_can_be_submitted_again(bot: Bot) -> None:
    form_id = bot.open_form()
    bot.clear()
    refusal = Rejected("Instant Connect", status=400, tracking_id="ic-track-1")
    bot.meetings.error = refusal
    bot.submit(form_id, create_inputs())
    assert bot.sends() == [in_space(replies.upstream_failure(refusal), room=CLINIC,
                                    parent_id=THREAD)]
    assert "ic-track-1" in bot.sends()[0]["markdown"]
    assert bot.webex.deleted == []  # the form stays for another try
    bot.clear()
    bot.meetings.error = None
    action_id = bot.submit(form_id, create_inputs())
    [request] = bot.meetings.requests
    assert request.sub == unique_sub("Consultation", action_id)
    assert len(bot.sends()) == 3 and bot.webex.deleted == [form_id]


def test_the_help_cards_button_posts_a_form_in_that_space(bot: Bot, store: Store) -> None:
    bot.say("help")
    [help_message] = bot.webex.sent
    bot.clear()
    bot.submit(str(help_message["id"]), {ids.ACTION: ids.ACTION_SHOW_FORM}, room=DM)
    [form] = bot.sends()
    assert form["room_id"] == DM and form["markdown"] == replies.FORM
    assert ids.ACTION_CREATE in str(form["card"])
    assert bot.meetings.requests == []
    forms = Forms(store, bot.webex)
    assert forms.place(str(bot.webex.sent[0]["id"]), DM) is not None



def test_a_command_added_to_the_table_is_understood_and_in_the_help(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One entry and one handler: parsed, run, and listed in the help text and on its card."""
    def pong(conversation: Conversation, said: Said) -> None:
        said.context.say(f"pong, {said.person.display_name}")

    ping = Entry(("ping",), "ping", "check that I am listening", pong)
    monkeypatch.setattr(router, "COMMANDS", CommandTable([*COMMANDS.entries, ping],
                                                         unknown=COMMANDS.unknown))
    bot.say("Ping!")
    assert bot.sends() == [in_space("pong, Alice Doctor")]
    bot.clear()
    bot.say("help")
    [sent] = bot.sends()
    assert "- **ping**: check that I am listening" in sent["markdown"]
    assert {"title": "ping", "value": "check that I am listening"} in help_facts(sent["card"])


def test_a_button_added_to_the_table_runs_its_handler(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pressed(conversation: Conversation, press: Pressed) -> None:
        press.context.say(f"pressed by {press.person.display_name}, form known: {bool(press.form)}")

    monkeypatch.setattr(router, "BUTTONS", {**BUTTONS, "ping": pressed})
    bot.submit("card-1", {ids.ACTION: "ping"}, room=DM)
    assert bot.sends() == [in_space("pressed by Alice Doctor, form known: False")]


@pytest.mark.parametrize("action", [None, "no-such-button", ["create_meeting"]])
def test_a_submit_naming_no_known_button_gets_the_forms_checks(bot: Bot, action: object) -> None:
    bot.submit("not-a-form", {ids.ACTION: action} if action else {}, room=DM)
    assert bot.sends() == [in_space(replies.FORM_GONE)]
    assert bot.meetings.requests == []


def help_facts(card: Any) -> list[dict[str, str]]:
    """The facts of a help card (its one FactSet)."""
    [fact_set] = [item for item in card["body"] if item["type"] == "FactSet"]
    return list(fact_set["facts"])

# 7. Transient failures and the last attempt -----------------------------------------------------


def test_a_transient_webex_failure_is_left_to_the_worker_before_the_last_attempt(
    bot: Bot,
) -> None:
    outage = Unavailable("Webex", status=503)
    bot.webex.failures["message"] = outage
    message = bot.add_message("help")
    job = bot.job(message_event(message))
    with pytest.raises(Unavailable):
        bot.conversation.process(Attempt(job, last=False))
    assert bot.sends() == []
    # The worker's last try: the same event again; this time the person hears why.
    bot.conversation.process(Attempt(dataclasses.replace(job, attempts=5), last=True))
    assert bot.sends() == [in_space(replies.upstream_failure(outage))]


def test_a_transient_webex_failure_sending_the_reply_propagates_too(bot: Bot) -> None:
    bot.webex.failures["send"] = Unavailable("Webex", status=503)
    message = bot.add_message("help")
    with pytest.raises(Unavailable):
        bot.conversation.process(Attempt(bot.job(message_event(message)), last=False))


def test_a_webex_refusal_is_told_at_once_not_retried(bot: Bot) -> None:
    refusal = Rejected("Webex", status=404, tracking_id="wx-track-9")
    bot.webex.failures["person"] = refusal
    bot.say("help", room=CLINIC, parent_id=THREAD, mention=True)  # last=False: nothing raised
    [sent] = bot.sends()
    # Told in the webhook's space; not pinned to the thread, which the router only learns
    # from the fetched message and does not use for failures before the command runs.
    assert sent["room_id"] == CLINIC
    assert sent["markdown"] == replies.upstream_failure(refusal) and sent["card"] is None


def test_a_transient_broker_failure_is_told_at_once(bot: Bot) -> None:
    outage = Unavailable("Instant Connect", status=503)
    bot.meetings.error = outage
    bot.say("meet Consultation")  # last=False: only Webex failures are left to the worker
    assert bot.sends() == [in_space(replies.upstream_failure(outage))]


# 8. The rate limit ------------------------------------------------------------------------------


def test_the_meeting_past_the_rate_limit_is_refused(store: Store) -> None:
    window = timedelta(minutes=30)
    bot = Bot(store, meetings_per_person=1, meetings_window=window)
    bot.say("meet First")
    assert len(bot.meetings.requests) == 1 and len(bot.sends()) == 1
    bot.clear()
    bot.say("meet Second")
    assert bot.sends() == [in_space(replies.rate_limited(1, window))]
    assert bot.meetings.requests == []


def test_a_retried_meeting_is_counted_once_against_the_rate_limit(store: Store) -> None:
    """The meeting was made but its links could not be posted (Webex 503): the retry of the
    same event delivers them; it is not refused as a second meeting."""
    bot = Bot(store, meetings_per_person=1)
    bot.webex.failures["send"] = Unavailable("Webex", status=503)
    message = bot.add_message("meet Consultation")
    job = bot.job(message_event(message))
    with pytest.raises(Unavailable):
        bot.conversation.process(Attempt(job, last=False))
    del bot.webex.failures["send"]
    bot.conversation.process(Attempt(dataclasses.replace(job, attempts=2), last=False))
    [links] = bot.sends()
    assert links["markdown"].startswith("**Meeting links: Consultation**")
    bot.clear()
    bot.say("meet Another")  # a new request is still counted
    assert bot.sends() == [in_space(replies.rate_limited(1, timedelta(hours=1)))]


# 9. Validation ----------------------------------------------------------------------------------


def test_a_submit_with_too_many_hosts_names_the_field_and_reaches_no_broker(bot: Bot) -> None:
    form_id = bot.open_form()
    bot.clear()
    bot.submit(form_id, create_inputs(**{ids.HOSTS: "30"}))
    expected = replies.problems([FieldError(ids.LABELS[ids.HOSTS], LINK_COUNT_RANGE)],
                                replies.FIX_FORM)
    assert bot.sends() == [in_space(expected, room=CLINIC, parent_id=THREAD)]
    assert "**Hosts**" in expected
    assert bot.meetings.requests == [] and bot.webex.deleted == []
    bot.clear()
    bot.submit(form_id, create_inputs())  # the form was not used up: fixed, it works
    assert len(bot.meetings.requests) == 1 and bot.webex.deleted == [form_id]


def test_a_meet_with_a_bad_value_asks_to_fix_the_command(bot: Bot) -> None:
    bot.say("meet Consultation guests=lots")
    expected = replies.problems([FieldError(ids.LABELS[ids.GUESTS], LINK_COUNT_RANGE)],
                                replies.FIX_COMMAND)
    assert bot.sends() == [in_space(expected)]
    assert bot.meetings.requests == []


# 10. Guests reached outside Webex ---------------------------------------------------------------


def test_each_contact_gets_its_guest_link_and_the_person_hears_of_each(bot: Bot) -> None:
    message_id = bot.say("meet Consultation to=\"zoe@example.org, 06 12 34 56 78\" guests=1")
    [request] = bot.meetings.requests
    assert request.num_guest == 2  # one guest per contact
    [mail] = bot.mail.sent
    assert mail["To"] == "zoe@example.org"
    assert "https://ic.example.test/s/g1" in mail.get_body(("plain",)).get_content()
    [(number, text)] = bot.sms.sent
    assert number == "+33612345678" and text.endswith("Join: https://ic.example.test/s/g2")
    links, report = bot.sends()
    assert links["markdown"].startswith("**Meeting links: Consultation**")
    assert "2 guests: one for each contact." in links["markdown"]
    assert report == in_space("\n".join([
        "**Guest links for Consultation**",
        "- Guest 1 link sent to zoe@example.org (email, with calendar invite)",
        "- Guest 2 link sent to +33612345678 (SMS)",
        "Text messages are sent to the carrier; I am not told whether they arrive."]))
    assert message_id


def test_in_a_group_space_the_report_masks_every_contact(bot: Bot) -> None:
    bot.say("meet Consultation to=zoe@example.org,+33612345678 private=no", room=CLINIC,
            parent_id=THREAD, mention=True)
    report = bot.sends()[-1]
    assert report["room_id"] == CLINIC and report["parent_id"] == THREAD
    assert "zoe@" not in report["markdown"] and "12345678" not in report["markdown"]
    assert "z•••@example.org" in report["markdown"] and "+33 6 •• •• •• 78" in report["markdown"]


def test_a_failed_delivery_is_reported_and_the_others_still_go(bot: Bot) -> None:
    bot.mail.error = Rejected("the mail server", detail="550: recipient refused")
    bot.say("meet Consultation to=zoe@example.org,+33612345678")
    assert bot.mail.sent == [] and len(bot.sms.sent) == 1
    report = bot.sends()[-1]["markdown"]
    assert ("- Could not send a guest link to zoe@example.org: The mail server refused the "
            "request. (550: recipient refused)") in report
    assert "- Guest 2 link sent to +33612345678 (SMS)" in report


def test_a_retried_event_sends_no_email_or_text_twice(bot: Bot) -> None:
    """The report could not be posted (Webex 503): the retry posts it, and sends nothing again."""
    message = bot.add_message("meet Consultation to=zoe@example.org,+33612345678")
    job = bot.job(message_event(message))
    original_send = bot.webex.send
    calls = itertools.count()

    def failing_third_send(**message: Any) -> str:
        if next(calls) == 1:  # the links went out; the report fails
            raise Unavailable("Webex", status=503)
        return original_send(**message)

    bot.webex.send = failing_third_send  # type: ignore[method-assign]
    with pytest.raises(Unavailable):
        bot.conversation.process(Attempt(job, last=False))
    assert len(bot.mail.sent) == 1 and len(bot.sms.sent) == 1
    bot.conversation.process(Attempt(dataclasses.replace(job, attempts=2), last=False))
    assert len(bot.mail.sent) == 1 and len(bot.sms.sent) == 1
    assert bot.sends()[-1]["markdown"].startswith("**Guest links for Consultation**")


def test_a_worker_killed_right_after_a_guest_delivery_never_sends_it_twice(bot: Bot) -> None:
    """The text is found in Twilio's list and recorded; the email cannot be looked for, so the
    report says it may have been delivered, and neither goes out again."""
    message = bot.add_message("meet Consultation to=+33612345678,zoe@example.org")
    job = bot.job(message_event(message))
    bot.sms.kill_after_sending = True
    with pytest.raises(Killed):
        bot.conversation.process(Attempt(job, last=False))
    bot.sms.kill_after_sending, bot.mail.kill_after_sending = False, True
    with pytest.raises(Killed):
        bot.conversation.process(Attempt(dataclasses.replace(job, attempts=2), last=False))
    bot.mail.kill_after_sending = False
    bot.conversation.process(Attempt(dataclasses.replace(job, attempts=3), last=False))
    assert len(bot.sms.sent) == 1 and len(bot.mail.sent) == 1
    report = bot.sends()[-1]["markdown"]
    assert report.startswith("**Guest links for Consultation**")
    assert "Guest 1 link sent to" in report
    assert "Guest 2 link to" in report and "may have been delivered" in report


def test_contacts_without_the_channel_are_refused_before_any_meeting(store: Store) -> None:
    bot = Bot(store)
    bot.conversation = bot.built(channels(None, None))
    bot.say("meet Consultation to=zoe@example.org")
    assert bot.meetings.requests == [] and bot.mail.sent == []
    [reply] = bot.sends()
    assert "Email to guests is not set up for this bot" in reply["markdown"]


class Portal:
    """A third way to reach guests, as a deployment would add one: ids like ``portal:12345``."""

    name = "portal"
    described = "patient portal"
    way = ContactWay("portal ids", "portal:12345", "Guests see it when they next log in.")
    not_set_up = "The patient portal is not set up for this bot."
    ready = True
    reports_fate = False
    sent_note = ""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def read(self, entry: str, phone_region: str | None) -> Contact | BadContact | None:
        if not entry.startswith("portal:"):
            return None
        number = entry.removeprefix("portal:")
        if not number.isdigit():
            return BadContact(entry, "is not a portal id like portal:12345.")
        return Contact(self.name, number, f"portal:{MASK * 3}{number[-2:]}")

    def send(self, sender: Sender, address: str, invitation: Invitation) -> str:
        def deliver() -> str:
            self.sent.append((address, invitation.link.url))
            return f"inbox-{len(self.sent)}"
        return sender.once(deliver, service="the patient portal")


def test_a_third_channel_is_one_class_in_the_list_the_bot_is_built_with(store: Store) -> None:
    """The form offers it, the plan reads its contacts, the delivery sends through it once
    (a retry sends nothing again) and the report names it; nothing else knows it."""
    bot = Bot(store)
    portal = Portal()
    bot.conversation = bot.built([portal, *channels(bot.mail, bot.sms)], phone_region="FR")
    bot.open_form()
    card = bot.sends()[-1]["card"]
    assert "portal ids or email addresses or mobile numbers" in str(card)
    assert "Guests see it when they next log in." in str(card)
    bot.clear()
    bot.say("meet Consultation to=portal:x1", room=CLINIC, mention=True)
    assert "'p•••' is not a portal id like portal:12345." in bot.sends()[-1]["markdown"]
    message = bot.add_message("meet Consultation to=portal:12345,zoe@example.org", room=CLINIC,
                              mention=True)
    job = bot.job(message_event(message))
    bot.conversation.process(Attempt(job, last=False))
    bot.conversation.process(Attempt(dataclasses.replace(job, attempts=2), last=False))
    [(address, url)] = portal.sent
    assert address == "12345" and "/guest/" in url and len(bot.mail.sent) == 1
    report = bot.sends()[-1]["markdown"]
    assert "- Guest 1 link sent to portal:•••45 (patient portal)" in report
    assert "12345" not in report  # masked in a group space, as every contact
