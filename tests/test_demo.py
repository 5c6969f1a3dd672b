"""The offline demo plays its whole conversation, scripted and interactive."""

import email
import email.policy
import io
import re

from bot.devtools.demo import CHANNELS, run_demo


def test_the_scripted_demo_shows_every_step():
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    assert "Alice (1:1): help" in text and "Here is what I can do" in text
    assert "Bot in Clinic: Hello!" in text
    assert "fields Subject, Hosts, Guests" in text
    assert "Bot in 1:1 with Alice: **Host links: Patient follow-up**" in text
    assert text.count("- **Guest ") == 2 and "https://instant.webex.com/visit/" in text
    assert "Dialling in: Exam Room 1, Cart 7" in text
    assert "already created" in text
    assert "Guest 1 link sent to z•••@example.org (email, with calendar invite)" in text
    assert "Zoë's inbox (zoe@example.org): Your video meeting: Patient follow-up" in text
    assert "QR code and calendar invite attached (join-qr.png, invite.ics)" in text
    assert "From: Alice Martin, Clinique du Parc" in text
    assert ("Alice Martin, Clinique du Parc, invites you to a video meeting (Patient follow-up), "
            in text)


def test_the_demo_over_the_websocket_prints_the_same_transcript():
    """No webhook, no web server: the same conversation, word for word but the channel's name
    (and the links' ciphers, which differ on every run)."""
    transcripts = []
    for events in ("webhooks", "websocket"):
        out = io.StringIO()
        assert run_demo(out, events=events) == 0
        text = out.getvalue().replace(CHANNELS[events], "CHANNEL")
        transcripts.append(re.sub(r"https://\S+", "URL", text))
    assert transcripts[0] == transcripts[1]
    assert "talking over CHANNEL" in transcripts[1]
    # in a space of Webex's second cluster, whose ids the listener has to work out
    assert "their ids name urn:TEAM:eu-central-1_k." in transcripts[1]


def test_the_demo_keeps_the_guests_emails_for_a_mail_client(tmp_path):
    out = io.StringIO()
    assert run_demo(out, mail_dir=tmp_path / "mail") == 0
    [saved] = sorted((tmp_path / "mail").iterdir())
    assert saved.name == "01-zoe.eml"
    mail = email.message_from_bytes(saved.read_bytes(), policy=email.policy.default)
    assert mail["To"] == "zoe@example.org" and f"Saved {saved}" in out.getvalue()


def test_the_interactive_demo_takes_messages_and_fills_the_form():
    answers = "\n".join([
        "help", "@new", "y", "Knee check", "1", "2", "", "lab@clinic.example.com", "", "hc",
        "", "", "4h", "", "false", "meet Quick one guests=3", "",
    ]) + "\n"
    out = io.StringIO()
    assert run_demo(out, io.StringIO(answers)) == 0
    text = out.getvalue()
    assert "Here is what I can do" in text
    assert "**Meeting links: Knee check**" in text and "Dialling in: lab@clinic.example.com" in text
    assert "**Meeting links: Quick one**" in text and "- **Guest 3**" in text


def test_the_interactive_demo_takes_devices_by_name_and_shows_what_the_guests_received():
    """Devices typed as listed (any case), guests' contacts on the form and with ``to=``:
    each guest's email and text message are shown, as in the scripted demo, once each."""
    answers = "\n".join([
        "new", "y", "Knee check", "1", "2", "exam room 1, Cart 7", "", "", "hc", "", "", "",
        "zoe@example.org, +33 6 12 34 56 78", "meet Quick one to=ann@example.org", "",
    ]) + "\n"
    out = io.StringIO()
    assert run_demo(out, io.StringIO(answers)) == 0
    text = out.getvalue()
    assert "Devices to dial in (Exam Room 1, Cart 7)" in text
    assert "Dialling in: Exam Room 1, Cart 7" in text
    assert text.count("What the guests received:") == 2
    assert "Inbox (zoe@example.org): Your video meeting: Knee check" in text
    assert "Phone (+33612345678): Alice Martin, Clinique du Parc, invites you" in text
    assert text.count("Inbox (ann@example.org): Your video meeting: Quick one") == 1
