"""The meetings the bot remembers, sealed in the store, and the audit trail of what it did.

A meeting is recorded before the broker is called, claimed by the request that makes it (a
message or a submit id): a retried event finds it and asks the broker with the same ``sub`` and
window, or not at all once the links are recorded, so at most one set of links is ever made and
everyone gets the same. What is kept, sealed with ``MEETING_KEYS``:

- the meeting (who made it, where, subject, appointment, options, outcomes), listed under its
  maker and its space, until ``MEETING_RETENTION`` after the appointment ends;
- its guests' contacts and its links, apart, until ``SECRETS_GRACE`` after the later of the
  appointment's end and the links' expiry;
- the audit trail, one row per thing that happened (no link, no subject, contacts masked),
  in clear, until ``AUDIT_RETENTION`` after the later of the row and its meeting's end (so that,
  with the defaults, the trail outlives the meeting even when it was made months ahead);
- for each text message to a guest, which meeting and guest its provider's reference (Twilio's
  SID) belongs to, and what the provider said of it later, as long as the meeting is kept.

What a provider says of a message arrives out of order and repeated, from any process; each
word is its own fact written only if absent (one for "sent", one for the final word), so no
read-modify-write can lose one and a later word never moves the message back.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

from bot.jobs.storage import Fact, Store, patiently
from bot.meetings.record import (
    FINAL_FATES,
    Delivery,
    Fate,
    Meeting,
    from_json,
    public_json,
    secrets_json,
)
from bot.meetings.sealing import Keyring, SealBroken

log = logging.getLogger(__name__)

MEETINGS = "meetings"
SECRETS = "meeting-secrets"
AUDIT = "audit"
SECRETS_GRACE = timedelta(days=1).total_seconds()
DEFAULT_RETENTION = timedelta(days=90).total_seconds()
DEFAULT_AUDIT_RETENTION = timedelta(days=365).total_seconds()
RECORD_PATIENCE = 30.0  # seconds a record of something done waits for storage to be back
AUDIT_PAGE = 1000  # audit rows read at once

# The store keys of the book, kept far beyond the last retry of any event: which meeting each
# request made, and the change each "Change the time" submit planned.
MADE_BY = Fact("meeting-made-by", timedelta(days=8).total_seconds())
CHANGE = Fact("meeting-change", MADE_BY.lifetime)
# Each text message's meeting and guest, by the provider's reference, and what the provider
# said of it: kept as long as the meeting (so no lifetime of their own).
TEXT_SENT = Fact("text-sent", None)
TEXT_FATE = Fact("text-fate", None)


@dataclass(frozen=True)
class SentText:
    """Whose text message a provider's reference is, and until when that is kept."""

    meeting: str
    guest: int
    until: float


def sent_text(store: Store, reference: str) -> SentText | None:
    """The meeting and guest of a text message the bot sent, or None for one it did not."""
    found = store.get(TEXT_SENT.key(reference))
    return None if found is None else SentText(**json.loads(found))


@dataclass(frozen=True)
class AuditRow:
    """One thing that happened to one meeting."""

    at: float
    meeting: str
    who: str  # the email of the person who did it
    where: str  # the space it was done from
    what: str  # created, host links sent, guest link sent, resent, changed, cancelled, ...
    detail: str = ""  # a masked contact and the outcome, the new time: never a link or subject


@dataclass(frozen=True)
class Change:
    """A new time planned for a meeting, the same on every retry of the submit that asked."""

    start: int
    end: int
    sub: str
    nbf: int | None
    exp: int


class MeetingBook:
    """Reads and writes meetings and audit rows; shared by every job thread."""

    def __init__(
        self, store: Store, keys: Keyring, *, retention: float = DEFAULT_RETENTION,
        audit_retention: float = DEFAULT_AUDIT_RETENTION, clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._keys = keys
        self._retention = retention
        self._audit_retention = audit_retention
        self._clock = clock

    @staticmethod
    def new_id() -> str:
        """A meeting id: unguessable, short enough for a card's button data."""
        return "m-" + secrets.token_hex(8)

    def open(self, key: str, draft: Meeting) -> Meeting:
        """The meeting request ``key`` makes: ``draft``, recorded now, or the one an earlier try
        of the same request recorded."""
        made = self._store.put_if_absent(MADE_BY.key(key), draft.id, MADE_BY.lifetime)
        if made is not None:
            found = self.get(made)
            if found is not None:
                return found
            draft = replace(draft, id=made)  # the try that claimed it died before writing it
        self.save(draft)
        return draft

    def forget(self, key: str, meeting: Meeting) -> None:
        """Drop a meeting whose links could not be made, so its request can be tried again."""
        self._store.delete_record(SECRETS, meeting.id)
        self._store.delete_record(MEETINGS, meeting.id)
        self._store.delete(MADE_BY.key(key))

    def get(self, meeting_id: str) -> Meeting | None:
        """A meeting by id; its contacts and links only while they are kept."""
        public = self._store.record(MEETINGS, meeting_id)
        if public is None:
            return None
        return self._read(meeting_id, public)

    def save(self, meeting: Meeting) -> None:
        """Write the meeting as it is now, waiting out a short outage (what it records has
        happened)."""
        patiently(lambda: self._write(meeting), RECORD_PATIENCE)

    def listed(self, *, person_id: str | None = None, room_id: str | None = None,
               since: float, limit: int) -> list[Meeting]:
        """The meetings made by a person, or in a space, whose appointment starts at or after
        ``since``: latest start first."""
        tag = f"person:{person_id}" if person_id is not None else f"room:{room_id}"
        found = self._store.records(MEETINGS, tag, since=since, limit=limit)
        return [self._read(meeting_id, public) for meeting_id, public in found]

    def track(self, meeting: Meeting, delivery: Delivery) -> None:
        """Remember whose text message ``delivery.reference`` is, for what its provider says
        of it later."""
        until = meeting.end + self._retention
        patiently(lambda: self._store.set(
            TEXT_SENT.key(delivery.reference),
            json.dumps(asdict(SentText(meeting.id, delivery.guest, until))),
            max(until - self._clock(), 1.0)), RECORD_PATIENCE)

    def sent_text(self, reference: str) -> SentText | None:
        """The meeting and guest of a text message the bot sent (see :func:`sent_text`)."""
        return sent_text(self._store, reference)

    def note_fate(self, sent: SentText, reference: str, fate: Fate) -> Fate:
        """Record what the provider said of a message, never moving it back; what stands
        after it (the first final word wins over any later one)."""
        ttl = max(sent.until - self._clock(), 1.0)
        word = "final" if fate.status in FINAL_FATES else "sent"
        kept = patiently(lambda: self._store.put_if_absent(
            TEXT_FATE.key(reference, word), json.dumps(asdict(fate)), ttl), RECORD_PATIENCE)
        if kept is not None:
            return Fate(**json.loads(kept))
        return self.fate(reference) or fate

    def fate(self, reference: str) -> Fate | None:
        """The last word a provider gave of a message: its final one, else "sent", else None."""
        for word in ("final", "sent"):
            found = self._store.get(TEXT_FATE.key(reference, word))
            if found is not None:
                return Fate(**json.loads(found))
        return None

    def planned_change(self, key: str, plan: Callable[[], Change]) -> Change:
        """The change submit ``key`` asks for: ``plan()`` on its first try, the same after.
        Sealed, as its ``sub`` carries the subject."""
        fresh, context = plan(), _context(CHANGE.prefix, key)
        kept = self._store.put_if_absent(
            CHANGE.key(key), self._keys.seal(json.dumps(asdict(fresh)).encode(), context),
            CHANGE.lifetime)
        return fresh if kept is None else Change(**json.loads(self._keys.open(kept, context)))

    def audit(self, meeting: Meeting, who: str, where: str, what: str, detail: str = "", *,
              row_id: str) -> None:
        """Add a row to the audit trail; a row written again under the same ``row_id`` (a
        retried event's) replaces it."""
        now = self._clock()
        row = AuditRow(now, meeting.id, who, where, what, detail)
        expires_at = max(now, meeting.end) + self._audit_retention
        patiently(lambda: self._store.put_record(
            AUDIT, row_id, json.dumps(asdict(row), ensure_ascii=False), at=now,
            tags=("all",), expires_at=expires_at), RECORD_PATIENCE)

    def audit_rows(self, since: float, limit: int = 100_000) -> list[AuditRow]:
        """The audit trail since ``since``, oldest first (at most its first ``limit`` rows)."""
        rows = audit_trail(self._store, since)
        return [row for row, _ in zip(rows, range(limit), strict=False)]

    def _write(self, meeting: Meeting) -> None:
        self._store.put_record(
            SECRETS, meeting.id,
            self._keys.seal(secrets_json(meeting).encode(), _context(SECRETS, meeting.id)),
            at=meeting.created_at, expires_at=meeting.secrets_until + SECRETS_GRACE)
        self._store.put_record(
            MEETINGS, meeting.id,
            self._keys.seal(public_json(meeting).encode(), _context(MEETINGS, meeting.id)),
            at=meeting.start, tags=_tags(meeting),
            expires_at=meeting.end + self._retention)

    def _read(self, meeting_id: str, public: str) -> Meeting:
        opened = self._keys.open(public, _context(MEETINGS, meeting_id)).decode()
        hidden = self._store.record(SECRETS, meeting_id)
        try:
            secret = None if hidden is None else self._keys.open(
                hidden, _context(SECRETS, meeting_id)).decode()
        except SealBroken:
            log.warning("a meeting's links and contacts could not be opened",
                        extra={"meeting_id": meeting_id})
            secret = None
        meeting = from_json(opened, secret)
        for delivery in meeting.deliveries:
            if delivery.reference and (fate := self.fate(delivery.reference)) is not None:
                meeting = meeting.with_fate(delivery.reference, fate)
        return meeting


def audit_trail(store: Store, since: float) -> Iterator[AuditRow]:
    """The audit rows written since ``since``, oldest first. Needs no key: rows are not sealed.
    The store is asked at once (a store out of reach is known before any row is given); the
    rows are then read as they are taken."""
    newest = store.records(AUDIT, "all", since=since, limit=1)
    if not newest:
        return iter(())
    return _oldest_first(store, since, math.nextafter(_row(newest[0][1]).at, math.inf))


def _oldest_first(store: Store, since: float, until: float) -> Iterator[AuditRow]:
    """The store lists newest first, a page at a time: a span of time holding a page or more
    is halved until each half holds less, so a year's trail is neither held whole nor cut
    short."""
    spans = [(since, until)]  # the earliest span last
    while spans:
        start, end = spans.pop()
        page = store.records(AUDIT, "all", since=start, until=end, limit=AUDIT_PAGE)
        middle = (start + end) / 2
        if len(page) < AUDIT_PAGE:
            yield from (_row(value) for _, value in reversed(page))
        elif start < middle < end:
            spans += [(middle, end), (start, middle)]
        else:
            raise RuntimeError(f"more than {AUDIT_PAGE} audit rows at one instant ({start})")


def _row(value: str) -> AuditRow:
    return AuditRow(**json.loads(value))


def _context(collection: str, meeting_id: str) -> bytes:
    """What a sealed value is bound to: it opens only as this part of this meeting."""
    return f"{collection}:{meeting_id}".encode()


def _tags(meeting: Meeting) -> Sequence[str]:
    return (f"person:{meeting.maker_id}", f"room:{meeting.room_id}")
