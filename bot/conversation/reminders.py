"""Reminders: each guest reminded of their meeting a lead time before it starts (the form's
choice, ``remind=15m`` on the quick path, ``REMIND_BEFORE`` by default), by the channel that
carried their link; and the person who made it told, with their host links, when it starts.

Each reminder is a job due at its moment (``Store.schedule``), durable as any job: its id names
the meeting, whom it reminds and the meeting's version (``sequence``), so scheduling it again
on a retry changes nothing, and a changed meeting's reminders are new jobs while the old
version's are cancelled (as are a cancelled meeting's). The job reads the meeting as it is
then, and acts only for the version it was scheduled for: a cancel or a change that could not
take its job away still sends nothing. Its sends go through the outbox under the job's id, so
a retried job never sends twice.

A job claimed late (the bot was down at its moment) still reminds the guests while the meeting
has not started (the wording gives the time, never "in 15 minutes", so it reads right late),
and tells the maker it starts up to ``STILL_STARTING`` after; past that it is dropped and the
audit trail says so. A meeting that starts sooner than the lead time gets no guest reminder,
and its links message says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from bot.conversation.timewindow import parse_duration, spoken_duration
from bot.events import REMINDER, Event
from bot.jobs.storage import Store
from bot.meetings.record import Meeting
from cards.inputs import NO_REMINDER

SHORTEST_LEAD = timedelta(minutes=1)
LONGEST_LEAD = timedelta(days=7)
LEAD_RANGE = "from 1 minute to 7 days before the start, or none"
STILL_STARTING = timedelta(minutes=5)  # how late "starts now" still reads right
_NONE = {NO_REMINDER, "no", "off", "0"}


def lead_time(text: str) -> timedelta | None:
    """How long before the start guests are reminded, from ``15m``, ``1h``, ``1d`` or
    ``none`` (None); ValueError saying what is allowed otherwise."""
    if text.strip().lower() in _NONE:
        return None
    lead = parse_duration(text)
    if lead is None or not SHORTEST_LEAD <= lead <= LONGEST_LEAD:
        raise ValueError(f"Choose when the guests are reminded, {LEAD_RANGE}.")
    return lead


class Whom(Enum):
    """Who a reminder is for."""

    GUESTS = "guests"  # each guest, the lead time before the start
    MAKER = "maker"  # the person who made the meeting, at its start


@dataclass(frozen=True)
class Due:
    """What a reminder job carries: the meeting, whom to remind, of which version."""

    meeting: str
    whom: Whom
    sequence: int

    @property
    def job_id(self) -> str:
        return f"reminder:{self.meeting}:{self.whom.value}:{self.sequence}"

    def event(self) -> Event:
        """The job's payload, an event as every job is."""
        return Event(*REMINDER, self.job_id, data={
            "meeting": self.meeting, "whom": self.whom.value, "sequence": self.sequence})

    @classmethod
    def of(cls, event: Event) -> Due:
        return cls(str(event.data["meeting"]), Whom(event.data["whom"]),
                   int(event.data["sequence"]))


def moments(meeting: Meeting, now: float) -> dict[Whom, float]:
    """When each reminder of the meeting as it is falls, for those it gets: the guests' when it
    has contacts and a lead time that ends after ``now``; the maker's when it starts after
    ``now`` (a meeting made to start at once has its links posted at its start already)."""
    if meeting.cancelled:
        return {}
    found = {}
    if meeting.contacts and meeting.remind_before and meeting.start - meeting.remind_before > now:
        found[Whom.GUESTS] = float(meeting.start - meeting.remind_before)
    if meeting.start > now:
        found[Whom.MAKER] = float(meeting.start)
    return found


def too_soon_note(meeting: Meeting, now: float) -> str | None:
    """What the links message says of a meeting with guests to remind that starts sooner than
    its lead time (none for one that starts at once: nobody expects a reminder of it)."""
    if (not meeting.contacts or not meeting.remind_before or meeting.start <= now
            or Whom.GUESTS in moments(meeting, now)):
        return None
    lead = spoken_duration(timedelta(seconds=meeting.remind_before))
    return f"No reminder goes to the guests: the meeting starts in less than {lead}."


class Reminders:
    """Schedules, moves and cancels the reminder jobs of meetings."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def schedule(self, meeting: Meeting, now: float) -> None:
        """The reminder jobs of the meeting as it is (its ``sequence``), as of ``now``; those
        already scheduled stay as they are."""
        for whom, at in moments(meeting, now).items():
            due = Due(meeting.id, whom, meeting.sequence)
            self._store.schedule(due.job_id, REMINDER[0], due.event().to_json(), at)

    def replace(self, meeting: Meeting, now: float) -> None:
        """The jobs of the version before this one cancelled (a cancelled meeting gets no new
        ones), and this version's scheduled."""
        for whom in Whom:
            self._store.cancel(Due(meeting.id, whom, meeting.sequence - 1).job_id)
        self.schedule(meeting, now)


def stale(due: Due, meeting: Meeting) -> bool:
    """Whether the meeting a job reminds of was cancelled or changed since."""
    return meeting.cancelled or meeting.sequence != due.sequence


def missed(due: Due, meeting: Meeting, now: float) -> bool:
    """Whether a reminder claimed at ``now`` comes too late to be said: the guests' once the
    meeting started, the maker's ``STILL_STARTING`` after."""
    late = STILL_STARTING.total_seconds() if due.whom is Whom.MAKER else 0.0
    return now >= meeting.start + late
