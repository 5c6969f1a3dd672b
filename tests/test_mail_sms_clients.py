"""The SMTP and Twilio clients against the sandbox's relay and Twilio: what is retried, what is
final, and that no error names the recipient."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from email.message import EmailMessage

import pytest

from bot.devtools.as_deployed import free_port
from bot.devtools.in_process import sandbox_guest_channels
from bot.devtools.sandbox import Fault, Sandbox
from bot.errors import Deferred, RateLimited, Rejected, Unconfirmed, Unreachable
from bot.secret import Secret
from bot.upstream.mail import MailConfig, SmtpMailer
from bot.upstream.sms import TwilioConfig, TwilioSms
from tests.conftest import FAST_RETRY

ZOE = "zoe.private@example.org"


def mail_config(box: Sandbox) -> MailConfig:
    config = sandbox_guest_channels(box, retry=FAST_RETRY)["mail"]
    assert isinstance(config, MailConfig)
    return config


def sms_config(box: Sandbox) -> TwilioConfig:
    config = sandbox_guest_channels(box, retry=FAST_RETRY)["sms"]
    assert isinstance(config, TwilioConfig)
    return config


def message() -> EmailMessage:
    mail = EmailMessage()
    mail["To"] = ZOE
    mail["Subject"] = "Your video meeting"
    mail.set_content("Join: https://instant.webex.com/visit/x")
    return mail


def test_a_message_goes_over_starttls_with_login(sandbox: Sandbox) -> None:
    reference = SmtpMailer(mail_config(sandbox)).send(message())
    [received] = sandbox.mail()
    assert received.rcpt_tos == (ZOE,)
    assert received.mail_from == "instant-connect@clinic.example.com"
    assert f"Message-ID: {reference}".encode() in received.data
    assert b"\nDate: " in received.data
    [session] = sandbox.smtp_sessions()
    assert session.tls and session.user == sandbox.smtp_username


def test_a_try_again_later_is_retried_and_a_refusal_is_final(sandbox: Sandbox) -> None:
    mailer = SmtpMailer(mail_config(sandbox))
    sandbox.smtp_fault("tempfail", times=1)
    mailer.send(message())
    assert len(sandbox.mail()) == 1
    sandbox.smtp_fault("tempfail", times=None)
    with pytest.raises(Deferred):
        mailer.send(message())
    sandbox.clear_faults()
    sandbox.smtp_fault("refuse")
    with pytest.raises(Rejected) as refused:
        mailer.send(message())
    assert "550" in refused.value.describe() and ZOE not in refused.value.describe()


def test_a_wrong_password_or_a_relay_that_is_gone_say_so(sandbox: Sandbox) -> None:
    config = mail_config(sandbox)
    wrong = dataclasses.replace(config, url=config.url.replace(sandbox.smtp_password, "nope"))
    with pytest.raises(Rejected) as refused:
        SmtpMailer(wrong).send(message())
    assert "login refused" in refused.value.describe()
    gone = dataclasses.replace(config, url=f"smtp://u:p@127.0.0.1:{free_port()}")
    with pytest.raises(Unreachable):
        SmtpMailer(gone).send(message())


def test_a_text_message_returns_twilios_sid(sandbox: Sandbox) -> None:
    sid = TwilioSms(sms_config(sandbox)).send("+33612345678", "Join: https://x")
    [sent] = sandbox.sms()
    assert sent.sid == sid and sent.to == "+33612345678" and sent.body == "Join: https://x"


@pytest.mark.parametrize(("number", "meaning"), [
    ("+15005550001", "not a valid phone number"),
    ("+15005550002", "not reachable by text message"),
    ("+15005550004", "opted out"),
])
def test_twilio_refusals_are_named_without_the_number(
    sandbox: Sandbox, number: str, meaning: str
) -> None:
    with pytest.raises(Rejected) as refused:
        TwilioSms(sms_config(sandbox)).send(number, "hi")
    assert meaning in refused.value.describe() and number not in refused.value.describe()


def test_twilio_busy_is_retried_within_the_bound_and_wrong_credentials_are_final(
    sandbox: Sandbox
) -> None:
    sandbox.add_fault(Fault("POST", "/twilio/*", status=429, retry_after="0", times=1))
    TwilioSms(sms_config(sandbox)).send("+33612345678", "hi")
    assert len(sandbox.requests_matching("POST", "/twilio/*")) == 2
    sandbox.add_fault(Fault("POST", "/twilio/*", status=429, retry_after="0"))
    with pytest.raises(RateLimited):
        TwilioSms(sms_config(sandbox)).send("+33612345678", "hi")
    sandbox.clear_faults()
    wrong = dataclasses.replace(sms_config(sandbox), auth_token=Secret("0" * 32))
    with pytest.raises(Rejected) as refused:
        TwilioSms(wrong).send("+33612345678", "hi")
    assert "the account SID or auth token is wrong" in refused.value.describe()


def eight_bit_message() -> EmailMessage:
    mail = message()
    del mail["Subject"]
    mail["Subject"] = "Your video meeting with Zoë"
    mail.set_content("Grüezi Zoë, join: https://instant.webex.com/visit/x\n")
    mail.add_attachment("BEGIN:VCALENDAR\r\nSUMMARY:Zoë\r\nEND:VCALENDAR\r\n",
                        subtype="calendar", filename="invite.ics")
    return mail


def test_8bit_parts_go_declared_to_a_relay_offering_8bitmime(sandbox: Sandbox) -> None:
    SmtpMailer(mail_config(sandbox)).send(eight_bit_message())
    [received] = sandbox.mail()
    assert received.mail_options == ("BODY=8BITMIME",)  # RFC 6152
    head, _, body = received.data.partition(b"\r\n\r\n")
    assert head.isascii() and b"Subject: Your video meeting with =?utf-8?q?Zo=C3=AB?=" in head
    assert "Grüezi Zoë".encode() in body


def test_a_relay_without_8bitmime_gets_every_part_encoded(sandbox: Sandbox) -> None:
    sandbox.smtp_8bitmime = False
    SmtpMailer(mail_config(sandbox)).send(eight_bit_message())
    [received] = sandbox.mail()
    assert received.mail_options == () and received.data.isascii()
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    parts = [part for part in parsed.walk() if not part.is_multipart()]
    assert {part["Content-Transfer-Encoding"] for part in parts} <= {"base64",
                                                                     "quoted-printable"}
    assert [part.get_content() for part in parts] == [
        "Grüezi Zoë, join: https://instant.webex.com/visit/x\n",
        "BEGIN:VCALENDAR\nSUMMARY:Zoë\nEND:VCALENDAR\n"]
    assert parsed["Subject"] == "Your video meeting with Zoë"


def test_a_connection_dropped_after_data_may_have_delivered_and_is_not_resent(
    sandbox: Sandbox
) -> None:
    sandbox.smtp_fault("drop")
    with pytest.raises(Unconfirmed) as unknown:
        SmtpMailer(mail_config(sandbox)).send(message())
    assert len(sandbox.mail()) == 1  # the relay kept it; the bot did not send it again
    assert len(sandbox.smtp_sessions()) == 1
    assert "not sent again" in unknown.value.describe() and ZOE not in unknown.value.describe()


def test_twilio_500_after_creating_the_message_sends_it_never_twice(sandbox: Sandbox) -> None:
    sandbox.twilio_fault("after_create")
    sid = TwilioSms(sms_config(sandbox)).send("+33612345678", "Join: https://x")
    [sent] = sandbox.sms()
    assert sent.sid == sid
    calls = [(call.method, call.status) for call in sandbox.requests_matching("*", "/twilio/*")]
    assert calls == [("POST", 500), ("GET", 200)]
    [asked] = sandbox.requests_matching("GET", "/twilio/*")
    assert asked.query["To"] == "+33612345678" and "DateSent>" in asked.query


def test_twilio_500_before_creating_the_message_still_sends_it_once(sandbox: Sandbox) -> None:
    sandbox.twilio_fault("before_create")
    sid = TwilioSms(sms_config(sandbox)).send("+33612345678", "Join: https://x")
    assert [sent.sid for sent in sandbox.sms()] == [sid]
    calls = [(call.method, call.status) for call in sandbox.requests_matching("*", "/twilio/*")]
    assert calls == [("POST", 500), ("GET", 200), ("POST", 201)]


def test_an_earlier_identical_text_is_not_taken_for_this_one(sandbox: Sandbox) -> None:
    sms = TwilioSms(sms_config(sandbox))
    sms.send("+33612345678", "Join: https://x")
    sandbox.twilio_fault("before_create")
    sms.send("+33612345678", "Join: https://y")
    assert [sent.body for sent in sandbox.sms()] == ["Join: https://x", "Join: https://y"]


def test_twilio_that_cannot_be_asked_says_it_may_have_been_delivered(sandbox: Sandbox) -> None:
    sandbox.twilio_fault("after_create")
    sandbox.add_fault(Fault("GET", "/twilio/*", status=503, times=1))
    with pytest.raises(Unconfirmed) as unknown:
        TwilioSms(sms_config(sandbox)).send("+33612345678", "Join: https://x")
    assert len(sandbox.sms()) == 1  # never sent blindly
    described = unknown.value.describe()
    assert "not sent again" in described and "+33612345678" not in described
    assert "20500" not in described and "refused" not in described
