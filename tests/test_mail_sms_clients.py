"""The SMTP and Twilio clients against the sandbox's relay and Twilio: what is retried, what is
final, and that no error names the recipient."""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage

import pytest

from bot.devtools.as_deployed import free_port
from bot.devtools.in_process import sandbox_guest_channels
from bot.devtools.sandbox import Fault, Sandbox
from bot.errors import Deferred, RateLimited, Rejected, Unreachable
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
