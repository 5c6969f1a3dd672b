"""Guests' messages that could not go out at once, tried again later as due jobs.

A delivery that failed for a reason that passes (the mail server or Twilio out of reach, a mail
server's "try again later", a Twilio 429 or 5xx) is not given up: the message is tried again
as a job due after a growing gap (``GAPS``, about an hour in all). Each try is a job of its own,
whose id names the meeting, the guest, the meeting's version, the request that began the round
and the try's number (``delivery:m-1f2e:0:2:ab12cd34:3``), so scheduling it again (a retried
event or job) changes nothing; the delivery's record names the one try that may act next
(``Delivery.late``), so a try whose delivery was replaced meanwhile (sent again by hand, the
time changed, the meeting cancelled: each reaches the guest itself) does nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.conversation.guest_messages import MessageKind
from bot.events import GUEST_DELIVERY_DUE, Event
from bot.jobs.storage import Store, patiently

GAPS = tuple(timedelta(minutes=minutes).total_seconds() for minutes in (1, 2, 5, 10, 20, 20))
"""The wait before each later try, after the one before it failed: the last comes 58 minutes
after the first (what "for an hour" promises)."""
SCHEDULE_PATIENCE = 30.0  # seconds scheduling a try waits for storage to be back


@dataclass(frozen=True)
class LateTry:
    """One later try at one guest's message: which message, and which try of the round."""

    meeting: str
    guest: int  # the contact's place in the meeting's contacts, from 0
    sequence: int  # the meeting's version the message carries: a changed meeting has its own
    kind: MessageKind
    round: str  # the request that began the round, hashed: a resend begins another
    number: int  # 1 for the first later try
    since: float  # when the round's first try began: what Twilio is asked about

    @classmethod
    def first(cls, meeting: str, guest: int, sequence: int, kind: MessageKind, key: str,
              since: float) -> LateTry:
        """The first later try of the round that request ``key`` began at ``since``."""
        round_ = hashlib.sha256(key.encode()).hexdigest()[:8]
        return cls(meeting, guest, sequence, kind, round_, 1, since)

    @property
    def id(self) -> str:
        """The job's id, and the outbox's key of what it sends."""
        return (f"delivery:{self.meeting}:{self.guest}:{self.sequence}:{self.round}:"
                f"{self.number}")

    def following(self) -> LateTry:
        return replace(self, number=self.number + 1)

    def event(self) -> Event:
        """The try as the job store keeps it."""
        return Event(*GUEST_DELIVERY_DUE, self.id, data={
            "meeting": self.meeting, "guest": self.guest, "sequence": self.sequence,
            "kind": self.kind.value, "round": self.round, "number": self.number,
            "since": self.since})

    @classmethod
    def from_event(cls, event: Event) -> LateTry:
        data = event.data
        return cls(str(data["meeting"]), int(data["guest"]), int(data["sequence"]),
                   MessageKind(data["kind"]), str(data["round"]), int(data["number"]),
                   float(data["since"]))


class LateDeliveries:
    """Schedules the later tries; shared by every job thread."""

    def __init__(self, store: Store, *, clock: Callable[[], float],
                 gaps: Sequence[float] = GAPS) -> None:
        self._store = store
        self._clock = clock
        self._gaps = tuple(gaps)

    def now(self) -> float:
        return self._clock()

    def is_last(self, late: LateTry) -> bool:
        """Whether no try follows this one."""
        return late.number >= len(self._gaps)

    def schedule(self, late: LateTry, retry_after: float | None = None) -> None:
        """Make ``late`` due after its gap, or after what the service asked to wait if longer;
        waiting out a short storage outage (a try not scheduled is a guest never reached)."""
        gap = max(self._gaps[late.number - 1], retry_after or 0.0)
        due_at = self._clock() + gap
        patiently(lambda: self._store.schedule(late.id, GUEST_DELIVERY_DUE[0],
                                               late.event().to_json(), due_at),
                  SCHEDULE_PATIENCE)
