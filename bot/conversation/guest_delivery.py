"""Guest links taken outside Webex: each contact gets its guest's link through its channel, once.

Each delivery goes through the event's sender (``once``), so a retried or redelivered event
never sends the same email or text twice; a delivery that failed after the client's bounded
retries is reported, and one whose outcome is unknown (handed over, never confirmed) is
reported as what it is: perhaps delivered, not sent again. The person who made the meeting
is told, where they asked, what happened to each contact: masked in a group space, whole in
their 1:1 space. No contact is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import tzinfo

from bot.conversation import replies
from bot.conversation.channels import GuestChannel
from bot.conversation.context import EventContext
from bot.conversation.guest_messages import Invitation, MessageKind
from bot.conversation.plan import MeetingPlan
from bot.errors import Unconfirmed, UpstreamError
from bot.metrics import record
from bot.upstream.instant_connect import MeetingLinks
from bot.upstream.webex import Person

log = logging.getLogger(__name__)


class GuestDelivery:
    """Sends guests their links through the channel of each contact."""

    def __init__(self, channels: Sequence[GuestChannel], org_name: str = "") -> None:
        self._channels = {channel.name: channel for channel in channels}
        self._org_name = org_name

    def deliver(
        self, plan: MeetingPlan, links: MeetingLinks, person: Person, context: EventContext,
        tz: tzinfo,
    ) -> None:
        """One link per contact, in order (guest 1 to the first), then one report in the space."""
        privately = not context.place.group
        lines = []
        for contact, link in zip(plan.contacts, links.guests, strict=False):
            invitation = Invitation(
                subject=plan.subject, link=link, start=links.nbf, end=links.exp, tz=tz,
                note=plan.guest_note, organizer_name=person.display_name,
                organizer_email=person.emails[0] if person.emails else None,
                meeting_id=links.sub, sequence=0, kind=MessageKind.INVITATION,
                org_name=self._org_name,
            )
            channel = self._channels[contact.channel]  # the plan's contacts come from these
            try:
                channel.send(context.sender, contact.address, invitation)
            except Unconfirmed as error:
                log.warning("a guest link may have been delivered", extra={
                    "channel": contact.channel, "error_type": type(error).__name__})
                record.guest_delivery(contact.channel, "unconfirmed")
                lines.append(replies.guest_unconfirmed(contact, link, channel.described, error,
                                                       privately=privately))
                continue
            except UpstreamError as error:
                log.warning("could not send a guest link", extra={
                    "channel": contact.channel, **error.log_fields()})
                record.guest_delivery(contact.channel, "failed")
                lines.append(replies.guest_not_sent(contact, error, privately=privately))
                continue
            log.info("guest link sent", extra={"channel": contact.channel})
            record.guest_delivery(contact.channel, "sent")
            lines.append(replies.guest_sent(contact, link, channel.described,
                                            privately=privately))
        context.say(replies.guest_report(plan.subject, lines))
