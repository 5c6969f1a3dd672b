"""Taking one event into the durable queue: the rules every event source shares.

The webhook intake and the websocket listener both call :meth:`Acceptance.take`; it decides
whether an event becomes a job and says why not. Webhooks turn the outcome into an HTTP status,
the listener into "acknowledge the frame or not". An event arriving both ways (``EVENTS=both``)
is stored once: the dedupe key is the event's ``data.id`` whichever way it came.

An event created longer ago than the dedupe retention is dropped: its dedupe record may be gone,
so a captured delivery replayed later must not be processed again.

A flood beyond the backlog is said in a few lines, not one per refused event (ten times the
sustainable rate once wrote 27,000 lines a minute): once when refusing starts, a count every
``REFUSAL_REPORT_SECONDS`` while it goes on, and once when it has stopped (see ``Refusals``).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable

from bot.events import Event
from bot.jobs.storage import BacklogFull, Store, StoreUnavailable
from bot.metrics import record

log = logging.getLogger(__name__)

#: While the backlog stays full, how often the count of refused events is logged.
REFUSAL_REPORT_SECONDS = 5.0


class Outcome(enum.Enum):
    """What became of an event; :attr:`safe_to_acknowledge`: whether Webex may stop sending it."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    TOO_OLD = "too old"
    BUSY = "busy"
    STORAGE_UNAVAILABLE = "storage unavailable"

    @property
    def safe_to_acknowledge(self) -> bool:
        """True when the event is durably handled (queued now, before, or deliberately not):
        only a busy or unreachable store means it must come again."""
        return self not in (Outcome.BUSY, Outcome.STORAGE_UNAVAILABLE)


class Acceptance:
    """Turns an event into at most one durable job."""

    def __init__(
        self,
        store: Store,
        *,
        max_backlog: int,
        retention_seconds: float,
        on_accepted: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._max_backlog = max_backlog
        self._retention = retention_seconds
        self._on_accepted = on_accepted
        self._clock = clock
        self._refusals = Refusals(max_backlog, clock)

    def take(self, event: Event, *, source: str) -> Outcome:
        """Store the event unless it is a duplicate, ignored, too old, or cannot be stored now."""
        context = {"event_id": event.data_id, "resource": event.resource, "event": event.event,
                   "source": source}
        if not event.handled:
            log.info("ignored an event the bot does not handle", extra=context)
            return Outcome.IGNORED
        created = event.created
        if created is not None and created < self._clock() - self._retention:
            log.warning("dropped an event older than DEDUPE_RETENTION: a replay cannot be told "
                        "apart from a new event", extra={**context, "age_seconds": round(
                            self._clock() - created)})
            return Outcome.TOO_OLD
        try:
            accepted = self._store.accept(
                event.data_id, event.resource, event.to_json(), self._max_backlog
            )
        except BacklogFull:
            # Bounded queue: refuse rather than grow; the source delivers it again later.
            self._refusals.refused(source)
            return Outcome.BUSY
        except StoreUnavailable:
            log.error("storage unavailable; the event must be delivered again", extra=context)
            return Outcome.STORAGE_UNAVAILABLE
        if not accepted:  # a duplicate is found before the backlog is counted: no news of it
            log.info("dropped a duplicate delivery", extra=context)
            return Outcome.DUPLICATE
        self._refusals.stored()
        log.info("accepted an event", extra=context)
        record.event(source, event.resource)
        self._on_accepted()
        return Outcome.ACCEPTED


class Refusals:
    """Says that the backlog is full in a few lines however many events it refuses: when
    refusing starts, then how many were refused every ``REFUSAL_REPORT_SECONDS``, and that it
    stopped once ``REFUSAL_REPORT_SECONDS`` passed without a refusal (said with the next event:
    a backlog at its bound takes one event per finished job and refuses the next, and that is
    still one flood, not a start and a stop per job). Shared by the threads of one process."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None  # when refusing started; None when not refusing
        self._last = 0.0  # the latest refusal
        self._reported_at = 0.0
        self._unreported = 0
        self._total = 0

    def refused(self, source: str) -> None:
        """One event was refused because the backlog is full."""
        with self._lock:
            now = self._clock()
            self._end_if_quiet(now)
            self._last = now
            if self._since is None:
                self._since, self._reported_at, self._unreported, self._total = now, now, 0, 1
                log.error("backlog full (MAX_BACKLOG): refusing events until the workers catch "
                          "up; their senders deliver them again later",
                          extra={"limit": self._limit, "source": source})
                return
            self._total += 1
            self._unreported += 1
            if now - self._reported_at >= REFUSAL_REPORT_SECONDS:
                log.error("backlog still full: events refused meanwhile",
                          extra={"limit": self._limit, "refused": self._unreported,
                                 "refused_total": self._total,
                                 "seconds": round(now - self._since, 1)})
                self._reported_at, self._unreported = now, 0

    def stored(self) -> None:
        """An event was stored: says that refusing stopped, if it has."""
        if self._since is None:  # the usual case, without taking the lock
            return
        with self._lock:
            self._end_if_quiet(self._clock())

    def _end_if_quiet(self, now: float) -> None:
        if self._since is None or now - self._last < REFUSAL_REPORT_SECONDS:
            return
        log.warning("backlog has room again: no event refused for "
                    f"{REFUSAL_REPORT_SECONDS:g} s",
                    extra={"limit": self._limit, "refused_total": self._total,
                           "seconds": round(self._last - self._since, 1)})
        self._since = None
