"""What a guest receives, parsed back as a mail client would: the parts, the QR code, the invite."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from html import escape
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
from bot.devtools.sandbox.sms import GSM7, GSM7_EXTENDED, segments
from bot.upstream.instant_connect import Link

LONG = "https://instant.webex.com/hc/v1/talk?int=jose&v=1&data=" + "e" * 1400
SHORT = "https://instant.webex.com/visit/AbC123x"
MAIL_FROM = "instant-connect@clinic.example.com"
NBF = int(datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp())
EXP = NBF + 2 * 3600


def invitation(*, short: str | None = SHORT, note: str = "Please bring your card.",
               subject: str = "Follow-up <Zoë>", org_name: str = "Clinique du Parc",
               organizer_name: str = "Alice Martin", nbf: int = NBF,
               exp: int = EXP) -> Invitation:
    return Invitation(
        subject=subject, link=Link("guest", 2, LONG, short), nbf=nbf, exp=exp,
        tz=ZoneInfo("Europe/Paris"),
        note=note, organizer_name=organizer_name, organizer_email="alice@clinic.example.com",
        meeting_id="sub-42", org_name=org_name,
    )


def received(message: EmailMessage) -> EmailMessage:
    """The message as a mail client reads it from the wire."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_email_has_text_html_qr_and_the_invite_twice() -> None:
    mail = received(guest_email(invitation(), "zoe@example.org", MAIL_FROM))
    assert mail["To"] == "zoe@example.org"
    assert mail["From"].addresses[0].display_name == "Alice Martin, Clinique du Parc"
    assert mail["From"].addresses[0].addr_spec == MAIL_FROM
    assert mail["Subject"] == "Your video meeting: Follow-up <Zoë>"
    assert mail["Reply-To"] == "alice@clinic.example.com"
    types = [part.get_content_type() for part in mail.walk()]
    assert types == ["multipart/mixed", "multipart/alternative", "text/plain", "multipart/related",
                     "text/html", "image/png", "text/calendar", "image/png", "text/calendar"]
    text = mail.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert f"Join: {SHORT}" in body and LONG in body and "Please bring your card." in body
    assert body.startswith("Alice Martin, Clinique du Parc, invites you to a video meeting: ")
    assert "A calendar invite is attached." in body
    assert "When: Fri 15 Jan 2027 09:00 to 11:00 (Europe/Paris, UTC+01:00)\n" in body
    page = mail.get_body(("html",))
    assert page is not None
    html = page.get_content()
    assert f'href="{SHORT}"' in html and "Follow-up &lt;Zoë&gt;" in html
    long = escape(LONG)
    assert f'href="{long}"' in html and f">{long}</a>" in html  # the long link beside it
    assert "Alice Martin, Clinique du Parc, invites you" in html
    [inline] = [part for part in mail.walk() if part.get("Content-ID")]
    assert f"cid:{inline['Content-ID'][1:-1]}" in html
    assert inline.get_content_disposition() == "inline"  # shown in the page, not listed
    attachments = {part.get_filename(): part for part in mail.iter_attachments()}
    assert set(attachments) == {QR_FILENAME, INVITE_FILENAME}
    assert attachments[INVITE_FILENAME].get_param("method") == "REQUEST"


def test_a_window_across_a_clock_change_says_each_offset_once() -> None:
    """The spring change in Paris: each time with its own offset, and no third one after."""
    nbf = int(datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp())
    mail = received(guest_email(invitation(nbf=nbf, exp=nbf + 2 * 3600), "zoe@example.org",
                                MAIL_FROM))
    shown = "Sun 29 Mar 2026 01:30 UTC+01:00 to 04:30 UTC+02:00 (Europe/Paris)"
    for kind in ("plain", "html"):
        part = mail.get_body((kind,))
        assert part is not None
        body = part.get_content()
        assert shown in body
        assert body.count("UTC+01:00") == 1 and body.count("UTC+02:00") == 1
    assert shown in guest_sms(invitation(nbf=nbf, exp=nbf + 2 * 3600))


def test_the_qr_code_is_the_join_link() -> None:
    mail = received(guest_email(invitation(), "zoe@example.org", MAIL_FROM))
    images = [part.get_content() for part in mail.walk() if part.get_content_type() == "image/png"]
    assert images == [qr_png(SHORT), qr_png(SHORT)]  # inline and attached
    without_short = received(guest_email(invitation(short=None), "zoe@example.org", MAIL_FROM))
    assert qr_png(LONG) in [part.get_content() for part in without_short.walk()
                            if part.get_content_type() == "image/png"]


def test_the_invite_is_the_validity_window_with_the_link() -> None:
    mail = received(guest_email(invitation(), "zoe@example.org", MAIL_FROM))
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
    assert dict(event["ATTENDEE"].params) == {
        "CN": "zoe@example.org", "CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT",
        "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}
    assert event["SEQUENCE"] == 0  # an update of this meeting will raise it
    assert "attached" not in str(event["DESCRIPTION"])  # the invite is no place to say so
    alternative = next(p for p in mail.walk() if p.get_content_type() == "text/calendar")
    assert icalendar.Calendar.from_ical(alternative.get_content()).to_ical() == calendar.to_ical()


def test_the_text_message_says_who_invites_when_and_the_short_link() -> None:
    text = guest_sms(invitation(subject="Follow-up"))
    assert text == (
        "Alice Martin, Clinique du Parc, invites you to a video meeting (Follow-up), "
        f"Fri 15 Jan 2027 09:00 to 11:00 (Europe/Paris, UTC+01:00). Join: {SHORT}")
    assert guest_sms(invitation(org_name="")).startswith("Alice Martin invites you to ")
    assert guest_sms(invitation(short=None)).endswith(f"Join: {LONG}")


def test_a_typical_text_message_is_gsm7_and_fits_two_segments() -> None:
    """GSM-7 takes 153 characters a segment; a single non-GSM character (an emoji, a "ë")
    makes it UCS-2, 67 a segment. The fixed words must never do that."""
    longest_typical = invitation(
        subject="Physiotherapy follow-up after surgery", org_name="Clinique du Parc Monceau",
        organizer_name="Dr Claire Martin-Dubois")
    text = guest_sms(longest_typical)
    assert set(text) <= GSM7 | GSM7_EXTENDED, set(text) - GSM7 - GSM7_EXTENDED
    assert len(text) > 160 and segments(text) == 2
    assert segments(text.replace("Physiotherapy", "Physiothérapie ë")) == 4  # now UCS-2


def test_segments_are_counted_as_handsets_split_them() -> None:
    assert [segments("a" * 160), segments("a" * 161), segments("a" * 306)] == [1, 2, 2]
    assert segments("a" * 307) == 3
    # An escape pair (the euro sign) is never split: 152 characters and a euro fill one.
    assert [segments("{" * 80), segments("a" * 152 + "€" + "a" * 152)] == [1, 3]
    assert [segments("ë" * 70), segments("ë" * 71), segments("ë" * 134)] == [1, 2, 2]
    # A surrogate pair (an emoji) is never split either.
    assert segments("ë" * 66 + "\U0001F600" + "ë" * 66) == 3
