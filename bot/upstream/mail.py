"""Email to guests over SMTP (stdlib ``smtplib``), with bounded retries and errors that name no
recipient.

Usage::

    mail = SmtpMailer(MailConfig("smtp://user:pass@smtp.example.org:587", "bot@example.org"))
    reference = mail.send(message)        # an email.message.EmailMessage; its Message-ID

``smtp://`` connects in plain text and upgrades with STARTTLS, which it requires: the password
never travels in the clear. ``smtps://`` speaks TLS from the start (port 465). ``ca_file``
trusts a private certificate authority (the sandbox's, or a company relay's).

Parts in 8-bit go only to a relay that offers 8BITMIME (RFC 6152), with ``BODY=8BITMIME``;
another relay gets them quoted-printable or base64. A connection lost once the message was
handed over (after DATA) may have delivered it: that is said (``Unconfirmed``), never retried.

A mail server's answers can quote the recipient's address; the errors raised here keep only the
reply codes, so no address reaches a log line or a reply in a space.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import Protocol
from urllib.parse import unquote, urlsplit

from bot.errors import (
    Deferred,
    Rejected,
    Unconfirmed,
    Unreachable,
    UpstreamError,
    network_cause,
)
from bot.limits import UPSTREAM_TIMEOUT
from bot.upstream.retry import RetryPolicy

SERVICE = "the mail server"
SCHEMES = {"smtp": 587, "smtps": 465}


@dataclass(frozen=True)
class MailConfig:
    """Where mail goes and who it is from; the URL carries the relay's user and password."""

    url: str = field(repr=False)
    mail_from: str
    ca_file: str | None = None
    timeout: float = UPSTREAM_TIMEOUT
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def check_smtp_url(url: str) -> None:
    """ValueError naming what is wrong with an SMTP URL (never repeating it: it has a password)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError("must start with smtp:// (STARTTLS) or smtps:// (TLS)")
    if not parts.hostname:
        raise ValueError("names no host")
    try:
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        raise ValueError("has a port that is not a number") from None


class Mailer(Protocol):
    """What the bot needs of mail: the address it sends from, one message sent, and its
    reference."""

    @property
    def mail_from(self) -> str:
        """The From address (MAIL_FROM)."""

    def send(self, message: EmailMessage) -> str:
        """Send ``message``; its Message-ID."""


class SmtpMailer:
    """Sends one message at a time, each over its own connection."""

    def __init__(self, config: MailConfig) -> None:
        check_smtp_url(config.url)
        self._config = config
        parts = urlsplit(config.url)
        self._implicit_tls = parts.scheme == "smtps"
        self._host = parts.hostname or ""
        self._port = parts.port or SCHEMES[parts.scheme]
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._tls = ssl.create_default_context(cafile=config.ca_file)

    @property
    def mail_from(self) -> str:
        """The From address (MAIL_FROM), also the envelope's sender."""
        return self._config.mail_from

    def send(self, message: EmailMessage) -> str:
        """Send ``message`` (From, Date and a Message-ID added when missing); its Message-ID."""
        if "From" not in message:
            message["From"] = self._config.mail_from
        if "Date" not in message:
            message["Date"] = formatdate(localtime=False)
        if "Message-ID" not in message:
            message["Message-ID"] = make_msgid(domain=self._config.mail_from.rpartition("@")[2])
        self._config.retry.call(lambda: self._send_once(message), service="smtp")
        return str(message["Message-ID"])

    def _send_once(self, message: EmailMessage) -> None:
        try:
            smtp = self._connect()
            if self._user is not None:
                smtp.login(self._user, self._password or "")
        except UpstreamError:
            raise
        except smtplib.SMTPAuthenticationError as error:
            raise Rejected(SERVICE, detail=f"{error.smtp_code}: login refused, check SMTP_URL's "
                                           "user and password") from None
        except smtplib.SMTPResponseException as error:
            raise _for_code(error.smtp_code, "connection refused") from None
        except ssl.SSLError as error:
            raise Unreachable(SERVICE, detail=f"TLS failed: {error.reason}",
                              host=self._where, cause=network_cause(error)) from None
        except (smtplib.SMTPException, OSError) as error:  # nothing sent yet: worth a retry
            raise Unreachable(SERVICE, host=self._where, cause=network_cause(error)) from None
        with smtp:
            self._deliver(smtp, message)

    def _deliver(self, smtp: smtplib.SMTP, message: EmailMessage) -> None:
        """Hand the message over. Until DATA starts nothing is delivered, and a lost connection
        is worth another try; after it, the relay may have kept the message: Unconfirmed, not
        sent again."""
        raw, options = as_sent(message, eight_bit=smtp.has_extn("8bitmime"))
        try:
            code, _ = smtp.mail(self._config.mail_from, options)
            if code != 250:
                raise _for_code(code, "sender refused")
            codes = [smtp.rcpt(address)[0] for _, address in getaddresses(
                message.get_all("To", []) + message.get_all("Cc", []))]
            refused = sorted(code for code in codes if code not in (250, 251))
            if refused or not codes:
                raise _for_code(refused[0] if refused else 554, "recipient refused")
        except (smtplib.SMTPException, OSError):
            raise Unreachable(SERVICE, detail="the connection ended before the message was "
                                              "handed over") from None
        try:
            code, _ = smtp.data(raw)  # raises for a refused DATA, returns the final answer
        except smtplib.SMTPResponseException as error:
            raise _for_code(error.smtp_code, "message refused") from None
        except (smtplib.SMTPException, OSError):
            raise Unconfirmed(SERVICE, detail="the connection ended after the message was "
                                              "handed over, before the server confirmed it") \
                from None
        if code != 250:
            raise _for_code(code, "message refused")

    @property
    def _where(self) -> str:
        """The relay, as the log names it."""
        return f"{self._host}:{self._port}"

    def _connect(self) -> smtplib.SMTP:
        timeout = self._config.timeout
        if self._implicit_tls:
            return smtplib.SMTP_SSL(self._host, self._port, timeout=timeout, context=self._tls)
        smtp = smtplib.SMTP(self._host, self._port, timeout=timeout)
        try:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise Rejected(SERVICE, detail="it does not offer STARTTLS; the bot sends no "
                                               "password in the clear")
            smtp.starttls(context=self._tls)
            smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp


def as_sent(message: EmailMessage, *, eight_bit: bool) -> tuple[bytes, list[str]]:
    """The message as it goes on the wire, and MAIL FROM's parameters (RFC 6152).

    A relay that offers 8BITMIME takes 8-bit parts as they are, declared ``BODY=8BITMIME``;
    any other relay gets every 8-bit part re-encoded (quoted-printable or base64, whichever is
    shorter). Headers are RFC 2047-encoded either way: 8BITMIME covers bodies only.
    """
    policy = message.policy.clone(linesep="\r\n", cte_type="8bit" if eight_bit else "7bit")
    raw = message.as_bytes(policy=policy)
    return raw, [] if raw.isascii() else ["BODY=8BITMIME"]


def _for_code(code: int, what: str) -> UpstreamError:
    """A reply code as an error: 4xx is worth another try, 5xx is final."""
    if 400 <= code < 500:
        return Deferred(SERVICE, detail=f"{code}: {what} for now")
    return Rejected(SERVICE, detail=f"{code}: {what}")
