"""The guests' mail server and SMS provider as the conversation sees them, and the channels
built on them as the service builds its own."""

from __future__ import annotations

from email.message import EmailMessage

from bot.conversation.channels import EmailChannel, GuestChannel, SmsChannel
from bot.errors import UpstreamError


class FakeMail:
    """The mail server: keeps each message, or fails with a set error."""

    mail_from = "instant-connect@clinic.example.com"

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.error: UpstreamError | None = None
        self.kill_after_sending = False

    def send(self, message: EmailMessage) -> str:
        if self.error is not None:
            raise self.error
        self.sent.append(message)
        if self.kill_after_sending:
            raise Killed
        return f"<mail-{len(self.sent)}@test>"


class FakeSms:
    """The SMS provider: keeps each (number, text), or fails with a set error."""

    def __init__(self, *, reports_fate: bool = False) -> None:
        self.sent: list[tuple[str, str]] = []
        self.error: UpstreamError | None = None
        self.kill_after_sending = False
        self.reports_fate = reports_fate  # as Twilio does when the bot has a PUBLIC_URL

    def send(self, to: str, body: str) -> str:
        if self.error is not None:
            raise self.error
        self.sent.append((to, body))
        if self.kill_after_sending:
            raise Killed
        return f"SM{len(self.sent)}"

    def sent_since(self, to: str, body: str, since: float) -> str | None:
        """As Twilio's Messages list answers: what went to ``to`` with ``body`` (all of it is
        recent here)."""
        return next((f"SM{number}" for number, sent in enumerate(self.sent, 1)
                     if sent == (to, body)), None)


class Killed(BaseException):
    """The worker process dying: nothing after it in the try runs."""


def channels(mail: FakeMail | None, sms: FakeSms | None) -> list[GuestChannel]:
    """Email and SMS, in the service's order; a channel given None is off."""
    return [EmailChannel(mail), SmsChannel(sms)]


def ready_channels() -> list[GuestChannel]:
    """A bot that can reach guests both ways."""
    return channels(FakeMail(), FakeSms())
