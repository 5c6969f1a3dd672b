"""The ways guests' links leave Webex, each behind one small protocol.

A channel says which contacts it takes, how it sends, and how the report names it; the bot
builds its channels as one list (``bot.service.guest_channels``) and everything else asks the
list: the contact parser, the form, the delivery, the report. A channel whose settings are
missing stays in the list, off, so a contact typed for it is recognised and refused by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

from bot.conversation.contacts import BadContact, Contact, email_contact, phone_contact
from bot.conversation.context import Sender
from bot.conversation.guest_messages import Invitation, guest_email, guest_sms
from bot.errors import Timeout, Unavailable, Unconfirmed, UpstreamError, is_retryable
from bot.upstream.mail import SERVICE as MAIL_SERVICE
from bot.upstream.mail import Mailer
from bot.upstream.sms import SERVICE as SMS_SERVICE
from bot.upstream.sms import SmsSender
from cards.form import ContactWay


class GuestChannel(Protocol):
    """One way to send a guest their link."""

    name: str  # the contacts' channel, as logs and metrics label it: "email"
    described: str  # how the report names it: "email, with calendar invite"
    way: ContactWay  # how the form asks for its contacts
    not_set_up: str  # why a contact for it is refused when the bot lacks its settings

    @property
    def ready(self) -> bool:
        """Whether the bot has what this channel needs to send."""

    @property
    def reports_fate(self) -> bool:
        """Whether the service says later whether a message arrived (by its reference)."""

    @property
    def sent_note(self) -> str:
        """What "sent" means for this channel, said under a report that has a message sent
        through it; empty when it means what it says."""

    def read(self, entry: str, phone_region: str | None) -> Contact | BadContact | None:
        """The contact an entry names for this channel, why it is none, or None when the
        entry is not meant for this channel at all."""

    def send(self, sender: Sender, address: str, invitation: Invitation,
             since: float | None = None) -> str:
        """Send one guest their link through ``sender.once``, never twice even across a worker
        killed mid-send (with ``find`` where the service can be asked what it sent); its
        reference. With ``since``, a try since then may have delivered it: a channel that can
        ask the service asks first."""

    def worth_later(self, error: UpstreamError) -> bool:
        """Whether a failed send may pass and is worth trying again later without risking a
        second message: one that surely delivered nothing, or, where the service can be asked
        first, one whose outcome is unknown."""


class EmailChannel:
    """Email through the bot's mail server, with a calendar invite."""

    name = "email"
    described = "email, with calendar invite"
    way = ContactWay("email addresses", "zoe@example.org")
    not_set_up = "Email to guests is not set up for this bot; ask its administrator."

    def __init__(self, mail: Mailer | None) -> None:
        self._mail = mail

    @property
    def ready(self) -> bool:
        return self._mail is not None

    reports_fate = False
    sent_note = ""

    def read(self, entry: str, phone_region: str | None) -> Contact | BadContact | None:
        return email_contact(self.name, entry) if "@" in entry else None

    def send(self, sender: Sender, address: str, invitation: Invitation,
             since: float | None = None) -> str:
        """A mail server cannot be asked what it sent: a send cut short is ``Unconfirmed``, and
        is never tried again (so ``since`` tells it nothing)."""
        mail = self._mail
        assert mail is not None  # the plan refuses contacts of a channel that is not ready
        message = guest_email(invitation, address, mail.mail_from)
        return sender.once(partial(mail.send, message), service=MAIL_SERVICE)

    def worth_later(self, error: UpstreamError) -> bool:
        """Out of reach, or "try again later" (4xx), before the message was handed over."""
        return is_retryable(error)


class SmsChannel:
    """Text messages through Twilio, which can be asked what it sent."""

    name = "sms"
    described = "SMS"
    way = ContactWay("mobile numbers", "+33 6 12 34 56 78",
                     "A text message carries the short link: keep Short links on.")
    not_set_up = "Text messages to guests are not set up for this bot; ask its administrator."

    def __init__(self, sms: SmsSender | None) -> None:
        self._sms = sms

    @property
    def ready(self) -> bool:
        return self._sms is not None

    @property
    def reports_fate(self) -> bool:
        return self._sms is not None and self._sms.reports_fate

    @property
    def sent_note(self) -> str:
        """A text message "sent" is one the carrier took, not yet one that arrived."""
        if self.reports_fate:
            return ("Text messages are with the carrier now; I will say here if one is not "
                    "delivered.")
        return "Text messages are sent to the carrier; I am not told whether they arrive."

    def read(self, entry: str, phone_region: str | None) -> Contact | BadContact | None:
        """Any entry another channel did not take: it is a number, or says why not."""
        return phone_contact(self.name, entry, phone_region)

    def send(self, sender: Sender, address: str, invitation: Invitation,
             since: float | None = None) -> str:
        """Twilio's Messages list says what it created: with ``since``, a text it created since
        then is taken for this one rather than sent again."""
        sms = self._sms
        assert sms is not None
        text = guest_sms(invitation)
        find = partial(sms.sent_since, address, text)
        deliver = partial(sms.send, address, text)
        if since is not None:
            deliver = partial(_unless_found, find, since, deliver)
        return sender.once(deliver, service=SMS_SERVICE, find=find)

    def worth_later(self, error: UpstreamError) -> bool:
        """Out of reach, a 429 or a 5xx, an answer lost, or Twilio not saying whether it made
        it: Twilio is asked first next time."""
        return is_retryable(error) or isinstance(error, Unavailable | Timeout | Unconfirmed)


def _unless_found(find: Callable[[float], str | None], since: float,
                  deliver: Callable[[], str]) -> str:
    """What ``find`` says went out since ``since``, or else what ``deliver`` sends."""
    return find(since) or deliver()


def read_contact(
    channels: Sequence[GuestChannel], entry: str, phone_region: str | None
) -> Contact | BadContact:
    """The first channel's reading of an entry, in the order the channels were built."""
    for channel in channels:
        if (contact := channel.read(entry, phone_region)) is not None:
            return contact
    return BadContact(entry, "is not an address this bot can send a guest link to.")
