"""Guests reached outside Webex: each contact gets its guest's message through its channel, once.

The message is the meeting's as it is now: its invitation, the same sent again, its update
after a change of time, or its cancellation. Each delivery goes through the event's sender
(``once``), so a retried or redelivered event never sends the same email or text twice; a
delivery whose outcome is unknown (handed over, never confirmed) is reported as what it is:
perhaps delivered, not sent again. One that failed for a reason that passes (the service out of
reach or asking to wait) is tried again later (``late_deliveries``): the person is told it is
late, then once, in the thread of the links message, that it went out or was given up. Each
outcome is handed to ``remember`` as it happens, with the service's reference of the message
when the service will say later whether it arrived (Twilio's SID). The person is told, where
they asked, what happened to each contact: masked in a group space, whole in their 1:1 space,
with what "sent" means for a text message. No contact is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.conversation import replies
from bot.conversation.channels import GuestChannel
from bot.conversation.contacts import Contact
from bot.conversation.context import EventContext, Sender
from bot.conversation.guest_messages import Invitation, MessageKind
from bot.conversation.late_deliveries import LateDeliveries, LateTry
from bot.errors import Unconfirmed, UpstreamError
from bot.meetings.record import Delivery, Meeting
from bot.metrics import record

log = logging.getLogger(__name__)

Remember = Callable[[Delivery, Contact], None]


@dataclass(frozen=True)
class _Tried:
    """What one send came to: "sent" (with its reference), "unconfirmed" or "failed"."""

    outcome: str
    reference: str = ""
    error: UpstreamError | None = None


class GuestDelivery:
    """Sends guests their messages through the channel of each contact."""

    def __init__(self, channels: Sequence[GuestChannel], later: LateDeliveries,
                 org_name: str = "") -> None:
        self._channels = {channel.name: channel for channel in channels}
        self._org_name = org_name
        self._later = later

    def deliver(self, meeting: Meeting, kind: MessageKind, context: EventContext,
                remember: Remember, *, key: str) -> None:
        """One message per contact, in order (guest 1 to the first), then one report; a message
        that failed for a passing reason is tried again later, in a round named by ``key``
        (the request that asked for it)."""
        assert meeting.links is not None  # a meeting reaches its guests once it has links
        privately = not context.place.group
        lines, notes = [], []
        for number, (contact, link) in enumerate(zip(meeting.contacts, meeting.links.guests,
                                                     strict=False)):
            channel = self._channels[contact.channel]  # the plan's contacts come from these
            if kind is MessageKind.CANCELLATION and not _reached(meeting, number):
                lines.append(replies.guest_never_reached(contact, link, privately=privately))
                remember(Delivery(number, contact.channel, "withheld", meeting.sequence),
                         contact)
                continue
            since = self._later.now()
            tried = self._send(channel, context.sender, contact,
                               self._invitation(meeting, number, kind))
            error, late = tried.error, None
            # A reminder is worth its moment only: it is not tried again later.
            if (error is not None and kind is not MessageKind.REMINDER
                    and channel.worth_later(error)):
                late = LateTry.first(meeting.id, number, meeting.sequence, kind, key, since)
                lines.append(replies.guest_late(contact, link, channel.described, error,
                                                privately=privately, kind=kind))
            elif tried.outcome == "unconfirmed" and error is not None:
                lines.append(replies.guest_unconfirmed(contact, link, channel.described, error,
                                                       privately=privately))
            elif error is not None:
                lines.append(replies.guest_not_sent(contact, error, privately=privately))
            else:
                lines.append(replies.guest_sent(contact, link, channel.described,
                                                privately=privately, kind=kind))
                if channel.sent_note and channel.sent_note not in notes:
                    notes.append(channel.sent_note)
            outcome = _standing(tried, late)
            record.guest_delivery(contact.channel, outcome)
            remember(Delivery(number, contact.channel, outcome, meeting.sequence,
                              self._reference(channel, tried),
                              late=late.id if late is not None else ""), contact)
            if late is not None:
                self._later.schedule(late, error.retry_after if error else None)
        context.say(replies.guest_report(meeting.subject, lines, kind=kind, notes=notes))

    def deliver_late(self, meeting: Meeting, late: LateTry, sender: Sender,
                     remember: Remember) -> None:
        """One later try at one guest's message, if it is still the one to act: as the meeting
        is now, asking the service first where it can; then the next try, or the person told
        in the thread of the links message how it ended."""
        current = next((d for d in meeting.deliveries
                        if (d.guest, d.sequence) == (late.guest, late.sequence)), None)
        if current is None or meeting.sequence != late.sequence or not meeting.links:
            return  # replaced: the change or the cancel reached the guest itself
        if current.late == late.following().id:  # a try run again after it handed over
            self._later.schedule(late.following())
            return
        if current.late != late.id:
            return  # replaced: the guest's message was sent again since
        # This try, or this try run again (its sends are the outbox's: what went out is not
        # sent again).
        contact = meeting.contacts[late.guest]
        channel = self._channels[contact.channel]
        place = {"room_id": meeting.room_id, "parent_id": meeting.thread or meeting.links_message}
        link, privately = meeting.links.guests[late.guest], not meeting.group
        if self._later.now() >= meeting.end and current.outcome != "sent":  # helps nobody
            outcome = "unconfirmed" if current.outcome == "unconfirmed" else "failed"
            remember(Delivery(late.guest, contact.channel, outcome, late.sequence,
                              late=late.id), contact)
            sender.send(**place, markdown=replies.guest_late_too_late(
                meeting.subject, contact, link, channel.described, privately=privately,
                kind=late.kind))
            return
        tried = self._send(channel, sender, contact,
                           self._invitation(meeting, late.guest, late.kind), since=late.since)
        error = tried.error
        if error is not None and channel.worth_later(error) and not self._later.is_last(late):
            outcome = _standing(tried, late.following())
            record.guest_delivery(contact.channel, outcome)
            remember(Delivery(late.guest, contact.channel, outcome, late.sequence,
                              late=late.following().id), contact)
            self._later.schedule(late.following(), error.retry_after)
            return
        record.guest_delivery(contact.channel, tried.outcome)
        remember(Delivery(late.guest, contact.channel, tried.outcome, late.sequence,
                          self._reference(channel, tried), late=late.id), contact)
        sender.send(**place, markdown=replies.guest_late_ended(
            meeting.subject, contact, link, channel.described, error,
            gave_up=error is not None and channel.worth_later(error), privately=privately,
            kind=late.kind))

    def _invitation(self, meeting: Meeting, number: int, kind: MessageKind) -> Invitation:
        """The guest's message of ``kind`` about the meeting as it is."""
        assert meeting.links is not None
        return Invitation(
            subject=meeting.subject, link=meeting.links.guests[number], start=meeting.start,
            end=meeting.end, tz=meeting.zone, note=meeting.guest_note,
            organizer_name=meeting.maker_name, organizer_email=meeting.maker_email or None,
            meeting_id=meeting.id, sequence=meeting.sequence, kind=kind,
            org_name=self._org_name, language=meeting.language, opens=meeting.request.nbf,
        )

    @staticmethod
    def _send(channel: GuestChannel, sender: Sender, contact: Contact, invitation: Invitation,
              since: float | None = None) -> _Tried:
        """One send through ``channel``, never raising for the service's failure."""
        try:
            if since is None:
                reference = channel.send(sender, contact.address, invitation)
            else:
                reference = channel.send(sender, contact.address, invitation, since)
        except Unconfirmed as error:
            log.warning("a guest message may have been delivered", extra={
                "channel": contact.channel, "error_type": type(error).__name__})
            return _Tried("unconfirmed", error=error)
        except UpstreamError as error:
            log.warning("could not send a guest message", extra={
                "channel": contact.channel, **error.log_fields()})
            return _Tried("failed", error=error)
        log.info("guest message sent", extra={"channel": contact.channel})
        return _Tried("sent", reference)

    @staticmethod
    def _reference(channel: GuestChannel, tried: _Tried) -> str:
        """The reference kept of a message sent: one the service will say more of later."""
        return tried.reference if tried.outcome == "sent" and channel.reports_fate else ""


def _standing(tried: _Tried, late: LateTry | None) -> str:
    """A try's outcome as the meeting keeps it: "late" for one that surely sent nothing and is
    tried again; one in doubt stays "unconfirmed" while Twilio is asked again."""
    return "late" if late is not None and tried.outcome == "failed" else tried.outcome


def _reached(meeting: Meeting, guest: int) -> bool:
    """Whether a message of the meeting reached the guest, or may have: one who never heard of
    it is told nothing of its cancellation (its message tried later stops with the cancel)."""
    return any(delivery.guest == guest and delivery.outcome in ("sent", "unconfirmed")
               for delivery in meeting.deliveries)
