"""One meeting as the bot remembers it, and how it is written down.

A record is made of two parts kept apart in the store: what the meeting is (who made it, where,
its subject, appointment and broker request, each delivery's outcome, whether it was changed or
cancelled) and its secrets (the guests' contacts and the links, which are bearer credentials),
which are deleted sooner. Both are JSON, sealed by the book before they are stored.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from bot.upstream.instant_connect import Link, MeetingLinks, MeetingRequest
from cards.inputs import DEFAULT_GUEST_LANGUAGE


@dataclass(frozen=True)
class Contact:
    """One guest's address on one channel: an email address, a mobile number in E.164
    (``+33612345678``)."""

    channel: str  # the name of the channel that reads and sends it
    address: str
    masked: str = field(compare=False, repr=False)
    """Enough to recognise it, not to use it: ``z•••@example.org``, ``+33 6 •• •• •• 78``."""

    def shown(self, *, privately: bool) -> str:
        """Whole in the 1:1 space of the person who typed it, masked anywhere else."""
        return self.address if privately else self.masked


# What a carrier reported later of a text message, in the order it can happen; a report never
# moves a message back. "undelivered" and "failed" are as final as "delivered": the first final
# word stands, and "sent" may be the last word a carrier ever gives.
FATES = ("sent", "delivered", "undelivered", "failed")
FINAL_FATES = FATES[1:]
FAILED_FATES = ("undelivered", "failed")


@dataclass(frozen=True)
class Fate:
    """What the provider said later of one message: its status, and its error code if any."""

    status: str
    error_code: int | None = None


@dataclass(frozen=True)
class Delivery:
    """What happened to one guest's link on one try: "sent", "failed", "unconfirmed", "late"
    (to be tried again later) or "withheld" (a cancellation for a guest who never got the link);
    and for a text message the provider's reference and what it said of it later."""

    guest: int  # the contact's place in the meeting's contacts, from 0
    channel: str
    outcome: str
    sequence: int  # which version of the meeting it carried
    reference: str = ""  # the provider's id of the message (Twilio's SID), when it gave one
    fate: Fate | None = None
    late: str = ""  # the later try that may act next on it (its job's id), or that ended it


@dataclass(frozen=True)
class Meeting:
    """A meeting someone made through the bot."""

    id: str
    maker_id: str
    maker_email: str
    maker_name: str
    room_id: str
    group: bool
    thread: str | None
    subject: str
    start: int  # the appointment, epoch seconds: what invites, reminders and lists show
    end: int
    timezone: str
    request: MeetingRequest  # what the broker is asked: the same on every retry
    valid_for: int  # seconds the person asked the links to last: kept when the time changes
    private_host_links: bool
    guest_note: str
    created_at: float
    notices: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()  # the names people know the devices by
    sequence: int = 0  # the invite's SEQUENCE: raised by each change and by the cancel
    revision: str = ""  # the request (a submit's id) whose change is the latest applied
    cancelled: bool = False
    links_message: str | None = None  # the links message in the space, to point at on a change
    deliveries: tuple[Delivery, ...] = ()
    language: str = DEFAULT_GUEST_LANGUAGE  # what guests read; records made before it: English
    remind_before: int | None = None  # seconds before the start guests are reminded; None:
    # never (so for records made before reminders, which scheduled none)
    contacts: tuple[Contact, ...] = field(default=(), repr=False)  # secret
    links: MeetingLinks | None = field(default=None, repr=False)  # secret

    @property
    def zone(self) -> tzinfo:
        """The zone the meeting was planned in: its guests read their times in it."""
        return ZoneInfo(self.timezone)

    @property
    def secrets_until(self) -> int:
        """When neither the appointment nor its links need the contacts and links any more."""
        return max(self.end, self.request.exp or self.end)

    def delivered(self, delivery: Delivery) -> Meeting:
        """The meeting with one more delivery outcome (the latest per guest and version)."""
        kept = tuple(d for d in self.deliveries
                     if (d.guest, d.sequence) != (delivery.guest, delivery.sequence))
        return replace(self, deliveries=(*kept, delivery))

    def with_fate(self, reference: str, fate: Fate) -> Meeting:
        """The meeting with what the provider said of the message ``reference``."""
        return replace(self, deliveries=tuple(
            replace(d, fate=fate) if d.reference == reference else d for d in self.deliveries))

    def last_delivery(self, guest: int) -> Delivery | None:
        """What happened last to the guest's link."""
        mine = [d for d in self.deliveries if d.guest == guest]
        return max(mine, key=lambda d: d.sequence) if mine else None


def public_json(meeting: Meeting) -> str:
    """What the meeting is, without its secrets."""
    data = asdict(replace(meeting, contacts=(), links=None))
    del data["contacts"], data["links"]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def secrets_json(meeting: Meeting) -> str:
    """The meeting's contacts and links."""
    return json.dumps({
        "contacts": [asdict(contact) for contact in meeting.contacts],
        "links": asdict(meeting.links) if meeting.links is not None else None,
    }, ensure_ascii=False, separators=(",", ":"))


def _delivery(data: dict[str, Any]) -> Delivery:
    fate = data.get("fate")
    return Delivery(**{**data, "fate": Fate(**fate) if fate else None})


def from_json(public: str, secrets: str | None) -> Meeting:
    """The meeting its two parts describe; with ``secrets`` None, gone: no contacts, no links."""
    data: dict[str, Any] = json.loads(public)
    data["request"] = MeetingRequest(**{**data["request"],
                                        "devices": tuple(data["request"]["devices"])})
    data["notices"] = tuple(data["notices"])
    data["devices"] = tuple(data["devices"])
    data["deliveries"] = tuple(_delivery(d) for d in data["deliveries"])
    meeting = Meeting(**data)
    if secrets is None:
        return meeting
    hidden: dict[str, Any] = json.loads(secrets)
    links = hidden["links"]
    return replace(
        meeting,
        contacts=tuple(Contact(**contact) for contact in hidden["contacts"]),
        links=None if links is None else MeetingLinks(
            sub=links["sub"], nbf=links["nbf"], exp=links["exp"],
            hosts=tuple(Link(**link) for link in links["hosts"]),
            guests=tuple(Link(**link) for link in links["guests"])),
    )
