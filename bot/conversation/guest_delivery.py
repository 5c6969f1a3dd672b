"""Guest links taken outside Webex: each contact gets its guest's link by email or SMS, once.

Each delivery goes through the event's sender (``once``), so a retried or redelivered event
never sends the same email or text twice; a delivery that failed after the client's bounded
retries is reported, and one whose outcome is unknown (handed over, never confirmed) is
reported as what it is: perhaps delivered, not sent again. The person who made the meeting
is told, where they asked, what happened to each contact: masked in a group space, whole in
their 1:1 space. No contact is logged.
"""

from __future__ import annotations

import logging
from datetime import tzinfo
from functools import partial

from bot.conversation import replies
from bot.conversation.contacts import EMAIL, SMS, Contact
from bot.conversation.context import EventContext
from bot.conversation.guest_messages import Invitation, guest_email, guest_sms
from bot.conversation.plan import MeetingPlan
from bot.errors import Unconfirmed, UpstreamError
from bot.metrics import record
from bot.upstream.instant_connect import MeetingLinks
from bot.upstream.mail import SERVICE as MAIL_SERVICE
from bot.upstream.mail import Mailer
from bot.upstream.sms import SERVICE as SMS_SERVICE
from bot.upstream.sms import SmsSender
from bot.upstream.webex import Person

log = logging.getLogger(__name__)


class GuestDelivery:
    """Sends guests their links through whichever of email and SMS the bot has."""

    def __init__(self, mail: Mailer | None, sms: SmsSender | None, org_name: str = "") -> None:
        self._mail = mail
        self._sms = sms
        self._org_name = org_name
        self.channels = frozenset(
            channel for channel, client in ((EMAIL, mail), (SMS, sms)) if client is not None)

    def deliver(
        self, plan: MeetingPlan, links: MeetingLinks, person: Person, context: EventContext,
        tz: tzinfo,
    ) -> None:
        """One link per contact, in order (guest 1 to the first), then one report in the space."""
        privately = not context.place.group
        lines = []
        for contact, link in zip(plan.contacts, links.guests, strict=False):
            invitation = Invitation(
                subject=plan.subject, link=link, nbf=links.nbf, exp=links.exp, tz=tz,
                note=plan.guest_note, organizer_name=person.display_name,
                organizer_email=person.emails[0] if person.emails else None,
                meeting_id=links.sub, org_name=self._org_name,
            )
            try:
                self._once(context, contact, invitation)
            except Unconfirmed as error:
                log.warning("a guest link may have been delivered", extra={
                    "channel": contact.channel, "error_type": type(error).__name__})
                record.guest_delivery(contact.channel, "unconfirmed")
                lines.append(replies.guest_unconfirmed(contact, link, error,
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
            lines.append(replies.guest_sent(contact, link, privately=privately))
        context.say(replies.guest_report(plan.subject, lines))

    def _once(self, context: EventContext, contact: Contact, invitation: Invitation) -> str:
        """Through the event's sender: never twice, even across a worker killed mid-send
        (Twilio is asked what it sent; a mail server cannot be)."""
        if contact.channel == EMAIL:
            mail = self._mail
            assert mail is not None  # the plan refuses a channel the bot does not have
            message = guest_email(invitation, contact.address, mail.mail_from)
            return context.sender.once(partial(mail.send, message), service=MAIL_SERVICE)
        sms = self._sms
        assert sms is not None
        text = guest_sms(invitation)
        return context.sender.once(partial(sms.send, contact.address, text),
                                   service=SMS_SERVICE,
                                   find=partial(sms.sent_since, contact.address, text))
