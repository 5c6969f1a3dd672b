"""The sandbox's SMTP relay and Twilio Messages API, driven by stdlib smtplib and requests."""

from __future__ import annotations

import base64
import re
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from bot.devtools.sandbox import ReceivedMail, Sandbox, SentSms, SmtpFault, TwilioFault
from bot.devtools.sandbox.sms import segments
from tests.test_layers import GRAPH, SANDBOX, within

SENDER = "links@clinic.example.com"
GUEST = "guest@example.org"
EIGHT_BIT = ["BODY=8BITMIME"]  # MAIL FROM's declaration of 8-bit data (RFC 6152)


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(seed=5) as sandbox:
        yield sandbox


# SMTP -----------------------------------------------------------------------------------------


def trusting(sb: Sandbox) -> ssl.SSLContext:
    """A client context that trusts only the sandbox's certificate, strictly checked."""
    context = ssl.create_default_context(cafile=sb.smtp_ca_file)
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def logged_in(sb: Sandbox, timeout: float = 5.0) -> smtplib.SMTP:
    """A client past STARTTLS and AUTH."""
    smtp = smtplib.SMTP(sb.smtp_host, sb.smtp_port, timeout=timeout)
    smtp.starttls(context=trusting(sb))
    smtp.login(sb.smtp_username, sb.smtp_password)
    return smtp


def message(subject: str = "Your video visit") -> bytes:
    """A real message, CRLF ends, 8-bit UTF-8, and a line starting with a dot."""
    mail = EmailMessage(policy=SMTP_POLICY)
    mail["From"], mail["To"], mail["Subject"] = SENDER, GUEST, subject
    mail.set_content(
        "Grüezi,\n.this line starts with a dot\njoin: https://example.test/x\n", cte="8bit"
    )
    return mail.as_bytes()


def send(sb: Sandbox, raw: bytes, to: list[str] | None = None, timeout: float = 5.0) -> dict:
    with logged_in(sb, timeout) as smtp:
        return smtp.sendmail(SENDER, to or [GUEST], raw, EIGHT_BIT)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_starttls_auth_and_a_message_kept_byte_exact(sb: Sandbox, host: str) -> None:
    url = urlsplit(sb.smtp_url)
    assert (url.scheme, url.username, url.hostname) == ("smtp", "sandbox", "127.0.0.1")
    assert url.port == sb.smtp_port and url.password == sb.smtp_password
    raw = message()
    with smtplib.SMTP(host, url.port, timeout=5) as smtp:
        smtp.starttls(context=trusting(sb))  # verifies the certificate for this host name
        smtp.login(url.username, url.password or "")
        refused = smtp.sendmail(SENDER, [GUEST, "second@example.org"], raw, EIGHT_BIT)
    assert refused == {}
    [kept] = sb.mail()
    assert kept == ReceivedMail(SENDER, (GUEST, "second@example.org"), raw, kept.mail_options)
    assert "BODY=8BITMIME" in kept.mail_options
    session = sb.smtp_sessions()[-1]
    assert (session.tls, session.user) == (True, "sandbox")
    assert "235 2.7.0 Authentication successful" in session.replies
    assert session.replies[-2:] == ("250 2.0.0 OK: queued", "221 Bye")
    assert not any(sb.smtp_password in reply for reply in session.replies)


def test_credentials_are_seeded_and_the_certificate_lives_while_running() -> None:
    first, second = Sandbox(seed=5), Sandbox(seed=5)
    assert first.smtp_password == second.smtp_password != Sandbox(seed=6).smtp_password
    assert re.fullmatch(r"sandbox-smtp-[0-9a-f]{24}", first.smtp_password)
    with pytest.raises(RuntimeError):
        first.smtp_url  # noqa: B018 - not running yet
    with first:
        ca_file = Path(first.smtp_ca_file)
        assert ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert not ca_file.exists() and not ca_file.parent.exists()


def test_auth_before_starttls_is_refused(sb: Sandbox) -> None:
    plain = base64.b64encode(f"\0sandbox\0{sb.smtp_password}".encode()).decode()
    with smtplib.SMTP(sb.smtp_host, sb.smtp_port, timeout=5) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls") and not smtp.has_extn("auth")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            smtp.login(sb.smtp_username, sb.smtp_password)
        assert smtp.docmd("AUTH", f"PLAIN {plain}")[0] == 530  # the right password, in clear
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail(SENDER, [GUEST], message(), EIGHT_BIT)
        assert refused.value.smtp_code == 530
    assert sb.mail() == [] and sb.smtp_sessions()[-1].user is None


def test_a_message_needs_auth_even_after_starttls(sb: Sandbox) -> None:
    with smtplib.SMTP(sb.smtp_host, sb.smtp_port, timeout=5) as smtp:
        smtp.starttls(context=trusting(sb))
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            smtp.sendmail(SENDER, [GUEST], message(), EIGHT_BIT)
    assert refused.value.smtp_code == 530 and sb.mail() == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_wrong_credentials_get_535_and_right_ones_235(sb: Sandbox, mechanism: str) -> None:
    with smtplib.SMTP(sb.smtp_host, sb.smtp_port, timeout=5) as smtp:
        smtp.starttls(context=trusting(sb))
        smtp.ehlo()
        method = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
        for user, password in [("sandbox", "wrong"), ("someone", sb.smtp_password)]:
            smtp.user, smtp.password = user, password
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                smtp.auth(mechanism, method)
            assert refused.value.smtp_code == 535
        smtp.user, smtp.password = sb.smtp_username, sb.smtp_password
        assert smtp.auth(mechanism, method)[0] == 235


def test_refuse_fault_refuses_every_recipient_of_the_next_message(sb: Sandbox) -> None:
    fault = sb.smtp_fault("refuse")
    assert fault == SmtpFault("refuse", 1, 0.0) and sb.smtp_faults == [fault]
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(sb, message(), to=[GUEST, "second@example.org"])
    assert refused.value.recipients == {
        GUEST: (550, b"5.1.1 mailbox unavailable"),
        "second@example.org": (550, b"5.1.1 mailbox unavailable"),
    }
    assert sb.mail() == [] and sb.smtp_faults == []
    assert send(sb, message()) == {} and len(sb.mail()) == 1


def test_refuse_fault_for_two_messages_in_one_session(sb: Sandbox) -> None:
    sb.smtp_fault("refuse", times=2)
    with logged_in(sb) as smtp:
        for _ in range(2):
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail(SENDER, [GUEST], message(), EIGHT_BIT)
        assert smtp.sendmail(SENDER, [GUEST], message("third"), EIGHT_BIT) == {}
    assert [m.data for m in sb.mail()] == [message("third")]


def test_tempfail_fault_answers_451_and_keeps_nothing(sb: Sandbox) -> None:
    sb.smtp_fault("tempfail")
    with logged_in(sb) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as failed:
            smtp.sendmail(SENDER, [GUEST], message("first try"), EIGHT_BIT)
        assert (failed.value.smtp_code, failed.value.smtp_error) == (451, b"4.3.0 try again later")
        assert sb.mail() == []
        assert smtp.sendmail(SENDER, [GUEST], message("second try"), EIGHT_BIT) == {}
    assert [m.data for m in sb.mail()] == [message("second try")]


def test_slow_fault_outlasting_the_client_timeout() -> None:
    sandbox = Sandbox(seed=2).start()
    sandbox.smtp_fault("slow", seconds=2)
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
        send(sandbox, message("given up"), timeout=0.5)
    assert 0.5 <= time.monotonic() - started < 1.8
    sandbox.wait_for(lambda: sandbox.smtp_sessions()[-1].closed)  # the relay saw it go
    assert sandbox.smtp_faults == []
    assert send(sandbox, message("again"), timeout=0.5) == {}
    sandbox.stop()  # would end a delay still pending, and keep its message
    assert [m.data for m in sandbox.mail()] == [message("again")]


def test_slow_fault_within_the_client_timeout_is_only_late(sb: Sandbox) -> None:
    sb.smtp_fault("slow", seconds=0.3)
    started = time.monotonic()
    assert send(sb, message()) == {}
    assert time.monotonic() - started >= 0.3 and len(sb.mail()) == 1


def test_stop_cuts_a_slow_answer_short() -> None:
    sandbox = Sandbox(seed=1).start()
    sandbox.smtp_fault("slow", seconds=30)
    outcome: list[dict] = []
    smtp = logged_in(sandbox, timeout=10)
    worker = threading.Thread(
        target=lambda: outcome.append(smtp.sendmail(SENDER, [GUEST], message(), EIGHT_BIT))
    )
    worker.start()
    sandbox.wait_for(lambda: not sandbox.smtp_faults)  # the answer is being held back
    started = time.monotonic()
    sandbox.stop()
    worker.join(timeout=5)
    smtp.close()
    assert time.monotonic() - started < 1.5 and not worker.is_alive()
    assert outcome == [{}] and len(sandbox.mail()) == 1


def test_smtp_faults_are_checked_and_cleared(sb: Sandbox) -> None:
    for kind, times, seconds in [
        ("bounce", 1, 0.0),
        ("refuse", 0, 0.0),
        ("slow", 1, 0.0),
        ("tempfail", 1, 1.0),
        ("slow", 1, -1.0),
    ]:
        with pytest.raises(ValueError):
            sb.smtp_fault(kind, times, seconds)
    sb.smtp_fault("tempfail", times=None)
    sb.fail("GET", "/v1/people/me", status=500)
    sb.clear_faults()
    assert sb.smtp_faults == [] and sb.faults == []


def test_8bit_data_needs_body_8bitmime(sb: Sandbox) -> None:
    with logged_in(sb) as smtp:
        assert smtp.has_extn("8bitmime") and smtp.has_extn("smtputf8")
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail(SENDER, [GUEST], message())  # no BODY=8BITMIME
        assert refused.value.smtp_code == 554 and b"BODY=8BITMIME" in refused.value.smtp_error
        assert smtp.sendmail(SENDER, [GUEST], message(), ["BODY=8BITMIME"]) == {}
        seven_bit = message().replace("Grüezi".encode(), b"Hello")
        assert smtp.sendmail(SENDER, [GUEST], seven_bit) == {}
    assert ["BODY=8BITMIME" in mail.mail_options for mail in sb.mail()] == [True, False]


def test_a_relay_without_8bitmime_refuses_8bit_data(sb: Sandbox) -> None:
    sb.smtp_8bitmime = False
    with logged_in(sb) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("8bitmime") and not smtp.has_extn("smtputf8")
        with pytest.raises(smtplib.SMTPSenderRefused) as undeclarable:
            smtp.sendmail(SENDER, [GUEST], message(), EIGHT_BIT)
        assert undeclarable.value.smtp_code == 555  # a parameter the relay does not know
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail(SENDER, [GUEST], message())
        assert refused.value.smtp_code == 500
        seven_bit = message().replace("Grüezi".encode(), b"Hello")
        assert smtp.sendmail(SENDER, [GUEST], seven_bit) == {}
    assert len(sb.mail()) == 1


def test_drop_fault_keeps_the_message_and_never_answers(sb: Sandbox) -> None:
    sb.smtp_fault("drop")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(sb, message("dropped"))
    assert [m.data for m in sb.mail()] == [message("dropped")]
    sb.wait_for(lambda: sb.smtp_sessions()[-1].closed)
    assert not any(reply.startswith("250 2.0.0") for reply in sb.smtp_sessions()[-1].replies)
    assert send(sb, message("next")) == {} and len(sb.mail()) == 2


# Twilio ---------------------------------------------------------------------------------------


def messages_url(sb: Sandbox, sid: str | None = None) -> str:
    return f"{sb.twilio_api_url}/2010-04-01/Accounts/{sid or sb.twilio_account_sid}/Messages.json"


def text(sb: Sandbox, auth: tuple[str, str] | None = None, **fields: str) -> requests.Response:
    """POST a form the way Twilio's clients do."""
    form = {"To": "+41791234567", "From": sb.twilio_from, "Body": "Your link: https://x.test/1"}
    form.update(fields)
    form = {key: value for key, value in form.items() if value != "-"}  # "-": leave it out
    return requests.post(
        messages_url(sb),
        data=form,
        timeout=5,
        auth=auth or (sb.twilio_account_sid, sb.twilio_auth_token),
    )


def assert_twilio_error(response: requests.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body == {
        "code": code,
        "message": body["message"],
        "status": status,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
    }
    assert isinstance(body["message"], str) and body["message"]


def test_a_message_is_accepted_in_twilios_shape(sb: Sandbox) -> None:
    assert re.fullmatch(r"AC[0-9a-f]{32}", sb.twilio_account_sid)
    assert re.fullmatch(r"[0-9a-f]{32}", sb.twilio_auth_token)
    assert sb.twilio_api_url == sb.url + "/twilio" and sb.twilio_from == "+15005550006"
    assert Sandbox(seed=5).twilio_auth_token == sb.twilio_auth_token
    response = text(sb, Body="Grüezi, your link: https://x.test/1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert (body["account_sid"], body["to"], body["from"], body["body"]) == (
        sb.twilio_account_sid,
        "+41791234567",
        "+15005550006",
        "Grüezi, your link: https://x.test/1",
    )
    assert (body["status"], body["num_segments"], body["error_code"]) == ("queued", "1", None)
    assert parsedate_to_datetime(body["date_created"]).utcoffset() is not None
    assert body["uri"] == (
        f"/2010-04-01/Accounts/{sb.twilio_account_sid}/Messages/{body['sid']}.json"
    )
    assert sb.sms() == [SentSms(body["sid"], "+41791234567", "+15005550006", body["body"])]
    [recorded] = sb.requests_matching("POST", "/twilio/*")
    assert recorded.status == 201 and recorded.headers["Authorization"] == "Basic ***"


def test_a_message_through_the_messaging_service(sb: Sandbox) -> None:
    service = sb.twilio_messaging_service_sid
    assert re.fullmatch(r"MG[0-9a-f]{32}", service)
    body = text(sb, From="-", MessagingServiceSid=service).json()
    assert (body["status"], body["from"], body["messaging_service_sid"]) == (
        "accepted",
        None,
        service,
    )
    assert sb.sms()[0].from_ == sb.twilio_from and sb.sms()[0].messaging_service_sid == service
    assert_twilio_error(text(sb, From="-", MessagingServiceSid="MG123"), 400, 21705)
    assert_twilio_error(text(sb, From="-", MessagingServiceSid="MG" + "0" * 32), 400, 21701)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"To": "0791234567"}, 21211),
        ({"To": "+1234567"}, 21211),  # 7 digits
        ({"To": "+1234567890123456"}, 21211),  # 16 digits
        ({"To": "+41 79 123 45 67"}, 21211),
        ({"To": "+15005550001"}, 21211),
        ({"To": "-"}, 21604),
        ({"Body": "-"}, 21602),
        ({"Body": ""}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"From": "-"}, 21603),
        ({"From": "+15551234567"}, 21606),
        ({"From": "+15005550001"}, 21212),
        ({"From": "+15005550008"}, 21611),
        ({"To": "+15005550002"}, 21612),
        ({"To": "+15005550003"}, 21408),
        ({"To": "+15005550004"}, 21610),
        ({"To": "+15005550009"}, 21614),
    ],
)
def test_refusals_carry_twilios_codes(sb: Sandbox, fields: dict[str, str], code: int) -> None:
    assert_twilio_error(text(sb, **fields), 400, code)
    assert sb.sms() == []


def test_the_longest_body_and_segments(sb: Sandbox) -> None:
    body = text(sb, Body="x" * 1600).json()
    assert (body["status"], body["num_segments"]) == ("queued", "11")
    assert [segments("a" * 160), segments("a" * 161), segments("é" * 70)] == [1, 2, 1]
    assert [segments("\u2713" * 70), segments("\u2713" * 71), segments("{" * 80)] == [1, 2, 1]
    assert segments("a" * 152 + "€" + "a" * 152) == 3  # an escape pair is never split


@pytest.mark.parametrize("auth", ["none", "wrong token", "wrong sid", "bearer"])
def test_basic_auth_is_required(sb: Sandbox, auth: str) -> None:
    headers = {"Authorization": f"Bearer {sb.bot_token}"} if auth == "bearer" else {}
    credentials = {
        "wrong token": (sb.twilio_account_sid, "0" * 32),
        "wrong sid": ("AC" + "0" * 32, sb.twilio_auth_token),
    }.get(auth)
    response = requests.post(
        messages_url(sb),
        data={"To": "+41791234567", "Body": "x", "From": sb.twilio_from},
        auth=credentials,
        headers=headers,
        timeout=5,
    )
    assert_twilio_error(response, 401, 20003)
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert sb.sms() == []


def test_twilio_credentials_open_nothing_else(sb: Sandbox) -> None:
    other = requests.post(
        messages_url(sb, "AC" + "1" * 32),
        data={"To": "+41791234567"},
        auth=(sb.twilio_account_sid, sb.twilio_auth_token),
        timeout=5,
    )
    assert_twilio_error(other, 404, 20404)
    webex = requests.get(
        sb.webex_base_url + "people/me",
        timeout=5,
        auth=(sb.twilio_account_sid, sb.twilio_auth_token),
    )
    assert webex.status_code == 401 and "trackingId" in webex.json()


def test_the_fault_table_applies_to_twilio(sb: Sandbox) -> None:
    sb.fail("POST", "/twilio/*", status=503, times=1)
    sb.fail("POST", "/twilio/*", status=429, times=1, retry_after="1")
    assert_twilio_error(text(sb), 503, 20503)
    limited = text(sb)
    assert_twilio_error(limited, 429, 20429)
    assert limited.headers["Retry-After"] == "1"
    assert text(sb).status_code == 201 and len(sb.sms()) == 1
    assert [r.status for r in sb.requests_matching("POST", "/twilio/*")] == [503, 429, 201]
    sb.fail("POST", "/twilio/*", status=None, latency=1.0, times=1)
    with pytest.raises(requests.Timeout):
        requests.post(messages_url(sb), data={}, timeout=0.2)


def test_twilio_faults_fail_after_or_before_creating(sb: Sandbox) -> None:
    assert sb.twilio_fault("after_create") == TwilioFault("after_create", 500, 1)
    assert_twilio_error(text(sb, Body="first"), 500, 20500)
    assert [sent.body for sent in sb.sms()] == ["first"]  # created all the same
    sb.twilio_fault("before_create", status=503)
    assert_twilio_error(text(sb, Body="second"), 503, 20503)
    assert [sent.body for sent in sb.sms()] == ["first"] and sb.twilio_faults == []
    for kind, status, times in [("later", 500, 1), ("after_create", 400, 1),
                                ("before_create", 500, 0)]:
        with pytest.raises(ValueError):
            sb.twilio_fault(kind, status, times)
    sb.twilio_fault("after_create", times=None)
    sb.clear_faults()
    assert sb.twilio_faults == []


def listed(sb: Sandbox, **query: str | int) -> dict:
    response = requests.get(messages_url(sb), params=query, timeout=5,
                            auth=(sb.twilio_account_sid, sb.twilio_auth_token))
    assert response.status_code == 200, response.text
    return response.json()


def test_the_messages_list_filters_by_to_and_date_sent_and_pages(sb: Sandbox) -> None:
    for body in ("one", "two", "three"):
        text(sb, Body=body)
    text(sb, To="+41797654321", Body="elsewhere")
    today = datetime.now(UTC).date()
    page = listed(sb, To="+41791234567", **{"DateSent>": str(today)}, PageSize=2)
    assert [m["body"] for m in page["messages"]] == ["three", "two"]  # newest first
    assert all(m["status"] == "sent" and m["date_sent"] for m in page["messages"])
    assert page["next_page_uri"] is not None and page["previous_page_uri"] is None
    following = requests.get(sb.twilio_api_url + page["next_page_uri"], timeout=5,
                             auth=(sb.twilio_account_sid, sb.twilio_auth_token)).json()
    assert [m["body"] for m in following["messages"]] == ["one"]
    assert following["next_page_uri"] is None
    tomorrow = str(today + timedelta(days=1))
    assert listed(sb, **{"DateSent>": tomorrow})["messages"] == []
    assert len(listed(sb, **{"DateSent<": tomorrow})["messages"]) == 4
    assert len(listed(sb, DateSent=str(today))["messages"]) == 4
    bad = requests.get(messages_url(sb), params={"DateSent": "yesterday"}, timeout=5,
                       auth=(sb.twilio_account_sid, sb.twilio_auth_token))
    assert_twilio_error(bad, 400, 20001)


def test_clear_record_forgets_mail_and_sms(sb: Sandbox) -> None:
    send(sb, message())
    text(sb)
    sb.clear_record()
    assert (sb.mail(), sb.sms(), sb.requests) == ([], [], [])
    assert all(not session.closed for session in sb.smtp_sessions())


# the sandbox stays the outside world -----------------------------------------------------------


def test_the_sandbox_still_imports_nothing_from_the_bot() -> None:
    for module in (f"{SANDBOX}.mail", f"{SANDBOX}.sms", f"{SANDBOX}.app", f"{SANDBOX}.sandbox"):
        assert module in GRAPH
        assert all(within(target, SANDBOX) for target in GRAPH[module]), GRAPH[module]
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bot.devtools.sandbox\n"
            "print(*(m for m in sys.modules if m.split('.')[0] in ('bot', 'cards')))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    assert {f"{SANDBOX}.mail", f"{SANDBOX}.sms"} <= set(loaded)
    outside = [m for m in loaded if m not in ("bot", "bot.devtools") and not within(m, SANDBOX)]
    assert outside == []
