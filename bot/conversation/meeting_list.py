"""What "meetings" shows: a person's remembered meetings as the meetings card lays them out.

In the person's 1:1 space, every meeting they made; in a group space, those made there. Times
are in the viewer's zone; contacts are whole only in the maker's 1:1 space, masked elsewhere.
Each guest shows the last word of their delivery: for a text message, what the carrier said
of it when Twilio reported it, and only "sent to the carrier" until then (or ever, without a
status callback): sent is not delivered.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from bot.conversation.timewindow import describe_window
from bot.meetings.record import Delivery, Meeting
from cards.meetings import GuestReached, MeetingStatus, MeetingSummary

_OUTCOMES = {"sent": "sent", "failed": "not sent", "unconfirmed": "may have been delivered",
             "late": "not sent yet, trying again",
             "withheld": "not sent: cancelled before the link went out"}
_CHANNELS = {"email": "email", "sms": "text message"}
_SENT = {"sms": "sent to the carrier"}  # what "sent" means where it is not "received"
_FATES = {"sent": "sent to the carrier", "delivered": "delivered",
          "undelivered": "not delivered", "failed": "not delivered"}


def status(meeting: Meeting, now: float) -> MeetingStatus:
    """Where the meeting stands at ``now``."""
    if meeting.cancelled:
        return MeetingStatus.CANCELLED
    if now >= meeting.end:
        return MeetingStatus.ENDED
    return MeetingStatus.IN_PROGRESS if now >= meeting.start else MeetingStatus.UPCOMING


def summary(meeting: Meeting, *, tz: tzinfo, now: float, privately: bool, can_act: bool,
            in_space: bool) -> MeetingSummary:
    """One meeting for one viewer."""
    start = datetime.fromtimestamp(meeting.start, tz)
    return MeetingSummary(
        meeting_id=meeting.id,
        subject=meeting.subject,
        when=describe_window(meeting.start, meeting.end, tz),
        status=status(meeting, now),
        hosts=meeting.request.hosts,
        guests=meeting.request.guests,
        devices=meeting.devices,
        reached=_reached(meeting, privately=privately),
        made_by=meeting.maker_name if in_space else "",
        moved=meeting.sequence > (1 if meeting.cancelled else 0),
        can_act=can_act,
        start_date=start.date().isoformat(),
        start_time=start.strftime("%H:%M"),
    )


def _reached(meeting: Meeting, *, privately: bool) -> tuple[GuestReached, ...]:
    """Each guest told outside Webex, with the last word of their delivery; once the contacts
    are deleted, the guest's number stands for them."""
    reached = []
    guests = {delivery.guest for delivery in meeting.deliveries} | set(
        range(len(meeting.contacts)))
    for guest in sorted(guests):
        last = meeting.last_delivery(guest)
        contact = meeting.contacts[guest] if guest < len(meeting.contacts) else None
        shown = contact.shown(privately=privately) if contact else f"Guest {guest + 1}"
        channel = contact.channel if contact else (last.channel if last else "")
        outcome = _outcome(last) if last else "not sent yet"
        reached.append(GuestReached(shown, f"{_CHANNELS.get(channel, channel)} {outcome}"))
    return tuple(reached)


def _outcome(delivery: Delivery) -> str:
    """The last word of one delivery: the carrier's when it gave one."""
    fate = delivery.fate
    if fate is None:
        if delivery.outcome == "sent":
            return _SENT.get(delivery.channel, "sent")
        return _OUTCOMES.get(delivery.outcome, delivery.outcome)
    why = f" (Twilio error {fate.error_code})" if fate.error_code else ""  # the card is narrow
    return _FATES.get(fate.status, fate.status) + why
