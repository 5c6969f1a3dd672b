"""The offline demo plays its whole conversation, scripted and interactive."""

import email
import email.policy
import io
import re
from datetime import time, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from bot.devtools.demo import CHANNELS, LUCIA_EMAIL, ZOE_EMAIL, ZONE, run_demo, tomorrow

PARIS = ZoneInfo(ZONE)


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The scripted demo over webhooks, its emails kept: the transcript and the folder."""
    folder = tmp_path_factory.mktemp("demo") / "mail"
    out = io.StringIO()
    assert run_demo(out, mail_dir=folder) == 0
    return out.getvalue(), folder


def test_the_scripted_demo_shows_every_step(played: tuple[str, Path]) -> None:
    text, _ = played
    assert "Alice (1:1): help" in text and "Here is what I can do" in text
    assert "Bot in Clinic: Hello!" in text
    assert "fields Subject, Hosts, Guests" in text
    assert "Bot in 1:1 with Alice: **Host links: Patient follow-up**" in text
    zoe = text.partition("\nLucía reads Spanish")[0]  # Zoë's meeting, before Lucía's
    assert zoe.count("- **Guest ") == 4 and "https://instant.webex.com/visit/" in text
    assert "Dialling in: Exam Room 1, Cart 7" in text
    assert "already created" in text
    assert "Guest 1 link sent to z•••@example.org (email, with calendar invite)" in text
    assert "Zoë's inbox (zoe@example.org): Your video meeting: Patient follow-up" in text
    assert "Attached: join-qr.png (QR code), invite.ics (calendar: METHOD:REQUEST, SEQUENCE:0)" \
        in text
    assert "From: Alice Martin, Clinique du Parc" in text
    assert ("Alice Martin, Clinique du Parc, invites you to a video meeting (Patient follow-up), "
            in text)


def test_the_scripted_demo_lists_the_meeting_moves_it_and_cancels_it(
    played: tuple[str, Path],
) -> None:
    text, _ = played
    moved = (tomorrow() + timedelta(days=1)).isoformat()
    assert text.count("Alice (1:1): meetings") == 2
    assert text.count("[card: buttons 'Send me the host links', 'Change the time' (opens fields "
                      "New date, New start time; button 'Move the meeting'), 'Send the guests "
                      "their links again', 'Cancel' (opens button 'Yes, cancel the meeting')]") == 2
    assert f"picks {moved} at 14:30 and presses 'Move the meeting'" in text
    # the change: the old links marked replaced in their space, the new ones posted there
    assert "Bot in Clinic, replying in a thread: These links were replaced" in text
    assert text.count("Bot in Clinic: **Meeting links: Patient follow-up**") == 1
    assert text.count("Bot in Clinic: **New meeting links: Patient follow-up**") == 1
    assert "Zoë's inbox (zoe@example.org): Moved: Your video meeting: Patient follow-up" in text
    assert re.search(r"2:30\s\u2013\s3:00\sPM \(Europe/Paris, UTC\+", text)  # CLDR's English
    assert "invite.ics (calendar: METHOD:REQUEST, SEQUENCE:1)" in text
    assert "Zoë's phone (+33612345678): Alice Martin, Clinique du Parc, moved your video " in text
    # the cancel: told in the space where it was made and to Alice, links said to stay valid
    assert "Bot in Clinic: Meeting **Patient follow-up** is cancelled" in text
    assert "Bot in 1:1 with Alice: Meeting **Patient follow-up** is cancelled" in text
    assert "they stay valid until they expire" in text
    assert "Zoë's inbox (zoe@example.org): Cancelled: Your video meeting: Patient follow-up" in text
    assert "Attached: invite.ics (calendar: METHOD:CANCEL, SEQUENCE:2)" in text
    assert "cancelled the video meeting (Patient follow-up) of " in text


def test_the_demo_over_the_websocket_prints_the_same_transcript(played: tuple[str, Path]) -> None:
    """No webhook, no web server: the same conversation, word for word but the channel's name
    (and the links' ciphers, which differ on every run)."""
    out = io.StringIO()
    assert run_demo(out, events="websocket") == 0
    transcripts = []
    for events, text in (("webhooks", played[0].partition("\nSaved ")[0] + "\n"),
                         ("websocket", out.getvalue())):
        text = re.sub(r"https://\S+", "URL", text.replace(CHANNELS[events], "CHANNEL"))
        text = re.sub(r"\d{1,2}:\d\d(:\d\d)?", "TIME", text)  # Lucía's meeting: from now
        # Without a web server no public URL: Twilio cannot report a text's fate to the bot.
        text = re.sub(r"\n *(Twilio to the bot's status callback|Text messages are).*", "", text)
        transcripts.append(text)
    assert transcripts[0] == transcripts[1]
    assert "talking over CHANNEL" in transcripts[1]
    # in a space of Webex's second cluster, whose ids the listener has to work out
    assert "their ids name urn:TEAM:eu-central-1_k." in transcripts[1]
    assert "Cancelled: Your video meeting" in transcripts[1]


def _calendar(mail: EmailMessage) -> icalendar.Calendar:
    """The email's invite, said the same in its text/calendar alternative and its attachment
    (the method in the MIME type too)."""
    parts = [part for part in mail.walk() if part.get_content_type() == "text/calendar"]
    assert len(parts) == 2 and parts[0].get_content() == parts[1].get_content()
    calendar = icalendar.Calendar.from_ical(parts[0].get_content())
    assert {part.get_param("method") for part in parts} == {calendar["METHOD"]}
    return calendar


def test_the_demo_leaves_zoe_her_invite_its_update_and_its_cancellation(
    played: tuple[str, Path],
) -> None:
    """One calendar event in Zoë's calendar: made, moved, then cancelled (RFC 5546)."""
    text, folder = played
    saved = sorted(folder.iterdir())[:3]
    assert [path.name for path in saved] == ["01-zoe.eml", "02-zoe.eml", "03-zoe.eml"]
    mails = [_read(path) for path in saved]
    assert all(mail["To"] == ZOE_EMAIL for mail in mails)
    assert all(f"Saved {path}" in text for path in saved)
    assert [mail["Subject"] for mail in mails] == [
        "Your video meeting: Patient follow-up", "Moved: Your video meeting: Patient follow-up",
        "Cancelled: Your video meeting: Patient follow-up"]
    calendars = [_calendar(mail) for mail in mails]
    events = [calendar.walk("VEVENT")[0] for calendar in calendars]
    assert [str(calendar["METHOD"]) for calendar in calendars] == ["REQUEST", "REQUEST", "CANCEL"]
    assert len({str(event["UID"]) for event in events}) == 1
    first, update, cancellation = (int(event["SEQUENCE"]) for event in events)
    assert first == 0 < update < cancellation
    assert [str(event.get("STATUS", "")) for event in events] == ["", "", "CANCELLED"]
    starts = [event.decoded("DTSTART").astimezone(PARIS) for event in events]
    assert (starts[0].date() + timedelta(days=1), starts[0].time()) == (
        starts[1].date(), time(9, 0))
    assert starts[1].time() == time(14, 30) and starts[2] == starts[1]
    assert all(event.decoded("DTEND") - start == timedelta(minutes=30)
               for event, start in zip(events, starts, strict=True))


def _read(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default,
                                    _class=EmailMessage)


def test_the_demo_reminds_a_spanish_speaking_guest_while_it_runs(
    played: tuple[str, Path],
) -> None:
    """Lucía reads Spanish: her invite and her reminder are in it, said so; her reminder came
    by email and SMS while the demo ran, with the link of her invitation."""
    text, folder = played
    invitation, reminder = (_read(path) for path in sorted(folder.iterdir())[3:])
    assert [mail["To"] for mail in (invitation, reminder)] == [LUCIA_EMAIL, LUCIA_EMAIL]
    assert [mail["Content-Language"] for mail in (invitation, reminder)] == ["es", "es"]
    assert invitation["Subject"] == "Su videollamada: Consulta de seguimiento"
    assert reminder["Subject"] == "Recordatorio: su videollamada: Consulta de seguimiento"
    assert _calendar(invitation)["METHOD"] == "REQUEST"
    assert not any(part.get_content_type() == "text/calendar" for part in reminder.walk())
    body = reminder.get_body(("plain",))
    assert body is not None and body.get_content().startswith(
        "Recordatorio: Alice Martin, Clinique du Parc, le invita a una videollamada:")
    link = re.search(r"Enlace: (\S+)", body.get_content())
    assert link is not None and link[1] in str(invitation.get_body(("plain",)))
    assert "Bot in 1:1 with Alice, replying in a thread: **Guests reminded of Consulta" in text
    assert ("Twilio to the bot's status callback: Lucía's reminder text sent, then delivered "
            "(signed; the bot answered 200 and 200)") in text
    assert re.search(r"Lucía's phone \(\+34612345678\): Recordatorio: Alice Martin, Clinique "
                     r"du Parc, le invita a una videollamada \(Consulta de seguimiento\) el "
                     r".*\(Europe/Paris, UTC\+01:00\)\. Enlace: https://", text)


def test_the_interactive_demo_takes_messages_and_fills_the_form():
    answers = "\n".join([
        "help", "@new", "y", "Knee check", "1", "2", "", "lab@clinic.example.com", "", "hc",
        "", "", "", "4h", "", "false", "meet Quick one guests=3", "",
    ]) + "\n"
    out = io.StringIO()
    assert run_demo(out, io.StringIO(answers)) == 0
    text = out.getvalue()
    assert "Here is what I can do" in text
    assert "**Meeting links: Knee check**" in text and "Dialling in: lab@clinic.example.com" in text
    assert "**Meeting links: Quick one**" in text and "- **Guest 3**" in text


def test_the_interactive_demo_takes_devices_by_name_and_shows_what_the_guests_received():
    """Devices typed as listed (any case), the meeting's length, guests' contacts on the form
    and with ``to=``: each guest's email and text message are shown, as in the scripted demo,
    once each."""
    day = (tomorrow() + timedelta(days=1)).isoformat()
    answers = "\n".join([
        "new", "y", "Knee check", "1", "2", "exam room 1, Cart 7", "", "", "hc", day, "10:00",
        "45m", "", "zoe@example.org, +33 6 12 34 56 78", "meet Quick one to=ann@example.org", "",
    ]) + "\n"
    out = io.StringIO()
    assert run_demo(out, io.StringIO(answers)) == 0
    text = out.getvalue()
    assert "Devices to dial in (Exam Room 1, Cart 7)" in text
    assert "Duration (15m, 30m, 45m, 1h, 90m, 2h) [30m]: " in text
    assert "Dialling in: Exam Room 1, Cart 7" in text
    assert text.count("What the guests received:") == 2
    assert "Inbox (zoe@example.org): Your video meeting: Knee check" in text
    assert re.search(r"When: .* 10:00\s\u2013\s10:45\sAM \(Europe/Paris, UTC\+", text)
    assert "Phone (+33612345678): Alice Martin, Clinique du Parc, invites you" in text
    assert text.count("Inbox (ann@example.org): Your video meeting: Quick one") == 1
