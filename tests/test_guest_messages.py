"""What a guest receives, parsed back as a mail client would: the parts, the QR code, the invite."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import icalendar

from bot.conversation.guest_messages import (
    INVITE_FILENAME,
    QR_FILENAME,
    Invitation,
    guest_email,
    guest_sms,
    qr_png,
)
from bot.upstream.instant_connect import Link

LONG = "https://instant.webex.com/hc/v1/talk?int=jose&v=1&data=" + "e" * 1400
SHORT = "https://instant.webex.com/visit/AbC123x"
NBF = int(datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp())
EXP = NBF + 2 * 3600


def invitation(*, short: str | None = SHORT, note: str = "Please bring your card.") -> Invitation:
    return Invitation(
        subject="Follow-up <Zoë>", link=Link("guest", 2, LONG, short), nbf=NBF, exp=EXP,
        tz=ZoneInfo("Europe/Paris"), window="Fri 15 Jan 2027 09:00 to 11:00 (Europe/Paris)",
        note=note, organizer_name="Alice Martin", organizer_email="alice@clinic.example.com",
        meeting_id="sub-42",
    )


def received(message: EmailMessage) -> EmailMessage:
    """The message as a mail client reads it from the wire."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_email_has_text_html_qr_and_the_invite_twice() -> None:
    mail = received(guest_email(invitation(), "zoe@example.org"))
    assert mail["To"] == "zoe@example.org"
    assert mail["Subject"] == "Your video meeting: Follow-up <Zoë>"
    assert mail["Reply-To"] == "alice@clinic.example.com"
    types = [part.get_content_type() for part in mail.walk()]
    assert types == ["multipart/mixed", "multipart/alternative", "text/plain", "multipart/related",
                     "text/html", "image/png", "text/calendar", "image/png", "text/calendar"]
    text = mail.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert f"Join: {SHORT}" in body and LONG in body and "Please bring your card." in body
    assert "Fri 15 Jan 2027 09:00 to 11:00 (Europe/Paris), UTC+01:00" in body
    page = mail.get_body(("html",))
    assert page is not None
    html = page.get_content()
    assert f'href="{SHORT}"' in html and "Follow-up &lt;Zoë&gt;" in html
    [inline] = [part for part in mail.walk() if part.get("Content-ID")]
    assert f"cid:{inline['Content-ID'][1:-1]}" in html
    assert inline.get_content_disposition() == "inline"  # shown in the page, not listed
    attachments = {part.get_filename(): part for part in mail.iter_attachments()}
    assert set(attachments) == {QR_FILENAME, INVITE_FILENAME}
    assert attachments[INVITE_FILENAME].get_param("method") == "REQUEST"


def test_the_qr_code_is_the_join_link() -> None:
    mail = received(guest_email(invitation(), "zoe@example.org"))
    images = [part.get_content() for part in mail.walk() if part.get_content_type() == "image/png"]
    assert images == [qr_png(SHORT), qr_png(SHORT)]  # inline and attached
    without_short = received(guest_email(invitation(short=None), "zoe@example.org"))
    assert qr_png(LONG) in [part.get_content() for part in without_short.walk()
                            if part.get_content_type() == "image/png"]


def test_the_invite_is_the_validity_window_with_the_link() -> None:
    mail = received(guest_email(invitation(), "zoe@example.org"))
    attachment = next(p for p in mail.iter_attachments() if p.get_filename() == INVITE_FILENAME)
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    assert calendar["METHOD"] == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == datetime.fromtimestamp(NBF, UTC)
    assert event.decoded("DTEND") == datetime.fromtimestamp(EXP, UTC)
    assert str(event["URL"]) == SHORT and SHORT in str(event["DESCRIPTION"])
    assert str(event["UID"]) == "sub-42-guest-2@instant-connect-bot"  # the same for a resend
    assert str(event["ORGANIZER"]) == "mailto:alice@clinic.example.com"
    assert event["ORGANIZER"].params["CN"] == "Alice Martin"
    assert str(event["ATTENDEE"]) == "mailto:zoe@example.org"
    alternative = next(p for p in mail.walk() if p.get_content_type() == "text/calendar")
    assert icalendar.Calendar.from_ical(alternative.get_content()).to_ical() == calendar.to_ical()


def test_the_text_message_carries_subject_start_and_short_link() -> None:
    assert guest_sms(invitation()) == (
        f"Follow-up <Zoë>: your video meeting from Fri 15 Jan 09:00 (Europe/Paris). Join: {SHORT}")
    assert guest_sms(invitation(short=None)).endswith(f"Join: {LONG}")
