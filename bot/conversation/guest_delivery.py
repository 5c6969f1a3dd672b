"""Guests reached outside Webex: each contact gets its guest's message through its channel, once.

The message is the meeting's as it is now: its invitation, the same sent again, its update
after a change of time, or its cancellation. Each delivery goes through the event's sender
(``once``), so a retried or redelivered event never sends the same email or text twice; a
delivery that failed after the client's bounded retries is reported, and one whose outcome is
unknown (handed over, never confirmed) is reported as what it is: perhaps delivered, not sent
again. Each outcome is handed to ``remember`` as it happens, with the service's reference of
the message when the service will say later whether it arrived (Twilio's SID). The person is
told, where they asked, what happened to each contact: masked in a group space, whole in their
1:1 space, with what "sent" means for a text message. No contact is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from bot.conversation import replies
from bot.conversation.channels import GuestChannel
from bot.conversation.contacts import Contact
from bot.conversation.context import EventContext
from bot.conversation.guest_messages import Invitation, MessageKind
from bot.errors import Unconfirmed, UpstreamError
from bot.meetings.record import Delivery, Meeting
from bot.metrics import record

log = logging.getLogger(__name__)


class GuestDelivery:
    """Sends guests their messages through the channel of each contact."""

    def __init__(self, channels: Sequence[GuestChannel], org_name: str = "") -> None:
        self._channels = {channel.name: channel for channel in channels}
        self._org_name = org_name

    def deliver(
        self, meeting: Meeting, kind: MessageKind, context: EventContext,
        remember: Callable[[Delivery, Contact], None],
    ) -> None:
        """One message per contact, in order (guest 1 to the first), then one report."""
        assert meeting.links is not None  # a meeting reaches its guests once it has links
        privately = not context.place.group
        lines, notes = [], []
        for number, (contact, link) in enumerate(zip(meeting.contacts, meeting.links.guests,
                                                     strict=False)):
            invitation = Invitation(
                subject=meeting.subject, link=link, start=meeting.start, end=meeting.end,
                tz=meeting.zone, note=meeting.guest_note, organizer_name=meeting.maker_name,
                organizer_email=meeting.maker_email or None, meeting_id=meeting.id,
                sequence=meeting.sequence, kind=kind, org_name=self._org_name,
                language=meeting.language, opens=meeting.request.nbf,
            )
            channel = self._channels[contact.channel]  # the plan's contacts come from these
            outcome, reference = "sent", ""
            try:
                sent = channel.send(context.sender, contact.address, invitation)
            except Unconfirmed as error:
                log.warning("a guest message may have been delivered", extra={
                    "channel": contact.channel, "error_type": type(error).__name__})
                outcome = "unconfirmed"
                lines.append(replies.guest_unconfirmed(contact, link, channel.described, error,
                                                       privately=privately))
            except UpstreamError as error:
                log.warning("could not send a guest message", extra={
                    "channel": contact.channel, **error.log_fields()})
                outcome = "failed"
                lines.append(replies.guest_not_sent(contact, error, privately=privately))
            else:
                log.info("guest message sent", extra={"channel": contact.channel})
                lines.append(replies.guest_sent(contact, link, channel.described,
                                                privately=privately, kind=kind))
                reference = sent if channel.reports_fate else ""
                if channel.sent_note and channel.sent_note not in notes:
                    notes.append(channel.sent_note)
            record.guest_delivery(contact.channel, outcome)
            remember(Delivery(number, contact.channel, outcome, meeting.sequence, reference),
                     contact)
        context.say(replies.guest_report(meeting.subject, lines, kind=kind, notes=notes))
