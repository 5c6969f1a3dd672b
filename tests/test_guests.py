"""Scenario tests: guests get their links by email and SMS through the sandbox's SMTP relay and
Twilio, and the person who made the meeting hears what happened to each contact."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import icalendar
import pytest
import requests

from bot.conversation.guest_messages import INVITE_FILENAME, qr_png
from bot.devtools.in_process import sandbox_guest_channels
from bot.devtools.sandbox import Fault, Sandbox
from bot.devtools.sandbox.sms import segments
from bot.web.envelope import SIGNATURE_HEADER
from cards import inputs as ids
from tests.conftest import FAST_RETRY, RunningBot, sandbox_settings, serve

ZOE = "zoe@example.org"
ZOE_MOBILE = "+33612345678"


@pytest.fixture
def guest_bot(sandbox: Sandbox, tmp_path: Any) -> Iterator[RunningBot]:
    settings = sandbox_settings(sandbox, tmp_path, org_name="Clinique du Parc",
                                **sandbox_guest_channels(sandbox, retry=FAST_RETRY))
    yield from serve(sandbox, settings)


@pytest.fixture
def alice(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.add_person("alice@clinic.example.com", "Alice Doctor",
                              timezone="Europe/Paris")


def received(box: Sandbox) -> list[EmailMessage]:
    """Every email the relay took, as a mail client reads it."""
    return [email.message_from_bytes(mail.data, policy=email.policy.default)  # type: ignore[misc]
            for mail in box.mail()]


def meet(bot: RunningBot, alice: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """Alice writes to the bot 1:1; what the bot answered once every event is done."""
    dm = bot.sandbox.direct_room(alice)
    bot.sandbox.post_message(alice, dm, text)
    bot.idle()
    return bot.bot_messages(dm)


def test_the_form_sends_each_contact_its_guest_link(guest_bot: RunningBot, alice: Any) -> None:
    box = guest_bot.sandbox
    clinic = box.add_room("Clinic", members=[alice])
    box.post_message(alice, clinic, "new", mention_bot=True)
    [form] = guest_bot.wait_for_bot_messages(clinic, 1)
    guest_bot.idle()  # the form is recorded just after Webex shows it
    assert ids.GUEST_CONTACTS in str(form["attachments"][0]["content"])
    box.submit_card(alice, form["id"], {
        ids.ACTION: ids.ACTION_CREATE, ids.SUBJECT: "Follow-up", ids.HOSTS: "1", ids.GUESTS: "1",
        ids.SHORT_LINKS: "true", ids.VALID_FOR: "2h", ids.PRIVATE_HOST_LINKS: "true",
        ids.GUEST_CONTACTS: f"{ZOE}\n06 12 34 56 78", ids.GUEST_NOTE: "Bring your card.",
    })
    guest_bot.idle()
    [call] = box.requests_matching("POST", "/api/v2/joseencrypt")
    assert call.json["numGuest"] == 2  # one guest per contact
    [mail] = received(box)
    assert mail["To"] == ZOE
    assert mail["From"] == '"Alice Doctor, Clinique du Parc" <instant-connect@clinic.example.com>'
    assert mail["Reply-To"] == "alice@clinic.example.com"
    [sms] = box.sms()
    assert sms.to == ZOE_MOBILE and sms.from_ == box.twilio_from
    in_space = "\n".join(m.get("markdown", "") for m in guest_bot.bot_messages(clinic))
    guest_1, guest_2 = (line.split(": ", 1)[1].split()[0] for line in in_space.splitlines()
                        if line.startswith(("- **Guest 1**", "- **Guest 2**")))
    text = mail.get_body(("plain",))
    assert text is not None and f"Join: {guest_1}" in text.get_content()
    assert "Bring your card." in text.get_content()
    assert sms.body.startswith("Alice Doctor, Clinique du Parc, invites you to a video meeting "
                               "(Follow-up), ")
    assert segments(sms.body) == 2 and re.search(r"\(Europe/Paris.*\)\. Join: ", sms.body)
    assert sms.body.endswith(f"Join: {guest_2}")
    images = [part.get_content() for part in mail.walk() if part.get_content_type() == "image/png"]
    assert images == [qr_png(guest_1)] * 2
    invite = next(p for p in mail.iter_attachments() if p.get_filename() == INVITE_FILENAME)
    [event] = icalendar.Calendar.from_ical(invite.get_content()).walk("VEVENT")
    assert str(event["URL"]) == guest_1
    # The event is the appointment (the default 30 minutes from now), inside the links' validity.
    start, end = (int(event.decoded(name).timestamp()) for name in ("DTSTART", "DTEND"))
    assert end - start == 30 * 60 and end <= call.json["jwt"]["exp"]
    # The group space hears of each contact, masked; nothing names them whole there.
    assert "Guest 1 link sent to z•••@example.org (email, with calendar invite)" in in_space
    assert "Guest 2 link sent to +33 6 •• •• •• 78 (SMS)" in in_space
    assert ZOE not in in_space and "12 34 56 78" not in in_space.replace("•• •• ••", "")


def test_the_quick_path_reports_whole_contacts_in_the_1to1_space(
    guest_bot: RunningBot, alice: Any
) -> None:
    replies = meet(guest_bot, alice, f"meet Consultation to={ZOE},{ZOE_MOBILE}")
    report = replies[-1]["markdown"]
    assert report.splitlines() == [
        "**Guest links for Consultation**",
        f"- Guest 1 link sent to {ZOE} (email, with calendar invite)",
        f"- Guest 2 link sent to {ZOE_MOBILE} (SMS)",
        "Text messages are sent to the carrier; I am not told whether they arrive.",
    ]
    assert len(guest_bot.sandbox.mail()) == 1 and len(guest_bot.sandbox.sms()) == 1


def test_bad_contacts_are_named_and_nothing_is_made(guest_bot: RunningBot, alice: Any) -> None:
    [reply] = meet(guest_bot, alice, "meet Consultation to=zoe@exampleorg,+33142685300")
    assert "zoe@exampleorg" in reply["markdown"] and "not a mobile number" in reply["markdown"]
    box = guest_bot.sandbox
    assert box.requests_matching("POST", "/api/v2/joseencrypt") == []
    assert box.mail() == [] and box.sms() == []


def test_a_refusing_mail_server_and_a_struggling_twilio_are_reported(
    guest_bot: RunningBot, alice: Any
) -> None:
    box = guest_bot.sandbox
    box.smtp_fault("refuse")
    box.add_fault(Fault("POST", "/twilio/*", status=503, times=10))  # beyond the bounded retries
    report = meet(guest_bot, alice, f"meet Consultation to={ZOE},{ZOE_MOBILE}")[-1]["markdown"]
    assert (f"- Could not send a guest link to {ZOE}: The mail server refused the request. "
            "(550: recipient refused)") in report
    assert (f"- Guest 2 link to {ZOE_MOBILE} (SMS) is late: I could not get through to Twilio "
            "(HTTP 503). I will keep trying for an hour") in report  # tests/test_late_deliveries
    assert box.mail() == [] and box.sms() == []
    attempts = box.requests_matching("POST", "/twilio/*")
    assert len(attempts) == FAST_RETRY.max_attempts  # retried, within the bound


def test_a_slow_mail_server_times_out_and_a_brief_twilio_outage_is_retried(
    sandbox: Sandbox, tmp_path: Any, alice: Any
) -> None:
    channels = sandbox_guest_channels(sandbox, retry=FAST_RETRY)
    channels["mail"] = dataclasses.replace(channels["mail"], timeout=0.5)
    for bot in serve(sandbox, sandbox_settings(sandbox, tmp_path, **channels)):
        sandbox.smtp_fault("slow", seconds=3)
        sandbox.add_fault(Fault("POST", "/twilio/*", status=503, times=1))
        report = meet(bot, alice, f"meet Consultation to={ZOE},{ZOE_MOBILE}")[-1]["markdown"]
        assert (f"- Guest 1 link to {ZOE} (email, with calendar invite) may have been "
                "delivered: The mail server did not confirm it") in report
        assert sandbox.mail() == []  # and it was not sent again (this relay drops it too)
        assert len(sandbox.smtp_sessions()) == 1
        assert f"- Guest 2 link sent to {ZOE_MOBILE} (SMS)" in report
        assert len(sandbox.sms()) == 1


def test_an_email_kept_by_the_relay_before_the_connection_dropped_is_said_maybe_delivered(
    guest_bot: RunningBot, alice: Any
) -> None:
    box = guest_bot.sandbox
    box.smtp_fault("drop")
    report = meet(guest_bot, alice, f"meet Consultation to={ZOE}")[-1]["markdown"]
    assert f"- Guest 1 link to {ZOE} (email, with calendar invite) may have been delivered: " \
        in report and "Could not send" not in report
    assert len(box.mail()) == 1


def test_a_text_twilio_created_before_its_500_is_never_sent_twice(
    guest_bot: RunningBot, alice: Any
) -> None:
    box = guest_bot.sandbox
    box.twilio_fault("after_create")
    report = meet(guest_bot, alice, f"meet Consultation to={ZOE_MOBILE}")[-1]["markdown"]
    assert f"- Guest 1 link sent to {ZOE_MOBILE} (SMS)" in report
    assert len(box.sms()) == 1


def test_a_text_twilio_refused_with_a_500_before_creating_it_still_goes_once(
    guest_bot: RunningBot, alice: Any
) -> None:
    box = guest_bot.sandbox
    box.twilio_fault("before_create")
    report = meet(guest_bot, alice, f"meet Consultation to={ZOE_MOBILE}")[-1]["markdown"]
    assert f"- Guest 1 link sent to {ZOE_MOBILE} (SMS)" in report
    assert len(box.sms()) == 1
    assert [call.status for call in box.requests_matching("POST", "/twilio/*")] == [500, 201]


def test_a_text_whose_fate_twilio_cannot_tell_is_said_in_doubt_and_not_sent_blindly(
    guest_bot: RunningBot, alice: Any
) -> None:
    """Twilio is asked again later, before anything is sent (tests/test_late_deliveries)."""
    box = guest_bot.sandbox
    box.twilio_fault("after_create")
    box.add_fault(Fault("GET", "/twilio/*", status=503, times=1))
    report = meet(guest_bot, alice, f"meet Consultation to={ZOE_MOBILE}")[-1]["markdown"]
    assert (f"- Guest 1 link to {ZOE_MOBILE} (SMS) is late: Twilio did not say whether it "
            "went out, so I will ask it first.") in report
    assert "20500" not in report and "refused" not in report
    assert len(box.sms()) == 1


def test_a_redelivered_event_sends_nothing_twice(guest_bot: RunningBot, alice: Any) -> None:
    box = guest_bot.sandbox
    meet(guest_bot, alice, f"meet Consultation to={ZOE},{ZOE_MOBILE}")
    [asked] = [m for m in box.messages_in(box.direct_room(alice)) if m["personId"] == alice["id"]]
    [delivery] = [d for d in box.deliveries if d.data_id == asked["id"]]
    again = requests.post(guest_bot.url, data=delivery.body, timeout=10,
                          headers={SIGNATURE_HEADER: delivery.signature or ""})
    assert again.json() == {"status": "duplicate"}
    guest_bot.idle()
    assert len(box.mail()) == 1 and len(box.sms()) == 1
