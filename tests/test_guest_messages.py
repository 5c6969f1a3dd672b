"""What a guest receives, parsed back as a mail client would: the parts, the QR code, the invite."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot.conversation.guest_messages import (
    INVITE_FILENAME,
    QR_FILENAME,
    Invitation,
    MessageKind,
    calendar_invite,
    guest_email,
    guest_sms,
    qr_png,
)
from bot.devtools.sandbox.sms import GSM7, GSM7_EXTENDED, segments
from bot.upstream.instant_connect import Link

LONG = "https://instant.webex.com/hc/v1/talk?int=jose&v=1&data=" + "e" * 1400
SHORT = "https://instant.webex.com/visit/AbC123x"
MAIL_FROM = "instant-connect@clinic.example.com"
START = int(datetime(2027, 1, 15, 8, 0, tzinfo=UTC).timestamp())
END = START + 2 * 3600
ALICE = "alice@clinic.example.com"
# The appointment as CLDR writes it in English (thin spaces around its dash, a narrow
# no-break space before AM), and in a text message, in GSM-7.
WHEN = "Fri, Jan 15, 2027, 9:00\u2009\u2013\u200911:00\u202fAM (Europe/Paris, UTC+01:00)"
SMS_WHEN = "Fri, Jan 15, 2027, 9:00 - 11:00 AM (Europe/Paris, UTC+01:00)"
MOVED_WHEN = "Sat, Jan 16, 2027, 11:00\u2009\u2013\u200911:30\u202fAM (Europe/Paris, UTC+01:00)"
MOVED_SMS_WHEN = "Sat, Jan 16, 2027, 11:00 - 11:30 AM (Europe/Paris, UTC+01:00)"


def invitation(*, short: str | None = SHORT, note: str = "Please bring your card.",
               subject: str = "Follow-up <Zoë>", org_name: str = "Clinique du Parc",
               organizer_name: str = "Alice Martin", organizer_email: str | None = ALICE,
               start: int = START, end: int = END, long: str = LONG,
               kind: MessageKind = MessageKind.INVITATION, sequence: int = 0) -> Invitation:
    return Invitation(
        subject=subject, link=Link("guest", 2, long, short), start=start, end=end,
        tz=ZoneInfo("Europe/Paris"),
        note=note, organizer_name=organizer_name, organizer_email=organizer_email,
        meeting_id="sub-42", sequence=sequence, kind=kind, org_name=org_name,
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
    assert f"When: {WHEN}\n" in body
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
    start = int(datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp())
    mail = received(guest_email(invitation(start=start, end=start + 2 * 3600), "zoe@example.org",
                                MAIL_FROM))
    shown = "Sun, Mar 29, 2026, 1:30 AM UTC+01:00\u2009\u2013\u20094:30 AM UTC+02:00 (Europe/Paris)"
    for kind in ("plain", "html"):
        part = mail.get_body((kind,))
        assert part is not None
        body = part.get_content()
        assert shown in body
        assert body.count("UTC+01:00") == 1 and body.count("UTC+02:00") == 1
    assert "Sun, Mar 29, 2026, 1:30 AM UTC+01:00 - 4:30 AM UTC+02:00 (Europe/Paris)" in \
        guest_sms(invitation(start=start, end=start + 2 * 3600))


def test_the_qr_code_is_the_join_link() -> None:
    mail = received(guest_email(invitation(), "zoe@example.org", MAIL_FROM))
    images = [part.get_content() for part in mail.walk() if part.get_content_type() == "image/png"]
    assert images == [qr_png(SHORT), qr_png(SHORT)]  # inline and attached
    without_short = received(guest_email(invitation(short=None), "zoe@example.org", MAIL_FROM))
    assert qr_png(LONG) in [part.get_content() for part in without_short.walk()
                            if part.get_content_type() == "image/png"]


def test_the_invite_is_the_appointment_with_the_link() -> None:
    mail = received(guest_email(invitation(), "zoe@example.org", MAIL_FROM))
    attachment = next(p for p in mail.iter_attachments() if p.get_filename() == INVITE_FILENAME)
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    assert calendar["METHOD"] == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == datetime.fromtimestamp(START, UTC)
    assert event.decoded("DTEND") == datetime.fromtimestamp(END, UTC)
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
        f"{SMS_WHEN}. Join: {SHORT}")
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


MOVED_START = START + 26 * 3600  # the next day, two hours later
NEW_SHORT = "https://instant.webex.com/visit/NeW456y"
NEW_LONG = "https://instant.webex.com/hc/v1/talk?int=jose&v=1&data=" + "n" * 1400


def moved(**changes: Any) -> Invitation:
    """The same meeting moved (new links, the same meeting id), as the first update."""
    return invitation(kind=MessageKind.UPDATE, sequence=1, start=MOVED_START,
                      end=MOVED_START + 1800, short=NEW_SHORT, long=NEW_LONG, **changes)


def cancelled(**changes: Any) -> Invitation:
    return invitation(kind=MessageKind.CANCELLATION, sequence=2, start=MOVED_START,
                      end=MOVED_START + 1800, short=NEW_SHORT, long=NEW_LONG, **changes)


def invites(mail: EmailMessage) -> list[tuple[str, icalendar.Calendar]]:
    """Each calendar part (the alternative, the attachment): its MIME method and calendar."""
    return [(part.get_param("method"), icalendar.Calendar.from_ical(part.get_content()))
            for part in mail.walk() if part.get_content_type() == "text/calendar"]


def test_an_update_and_a_cancellation_reach_the_same_calendar_event() -> None:
    """What Outlook, Gmail and Apple need to move or remove the event rather than add one:
    the same UID, a higher SEQUENCE each time, the method in the MIME type and the calendar,
    STATUS:CANCELLED and the attendee in the cancellation (RFC 5546 3.2.2, 3.2.5)."""
    events = []
    for message, method in ((invitation(), "REQUEST"), (moved(), "REQUEST"),
                            (cancelled(), "CANCEL")):
        parts = invites(received(guest_email(message, "zoe@example.org", MAIL_FROM)))
        assert len(parts) == 2  # the alternative and the attachment, the same
        for mime_method, calendar in parts:
            assert (mime_method, calendar["METHOD"]) == (method, method)
        [event] = parts[0][1].walk("VEVENT")
        events.append(event)
    first, update, cancellation = events
    assert str(first["UID"]) == str(update["UID"]) == str(cancellation["UID"])
    assert [e["SEQUENCE"] for e in events] == [0, 1, 2]
    assert [e.get("STATUS") for e in events] == [None, None, "CANCELLED"]
    for event in events:
        assert str(event["ATTENDEE"]) == "mailto:zoe@example.org"
        assert str(event["ORGANIZER"]) == f"mailto:{ALICE}"  # the same organiser throughout
        assert event.get("DTSTAMP") is not None
    assert update.decoded("DTSTART") == datetime.fromtimestamp(MOVED_START, UTC)
    assert update.decoded("DTEND") == datetime.fromtimestamp(MOVED_START + 1800, UTC)
    assert cancellation.decoded("DTSTART") == update.decoded("DTSTART")
    assert str(update["URL"]) == NEW_SHORT and NEW_SHORT in str(update["DESCRIPTION"])
    assert "URL" not in cancellation and "LOCATION" not in cancellation
    assert "RSVP" not in cancellation["ATTENDEE"].params  # a CANCEL asks for no answer
    assert update["ATTENDEE"].params["RSVP"] == "TRUE"


def test_the_uid_belongs_to_the_meeting_and_the_guest_not_to_the_links() -> None:
    assert moved().uid == invitation().uid == "sub-42-guest-2@instant-connect-bot"
    other_guest = Invitation(**{**vars(invitation()), "link": Link("guest", 3, LONG, SHORT)})
    assert other_guest.uid != invitation().uid


def test_an_update_or_a_cancellation_must_raise_the_sequence() -> None:
    with pytest.raises(ValueError, match="SEQUENCE"):
        invitation(kind=MessageKind.UPDATE, sequence=0)
    with pytest.raises(ValueError, match="SEQUENCE"):
        invitation(kind=MessageKind.CANCELLATION, sequence=0)
    assert invitation(sequence=3).uid  # an invitation sent again after an update: allowed


def test_without_the_persons_email_the_mail_sender_organises() -> None:
    """RFC 5546 requires an ORGANIZER in a REQUEST and a CANCEL, and clients need one to take
    the invite for a meeting: the mail sender's address, under the person's name."""
    for message in (invitation(organizer_email=None), cancelled(organizer_email=None)):
        mail = received(guest_email(message, "zoe@example.org", MAIL_FROM))
        assert mail["Reply-To"] is None
        for _, calendar in invites(mail):
            [event] = calendar.walk("VEVENT")
            assert str(event["ORGANIZER"]) == f"mailto:{MAIL_FROM}"
            assert event["ORGANIZER"].params["CN"] == "Alice Martin"


def test_the_update_email_says_moved_with_the_new_time_and_the_new_link() -> None:
    mail = received(guest_email(moved(), "zoe@example.org", MAIL_FROM))
    assert mail["Subject"] == "Moved: Your video meeting: Follow-up <Zoë>"
    text = mail.get_body(("plain",))
    page = mail.get_body(("html",))
    assert text is not None and page is not None
    body = text.get_content()
    assert body.startswith("Alice Martin, Clinique du Parc, moved your video meeting to a new "
                           "time: Follow-up <Zoë>\n")
    assert f"When: {MOVED_WHEN}\n" in body
    assert f"Join: {NEW_SHORT}" in body and NEW_LONG in body
    assert SHORT not in body and LONG not in body
    assert "the one sent before no longer leads to this meeting" in body
    assert "Please bring your card." in body
    assert f'href="{NEW_SHORT}"' in page.get_content()
    assert MOVED_WHEN in page.get_content()
    images = [part.get_content() for part in mail.walk() if part.get_content_type() == "image/png"]
    assert images == [qr_png(NEW_SHORT)] * 2


def test_the_cancellation_email_has_no_link_no_button_and_no_qr_code() -> None:
    message = guest_email(cancelled(), "zoe@example.org", MAIL_FROM)
    mail = received(message)
    assert mail["Subject"] == "Cancelled: Your video meeting: Follow-up <Zoë>"
    types = [part.get_content_type() for part in mail.walk()]
    assert types == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                     "text/calendar", "text/calendar"]
    text = mail.get_body(("plain",))
    page = mail.get_body(("html",))
    assert text is not None and page is not None
    body = text.get_content()
    assert body.startswith("Alice Martin, Clinique du Parc, cancelled the video meeting: "
                           "Follow-up <Zoë>\n")
    assert f"When: {MOVED_WHEN}" in body and "will not take place" in body
    assert "A calendar cancellation is attached." in body
    assert "Join" not in page.get_content() and "<img" not in page.get_content()
    assert "will not take place" in page.get_content()
    assert "Please bring your card." not in body  # a note about attending
    for part in mail.walk():  # no link anywhere, decoded or on the wire
        if not part.is_multipart():
            content = str(part.get_content())
            assert "instant.webex.com" not in content, part.get_content_type()
    assert b"instant.webex.com" not in message.as_bytes()
    [attachment] = mail.iter_attachments()
    assert attachment.get_filename() == INVITE_FILENAME


def test_each_text_message_says_what_happened() -> None:
    assert guest_sms(moved(subject="Follow-up")) == (
        "Alice Martin, Clinique du Parc, moved your video meeting (Follow-up) to "
        f"{MOVED_SMS_WHEN}. Join: {NEW_SHORT}")
    assert guest_sms(cancelled(subject="Follow-up")) == (
        f"Alice Martin, Clinique du Parc, cancelled the video meeting (Follow-up) of "
        f"{MOVED_SMS_WHEN}.")
    assert guest_sms(cancelled(org_name="")).startswith("Alice Martin cancelled the video ")


@pytest.mark.parametrize("kind", list(MessageKind))
def test_every_kind_of_text_message_is_gsm7_within_two_segments(kind: MessageKind) -> None:
    longest_typical = invitation(
        subject="Physiotherapy follow-up after surgery", org_name="Clinique du Parc Monceau",
        organizer_name="Dr Claire Martin-Dubois", kind=kind,
        sequence=0 if kind is MessageKind.INVITATION else 1)
    text = guest_sms(longest_typical)
    assert set(text) <= GSM7 | GSM7_EXTENDED, set(text) - GSM7 - GSM7_EXTENDED
    assert segments(text) <= 2
    assert (SHORT in text) is (kind is not MessageKind.CANCELLATION)


def applied(messages: list[Invitation]) -> list[icalendar.Event]:
    """The guest's calendar after it took each message's invite in turn, as an attendee's
    client does (RFC 5546 2.1.5): the event of a UID is replaced by a message with a higher
    SEQUENCE (or the same and a later DTSTAMP), a stale one is ignored, a CANCEL marks it
    cancelled; the events still planned."""
    calendar: dict[str, icalendar.Event] = {}
    for message in messages:
        [event] = icalendar.Calendar.from_ical(
            calendar_invite(message, "zoe@example.org", MAIL_FROM)).walk("VEVENT")
        known = calendar.get(str(event["UID"]))
        if known is None or (event["SEQUENCE"], event.decoded("DTSTAMP")) > (
                known["SEQUENCE"], known.decoded("DTSTAMP")):
            calendar[str(event["UID"])] = event
    return [event for event in calendar.values() if event.get("STATUS") != "CANCELLED"]


def test_the_guests_calendar_moves_the_event_then_drops_it_even_out_of_order() -> None:
    [event] = applied([invitation(), moved()])
    assert event.decoded("DTSTART") == datetime.fromtimestamp(MOVED_START, UTC)
    assert str(event["URL"]) == NEW_SHORT
    [event] = applied([moved(), invitation()])  # the first invite arrived late: stale
    assert str(event["URL"]) == NEW_SHORT
    assert applied([invitation(), moved(), cancelled()]) == []
    assert applied([invitation(), cancelled(), moved()]) == []  # the update, late, is stale
